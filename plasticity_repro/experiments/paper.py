"""The paper's figures as configurations: which searches and evaluations each figure needs at
each profile, and a cache that reads a dataset from `data/` when one was made with exactly these
parameters (file named by a hash of them) and computes and writes it otherwise.

Read-only mode (PLASTICITY_REPRO_READ_ONLY=1, set by the Makefile's figure targets, or
`read_only_mode()`): the cache never computes; a missing dataset is a one-line MissingDataset
(a ValueError) naming the `make data` command that makes it (see plasticity_repro.pipeline).

Reuse (PLASTICITY_REPRO_REUSE, folders separated by os.pathsep): a file the cache does not find in
its own folder is read from the first of these folders that has it (the same name, so the same
parameters). `plasticity-repro figure` (`make figN P=...`) sets it to data/, so a rerun with other
parameters reads the shipped datasets that its parameters leave unchanged and writes only the new
ones, to its own folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import datasets
from ..profiles import FIGURE_PROFILES  # noqa: F401  (per profile: search runs, evaluation networks, refits, ...)
from ..search import SearchConfig, profile_config, run_search


def data_path(data_dir, stem: str, profile: str, params: dict) -> Path:
    """data/<stem>_<profile>_<hash of params>.nc: a file is only ever reused for its own params."""
    return Path(data_dir) / f"{stem}_{profile}_{datasets.params_hash(params)}.nc"


READ_ONLY_ENV = "PLASTICITY_REPRO_READ_ONLY"
REUSE_ENV = "PLASTICITY_REPRO_REUSE"


def reuse_dirs() -> list:
    """The folders of PLASTICITY_REPRO_REUSE, in order (none when it is unset or empty)."""
    return [Path(d) for d in os.environ.get(REUSE_ENV, "").split(os.pathsep) if d.strip()]


def read_only() -> bool:
    """True when PLASTICITY_REPRO_READ_ONLY is set to anything but '', 0, false, no, off."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


@contextlib.contextmanager
def read_only_mode(on: bool = True):
    """Within the block `cached` reads only (on=True) or may compute (on=False), whatever the
    environment says; the environment variable is restored afterwards."""
    old = os.environ.get(READ_ONLY_ENV)
    os.environ[READ_ONLY_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(READ_ONLY_ENV, None)
        else:
            os.environ[READ_ONLY_ENV] = old


class MissingDataset(ValueError):
    """A dataset the read-only cache was asked for does not exist; says how to make it."""

    def __init__(self, path: Path, name: str | None = None, profile: str | None = None):
        self.path = Path(path)
        guess_name, guess_profile = dataset_name(self.path)
        self.name = name or guess_name
        self.profile = profile or guess_profile or "PROFILE"
        super().__init__(f"dataset {self.name} ({self.path}) is missing; make it with: "
                         f"make data PROFILE={self.profile}")


def dataset_name(path) -> tuple:
    """(name, profile) of a figure cache file data/<name>_<profile>_<hash>.nc; (stem, None) if the
    file is not named so."""
    stem = Path(path).stem
    m = re.match(r"^(.+)_(%s)_[0-9a-f]{10}$" % "|".join(map(re.escape, FIGURE_PROFILES)), stem)
    return (m.group(1), m.group(2)) if m else (stem, None)


def cached(path: Path, kind: str, compute, params_hash: str | None = None, *, name: str | None = None,
           profile: str | None = None) -> xr.Dataset:
    """Read `path` if it exists (or a file of its name in reuse_dirs()) and its kind and params
    hash match, else compute and write it. In read-only mode (`read_only()`) a missing file
    raises MissingDataset and nothing is computed; `name` and `profile` (default: read from the
    file name) go into its message. While it computes, the chunks of networks that
    evaluate.network_losses scores (dropout tests, stress test, sweep, refits) are kept in
    <path>.parts/ (evaluate.kept_in), removed once the dataset is written."""
    path = Path(path)
    found = path
    if not path.exists():   # a file of the same name (the same parameters) in a reuse folder
        found = next((d / path.name for d in reuse_dirs() if (d / path.name).exists()), path)
    if found.exists():
        ds = datasets.read_dataset(found, kind=kind)
        if params_hash is not None and ds.attrs.get("request_hash") != params_hash:
            raise ValueError(f"dataset file {str(found)!r} was made for other parameters")
        return ds
    if read_only():
        raise MissingDataset(path, name, profile)
    from .evaluate import kept_in
    parts = path.with_suffix(".parts")   # the chunks of networks scored so far: a stopped evaluation resumes
    with kept_in(parts):
        ds = compute()
    if params_hash is not None:
        ds.attrs["request_hash"] = params_hash
    datasets.write_dataset(ds, path)
    shutil.rmtree(parts, ignore_errors=True)
    return ds


def search_config(profile: str, synapses=("ee",), p_turnover: float = 0.0, tau_convention: str = "independent",
                  generations: int | None = None, n_activations: int | None = None) -> SearchConfig:
    """The profile's SearchConfig; `generations` (max_generations) and `n_activations` (the
    protocol, decoder windows scaled as the profile's, its learning rate kept) replace the
    profile's where given (None: the profile's, the same config and hashes)."""
    overrides = {} if generations is None else dict(max_generations=generations)
    cfg = profile_config(profile, synapses=synapses, p_turnover=p_turnover, tau_convention=tau_convention,
                         **overrides)
    if n_activations is not None and n_activations != cfg.model.n_activations:
        from ..search import PROFILES, scaled_protocol
        cfg = cfg.replace(model=scaled_protocol(n_activations, PROFILES[profile]["lr_scale"], tuple(synapses),
                                                tau_convention))
    return cfg


SEED_MAX = 9_999              # a figure's seed: 0 .. SEED_MAX
EVAL_SEED_STRIDE = 100_000    # figure seed s: evaluation networks eval_seed + EVAL_SEED_STRIDE s + i


def search_seeds(profile: str, seed: int = 0, runs: int | None = None) -> list:
    """Search seeds of a figure's `seed`: seed * runs .. seed * runs + runs - 1 (runs: the
    profile's), so two seeds never share a run at the same number of runs; seed 0: 0 .. runs - 1."""
    runs = FIGURE_PROFILES[profile]["runs"] if runs is None else int(runs)
    return list(range(seed * runs, seed * runs + runs))


def searches(profile: str, data_dir="data", seed: int = 0, synapses=("ee",), p_turnover: float = 0.0,
             progress=True, tau_convention: str = "independent", cfg: SearchConfig | None = None,
             attrs: dict | None = None, runs: int | None = None, generations: int | None = None,
             n_activations: int | None = None) -> xr.Dataset:
    """The profile's batched search runs (`runs` of them, search_seeds(profile, seed, runs); None:
    search_runs of the profile and synapses), cached in data/. tau_convention "shifted" gives the
    paper-era shared time constants of the E+I searches; `generations` and `n_activations` as in
    search_config (None: the profile's). `cfg` replaces the profile's SearchConfig (e.g. one with a
    start vector; file tag "_warm"); `attrs` are added to a freshly computed dataset."""
    if cfg is None:
        cfg = search_config(profile, synapses, p_turnover, tau_convention, generations, n_activations)
    seeds = search_seeds(profile, seed, search_runs(profile, cfg.space.synapses) if runs is None else runs)
    request = dict(search=cfg.to_dict(), seeds=seeds)
    path = search_path(data_dir, cfg, profile, request)
    ckpt = path.with_suffix(".ckpt")   # an interrupted search continues from its checkpoint
    return cached(path, "search", lambda: run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt,
                                                      resume=ckpt.exists()).assign_attrs(**(attrs or {})),
                  datasets.params_hash(request))


