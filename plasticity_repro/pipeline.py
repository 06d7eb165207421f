"""The declared pipeline: every dataset the figure notebooks read, per profile, with the function
that makes it, its parameters, the datasets it needs and its planned cost.

A dataset's producer calls what its notebook calls (experiments/paper.py and the experiment
modules) with the notebook's default parameters (seed 0, p_turnover 0.00072, tau convention
"independent", Fig 6 rule_source "all"), so the file it writes is the file the notebook reads:
data/<name>_<profile>_<hash>.nc, the same name and hash. `plasticity-repro data` (`make data`)
makes what is missing in dependency order (a search resumes from its checkpoint); the figure
notebooks under `make figures` only read (paper.read_only_mode, PLASTICITY_REPRO_READ_ONLY=1).

At profile repro the three searches are the reproduction campaign's (issue 17): `plasticity-repro
search --profile repro --runs 8 --seed 0 ...` (the all-synapse one --runs 16) into
data/campaign/<stem>.nc with its checkpoint data/campaign/<stem>.ckpt; each is then copied under
the figure cache's name (with the cache's request hash) for the notebooks.

Costs are planned in network-activations (one network simulated through one activation): a search
counts runs x generations x (population x train networks + test networks) x activations (the
incumbent's test re-score counted every generation; IPOP restarts, where a profile allows them,
double the population and are not counted); an evaluation counts rules x variants x networks x
activations. The plan's hours are these over a speed (SPEED: the fused engine on 2 cores, E→E
rules), each dataset's network-activations weighted by its rules' floating-point work relative to
an E→E rule (`Dataset.work`: ALL_SYNAPSE_WORK for rules on E→E, E→I and I→E).
"""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import time
from pathlib import Path
from typing import Callable

import xarray as xr

from . import datasets
from .experiments import paper

