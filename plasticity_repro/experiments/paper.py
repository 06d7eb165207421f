"""The paper's figures as configurations: which searches and evaluations each figure needs at
each profile, and a cache that reads a dataset from `data/` when one was made with exactly these
parameters (file named by a hash of them) and computes and writes it otherwise.

Read-only mode (PLASTICITY_REPRO_READ_ONLY=1, set by the Makefile's figure targets, or
`read_only_mode()`): the cache never computes; a missing dataset is a one-line MissingDataset
(a ValueError) naming the `make data` command that makes it (see plasticity_repro.pipeline).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import datasets
from ..config import _num
from ..search import SearchConfig, profile_config, run_search

# per profile: search runs, evaluation networks, dropout networks, refit settings
FIGURE_PROFILES = {
    "quick": dict(runs=2, eval_networks=3, dropout_networks=2, refit_ks=(1, 2), refit_generations=2,
                  refit_train=1, eval_seed=50_000, stress_networks=3, handmade_runs=1, ei_warm_start=False,
                  ei_warm_generations=3),
    "laptop": dict(runs=2, eval_networks=20, dropout_networks=8, refit_ks=(1, 2, 3, 4, 5), refit_generations=8,
                   refit_train=2, eval_seed=50_000, stress_networks=20, handmade_runs=1, ei_warm_start=True,
                   ei_warm_generations=15),
    # the reproduction campaign on 2 cores (issue 17): its three searches (E->E, E->E with turnover,
    # all synapses with turnover, 8 runs each, the all-synapse one from zero) are made by
    # `plasticity-repro search --profile repro` into data/campaign/ (see pipeline.py)
    "repro": dict(runs=8, eval_networks=100, dropout_networks=40, refit_ks=(1, 2, 3, 4, 5, 6, 7),
                  refit_generations=60, refit_train=10, eval_seed=50_000, stress_networks=100, handmade_runs=2,
                  ei_warm_start=False),
    "paper": dict(runs=14, eval_networks=100, dropout_networks=100, refit_ks=(1, 2, 3, 4, 5, 6, 7),
                  refit_generations=300, refit_train=10, eval_seed=50_000, stress_networks=100, handmade_runs=4,
                  ei_warm_start=False, ei_warm_generations=5000),
}


def validate_parameters(profile: str, seed: int = 0, data_dir: str = "data", **extra) -> None:
    """The notebook parameters cell's single check: one-line ValueErrors naming the parameter."""
    if profile not in FIGURE_PROFILES:
        raise ValueError(f"profile must be one of {list(FIGURE_PROFILES)}, got {profile!r}")
    _num("seed", seed, 0, 2 ** 31 - 1, integer=True)
    if not isinstance(data_dir, str) or not data_dir:
        raise ValueError(f"data_dir must be a non-empty path string, got {data_dir!r}")
    for name, value in extra.items():
        if name.startswith("p_"):
            _num(name, value, 0.0, 1.0)
        elif name.startswith("n_"):
            _num(name, value, 1, 10 ** 6, integer=True)


def data_path(data_dir, stem: str, profile: str, params: dict) -> Path:
    """data/<stem>_<profile>_<hash of params>.nc: a file is only ever reused for its own params."""
    return Path(data_dir) / f"{stem}_{profile}_{datasets.params_hash(params)}.nc"


READ_ONLY_ENV = "PLASTICITY_REPRO_READ_ONLY"


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
    """Read `path` if it exists (and its kind and params hash match), else compute and write it.
    In read-only mode (`read_only()`) a missing file raises MissingDataset and nothing is computed;
    `name` and `profile` (default: read from the file name) go into its message."""
    path = Path(path)
    if path.exists():
        ds = datasets.read_dataset(path, kind=kind)
        if params_hash is not None and ds.attrs.get("request_hash") != params_hash:
            raise ValueError(f"dataset file {str(path)!r} was made for other parameters")
        return ds
    if read_only():
        raise MissingDataset(path, name, profile)
    ds = compute()
    if params_hash is not None:
        ds.attrs["request_hash"] = params_hash
    datasets.write_dataset(ds, path)
    return ds