ALL_SYNAPSES = ("ee", "ei", "ie")


def search_runs(profile: str, synapses=("ee",)) -> int:
    """The profile's number of runs of a search on `synapses`: `all_synapse_runs` for the
    all-synapse search, `runs` otherwise."""
    fp = FIGURE_PROFILES[profile]
    return int(fp["all_synapse_runs"] if tuple(synapses) == ALL_SYNAPSES else fp["runs"])


def selected_runs(search: xr.Dataset, n: int) -> list:
    """The run numbers of `search` whose rules a figure compares, stated before the searches ran:
    the first `n` runs in seed order whose rule converged (`experiments.evaluate.converged_runs`:
    search test loss per network below the spec's scale of a learned rule), filled up, where
    fewer converged, with the unconverged runs in seed order. Fig 5 compares `runs` all-synapse
    rules out of `all_synapse_runs` (profile repro: 8 of 16); the selection reads only each run's
    own held-out test networks, never the evaluation networks."""
    from .evaluate import converged_runs
    ok = converged_runs(search)
    order = sorted(range(ok.size), key=lambda i: (not bool(ok[i]), i))
    return sorted(order[:int(n)])


def all_synapse_search(profile: str, data_dir="data", seed: int = 0, p_turnover: float = 0.0,
                       tau_convention: str = "independent", progress=True, runs: int | None = None,
                       generations: int | None = None, ei_generations: int | None = None,
                       n_activations: int | None = None, all_synapse_runs: int | None = None) -> tuple:
    """(SearchConfig, dataset) of the Fig 5/6 search with E->E, E->I and I->E plastic, with
    `all_synapse_runs` runs (None: the profile's); `runs` are those of the E->E search a warm
    start reads.

    The paper searches the 96 numbers from zero. Where the profile sets ei_warm_start (laptop: 35
    generations are far too few for 96 dimensions from scratch) every run starts instead from the
    E->E-only search's best rule (same profile, seed and turnover; E->I and I->E coefficients 0,
    their time constants tau_start) with that search's final CMA-ES step size, for the profile's
    ei_warm_generations, so the search only has to find what inhibitory plasticity adds. The
    dataset then carries attrs start_from (that search's request hash) and deviation.
    `ei_generations` replaces the generations of this search (warm or from zero), `generations`
    those of the E->E search it starts from; None: the profile's.
    """
    warm = FIGURE_PROFILES[profile]["ei_warm_start"]
    cfg = search_config(profile, ALL_SYNAPSES, p_turnover, tau_convention, None if warm else ei_generations,
                        n_activations)
    n_runs = search_runs(profile, ALL_SYNAPSES) if all_synapse_runs is None else int(all_synapse_runs)
    if not warm:
        return cfg, searches(profile, data_dir, seed, progress=progress, cfg=cfg, runs=n_runs)
    ee = searches(profile, data_dir, seed, ("ee",), p_turnover, progress, runs=runs, generations=generations,
                  n_activations=n_activations)
    run = int(np.argmin(ee.best_test_loss.values))
    ee_rule = learned_rules(ee, search_config(profile, p_turnover=p_turnover))[run]
    x0 = cfg.space.from_rule(ee_rule)
    sigma0 = float(ee.sigma.values[-1, run])
    n_gen = FIGURE_PROFILES[profile]["ei_warm_generations"] if ei_generations is None else int(ei_generations)
    cfg = cfg.replace(space=cfg.space.replace(start=tuple(float(v) for v in x0)), sigma0=sigma0,
                      max_generations=n_gen)
    src = str(ee.attrs.get("request_hash"))
    attrs = dict(start_from=src, deviation=f"warm start: every run starts from the best E->E-only rule of "
                                         f"search {src} with its final step size sigma0 = {sigma0:.2g} and "
                                         f"runs {n_gen} generations (paper: from zero, sigma0 = 0.003)")
    return cfg, searches(profile, data_dir, seed, progress=progress, cfg=cfg, attrs=attrs, runs=n_runs)


