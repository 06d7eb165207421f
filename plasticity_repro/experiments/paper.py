"""The paper's figures as configurations: which searches and evaluations each figure needs at
each profile, and a cache that reads a dataset from `data/` when one was made with exactly these
parameters (file named by a hash of them) and computes and writes it otherwise.
"""
from __future__ import annotations

import json
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
                  refit_train=1, eval_seed=50_000, stress_networks=3, handmade_runs=1),
    "laptop": dict(runs=2, eval_networks=20, dropout_networks=8, refit_ks=(1, 2, 3, 4, 5), refit_generations=8,
                   refit_train=2, eval_seed=50_000, stress_networks=20, handmade_runs=1),
    "paper": dict(runs=14, eval_networks=100, dropout_networks=100, refit_ks=(1, 2, 3, 4, 5, 6, 7),
                  refit_generations=300, refit_train=10, eval_seed=50_000, stress_networks=100, handmade_runs=4),
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


def cached(path: Path, kind: str, compute, params_hash: str | None = None) -> xr.Dataset:
    """Read `path` if it exists (and its kind and params hash match), else compute and write it."""
    if path.exists():
        ds = datasets.read_dataset(path, kind=kind)
        if params_hash is not None and ds.attrs.get("request_hash") != params_hash:
            raise ValueError(f"dataset file {str(path)!r} was made for other parameters")
        return ds
    ds = compute()
    if params_hash is not None:
        ds.attrs["request_hash"] = params_hash
    datasets.write_dataset(ds, path)
    return ds


def search_config(profile: str, synapses=("ee",), p_turnover: float = 0.0,
                  tau_convention: str = "independent") -> SearchConfig:
    return profile_config(profile, synapses=synapses, p_turnover=p_turnover, tau_convention=tau_convention)


def searches(profile: str, data_dir="data", seed: int = 0, synapses=("ee",), p_turnover: float = 0.0,
             progress=True, tau_convention: str = "independent") -> xr.Dataset:
    """The profile's batched search runs (seeds seed .. seed + runs - 1), cached in data/.
    tau_convention "shifted" gives the paper-era shared time constants of the E+I searches."""
    cfg = search_config(profile, synapses, p_turnover, tau_convention)
    runs = FIGURE_PROFILES[profile]["runs"]
    seeds = list(range(seed, seed + runs))
    request = dict(search=cfg.to_dict(), seeds=seeds)
    tag = "search_" + "".join(synapses) + ("_turnover" if p_turnover else "")
    tag += "" if tau_convention == "independent" else "_" + tau_convention
    path = data_path(data_dir, tag, profile, request)
    ckpt = path.with_suffix(".ckpt")   # an interrupted search continues from its checkpoint
    return cached(path, "search", lambda: run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt,
                                                      resume=ckpt.exists()),
                  datasets.params_hash(request))


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