def search_config(profile: str, synapses=("ee",), p_turnover: float = 0.0,
                  tau_convention: str = "independent") -> SearchConfig:
    return profile_config(profile, synapses=synapses, p_turnover=p_turnover, tau_convention=tau_convention)


def searches(profile: str, data_dir="data", seed: int = 0, synapses=("ee",), p_turnover: float = 0.0,
             progress=True, tau_convention: str = "independent", cfg: SearchConfig | None = None,
             attrs: dict | None = None) -> xr.Dataset:
    """The profile's batched search runs (seeds seed .. seed + runs - 1), cached in data/.
    tau_convention "shifted" gives the paper-era shared time constants of the E+I searches.
    `cfg` replaces the profile's SearchConfig (e.g. one with a start vector; file tag "_warm");
    `attrs` are added to a freshly computed dataset."""
    cfg = search_config(profile, synapses, p_turnover, tau_convention) if cfg is None else cfg
    runs = FIGURE_PROFILES[profile]["runs"]
    seeds = list(range(seed, seed + runs))
    request = dict(search=cfg.to_dict(), seeds=seeds)
    path = _search_path(data_dir, cfg, profile, request)
    ckpt = path.with_suffix(".ckpt")   # an interrupted search continues from its checkpoint
    return cached(path, "search", lambda: run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt,
                                                      resume=ckpt.exists()).assign_attrs(**(attrs or {})),
                  datasets.params_hash(request))


ALL_SYNAPSES = ("ee", "ei", "ie")


def all_synapse_search(profile: str, data_dir="data", seed: int = 0, p_turnover: float = 0.0,
                       tau_convention: str = "independent", progress=True) -> tuple:
    """(SearchConfig, dataset) of the Fig 5/6 search with E->E, E->I and I->E plastic.

    The paper searches the 96 numbers from zero. Where the profile sets ei_warm_start (laptop: 35
    generations are far too few for 96 dimensions from scratch) every run starts instead from the
    E->E-only search's best rule (same profile, seed and turnover; E->I and I->E coefficients 0,
    their time constants tau_start) with that search's final CMA-ES step size, for the profile's
    ei_warm_generations, so the search only has to find what inhibitory plasticity adds. The
    dataset then carries attrs start_from (that search's request hash) and deviation.
    """
    cfg = search_config(profile, ALL_SYNAPSES, p_turnover, tau_convention)
    if not FIGURE_PROFILES[profile]["ei_warm_start"]:
        return cfg, searches(profile, data_dir, seed, ALL_SYNAPSES, p_turnover, progress, tau_convention)
    ee = searches(profile, data_dir, seed, ("ee",), p_turnover, progress)
    run = int(np.argmin(ee.best_test_loss.values))
    ee_rule = learned_rules(ee, search_config(profile, p_turnover=p_turnover))[run]
    x0 = cfg.space.from_rule(ee_rule)
    sigma0 = float(ee.sigma.values[-1, run])
    n_gen = FIGURE_PROFILES[profile]["ei_warm_generations"]
    cfg = cfg.replace(space=cfg.space.replace(start=tuple(float(v) for v in x0)), sigma0=sigma0,
                      max_generations=n_gen)
    src = str(ee.attrs.get("request_hash"))
    attrs = dict(start_from=src, deviation=f"warm start: every run starts from the best E->E-only rule of "
                                         f"search {src} with its final step size sigma0 = {sigma0:.2g} and "
                                         f"runs {n_gen} generations (paper: from zero, sigma0 = 0.003)")
    return cfg, searches(profile, data_dir, seed, progress=progress, cfg=cfg, attrs=attrs)


def _search_path(data_dir, cfg: SearchConfig, profile: str, request: dict) -> Path:
    tag = "search_" + "".join(cfg.space.synapses) + ("_turnover" if cfg.p_turnover else "")
    tag += "" if cfg.space.tau_convention == "independent" else "_" + cfg.space.tau_convention
    tag += "_warm" if cfg.space.start else ""
    return data_path(data_dir, tag, profile, request)