def search_path(data_dir, cfg: SearchConfig, profile: str, request: dict) -> Path:
    tag = "search_" + "".join(cfg.space.synapses) + ("_turnover" if cfg.p_turnover else "")
    tag += "" if cfg.space.tau_convention == "independent" else "_" + cfg.space.tau_convention
    tag += "_warm" if cfg.space.start else ""
    return data_path(data_dir, tag, profile, request)


def learned_rules(search: xr.Dataset, cfg: SearchConfig) -> list:
    """Best rule (lowest test loss) of every run of a search dataset."""
    return [cfg.space.to_rule(jnp.asarray(x, jnp.float32)) for x in search.best_params.values]


def eval_seeds(profile: str, n=None, seed: int = 0) -> np.ndarray:
    """Network seeds of a figure's `n` evaluation networks (default the profile's eval_networks)
    at the figure's `seed`: eval_seed + EVAL_SEED_STRIDE seed + i. They are never a search's
    networks (those have seeds below eval_seed modulo the stride); seed 0: eval_seed + i."""
    p = FIGURE_PROFILES[profile]
    return p["eval_seed"] + EVAL_SEED_STRIDE * int(seed) + np.arange(p["eval_networks"] if n is None else n)


def request_hash(*parts) -> str:
    return datasets.params_hash(json.loads(json.dumps(parts, default=str)))


def median_losses(ev: xr.Dataset) -> np.ndarray:
    """Per rule of an evaluation dataset, the median loss per network with a network that blew
    up counting as +inf (so a rule that blew up on most networks has median inf)."""
    loss = np.where(ev.blew_up.values.astype(bool), np.inf, ev.loss.values)
    return np.median(loss, axis=-1)


def loss_summary(ev: xr.Dataset) -> dict:
    """{rule: its median loss per network, rounded, or "blew up (k of N networks)"} to print."""
    med = median_losses(ev)
    n = ev.sizes["network"]
    blown = ev.blew_up.values.astype(bool).sum(axis=-1)
    return {str(r): (round(float(m)) if np.isfinite(m) else f"blew up ({int(b)} of {n} networks)")
            for r, m, b in zip(ev.rule.values, med, blown)}


def _mean_text(losses: np.ndarray, floor: float) -> str:
    """A rule's mean loss per network, or how many of its networks blew up."""
    k = int((losses >= floor).sum())
    return f"blew up on {k} of {losses.size}" if k else str(round(float(losses.mean())))


def dropout_summary(dd: xr.Dataset, ranking: list, top: int = 5, thresholded: bool = True) -> str:
    """Lines for a notebook: which rules the ranking uses (`thresholded`: spec §8's selection, as
    `term_dropout` ranks; else all), the top terms of the dropout ranking, their median ranks over
    those rules and how many networks blew up with each dropped."""
    from .evaluate import FULL_LOSS_MAX, blowup_floor, dropout_ranks, ranking_selection
    keep = ranking_selection(dd) if thresholded else np.arange(dd.sizes["rule"])
    dd = dd.isel(rule=keep)
    rk = dropout_ranks(dd)
    turnover = float(datasets.params_of(dd).get("p_turnover_ee", 0.0)) > 0
    full_rows = dd["loss"].values[:, 0, :].astype(float)
    floor = blowup_floor(dd)
    why = (f"the rules with a mean full-rule loss per network below "
           f"{FULL_LOSS_MAX['turnover' if turnover else 'none']:g}, or all when none is" if thresholded else "all rules")
    return (f"ranking over {len(keep)} rule{'s' if len(keep) != 1 else ''} ({why}): "
            f"{[str(r) for r in dd.rule.values]}, mean full-rule loss per network "
            f"{[_mean_text(row, floor) for row in full_rows]}\n"
            f"top terms by median rank over rules: {ranking[:top]}\n"
            f"their median ranks: {[float(rk.median_rank.sel(term=t)) for t in ranking[:top]]} | networks that "
            f"blew up with the term dropped: {[int(rk.blowup_networks.sel(term=t)) for t in ranking[:top]]}")


