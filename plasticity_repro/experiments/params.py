"""The figure notebooks' parameters, in one table: for each notebook every parameter's name,
meaning, default and allowed values (PARAMETERS).

Each notebook's `parameters` cell mirrors its part of the table (tests/test_params.py checks that
they agree); its next cell checks the values through `check_notebook` before anything is computed;
`plasticity-repro params` lists the table and `plasticity-repro figure` (`make figN P="..."`)
parses and checks the values before it starts the notebook. A bad value is one ValueError line
naming the parameter and what it allows.

A default of None stands for the profile's value (paper.FIGURE_PROFILES or the search profile);
`resolve` replaces it by that value, so a notebook at its defaults asks for exactly the datasets
`make data` makes (the same parameters, so the same file names).

`seed` names all of a figure's randomness: its searches use the search seeds seed * runs ..
seed * runs + runs - 1 (paper.search_seeds) and its evaluation networks the network seeds
50,000 + 100,000 seed + i (paper.eval_seeds). Seed 0 is what the shipped data/ were made with.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

from .. import datasets
from . import paper

NOTEBOOKS = {"fig2": "fig2_self_organization", "fig3": "fig3_term_importance",
             "fig4": "fig4_turnover_robustness", "fig5": "fig5_inhibitory_plasticity", "fig6": "fig6_homeostasis"}
MAX_NETWORKS = 10_000       # evaluation networks: their seeds stay clear of every search's networks
SAVE_FIGURES_ENV = "PLASTICITY_REPRO_SAVE_FIGURES"


def _text(x) -> str:
    """A bound for people: integers as integers (10000, not 1e+04), other numbers in %g."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Param:
    """One notebook parameter. kind: "int", "float", "choice", "path", "floats" (a list of
    numbers, given as a list or as text '0.5,1.5') or "runs" (run numbers of a search, a list or
    text '0,3,5'; None or 'all': every run) or "run" (one run number; None or 'best': the run
    with the lowest test loss); default None: the profile's value,
    profile_value(profile) (for "runs": every run)."""
    name: str
    kind: str
    meaning: str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    profile_value: Callable[[str], Any] | None = None
    length: tuple = (1, 20)         # floats: how many values
    increasing: bool = False        # floats: strictly increasing (else only distinct)

    def allowed(self) -> str:
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        if self.kind == "path":
            return "a non-empty path"
        if self.kind == "runs":
            return "'all' or a list of distinct run numbers in [0, runs - 1]"
        if self.kind == "run":
            return "'best' or a run number in [0, runs - 1]"
        rng = f"[{_text(self.lo)}, {_text(self.hi)}]"
        if self.kind == "int":
            return f"an integer in {rng}"
        if self.kind == "float":
            return f"a number in {rng}"
        order = "increasing" if self.increasing else "distinct"
        return f"a list of {self.length[0]} to {self.length[1]} {order} numbers in {rng}"

    def default_text(self, profiles=None) -> str:
        if self.default is not None or self.profile_value is None:
            return repr(self.default)
        profiles = list(paper.FIGURE_PROFILES) if profiles is None else profiles
        return "the profile's: " + ", ".join(f"{p} {_value_text(self.profile_value(p))}" for p in profiles)

    def check(self, value):
        """The value as the notebook uses it (ints stay ints, floats become floats, text lists
        become lists), or a one-line ValueError naming the parameter and what it allows."""
        bad = ValueError(f"{self.name} must be {self.allowed()}, got {value!r}")
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise bad
            return value
        if self.kind == "path":
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
                raise bad
            return os.fspath(value)
        if self.kind == "runs":
            return self._runs(value, bad)
        if self.kind == "run":
            if value is None or (isinstance(value, str) and value.strip().lower() == "best"):
                return None
            out = self._runs([value] if isinstance(value, int) else value, bad)
            if len(out) != 1:
                raise bad
            return out[0]
        if self.kind == "floats":
            items = _items(value)
            if not isinstance(items, (list, tuple)) or not self.length[0] <= len(items) <= self.length[1]:
                raise bad
            try:
                out = [self._number(float(v) if isinstance(v, str) else v) for v in items]
            except ValueError:
                raise bad from None
            if self.increasing and any(b <= a for a, b in zip(out, out[1:])):
                raise bad
            if len(set(out)) != len(out):
                raise bad
            return out
        try:
            return self._number(value)
        except ValueError:
            raise bad from None

    def _runs(self, value, bad):
        """None for every run, else the distinct run numbers, sorted (the order the rules are drawn in)."""
        if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
            return None
        items = _items(value)
        if not isinstance(items, (list, tuple)) or not items:
            raise bad
        try:
            out = [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in items]
        except ValueError:
            raise bad from None
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in out) or len(set(out)) != len(out):
            raise bad
        return sorted(out)

    def _number(self, value):
        integer = self.kind == "int"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise ValueError(self.name)
        if not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise ValueError(self.name)
        return int(value) if integer else float(value)