P_TURNOVER = 0.00072          # the notebooks' default p_turnover (Fig 4, 5, 6)
TABLES = ("learned_rules",)   # datasets made for users that no figure reads
SPEED = 3000.0                # network-activations per second: the fused engine on 2 cores, E→E rules (repro scoring)
ALL_SYNAPSE_WORK = 44.6 / 26.2  # flop per network-activation of an all-synapse rule over an E→E rule's (`make bench`)
N_DROPOUT_VARIANTS = 21       # the full rule and each of the 20 terms dropped
BUSY_CHECKPOINT_S = 900       # a campaign checkpoint written this recently: its search may be running
# profile repro: the campaign's searches, (figure dataset, campaign file stem, synapses, p_turnover)
CAMPAIGN = (("search_ee", "search_ee_repro", ("ee",), 0.0),
            ("search_ee_turnover", "search_ee_turnover_repro", ("ee",), P_TURNOVER),
            ("search_eeeiie_turnover", "search_all_turnover_repro", paper.ALL_SYNAPSES, P_TURNOVER))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset of the pipeline: `produce(ctx)` reads it when its file exists and makes and
    writes it otherwise (through paper.cached); `needs` are the datasets it reads."""
    name: str                       # data/<name>_<profile>_<hash>.nc; `--only NAME`
    produce: Callable[["Context"], xr.Dataset]
    needs: tuple = ()
    figures: tuple = ()             # the notebooks that read it (fig2 .. fig6)
    function: str = ""              # the producing function, for people
    params: dict = dataclasses.field(default_factory=dict)
    cost: int = 0                   # planned network-activations
    counted: str = ""               # how `cost` is counted
    work: float = 1.0               # floating-point work per network-activation, in E→E rules' (ALL_SYNAPSE_WORK)
    generations: int = 0            # a search's planned generations (0: not a search); `cost` counts them all

    def seconds(self, speed: float = SPEED) -> float:
        """Planned seconds at `speed` E→E network-activations per second."""
        return self.cost * self.work / speed


def spent_fraction(d: Dataset, path) -> float:
    """The part of `d`'s planned cost that the checkpoint beside its output file `path` already
    holds: a search resuming at generation g of its planned d.generations has spent g / generations
    of it. 0 where `d` is not a search, its file name is not known yet (None) or it has no checkpoint."""
    if not d.generations or path is None:
        return 0.0
    ckpt = Path(path).with_suffix(".ckpt")
    if not ckpt.exists():
        return 0.0
    try:
        with open(ckpt, "rb") as f:
            generation = int(pickle.load(f)["generation"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError):
        return 0.0   # unreadable: the search itself says so when it resumes
    return min(max(generation / d.generations, 0.0), 1.0)


@dataclasses.dataclass(frozen=True)
class Context:
    """Where and how the datasets are made: profile, data folder, first search seed (the
    notebooks' seed), progress bars, and whether a recently written campaign checkpoint may be
    resumed."""
    profile: str
    data_dir: Path = Path("data")
    seed: int = 0
    progress: bool = True
    force: bool = False


@dataclasses.dataclass(frozen=True)
class Status:
    dataset: Dataset
    exists: bool
    path: Path | None = None        # None: not known until the datasets in `waiting` exist
    waiting: tuple = ()


# -- costs --------------------------------------------------------------------------------------
def _popsize(n_params: int) -> int:
    return 4 + int(math.floor(3 * math.log(n_params)))


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _search_cost(cfg, runs: int) -> tuple:
    g, pop, n_act = cfg.max_generations, cfg.base_popsize, cfg.model.n_activations
    text = f"{_n(runs, 'run')} x {g} gen x ({pop} x {cfg.n_train} + {cfg.n_test}) nets x {n_act} act"
    if cfg.max_restarts:
        text += f" (a lower bound: up to {cfg.max_restarts} IPOP restarts double the population)"
    return runs * g * (pop * cfg.n_train + cfg.n_test) * n_act, text


def _eval_cost(rules: int, variants: int, networks: int, n_act) -> tuple:
    acts = sum(n_act) if isinstance(n_act, tuple) else n_act
    act_text = " + ".join(map(str, n_act)) if isinstance(n_act, tuple) else str(n_act)
    act_text = f"({act_text})" if isinstance(n_act, tuple) else act_text
    var = f" x {variants} variants" if variants != 1 else ""
    return rules * variants * networks * acts, f"{_n(rules, 'rule')}{var} x {networks} nets x {act_text} act"


def _refit_cost(profile: str, n_act: int, ks=None) -> tuple:
    """One search per k (the profile's refit_ks, or `ks`) over k coefficients and at most k time
    constants (population of 2k parameters: an upper bound), then the refit on the evaluation
    networks."""
    fp = paper.FIGURE_PROFILES[profile]
    g, n_train, n_eval = fp["refit_generations"], fp["refit_train"], fp["eval_networks"]
    ks = fp["refit_ks"] if ks is None else tuple(ks)
    search = sum(g * _popsize(2 * k) * n_train * n_act for k in ks)
    text = (f"k={ks[0]}..{ks[-1]}: 1 run x {g} gen x (pop {_popsize(2 * ks[0])}..{_popsize(2 * ks[-1])}) x "
            f"{n_train} nets x {n_act} act + {len(ks)} x {n_eval} nets x {n_act} act")
    return search + len(ks) * n_eval * n_act, text


def all_synapse_name(profile: str) -> str:
    """The pipeline name of a profile's all-synapse search: "search_eeeiie_turnover", with "_warm"
    where the profile warm-starts it from the E->E rule."""
    return "search_eeeiie_turnover" + ("_warm" if paper.FIGURE_PROFILES[profile]["ei_warm_start"] else "")


# -- producers: what the notebooks call, with their default parameters --------------------------
def _search_ee(p_turnover: float):
    def produce(c: Context) -> xr.Dataset:
        return paper.searches(c.profile, c.data_dir, seed=c.seed, p_turnover=p_turnover, progress=c.progress)
    return produce


def _search_all(c: Context) -> xr.Dataset:
    return paper.all_synapse_search(c.profile, c.data_dir, seed=c.seed, p_turnover=P_TURNOVER,
                                    tau_convention="independent", progress=c.progress)[1]


def _search_handmade(c: Context) -> xr.Dataset:
    return paper.handmade_search(c.profile, c.data_dir, seed=c.seed, progress=c.progress)


def _learned_rules(c: Context) -> xr.Dataset:
    return paper.rules_table(c.profile, c.data_dir, seed=c.seed)


def _fig2_eval(c: Context) -> xr.Dataset:
    return paper.fig2_evaluation(c.profile, c.data_dir, paper.searches(c.profile, c.data_dir, seed=c.seed, progress=False),
                                 paper.search_config(c.profile), seed=c.seed)


def _term_rules(c: Context, stem: str):
    """The searches, rules and names of Fig 3 (no turnover) or Fig 4 (trained with turnover)."""
    p = None if stem == "fig3" else P_TURNOVER
    cfg = paper.search_config(c.profile, p_turnover=p or 0.0)
    search = paper.searches(c.profile, c.data_dir, seed=c.seed, p_turnover=p or 0.0, progress=False)
    rules = paper.learned_rules(search, cfg)
    names = [f"{'run' if p is None else 'turnover run'} {i}" for i in range(len(rules))]
    return p, cfg, search, rules, names


def _dropout(stem: str):
    """notebooks/fig3_term_importance.py and fig4_turnover_robustness.py, 'Dropout'."""
    def produce(c: Context) -> xr.Dataset:
        p, cfg, search, rules, names = _term_rules(c, stem)
        kw = {} if p is None else dict(p_turnover=p)
        return paper.term_dropout(stem, c.profile, c.data_dir, cfg, search, rules, names, seed=c.seed, **kw)[0]
    return produce


def _refit_inputs(c: Context, stem: str) -> tuple:
    """(cfg, the rules the refit starts from, the dropout's ranking and request, turnover keywords)."""
    p, cfg, search, rules, names = _term_rules(c, stem)
    kw = {} if p is None else dict(p_turnover=p)
    dd, ranking, req = paper.term_dropout(stem, c.profile, c.data_dir, cfg, search, rules, names, seed=c.seed, **kw)
    return cfg, paper.ranking_rules(dd, rules), ranking, req, kw


def _refit(stem: str):
    """notebooks/fig3_term_importance.py and fig4_turnover_robustness.py, 'Progressive refitting'."""
    def produce(c: Context) -> xr.Dataset:
        cfg, rules, ranking, req, kw = _refit_inputs(c, stem)
        return paper.term_refit(stem, c.profile, c.data_dir, cfg, rules, ranking, req, seed=c.seed, **kw)
    return produce


def _paper_terms_refit(c: Context) -> xr.Dataset:
    """notebooks/fig3_term_importance.py, 'Progressive refitting' (the paper's three terms)."""
    cfg, rules, ranking, req, _ = _refit_inputs(c, "fig3")
    return paper.paper_terms_refit(c.profile, c.data_dir, cfg, rules, ranking, req, seed=c.seed)


def _fig4_stress(c: Context) -> xr.Dataset:
    """notebooks/fig4_turnover_robustness.py, 'Stress test'."""
    _, _, search, rules, names = _term_rules(c, "fig4")
    return paper.stress_test(c.profile, c.data_dir, search, rules, names, seed=c.seed, p_turnover=P_TURNOVER)[1]


def _fig5_rules(c: Context) -> paper.Fig5Rules:
    return paper.fig5_rules(c.profile, c.data_dir, seed=c.seed, p_turnover=P_TURNOVER)


def _fig5_eval(c: Context) -> xr.Dataset:
    return paper.fig5_evaluation(c.profile, c.data_dir, _fig5_rules(c), seed=c.seed)


def _fig5_sweep(c: Context) -> xr.Dataset:
    return paper.fig5_sweep(c.profile, c.data_dir, _fig5_rules(c), seed=c.seed)


def _fig5_dropout_ei(c: Context) -> xr.Dataset:
    return paper.fig5_dropout_ei(c.profile, c.data_dir, _fig5_rules(c), seed=c.seed, p_turnover=P_TURNOVER)


def _fig6_perturb(c: Context) -> xr.Dataset:
    return paper.fig6_perturbation(c.profile, c.data_dir, *paper.fig6_rule(c.profile, c.data_dir, seed=c.seed,
                                                                           p_turnover=P_TURNOVER), seed=c.seed)


def _fig6_reduced(c: Context) -> xr.Dataset:
    return paper.fig6_reduced(c.profile, c.data_dir)


# -- profile repro: the campaign's searches -------------------------------------------------------
def campaign_path(c: Context, stem: str) -> Path:
    """data/campaign/<stem>.nc for the shipped seed 0, <stem>_seed<N>.nc for another seed (whose
    runs are other searches)."""
    return Path(c.data_dir) / "campaign" / (f"{stem}.nc" if c.seed == 0 else f"{stem}_seed{c.seed}.nc")


def campaign_command(c: Context, stem: str, synapses, p_turnover: float) -> str:
    """The campaign's command line of one search (with --resume once its checkpoint exists)."""
    out = campaign_path(c, stem)
    syn = "all" if tuple(synapses) == paper.ALL_SYNAPSES else ",".join(synapses)
    seeds = paper.search_seeds(c.profile, c.seed, paper.search_runs(c.profile, synapses))
    return (f"plasticity-repro search --profile {c.profile} --runs {len(seeds)} --seed {seeds[0]} --synapses {syn}"
            + (f" --turnover {p_turnover:g}" if p_turnover else "")
            + f" --out {out} --checkpoint {out.with_suffix('.ckpt')} [--resume]")


def _campaign_search(name: str, stem: str, synapses, p_turnover: float):
    """The campaign search itself, as `plasticity-repro search` runs it: the profile's config,
    the search seeds of the figures' seed (paper.search_seeds), resumed from its checkpoint when
    there is one."""
    def produce(c: Context) -> xr.Dataset:
        out = campaign_path(c, stem)
        return paper.cached(out, "search", lambda: _run_campaign(c, out, synapses, p_turnover),
                            name=name, profile=c.profile)
    return produce


def _run_campaign(c: Context, out: Path, synapses, p_turnover: float) -> xr.Dataset:
    from .search import profile_config, run_search
    ckpt = out.with_suffix(".ckpt")
    if ckpt.exists() and not c.force:
        age = time.time() - ckpt.stat().st_mtime
        if age < BUSY_CHECKPOINT_S:
            raise ValueError(f"checkpoint {ckpt} was written {age:.0f} s ago: the campaign may still be running "
                             f"this search; wait until it has ended (or pass --force)")
    cfg = profile_config(c.profile, synapses=tuple(synapses), p_turnover=p_turnover)
    return run_search(cfg, seeds=paper.search_seeds(c.profile, c.seed, paper.search_runs(c.profile, synapses)),
                      checkpoint=ckpt, resume=ckpt.exists(), progress=c.progress)


def _adopted_search(stem: str, synapses, p_turnover: float):
    """The campaign's search under the figure cache's name (paper.searches reads it there): the
    campaign file, checked to hold exactly the search the notebooks ask for, with the cache's
    request hash."""
    def produce(c: Context) -> xr.Dataset:
        cfg = paper.search_config(c.profile, tuple(synapses), p_turnover)
        seeds = paper.search_seeds(c.profile, c.seed, paper.search_runs(c.profile, synapses))
        request = dict(search=cfg.to_dict(), seeds=seeds)
        path = paper.search_path(c.data_dir, cfg, c.profile, request)
        return paper.cached(path, "search", lambda: _adopt(campaign_path(c, stem), cfg, seeds),
                            datasets.params_hash(request))
    return produce


def _adopt(src: Path, cfg, seeds: list) -> xr.Dataset:
    ds = datasets.read_dataset(src, kind="search")
    made = json.loads(ds.attrs.get("params_json", "{}")).get("search")
    want = json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))
    if made != want or json.loads(ds.attrs.get("seeds_json", "null")) != seeds:
        raise ValueError(f"campaign dataset {str(src)!r} is not the search profile {cfg.profile} asks for "
                         f"(its config or seeds differ from seeds {seeds[0]}..{seeds[-1]})")
    # the campaign file as <folder>/<file> within the data folder (not an absolute path, which a
    # regeneration's moved files would no longer have)
    return ds.assign_attrs(copied_from=f"{Path(src).parent.name}/{Path(src).name}")


# -- the declaration ------------------------------------------------------------------------------
def declare(profile: str, data_dir="data", seed: int = 0) -> list:
    """Every dataset the five figure notebooks read at `profile`, in dependency order. `data_dir`
    and `seed` (the notebooks' seed) only name the campaign's files and the runs in the
    parameters; the producers take both from their Context."""
    from .experiments.perturb import KINDS, perturbation_protocol
    from .experiments.stress import handmade_search_config, handmade_stress_protocol, stress_protocol
    from .experiments.sweep import P_VALUES, sweep_protocol
    if profile not in paper.FIGURE_PROFILES:
        raise ValueError(f"profile must be one of {list(paper.FIGURE_PROFILES)}, got {profile!r}")
    fp = paper.FIGURE_PROFILES[profile]
    runs = fp["runs"]
    cfg_ee = paper.search_config(profile)
    cfg_eet = paper.search_config(profile, p_turnover=P_TURNOVER)
    cfg_all = paper.search_config(profile, paper.ALL_SYNAPSES, P_TURNOVER)
    n_act = cfg_ee.model.n_activations
    warm = bool(fp["ei_warm_start"])
    all_name = all_synapse_name(profile)
    figs = {"search_ee": ("fig2", "fig3", "fig4"), "search_ee_turnover": ("fig4", "fig5"),
            all_name: ("fig5", "fig6")}
    out = []

    def add(name, produce, needs=(), figures=(), function="", params=None, cost=(0, ""), work=1.0, generations=0):
        out.append(Dataset(name, produce, tuple(needs), tuple(figures), function, dict(params or {}), int(cost[0]),
                           cost[1], work, int(generations)))

    def search_params(cfg):
        n = paper.search_runs(profile, cfg.space.synapses)
        seeds = paper.search_seeds(profile, seed, n)
        return dict(synapses=",".join(cfg.space.synapses), p_turnover=cfg.p_turnover, runs=n,
                    seeds=f"{seeds[0]}..{seeds[-1]}")
    if profile == "repro":
        c = Context(profile, Path(data_dir), seed)
        for name, stem, synapses, p in CAMPAIGN:
            cfg = paper.search_config(profile, synapses, p)
            camp = "campaign_" + stem.removesuffix("_repro")
            add(camp, _campaign_search(camp, stem, synapses, p),
                function="plasticity-repro search (campaign, resumed from its checkpoint)",
                params=dict(search_params(cfg), command=campaign_command(c, stem, synapses, p)),
                cost=_search_cost(cfg, paper.search_runs(profile, synapses)),
                work=ALL_SYNAPSE_WORK if len(synapses) > 1 else 1.0, generations=cfg.max_generations)
            add(name, _adopted_search(stem, synapses, p), needs=[camp],
                figures=figs[name], function="the campaign's file under the figure cache's name (paper.searches)",
                params=search_params(cfg), cost=(0, f"copied from {campaign_path(c, stem)}"))
    else:
        add("search_ee", _search_ee(0.0), figures=figs["search_ee"], function="paper.searches",
            params=search_params(cfg_ee), cost=_search_cost(cfg_ee, runs), generations=cfg_ee.max_generations)
        add("search_ee_turnover", _search_ee(P_TURNOVER), figures=figs["search_ee_turnover"],
            function="paper.searches", params=search_params(cfg_eet), cost=_search_cost(cfg_eet, runs),
            generations=cfg_eet.max_generations)
        cfg = cfg_all.replace(max_generations=fp["ei_warm_generations"]) if warm else cfg_all
        add(all_name, _search_all, needs=["search_ee_turnover"] if warm else [], figures=figs[all_name],
            function="paper.all_synapse_search" + (" (warm start from search_ee_turnover)" if warm else ""),
            params=search_params(cfg), cost=_search_cost(cfg, fp["all_synapse_runs"]), work=ALL_SYNAPSE_WORK,
            generations=cfg.max_generations)
    hcfg = handmade_search_config(profile)
    add("search_handmade", _search_handmade, figures=["fig4"], function="paper.handmade_search",
        params=dict(p_turnover=0.0, runs=fp["handmade_runs"], activations=hcfg.model.n_activations,
                    generations=hcfg.max_generations), cost=_search_cost(hcfg, fp["handmade_runs"]),
        generations=hcfg.max_generations)

    add("learned_rules", _learned_rules, ["search_ee", "search_ee_turnover", all_name, "search_handmade"],
        function="paper.rules_table (the rules as a table, for users; no figure reads it)",
        params=dict(arms="ee, ee_turnover, all_turnover, handmade"), cost=(0, "read from the searches (seconds)"))

    n_eval = paper.evaluation_model(profile, cfg_ee.model).n_activations   # post-hoc protocol (repro: 400)
    add("fig2_eval", _fig2_eval, ["search_ee"], ["fig2"], "experiments.evaluate.evaluate_dataset",
        dict(networks=fp["eval_networks"], activations=n_eval), _eval_cost(runs + 1, 1, fp["eval_networks"], n_eval))
    for stem, search in (("fig3", "search_ee"), ("fig4", "search_ee_turnover")):
        add(f"{stem}_dropout", _dropout(stem), [search], [stem], "paper.term_dropout",
            dict(networks=fp["dropout_networks"]),
            _eval_cost(runs, N_DROPOUT_VARIANTS, fp["dropout_networks"], n_act))
        add(f"{stem}_refit", _refit(stem), [search, f"{stem}_dropout"], [stem], "paper.term_refit",
            dict(ks=f"{fp['refit_ks'][0]}..{fp['refit_ks'][-1]}", generations=fp["refit_generations"],
                 train=fp["refit_train"], networks=fp["eval_networks"]), _refit_cost(profile, n_act))
    add("fig3_paper_terms_refit", _paper_terms_refit, ["search_ee", "fig3_dropout"], ["fig3"], "paper.paper_terms_refit",
        dict(ks="3", terms=", ".join(paper.PAPER_TERMS["fig3"]), generations=fp["refit_generations"],
             train=fp["refit_train"], networks=fp["eval_networks"]),
        _refit_cost(profile, n_act, ks=(len(paper.PAPER_TERMS["fig3"]),)))
    sp = stress_protocol(paper.evaluation_model(profile, cfg_eet.model))
    hp = handmade_stress_protocol(sp, profile)
    n, text = _eval_cost(2 * runs, 1, fp["stress_networks"], (sp.unperturbed.n_activations, sp.stressed.n_activations))
    nh, text_h = _eval_cost(1, 1, fp["stress_networks"], (hp.unperturbed.n_activations, hp.stressed.n_activations))
    add("fig4_stress", _fig4_stress, ["search_ee_turnover", "search_ee", "search_handmade"], ["fig4"],
        "paper.stress_test", dict(networks=fp["stress_networks"], p_turnover=P_TURNOVER), (n + nh, f"{text} + hand-made {text_h}"))
    add("fig5_eval", _fig5_eval, [all_name, "search_ee_turnover"], ["fig5"], "experiments.evaluate.evaluate_dataset",
        dict(networks=fp["eval_networks"], activations=n_eval), _eval_cost(runs, 1, fp["eval_networks"], n_eval),
        work=ALL_SYNAPSE_WORK)
    n_sweep = sweep_protocol(paper.evaluation_model(profile, cfg_all.model)).n_activations
    n, text = _eval_cost(2 * runs, len(P_VALUES), fp["eval_networks"], n_sweep)
    add("fig5_sweep", _fig5_sweep, [all_name, "search_ee_turnover"], ["fig5"],
        "experiments.sweep.turnover_sweep_dataset", dict(networks=fp["eval_networks"], p_values=list(P_VALUES)),
        (n, text.replace("variants", "p_ST")), work=(1.0 + ALL_SYNAPSE_WORK) / 2)   # half the rules E→E-only
    add("fig5_dropout_ei", _fig5_dropout_ei, [all_name, "search_ee_turnover"], ["fig5"],
        "experiments.evaluate.dropout_dataset", dict(networks=fp["dropout_networks"], synapse="ei"),
        _eval_cost(runs, N_DROPOUT_VARIANTS, fp["dropout_networks"], n_act), work=ALL_SYNAPSE_WORK)
    n_pert = min(20, fp["eval_networks"])
    n, text = _eval_cost(1, len(KINDS), n_pert, perturbation_protocol(n_eval)["n_activations"])
    add("fig6_perturb", _fig6_perturb, [all_name], ["fig6"], "experiments.perturb.perturbation_dataset",
        dict(networks=n_pert, kinds=list(KINDS)), (n, text.replace("variants", "kinds")), work=ALL_SYNAPSE_WORK)
    add("fig6_reduced", _fig6_reduced, [], ["fig6"], "experiments.reduced_model.reduced_model_dataset", {},
        (0, "one-neuron reduced model: no network activations (seconds)"))
    return topological_order(out)


def topological_order(items: list) -> list:
    """`items` ordered so that every dataset comes after the ones it needs (declaration order kept
    where it allows); ValueError for an unknown need or a cycle."""
    names = {d.name for d in items}
    if len(names) != len(items):
        raise ValueError("dataset names must be unique")
    for d in items:
        for n in d.needs:
            if n not in names:
                raise ValueError(f"dataset {d.name} needs {n!r}, which is not declared")
    done, order, left = set(), [], list(items)
    while left:
        ready = [d for d in left if set(d.needs) <= done]
        if not ready:
            raise ValueError(f"the needs of {[d.name for d in left]} form a cycle")
        order.append(ready[0])
        done.add(ready[0].name)
        left.remove(ready[0])
    return order


def shipped(profile: str, data_dir="data") -> list:
    """The datasets the figures shipped at `profile` (profiles.SHIPPED) read, and what they need:
    what `make figures` reads at that profile."""
    from .profiles import SHIPPED
    figures = {f for f, p in SHIPPED.items() if p == profile}
    items = declare(profile, data_dir)
    return select(items, [d.name for d in items if figures & set(d.figures)])


def select(items: list, only=None) -> list:
    """The datasets named in `only` and everything they need (all when `only` is empty), in order."""
    if not only:
        return list(items)
    by_name = {d.name: d for d in items}
    for n in only:
        if n not in by_name:
            raise ValueError(f"--only: no dataset {n!r} at this profile; datasets: {list(by_name)}")
    keep, stack = set(), list(only)
    while stack:
        n = stack.pop()
        if n not in keep:
            keep.add(n)
            stack.extend(by_name[n].needs)
    return [d for d in items if d.name in keep]


# -- plan, status, make ---------------------------------------------------------------------------
def plan_rows(items: list, speed: float = SPEED) -> tuple:
    """(header, rows, total row) of the plan table."""
    header = ["dataset", "figures", "needs", "network-activations", "hours", "counted as"]
    rows = [[d.name, ",".join(f.removeprefix("fig") for f in d.figures) or "-", ",".join(d.needs) or "-",
             f"{d.cost:,}", f"{d.seconds(speed) / 3600:.2f}",
             d.counted + (f" (x {d.work:.2f} the work of E→E rules)" if d.work != 1.0 else "")] for d in items]
    total = sum(d.cost for d in items)
    return header, rows, ["total", "", "", f"{total:,}", f"{sum(d.seconds(speed) for d in items) / 3600:.2f}",
                          f"at {speed:g} net-act/s of E→E rules"]


def _resolve_one(d: Dataset, ctx: Context, known: dict) -> Status:
    waiting = tuple(n for n in d.needs if not known[n].exists)
    if waiting:
        return Status(d, False, None, waiting)
    with paper.read_only_mode(True):
        try:
            ds = d.produce(ctx)
        except paper.MissingDataset as e:
            if e.name != d.name:
                raise RuntimeError(f"pipeline: {d.name} reads {e.name}, which it does not declare in its needs")
            return Status(d, False, e.path)
    src = ds.encoding.get("source")
    return Status(d, True, Path(src) if src else None)


def status(items: list, ctx: Context) -> dict:
    """name -> Status of every dataset (read only: nothing is computed or written)."""
    known = {}
    for d in items:
        known[d.name] = _resolve_one(d, ctx, known)
    return known


def shown_path(path) -> str:
    """A path for people: relative to the working folder when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _resumed_text(fraction: float, generations: int) -> str:
    """", from its checkpoint at generation g of G" for a search with one, "" otherwise."""
    return f", from its checkpoint at generation {round(fraction * generations)} of {generations}" if fraction > 0 else ""


def make(items: list, ctx: Context, only=None, speed: float = SPEED, dry_run: bool = False, out=print,
         check_path: Callable[[str, Path], None] | None = None) -> list:
    """Make the missing datasets of `items` (those in `only` and what they need), in dependency
    order, one progress line each with the plan's ETA; dry_run: only say what exists and what
    would be made. check_path(name, path) is called (not on a dry run) on every output whose file
    name is known before the first is made, and on each output again just before it is made.
    Returns the names made (or, dry_run, to be made)."""
    order = topological_order(items)
    chosen = select(order, only)
    known = status(order, ctx)
    todo = [d for d in chosen if not known[d.name].exists]
    if check_path is not None and not dry_run:
        for d in todo:
            if known[d.name].path is not None:
                check_path(d.name, known[d.name].path)
    # what is left: a search resuming from its checkpoint counts only its generations still to run
    spent = {d.name: spent_fraction(d, known[d.name].path) for d in todo}
    left = sum(round(d.cost * (1 - spent[d.name])) for d in todo)
    left_s = sum(d.seconds(speed) * (1 - spent[d.name]) for d in todo)   # the measured ETA scales it by done / planned
    resumed = sum(1 for f in spent.values() if f > 0)
    out(f"profile {ctx.profile}: {len(chosen)} datasets, {len(chosen) - len(todo)} exist, {len(todo)} "
        f"{'would be' if dry_run else 'to be'} made: planned {left:,} network-activations, "
        f"{left_s / 3600:.2f} h at {speed:g} net-act/s of E→E rules"
        + (f" ({_n(resumed, 'search')} resumed from {'its' if resumed == 1 else 'their'} checkpoint"
           f"{'s' * (resumed > 1)}: only the generations still to run counted)" if resumed else ""))
    width = max((len(d.name) for d in chosen), default=0)
    count = len(str(len(chosen)))
    made, done_plan_s, done_s = [], 0.0, 0.0
    for i, d in enumerate(chosen, 1):
        tag = f"[{i:>{count}}/{len(chosen)}] {d.name:<{width}}"
        st = known[d.name]
        if st.exists:
            out(f"{tag}  exists: {shown_path(st.path)}")
            continue
        if dry_run:
            where = (shown_path(st.path) if st.path is not None
                     else f"(its file name is known once {', '.join(st.waiting)} exist{'s' * (len(st.waiting) == 1)})")
            out(f"{tag}  would be made: {where}; planned {d.cost:,} net-act ({_duration(d.seconds(speed))})"
                + _resumed_text(spent[d.name], d.generations))
            made.append(d.name)
            continue
        before = spent[d.name]
        st = known[d.name] = _resolve_one(d, ctx, known)
        if st.exists:   # made on the way by a dataset before it
            left_s -= d.seconds(speed) * (1 - before)
            out(f"{tag}  exists: {shown_path(st.path)}")
            continue
        if check_path is not None and st.path is not None:
            check_path(d.name, st.path)
        start = before or spent_fraction(d, st.path)   # read again only where its file name is known only now
        left_s += d.seconds(speed) * (before - start)
        planned_s = d.seconds(speed) * (1 - start)
        eta = f"; all left {_duration(left_s)} planned"
        if done_s > 0 and done_plan_s > 0:
            eta += f", {_duration(left_s * done_s / done_plan_s)} at the speed measured so far"
        out(f"{tag}  making {shown_path(st.path)}: planned {d.cost:,} net-act ({_duration(d.seconds(speed))})"
            f"{_resumed_text(start, d.generations)}{eta}")
        t0 = time.time()
        with paper.read_only_mode(False):
            ds = d.produce(ctx)
        dt = time.time() - t0
        st = known[d.name] = _resolve_one(d, ctx, known)
        if not st.exists:
            raise RuntimeError(f"pipeline: {d.name} was made but its file {st.path} does not exist")
        # the part of the plan this call ran: a search's generations from its checkpoint's to its last
        # (fewer than planned where CMA-ES's stop criteria fired), everything otherwise
        ran = ((int(ds.sizes.get("generation", d.generations)) / d.generations - start) if d.generations
               else 1.0)
        left_s -= planned_s
        done_plan_s, done_s = done_plan_s + d.seconds(speed) * ran, done_s + dt
        rate = f" ({d.cost * ran / dt:,.0f} net-act/s)" if d.cost and dt > 0 and ran > 0 else ""
        out(f"{' ' * len(tag)}  done in {_duration(dt)}{rate}: {shown_path(st.path)}")
        made.append(d.name)
    return made