def refit_summary(rf: xr.Dataset, full: float) -> str:
    """Two lines for a notebook: the refit's median test loss per k, and from which k it lies
    within 20 % of the full rules' median `full` (Fig 3d's criterion, as its panel states)."""
    from .refit import first_within
    first = first_within(rf.k.values, rf.median_loss.values, full)
    return (f"refit median test loss per k: {[round(float(v)) for v in rf.median_loss.values]}; "
            f"full rules {round(full)}\n"
            + (f"within 20 % of the full rules from k = {first}" if first is not None
               else "no k within 20 % of the full rules"))


def evaluation_model(profile: str, model):
    """The protocol the post-hoc evaluations run the learned rules on (Fig 2's evaluation, Fig 4's
    stress test, Fig 5's weights and turnover sweep, Fig 6's perturbations; the stress, sweep and
    perturbation protocols are built from it): the training protocol `model`, or, at a profile
    with `eval_activations` (repro: the paper's 400), that many activations with the decoder
    windows scaled to them (fit 344..369, test 374..399 at 400) and the plasticity exactly as
    trained: the rule is the product of learning rate and coefficients as learned, so a rule
    trained on 200 activations at twice the learning rate runs twice as long at the same rate.
    Dropout tests and refits stay on the training protocol."""
    from ..search import with_horizon
    n = FIGURE_PROFILES[profile].get("eval_activations")
    if not n or n == model.n_activations:
        return model
    return with_horizon(model, n)


def evaluation_key(profile: str, model) -> tuple:
    """Extra request-hash parts naming the evaluation protocol: none when it is the training
    protocol (those datasets keep their names), else the protocol's parameters."""
    ev = evaluation_model(profile, model)
    return () if ev is model else (dict(evaluation_model=ev.to_dict()),)


def handmade_search(profile: str, data_dir="data", seed: int = 0, p_turnover: float = 0.0,
                    progress=True, runs: int | None = None, generations: int | None = None) -> xr.Dataset:
    """The hand-made rule (Fig 4) tuned by CMA-ES (`stress.handmade_search_config`; the reference
    tunes it without turnover): `runs` runs (None: the profile's handmade_runs; search_seeds of
    `seed`) of `generations` generations (None: the profile's handmade_generations), cached in data/."""
    from .stress import handmade_search_config
    cfg = handmade_search_config(profile, p_turnover, **({} if generations is None else
                                                         dict(max_generations=int(generations))))
    seeds = search_seeds(profile, seed, FIGURE_PROFILES[profile]["handmade_runs"] if runs is None else runs)
    request = dict(search=cfg.to_dict(), seeds=seeds)
    path = data_path(data_dir, "search_handmade" + ("_turnover" if p_turnover else ""), profile, request)
    ckpt = path.with_suffix(".ckpt")   # an interrupted search continues from its checkpoint
    return cached(path, "search", lambda: run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt,
                                                      resume=ckpt.exists()),
                  datasets.params_hash(request))


def handmade_rule(hm: xr.Dataset, profile: str):
    """The hand-made search's best rule (lowest test loss over its runs) and its numbers by name
    in the rule's units (coefficients, tau in s, summed limit, rate per step, cap)."""
    from .stress import handmade_search_config
    space = handmade_search_config(profile).space
    best = int(np.nanargmin(hm.best_test_loss.values))
    rule = space.to_rule(jnp.asarray(hm.best_params.values[best], jnp.float32))
    return rule, dict(zip(space.names, (float(v) for v in space.rule_values(rule))))