def learned_rules(search: xr.Dataset, cfg: SearchConfig) -> list:
    """Best rule (lowest test loss) of every run of a search dataset."""
    return [cfg.space.to_rule(jnp.asarray(x, jnp.float32)) for x in search.best_params.values]


def eval_seeds(profile: str, n=None) -> np.ndarray:
    p = FIGURE_PROFILES[profile]
    return p["eval_seed"] + np.arange(p["eval_networks"] if n is None else n)


def request_hash(*parts) -> str:
    return datasets.params_hash(json.loads(json.dumps(parts, default=str)))


def handmade_search(profile: str, data_dir="data", seed: int = 0, p_turnover: float = 0.00072,
                    progress=True) -> xr.Dataset:
    """The hand-made rule (Fig 4) tuned by CMA-ES on the learned rules' training problem with
    turnover, runs seed .. seed + handmade_runs - 1, cached in data/."""
    from .stress import handmade_search_config
    cfg = handmade_search_config(profile, p_turnover)
    runs = FIGURE_PROFILES[profile]["handmade_runs"]
    seeds = list(range(seed, seed + runs))
    request = dict(search=cfg.to_dict(), seeds=seeds)
    path = data_path(data_dir, "search_handmade" + ("_turnover" if p_turnover else ""), profile, request)
    ckpt = path.with_suffix(".ckpt")   # an interrupted search continues from its checkpoint
    return cached(path, "search", lambda: run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt,
                                                      resume=ckpt.exists()),
                  datasets.params_hash(request))


def term_dropout(stem: str, profile: str, data_dir, cfg: SearchConfig, search: xr.Dataset, rules: list,
                 names: list, p_turnover: float | None = None) -> tuple:
    """Fig 3 / Fig 4 dropout of the search's rules on the profile's dropout networks (with E->E
    turnover at p_turnover when given), cached as data/<stem>_dropout_...; returns (dataset,
    term ranking, request hash for the refit that follows)."""
    from .evaluate import dropout_dataset, term_ranking
    seeds = eval_seeds(profile, FIGURE_PROFILES[profile]["dropout_networks"])
    tail = [] if p_turnover is None else [p_turnover]
    req = request_hash(f"{stem}_dropout", search.attrs["params_hash"], search.attrs.get("request_hash"),
                       seeds.tolist(), *tail)
    kw = {} if p_turnover is None else dict(p_turnover_ee=p_turnover)
    dd = cached(data_path(data_dir, f"{stem}_dropout", profile, {"r": req}), "dropout",
                lambda: dropout_dataset(cfg.model, rules, names, seeds, profile=profile, **kw), req)
    return dd, term_ranking(dd), req


def term_refit(stem: str, profile: str, data_dir, cfg: SearchConfig, rules: list, ranking: list,
               dropout_req: str, seed: int = 0, p_turnover: float | None = None) -> xr.Dataset:
    """Progressive refit of the top-k terms of `ranking` from the mean rule (Fig 3 / Fig 4) at the
    profile's refit settings, each tested on the profile's evaluation networks; cached."""
    import dataclasses
    from .refit import mean_rule, refit_dataset
    fp = FIGURE_PROFILES[profile]
    base = dataclasses.replace(cfg, n_train=fp["refit_train"], n_test=0, max_generations=fp["refit_generations"])
    seeds = eval_seeds(profile)
    tail = [] if p_turnover is None else [p_turnover]
    req = request_hash(f"{stem}_refit", dropout_req, ranking, fp["refit_ks"], fp["refit_generations"],
                       fp["refit_train"], seeds.tolist(), *tail)
    kw = {} if p_turnover is None else dict(p_turnover_eval=p_turnover)
    return cached(data_path(data_dir, f"{stem}_refit", profile, {"r": req}), "refit",
                  lambda: refit_dataset(base, ranking, mean_rule(rules), seeds, ks=fp["refit_ks"], seeds=(seed,),
                                        profile=profile, **kw), req)