def _items(value):
    """A list given as text ('0.5, 1.5' or '[0, 3]') as its items' texts; anything else as it is."""
    if isinstance(value, str):
        return [t.strip() for t in value.strip().strip("[]()").split(",") if t.strip()]
    return value


def _value_text(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    return _text(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else repr(v)


# -- the table ------------------------------------------------------------------------------------
def _fp(key):
    return lambda profile: paper.FIGURE_PROFILES[profile][key]


def _generations(profile):
    return paper.search_config(profile).max_generations


def _activations(profile):
    return paper.search_config(profile).model.n_activations


def _ei_generations(profile):
    fp = paper.FIGURE_PROFILES[profile]
    return fp["ei_warm_generations"] if fp["ei_warm_start"] else _generations(profile)


def _sweep_p_values():
    from .sweep import P_VALUES
    return list(P_VALUES)


def _perturbation_defaults():
    from .perturb import AFFERENT_FACTORS, INPUT_FACTOR
    return list(AFFERENT_FACTORS), INPUT_FACTOR


def _networks(name, meaning, key):
    return Param(name, "int", meaning, lo=1, hi=MAX_NETWORKS, profile_value=_fp(key))


def _shipped(profile: str) -> str:
    """'; the shipped data of Figs 5-6' for the profile whose datasets data/ holds for those figures."""
    from ..profiles import SHIPPED
    figs = sorted(int(f[3:]) for f, p in SHIPPED.items() if p == profile)
    if not figs:
        return ""
    span = str(figs[0]) if len(figs) == 1 else (f"{figs[0]}-{figs[-1]}" if figs == list(range(figs[0], figs[-1] + 1))
                                                 else ", ".join(map(str, figs)))
    return f"; the shipped data of Fig{'s' if len(figs) > 1 else ''} {span}"


PROFILE = Param("profile", "choice", f"problem size: quick (CI), laptop (2 runs per arm{_shipped('laptop')}), "
                f"repro (the campaign{_shipped('repro')}), paper (the spec's numbers)", "quick",
                choices=tuple(paper.FIGURE_PROFILES))
SEED = Param("seed", "int", "all the figure's randomness: search seeds seed*runs .. seed*runs+runs-1 (each search "
             "its own runs), evaluation "
             "networks 50000 + 100000*seed + i; 0: the shipped data", 0, lo=0, hi=paper.SEED_MAX)
DATA_DIR = Param("data_dir", "path", "folder of the datasets (relative: to the project root)", "data")
FIG_DIR = Param("fig_dir", "path", "folder of the figures, written to FIG_DIR/PROFILE/figN.png|svg", "figures")
RUNS = Param("runs", "int", "independent CMA-ES runs of each learned-rule search", lo=1, hi=1000,
             profile_value=_fp("runs"))
GENERATIONS = Param("generations", "int", "CMA-ES generations of each E->E search", lo=1, hi=10 ** 6,
                    profile_value=_generations)
ACTIVATIONS = Param("n_activations", "int", "activations of the training protocol (decoder windows scaled as the "
                    "profile's; its learning rate kept)", lo=24, hi=4000, profile_value=_activations)
P_TURNOVER = Param("p_turnover", "float", "E->E turnover probability per synapse and activation while training",
                   0.00072, lo=0.0, hi=1.0)
TAU_CONVENTION = Param("tau_convention", "choice", "time constants of E->I and I->E: their own, or the paper-era "
                       "E->E ones shifted", "independent", choices=("independent", "shifted"))
EI_GENERATIONS = Param("ei_generations", "int", "CMA-ES generations of the all-synapse search (at laptop from the "
                       "warm start)", lo=1, hi=10 ** 6, profile_value=_ei_generations)
N_DROPOUT = _networks("n_dropout_networks", "evaluation networks of the dropout (one term set to 0 at a time)",
                      "dropout_networks")
REFIT_K_MAX = Param("refit_k_max", "int", "progressive refit with the top k = 1 .. refit_k_max terms", lo=1, hi=20,
                    profile_value=lambda p: paper.FIGURE_PROFILES[p]["refit_ks"][-1])
REFIT_GENERATIONS = Param("refit_generations", "int", "CMA-ES generations of each refit", lo=1, hi=10 ** 6,
                          profile_value=_fp("refit_generations"))
ALL_SYNAPSE_RUNS = Param("all_synapse_runs", "int", "independent CMA-ES runs of the all-synapse search (>= runs; its "
                         "first `runs` converged rules in seed order are compared)", lo=1, hi=1000,
                         profile_value=_fp("all_synapse_runs"))
RULE_RUNS = Param("rule_runs", "runs", "which runs' rules are evaluated (each run hands on its incumbent with the "
                  "lowest test loss): 'all', or run numbers such as '0,3'", "all")
COMMON = (PROFILE, SEED, DATA_DIR, FIG_DIR)

PARAMETERS = {
    "fig2": COMMON + (RUNS, GENERATIONS, ACTIVATIONS,
                      _networks("n_networks", "fresh networks the learned rules and no plasticity are evaluated on",
                                "eval_networks"), RULE_RUNS),
    "fig3": COMMON + (RUNS, GENERATIONS, ACTIVATIONS, N_DROPOUT,
                      _networks("n_networks", "networks each refit is tested on", "eval_networks"),
                      REFIT_K_MAX, REFIT_GENERATIONS),
    "fig4": COMMON + (P_TURNOVER, RUNS, GENERATIONS, N_DROPOUT,
                      _networks("n_networks", "networks each refit is tested on", "eval_networks"),
                      REFIT_K_MAX, REFIT_GENERATIONS,
                      _networks("n_stress_networks", "networks of the stress test", "stress_networks"),
                      ACTIVATIONS,
                      Param("handmade_runs", "int", "independent CMA-ES runs tuning the hand-made rule (its best "
                            "run is used)", lo=1, hi=1000, profile_value=_fp("handmade_runs")),
                      Param("handmade_generations", "int", "CMA-ES generations tuning the hand-made rule's 7 "
                            "numbers", lo=1, hi=10 ** 6, profile_value=_fp("handmade_generations"))),
    "fig5": COMMON + (P_TURNOVER, TAU_CONVENTION, RUNS, ALL_SYNAPSE_RUNS, GENERATIONS, EI_GENERATIONS, ACTIVATIONS,
                      _networks("n_networks", "networks of the evaluation and of the turnover sweep",
                                "eval_networks"),
                      Param("p_values", "floats", "turnover levels p_ST of the sweep", _sweep_p_values(), lo=0.0,
                            hi=1.0, increasing=True),
                      _networks("n_dropout_networks", "networks of the E->I dropout", "dropout_networks"),
                      Param("rule_runs", "runs", "which runs' rules are evaluated, the same run numbers of both "
                            "searches (all-synapse and E->E only), or 'all': every E->E run and as many "
                            "all-synapse runs, the first converged ones in seed order", "all")),
    "fig6": COMMON + (P_TURNOVER, TAU_CONVENTION,
                      Param("rule_source", "choice", "the rule perturbed: the best of the all-synapse search's runs "
                            "('all') or the best E->E rule trained with turnover ('ee')", "all", choices=("all", "ee")),
                      RUNS, ALL_SYNAPSE_RUNS, GENERATIONS, EI_GENERATIONS, ACTIVATIONS,
                      Param("n_networks", "int", "networks of the single-cell perturbations", lo=1, hi=MAX_NETWORKS,
                            profile_value=lambda p: min(paper.FIG6_NETWORKS, paper.FIGURE_PROFILES[p]["eval_networks"])),
                      Param("afferent_factors", "floats", "scalings of the perturbed cell's E->E afferents (once)",
                            _perturbation_defaults()[0], lo=0.01, hi=100.0, length=(1, 10)),
                      Param("input_factor", "float", "gain of the perturbed cell's fresh input (from the "
                            "perturbation on)", _perturbation_defaults()[1], lo=0.01, hi=1000.0),
                      Param("rule_run", "run", "which run of that search: 'best' (lowest test loss) or a run number",
                            "best")),
}


def figure_key(figure: str) -> str:
    """'fig2' for 'fig2', 'fig2_self_organization' or 'notebooks/fig2_self_organization.ipynb'."""
    key = Path(str(figure)).stem.split("_")[0]
    if key not in PARAMETERS:
        raise ValueError(f"figure must be one of {list(PARAMETERS)}, got {figure!r}")
    return key


def table(figure: str) -> dict:
    """name -> Param of a figure's parameters, in the order of its parameters cell."""
    return {p.name: p for p in PARAMETERS[figure_key(figure)]}


def defaults(figure: str) -> dict:
    """The values of a figure's parameters cell: name -> default (None: the profile's)."""
    return {name: p.default for name, p in table(figure).items()}


def resolve(figure: str, values: dict) -> dict:
    """Every parameter of `figure` with its checked value: `values` where given, else the default,
    None replaced by the profile's value. A ValueError of one line names an unknown parameter or
    the first bad value and what it allows."""
    params = table(figure)
    unknown = [k for k in values if k not in params]
    if unknown:
        raise ValueError(f"{figure_key(figure)} has no parameter {unknown[0]!r}; its parameters: {', '.join(params)}")
    profile = params["profile"].check(values.get("profile", params["profile"].default))
    out = {}
    for name, p in params.items():
        v = values.get(name, p.default)
        out[name] = p.profile_value(profile) if v is None and p.profile_value is not None else p.check(v)
    _check_run_numbers(params, out, values)
    _check_network_seeds(out)
    return out


def _check_run_numbers(params: dict, v: dict, given=()) -> None:
    """Run numbers ("runs" and "run" parameters) must name runs the searches have; every run
    listed is the same as 'all' (None), so it reads the same datasets. `given`: the names the
    caller set (the others are defaults)."""
    if "all_synapse_runs" in v and "rule_runs" in v and v["all_synapse_runs"] < v["runs"]:   # Fig 5 compares runs rules
        raise ValueError(f"all_synapse_runs must be an integer in [{v['runs']}, {ALL_SYNAPSE_RUNS.hi}] (at least "
                         f"runs = {v['runs']}), got {v['all_synapse_runs']!r}"
                         + ("" if "all_synapse_runs" in given else " (the profile's value: raise it with runs)"))
    for name, p in params.items():
        if p.kind in ("runs", "run") and v[name] is not None:
            top = max(v[name]) if p.kind == "runs" else v[name]
            # Fig 6's rule_run names a run of the all-synapse search when rule_source is "all"
            key = "all_synapse_runs" if p.kind == "run" and v.get("rule_source") == "all" else "runs"
            if top >= v[key]:
                raise ValueError(f"{name} must be {p.allowed().replace('runs - 1', str(v[key] - 1))} "
                                 f"({key} = {v[key]}), got {_literal(v[name])}")
            # every run listed is 'all' only where it names every run of each search (Fig 5: not when the
            # all-synapse search has more runs, whose 'all' is a selection)
            if p.kind == "runs" and v[name] == list(range(max(v["runs"], v.get("all_synapse_runs", 0)))):
                v[name] = None


def _check_network_seeds(v: dict) -> None:
    """At a profile whose runs have networks of their own (repro: seeds 100,000 (search seed + 1)
    + slot), the largest search seed must keep those below 2^32."""
    from ..search import RUN_STRIDE
    cfg = paper.search_config(v["profile"])
    if not cfg.independent_networks:
        return
    top_slot = max(cfg.train_seed + cfg.n_train, cfg.test_seed + cfg.n_test)
    top_search = (2 ** 32 - 1 - top_slot) // RUN_STRIDE - 1
    # the largest search: Fig 6 searches only E->E rules with rule_source "ee"
    runs = max(v["runs"], 0 if v.get("rule_source") == "ee" else v.get("all_synapse_runs", 0))
    hi = min(paper.SEED_MAX, (top_search - runs + 1) // runs)
    if v["seed"] > hi:
        raise ValueError(f"seed must be an integer in [0, {hi}] at profile {v['profile']} with {runs} runs "
                         f"(each run's own networks need seeds below 2^32), got {v['seed']!r}")


def project_root(start=None) -> Path:
    """The folder holding pyproject.toml at or above `start` (default: the working folder)."""
    root = Path.cwd() if start is None else Path(start)
    while not (root / "pyproject.toml").exists() and root != root.parent:
        root = root.parent
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def check_notebook(namespace: dict, figure: str) -> tuple:
    """A figure notebook's check of its parameters, run right after its parameters cell.

    Checks the parameters in `namespace` (the notebook's globals()) against the table, replaces
    each by its checked value (None: the profile's value; a list given as text: the list) and
    checks the output folders: data_dir unless the figures read only (PLASTICITY_REPRO_READ_ONLY),
    fig_dir/PROFILE unless figures are not saved (PLASTICITY_REPRO_SAVE_FIGURES=0). On the first
    call in a namespace, any other plain value in it is a parameter the notebook does not have
    (papermill -p injects unknown names without complaint). Returns (data folder, figure folder)
    as paths, relative ones taken from the project root. Raises a one-line ValueError (in IPython
    shown without a traceback: papermill then reports only that line)."""
    try:
        return _check_notebook(namespace, figure)
    except ValueError:
        _short_traceback(namespace)
        raise


def _short_traceback(namespace: dict) -> None:
    """IPython's traceback mode 'Minimal' (the error line only) for the cell that runs now, the
    previous mode back after it."""
    shell = namespace["get_ipython"]() if callable(namespace.get("get_ipython")) else None
    tb = getattr(shell, "InteractiveTB", None)
    if tb is None or not hasattr(shell, "events"):
        return
    old = tb.mode

    def restore(*_):
        tb.set_mode(old)
        shell.events.unregister("post_run_cell", restore)
    tb.set_mode("Minimal")
    shell.events.register("post_run_cell", restore)


def _check_notebook(namespace: dict, figure: str) -> tuple:
    params = table(figure)
    if not namespace.get("_parameters_checked"):
        hidden = set()
        if callable(namespace.get("get_ipython")):   # In, Out, exit, ... of IPython
            hidden = set(getattr(namespace["get_ipython"](), "user_ns_hidden", ()))
        plain = (bool, int, float, str, list, tuple, dict, type(None))
        values = {k: v for k, v in namespace.items()
                  if not k.startswith("_") and k not in hidden and isinstance(v, plain)}
    else:
        values = {k: namespace[k] for k in params if k in namespace}
    resolved = resolve(figure, values)
    namespace.update(resolved)
    namespace["_parameters_checked"] = True
    root = project_root()
    data, figs = (Path(v) if Path(v).is_absolute() else root / v for v in (resolved["data_dir"], resolved["fig_dir"]))
    writes_data, writes_figs = not paper.read_only(), os.environ.get(SAVE_FIGURES_ENV, "1") != "0"
    shipped = [f"{option}={folder.name!r}" for option, folder, writes in
               (("data_dir", data, writes_data), ("fig_dir", figs, writes_figs))
               if writes and folder.resolve().is_relative_to((root / DEFAULT_FOLDERS[option]).resolve())]
    changed = _changed(namespace, figure)
    if shipped and changed:
        given = " ".join(f"{k}={_literal(v)}" for k, v in changed.items())
        raise ValueError(f"{figure} with {given} would write into the shipped {' and '.join(shipped)}: run "
                         f"`make {figure} P=\"{given}\"` (results under runs/), or give data_dir and fig_dir")
    if writes_data:
        check_folder("data_dir", data)
    if writes_figs:
        check_folder("fig_dir", figs / resolved["profile"])
    return data, figs


DEFAULT_FOLDERS = {"data_dir": "data", "fig_dir": "figures"}


def _changed(namespace: dict, figure: str) -> dict:
    """The (checked) parameters whose values differ from their profile's defaults, folders aside."""
    want = resolve(figure, {"profile": namespace["profile"]})
    return {k: namespace[k] for k, p in table(figure).items() if p.kind != "path" and namespace[k] != want[k]}


def _literal(value) -> str:
    """A parameter's value as `make figN P="name=value"` takes it."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def at_defaults(namespace: dict, figure: str) -> bool:
    """True when the notebook's (checked) parameters are its profile's defaults, folders aside:
    where the notebooks assert the paper's claims (other parameters may not be able to make them)."""
    return not _changed(namespace, figure)


def check_folder(option: str, folder) -> None:
    """One-line ValueError naming `option` unless `folder` exists writable or can be created."""
    why = datasets.location_problem(folder, "folder", directory=True)
    if why is not None:
        raise ValueError(f"{option}: {why}")


# -- the listing ----------------------------------------------------------------------------------
def rows(figure: str) -> list:
    """[name, default, allowed, meaning] of each parameter of `figure`."""
    return [[p.name, p.default_text(), p.allowed(), p.meaning] for p in PARAMETERS[figure_key(figure)]]


def markdown(figures=None) -> str:
    """The table of every notebook's parameters as markdown (notebooks/README.md holds it)."""
    out = []
    for fig in figures or PARAMETERS:
        out += [f"**{fig}** (`notebooks/{NOTEBOOKS[fig]}.ipynb`)", "",
                "| parameter | default | allowed | meaning |", "|---|---|---|---|"]
        out += ["| " + " | ".join(f"`{c}`" if j == 0 else c.replace("|", "\\|") for j, c in enumerate(r)) + " |"
                for r in rows(fig)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