def stress_test(profile: str, data_dir, search: xr.Dataset, rules: list, names: list, seed: int = 0,
                p_turnover: float = 0.00072, n_networks: int | None = None, runs: int | None = None,
                generations: int | None = None, n_activations: int | None = None,
                handmade_runs: int | None = None, handmade_generations: int | None = None) -> tuple:
    """Fig 4d: the rules trained with turnover (`search`, `rules`, `names`), the Fig 2 rules of
    the same runs, generations and training protocol (`n_activations`), and the hand-made rule
    (handmade_search with `handmade_runs`, `handmade_generations`) on its own, longer organising
    phase, on `n_networks` stress networks of `seed` (None: the profile's stress_networks), cached
    as data/fig4_stress_...; returns (hand-made search, stress dataset)."""
    from .stress import handmade_stress_protocol, stress_dataset, stress_protocol
    hm = handmade_search(profile, data_dir, seed=seed, progress=False, runs=handmade_runs,
                         generations=handmade_generations)
    handmade, _ = handmade_rule(hm, profile)
    cfg0 = search_config(profile, generations=generations, n_activations=n_activations)
    search0 = searches(profile, data_dir, seed=seed, progress=False, cfg=cfg0, runs=runs)
    rules0 = learned_rules(search0, cfg0)
    all_rules = list(rules) + rules0 + [handmade]
    groups = ["learned, turnover"] * len(rules) + ["learned, no turnover"] * len(rules0) + ["hand-made"]
    rule_names = list(names) + [f"no-turnover run {i}" for i in range(len(rules0))] + ["hand-made"]
    model = evaluation_model(profile, cfg0.model)   # the training protocol, or the paper's 400 (repro)
    own = {"hand-made": handmade_stress_protocol(stress_protocol(model), profile)}
    seeds = eval_seeds(profile, FIGURE_PROFILES[profile]["stress_networks"] if n_networks is None else n_networks,
                       seed)
    req = request_hash("fig4_stress", search.attrs["params_hash"], search0.attrs["params_hash"],
                       hm.attrs["params_hash"], seeds.tolist(), p_turnover, *evaluation_key(profile, cfg0.model))
    sd = cached(data_path(data_dir, "fig4_stress", profile, {"r": req}), "stress",
                lambda: stress_dataset(model, all_rules, rule_names, seeds, profile=profile, groups=groups,
                                       p_turnover=p_turnover, protocols=own), req)
    return hm, sd


def rules_table(profile: str, data_dir="data", seed: int = 0) -> xr.Dataset:
    """The best rule of every run of the profile's three arms and the tuned hand-made rule
    (`experiments.learned.rules_dataset`), cached as data/learned_rules_<profile>_<hash>.nc."""
    from .learned import rules_dataset
    from .stress import handmade_search_config
    p = 0.00072
    cfg_all = all_synapse_search(profile, data_dir, seed=seed, p_turnover=p, progress=False)
    arms = {"ee": (searches(profile, data_dir, seed=seed, progress=False), search_config(profile)),
            "ee_turnover": (searches(profile, data_dir, seed=seed, p_turnover=p, progress=False),
                            search_config(profile, p_turnover=p)),
            "all_turnover": (cfg_all[1], cfg_all[0]),
            "handmade": (handmade_search(profile, data_dir, seed=seed, progress=False), handmade_search_config(profile))}
    req = request_hash("learned_rules", *(ds.attrs["params_hash"] for ds, _ in arms.values()))
    return cached(data_path(data_dir, "learned_rules", profile, {"r": req}), "rules",
                  lambda: rules_dataset(arms, profile), req)


def term_dropout(stem: str, profile: str, data_dir, cfg: SearchConfig, search: xr.Dataset, rules: list,
                 names: list, p_turnover: float | None = None, n_networks: int | None = None,
                 seed: int = 0) -> tuple:
    """Fig 3 / Fig 4 dropout of the search's rules on `n_networks` evaluation networks of `seed`
    (None: the profile's dropout_networks), with E->E turnover at p_turnover when given, cached as
    data/<stem>_dropout_...; returns (dataset, term ranking, request hash for the refit that follows).
    The ranking uses the rules below spec §8's full-rule loss threshold (`ranking_rules`)."""
    from .evaluate import dropout_dataset, ranking_selection, term_ranking
    n = FIGURE_PROFILES[profile]["dropout_networks"] if n_networks is None else n_networks
    seeds = eval_seeds(profile, n, seed)
    tail = [] if p_turnover is None else [p_turnover]
    req = request_hash(f"{stem}_dropout", search.attrs["params_hash"], search.attrs.get("request_hash"),
                       seeds.tolist(), *tail)
    kw = {} if p_turnover is None else dict(p_turnover_ee=p_turnover)
    dd = cached(data_path(data_dir, f"{stem}_dropout", profile, {"r": req}), "dropout",
                lambda: dropout_dataset(cfg.model, rules, names, seeds, profile=profile, **kw), req)
    keep = ranking_selection(dd)
    if len(keep) < dd.sizes["rule"]:   # the refit starts from these rules' mean: it names them
        req = request_hash(req, "ranking_rules", [str(dd.rule.values[i]) for i in keep])
    return dd, term_ranking(dd.isel(rule=keep)), req


def ranking_rules(dd: xr.Dataset, rules: list) -> list:
    """The rules of a dropout dataset that its ranking uses (spec §8's loss threshold,
    `evaluate.ranking_selection`): the refit starts from their mean."""
    from .evaluate import ranking_selection
    return [rules[i] for i in ranking_selection(dd)]


def term_refit(stem: str, profile: str, data_dir, cfg: SearchConfig, rules: list, ranking: list,
               dropout_req: str, seed: int = 0, p_turnover: float | None = None, n_networks: int | None = None,
               k_max: int | None = None, generations: int | None = None, ks: tuple | None = None) -> xr.Dataset:
    """Progressive refit of the top-k terms of `ranking`, k = 1 .. k_max (or exactly `ks`), from
    the mean rule (Fig 3 / Fig 4), `generations` each, each tested on `n_networks` evaluation
    networks of `seed` (None: the profile's refit_ks, refit_generations, eval_networks); cached."""
    import dataclasses
    from .refit import mean_rule, refit_dataset
    fp = FIGURE_PROFILES[profile]
    if ks is None:
        ks = fp["refit_ks"] if k_max is None else tuple(range(1, int(k_max) + 1))
    ks = tuple(int(k) for k in ks)
    n_gen = fp["refit_generations"] if generations is None else int(generations)
    base = dataclasses.replace(cfg, n_train=fp["refit_train"], n_test=0, max_generations=n_gen)
    seeds = eval_seeds(profile, n_networks, seed)
    tail = [] if p_turnover is None else [p_turnover]
    req = request_hash(f"{stem}_refit", dropout_req, ranking, ks, n_gen, fp["refit_train"], seeds.tolist(), *tail)
    kw = {} if p_turnover is None else dict(p_turnover_eval=p_turnover)
    path = data_path(data_dir, f"{stem}_refit", profile, {"r": req})
    # each k's search checkpoints into <path>.parts/ (removed when the refit is made): it resumes
    return cached(path, "refit",
                  lambda: refit_dataset(base, ranking, mean_rule(rules), seeds, ks=ks, seeds=(seed,),
                                        profile=profile, work_dir=path.with_suffix(".parts"), **kw), req)


PAPER_TERMS = {"fig3": ("x~ y", "x y~", "w y~ y")}   # the paper's Fig 3 elbow: x̃y (+), xỹ (−), wỹy (−)


def paper_terms_refit(profile: str, data_dir, cfg: SearchConfig, rules: list, ranking: list, dropout_req: str,
                      seed: int = 0, n_networks: int | None = None, generations: int | None = None) -> xr.Dataset:
    """Fig 3d's check of the paper's own three terms: the refit at k = 3 with exactly
    PAPER_TERMS["fig3"] (whatever our dropout ranking says), from the same mean rule, on the
    same protocol and networks as `term_refit`'s; cached as data/fig3_paper_terms_refit_..."""
    terms = list(PAPER_TERMS["fig3"])
    order = terms + [t for t in ranking if t not in terms]
    return term_refit("fig3_paper_terms", profile, data_dir, cfg, rules, order, dropout_req, seed=seed,
                      n_networks=n_networks, generations=generations, ks=(len(terms),))


# -- the evaluations of Figs 2, 5 and 6: one function each, which `make data` (pipeline.py, at the
# profile's values) and the figure's notebook (at its parameters) both call ---------------------
def run_numbers(search: xr.Dataset, rule_runs=None) -> list:
    """The run numbers `rule_runs` of `search` (None: every run), checked against its runs."""
    n = search.sizes["run"]
    if rule_runs is None:
        return list(range(n))
    out = sorted({int(i) for i in rule_runs})
    if not out or out[0] < 0 or out[-1] >= n:
        raise ValueError(f"rule_runs must be run numbers in [0, {n - 1}], got {list(rule_runs)}")
    return out


def _runs_key(runs: list, n: int) -> tuple:
    """What a subset of rules adds to an evaluation's request hash: nothing for every run (so the
    datasets of all runs keep their names), else the run numbers."""
    return () if list(runs) == list(range(n)) else (("rule_runs", list(runs)),)


def fig2_evaluation(profile: str, data_dir, search: xr.Dataset, cfg: SearchConfig, seed: int = 0,
                    n_networks: int | None = None, rule_runs=None) -> xr.Dataset:
    """Fig 2: the learned rule of each run in `rule_runs` of `search` (None: every run) and no
    plasticity on the same `n_networks` fresh networks of `seed` (default the profile's
    eval_networks) over the evaluation protocol: loss, decoder R², rates at the first, middle and
    last activation, weights at the first and last; cached."""
    from ..rules import Rule
    from .evaluate import evaluate_dataset
    emodel = evaluation_model(profile, cfg.model)
    n_act = emodel.n_activations
    runs = run_numbers(search, rule_runs)
    learned = learned_rules(search, cfg)
    rules = [learned[i] for i in runs] + [Rule.create()]
    names = [f"run {i}" for i in runs] + ["no plasticity"]
    seeds = eval_seeds(profile, n_networks, seed)
    req = request_hash("fig2_eval", search.attrs["params_hash"], search.attrs.get("request_hash"), seeds.tolist(),
                       *evaluation_key(profile, cfg.model), *_runs_key(runs, search.sizes["run"]))
    return cached(data_path(data_dir, "fig2_eval", profile, {"r": req}), "evaluation",
                  lambda: evaluate_dataset(emodel, rules, names, seeds, profile=profile,
                                           rates_at=(0, n_act // 2 - 1, n_act - 1), weights_at=(0, n_act - 1),
                                           extra_params={"search_hash": search.attrs["params_hash"]}), req)


def turnover_search(profile: str, data_dir, seed: int = 0, p_turnover: float = 0.00072, runs: int | None = None,
                    generations: int | None = None, n_activations: int | None = None) -> tuple:
    """(cfg, search): the E->E search trained with turnover `p_turnover` (Figs 4-6), read or made."""
    cfg = search_config(profile, p_turnover=p_turnover, generations=generations, n_activations=n_activations)
    return cfg, searches(profile, data_dir, seed=seed, p_turnover=p_turnover, progress=False, cfg=cfg, runs=runs)


@dataclasses.dataclass(frozen=True)
class Fig5Rules:
    """Fig 5's two rule sets, both trained with turnover: all-synapse and E->E-only, each with its
    search configuration, search dataset, rules (the incumbents of the runs `key` names, or of
    every run) and names. `key`: what the subset adds to the evaluations' request hashes."""
    cfg_all: SearchConfig
    search_all: xr.Dataset
    rules_all: list
    names_all: list
    cfg_ee: SearchConfig
    search_ee: xr.Dataset
    rules_ee: list
    names_ee: list
    key: tuple = ()


FIG5_GROUPS = ("E->E only", "E->E, E->I, I->E")   # the sweep's groups: E->E-only rules, all-synapse rules


def fig5_rules(profile: str, data_dir, seed: int = 0, p_turnover: float = 0.00072,
               tau_convention: str = "independent", runs: int | None = None, generations: int | None = None,
               ei_generations: int | None = None, n_activations: int | None = None, rule_runs=None,
               all_synapse_runs: int | None = None) -> Fig5Rules:
    """The searches of Fig 5 (all synapse types with `all_synapse_runs` runs, and E->E only with
    `runs`, both with turnover `p_turnover`; None: the profile's), read or made, and the rules of
    their runs `rule_runs` (the same run numbers of both searches). rule_runs None: every E->E
    run and as many all-synapse runs, `selected_runs` (the first converged ones in seed order)."""
    cfg_all, search_all = all_synapse_search(profile, data_dir, seed=seed, p_turnover=p_turnover,
                                             tau_convention=tau_convention, progress=False, runs=runs,
                                             generations=generations, ei_generations=ei_generations,
                                             n_activations=n_activations, all_synapse_runs=all_synapse_runs)
    cfg_ee, search_ee = turnover_search(profile, data_dir, seed, p_turnover, runs, generations, n_activations)
    runs_ee = run_numbers(search_ee, rule_runs)
    runs_all = (selected_runs(search_all, search_ee.sizes["run"]) if rule_runs is None
                else run_numbers(search_all, rule_runs))
    rules_all, rules_ee = learned_rules(search_all, cfg_all), learned_rules(search_ee, cfg_ee)
    key = _runs_key(runs_all, search_all.sizes["run"]) + _runs_key(runs_ee, search_ee.sizes["run"])
    return Fig5Rules(cfg_all, search_all, [rules_all[i] for i in runs_all], [f"all run {i}" for i in runs_all],
                     cfg_ee, search_ee, [rules_ee[i] for i in runs_ee], [f"E->E run {i}" for i in runs_ee], key)


def fig5_evaluation(profile: str, data_dir, r: Fig5Rules, seed: int = 0, n_networks: int | None = None) -> xr.Dataset:
    """Fig 5a: the all-synapse rules on `n_networks` fresh networks without turnover, rates and
    weights at the first and last activation of the evaluation protocol; cached."""
    from .evaluate import evaluate_dataset
    emodel = evaluation_model(profile, r.cfg_all.model)
    n_act = emodel.n_activations
    seeds = eval_seeds(profile, n_networks, seed)
    req = request_hash("fig5_eval", r.search_all.attrs["params_hash"], r.search_all.attrs.get("request_hash"),
                       seeds.tolist(), *evaluation_key(profile, r.cfg_all.model), *r.key)
    return cached(data_path(data_dir, "fig5_eval", profile, {"r": req}), "evaluation",
                  lambda: evaluate_dataset(emodel, r.rules_all, r.names_all, seeds, profile=profile,
                                           rates_at=(0, n_act - 1), weights_at=(0, n_act - 1),
                                           extra_params={"search_hash": r.search_all.attrs["params_hash"]}), req)


def fig5_sweep_configs(profile: str, r: Fig5Rules) -> dict:
    """The sweep's protocol per group (experiments.sweep.sweep_protocol of the evaluation model)."""
    from .sweep import sweep_protocol
    g_ee, g_all = FIG5_GROUPS
    return {g_ee: sweep_protocol(evaluation_model(profile, r.cfg_ee.model)),
            g_all: sweep_protocol(evaluation_model(profile, r.cfg_all.model))}


def fig5_sweep(profile: str, data_dir, r: Fig5Rules, seed: int = 0, n_networks: int | None = None,
               p_values=None) -> xr.Dataset:
    """Fig 5c: every rule of both sets on the same `n_networks` fresh networks under E->E turnover
    at each of `p_values` (default experiments.sweep.P_VALUES); cached."""
    from .sweep import P_VALUES, turnover_sweep_dataset
    p_values = list(P_VALUES if p_values is None else p_values)
    g_ee, g_all = FIG5_GROUPS
    configs = fig5_sweep_configs(profile, r)
    rules = r.rules_ee + r.rules_all
    groups = [g_ee] * len(r.rules_ee) + [g_all] * len(r.rules_all)
    seeds = eval_seeds(profile, n_networks, seed)
    req = request_hash("fig5_sweep", r.search_ee.attrs.get("request_hash"), r.search_all.attrs.get("request_hash"),
                       seeds.tolist(), p_values, *evaluation_key(profile, r.cfg_all.model), *r.key)
    return cached(data_path(data_dir, "fig5_sweep", profile, {"r": req}), "turnover_sweep",
                  lambda: turnover_sweep_dataset(configs, rules, r.names_ee + r.names_all, groups, seeds,
                                                 profile=profile, p_values=p_values), req)


def fig5_dropout_ei(profile: str, data_dir, r: Fig5Rules, seed: int = 0, n_networks: int | None = None,
                    p_turnover: float = 0.00072) -> xr.Dataset:
    """Fig 5d: each E->I term of the all-synapse rules dropped in turn on `n_networks` networks
    (default the profile's dropout_networks) with turnover `p_turnover`; cached."""
    from .evaluate import dropout_dataset
    n = FIGURE_PROFILES[profile]["dropout_networks"] if n_networks is None else n_networks
    seeds = eval_seeds(profile, n, seed)
    req = request_hash("fig5_dropout_ei", r.search_all.attrs.get("request_hash"), seeds.tolist(), p_turnover, *r.key)
    return cached(data_path(data_dir, "fig5_dropout_ei", profile, {"r": req}), "dropout",
                  lambda: dropout_dataset(r.cfg_all.model, r.rules_all, r.names_all, seeds, profile=profile,
                                          synapse="ei", p_turnover_ee=p_turnover), req)


FIG6_NETWORKS = 20   # Fig 6's perturbation networks at most (the profile's eval_networks if fewer)


def fig6_rule(profile: str, data_dir, rule_source: str = "all", seed: int = 0, p_turnover: float = 0.00072,
              tau_convention: str = "independent", runs: int | None = None, generations: int | None = None,
              ei_generations: int | None = None, n_activations: int | None = None, rule_run: int | None = None,
              all_synapse_runs: int | None = None) -> tuple:
    """(cfg, search, run, rule): Fig 6's rule, run `rule_run` (None: the run with the lowest test
    loss) of Fig 5's all-synapse search (rule_source "all", `all_synapse_runs` runs) or of the E->E
    search with turnover ("ee", `runs` runs)."""
    if rule_source == "all":
        cfg, search = all_synapse_search(profile, data_dir, seed=seed, p_turnover=p_turnover,
                                         tau_convention=tau_convention, progress=False, runs=runs,
                                         generations=generations, ei_generations=ei_generations,
                                         n_activations=n_activations, all_synapse_runs=all_synapse_runs)
    else:
        cfg, search = turnover_search(profile, data_dir, seed, p_turnover, runs, generations, n_activations)
    run = int(np.argmin(search.best_test_loss.values)) if rule_run is None else run_numbers(search, [rule_run])[0]
    return cfg, search, run, learned_rules(search, cfg)[run]


def fig6_perturbation(profile: str, data_dir, cfg: SearchConfig, search: xr.Dataset, run: int, rule, seed: int = 0,
                      n_networks: int | None = None, kinds=None) -> xr.Dataset:
    """Fig 6a-f: single-cell perturbations `kinds` (default experiments.perturb.KINDS) after the
    evaluation protocol, on `n_networks` networks (default min(FIG6_NETWORKS, eval_networks)); cached."""
    from .perturb import KINDS, perturbation_dataset, perturbation_protocol
    kinds = KINDS if kinds is None else kinds
    n = min(FIG6_NETWORKS, FIGURE_PROFILES[profile]["eval_networks"]) if n_networks is None else n_networks
    seeds = eval_seeds(profile, n, seed)
    emodel = evaluation_model(profile, cfg.model)
    proto = perturbation_protocol(emodel.n_activations)
    req = request_hash("fig6_perturb", search.attrs.get("request_hash"), run, seeds.tolist(), kinds, proto,
                       *evaluation_key(profile, cfg.model))
    return cached(data_path(data_dir, "fig6_perturb", profile, {"r": req}), "perturbation",
                  lambda: perturbation_dataset(emodel, rule, seeds, profile=profile, kinds=kinds), req)


def fig6_reduced(profile: str, data_dir) -> xr.Dataset:
    """Fig 6g-j: the reduced model on the authors' input grid (experiments.reduced_model); cached."""
    from .reduced_model import ReducedModelConfig, reduced_model_dataset
    rcfg = ReducedModelConfig()
    req = request_hash("fig6_reduced", rcfg.to_dict())
    return cached(data_path(data_dir, "fig6_reduced", profile, {"r": req}), "reduced_model",
                  lambda: reduced_model_dataset(rcfg, profile=profile), req)
