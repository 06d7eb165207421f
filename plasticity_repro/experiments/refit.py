"""Progressive refitting (Fig 3d, 4c): refit a rule restricted to its top-k terms (signs fixed to
those of the mean rule, started from the mean rule, CMA-ES without restarts) for k = 1..K, and
test each refit on fresh networks. Where the test loss stops falling is the rule's core."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from .. import datasets
from ..config import SYNAPSE_TYPES
from ..rules import TERM_NAMES, Rule
from ..search import ParamSpace, SearchConfig, run_search
from .evaluate import network_losses, stack_rules


def mean_rule(rules: list) -> Rule:
    """Coefficient-wise and tau-wise mean of several rules."""
    b = stack_rules(rules)
    return Rule.create(np.asarray(b.coefs).mean(0), np.asarray(b.taus).mean(0), validate=False)


def refit_dataset(base: SearchConfig, ranking: list, start: Rule, eval_seeds, *, ks=range(1, 8),
                  seeds=(0,), profile: str, p_turnover_eval: float = 0.0, progress=False,
                  extra_params: dict | None = None, work_dir=None) -> xr.Dataset:
    """For each k: search over the top-k terms of `ranking` (of the first plastic type) with signs
    fixed to `start`'s (a zero coefficient gets +), then the test losses of the refit on `eval_seeds`.

    work_dir: a folder private to this refit (its parameters name it) where each k's search
    checkpoints every generation and each finished k is kept, so an interrupted refit resumes
    where it stopped and gives the dataset an uninterrupted one gives; removed once the dataset
    is made."""
    ks = [int(k) for k in ks]
    work = None if work_dir is None else Path(work_dir)
    parts = [_refit_k(base, ranking, start, eval_seeds, k, seeds, p_turnover_eval, progress, work) for k in ks]
    ds = xr.concat(parts, dim="k").assign_coords(
        k=ks, term=list(TERM_NAMES), network=np.asarray(eval_seeds), ranked_term=(("rank",), list(ranking[:max(ks)])))
    ds["median_loss"] = ds.loss.median("network", skipna=False)
    ds["start_coefs"] = ("term", np.asarray(start.coefs[SYNAPSE_TYPES.index(base.space.synapses[0])]))
    params = dict(search=base.to_dict(), ranking=list(ranking), ks=ks, seeds=list(seeds),
                  eval_seeds=np.asarray(eval_seeds).tolist(), p_turnover_eval=p_turnover_eval,
                  **(extra_params or {}))
    ds.attrs = datasets.provenance(params, profile, seeds, base.model.float64, kind="refit")
    if work is not None and work.exists():
        shutil.rmtree(work)
    return ds


def _refit_k(base: SearchConfig, ranking: list, start: Rule, eval_seeds, k: int, seeds, p_turnover_eval: float,
             progress, work: Path | None) -> xr.Dataset:
    """One k of the refit: loss and R^2 (network), coefficients (term) and the search's train loss,
    read from `work` when this k finished before (kept there in float64, so exactly)."""
    done = None if work is None else work / f"k{k}.nc"
    if done is not None and done.exists():
        return datasets.read_dataset(done, kind="refit_part").drop_attrs()
    t = SYNAPSE_TYPES.index(base.space.synapses[0])
    terms = list(ranking[:k])
    signs = [float(np.sign(start.coefs[t, TERM_NAMES.index(n)])) or 1.0 for n in terms]
    space = ParamSpace.for_terms(terms, synapses=base.space.synapses, signs=signs, start_rule=start,
                                 tau_convention=base.space.tau_convention)
    cfg = dataclasses.replace(base, space=space, max_restarts=0)
    ckpt = None if work is None else work / f"k{k}.ckpt"
    ds = run_search(cfg, seeds=seeds, progress=progress, checkpoint=ckpt, resume=ckpt is not None and ckpt.exists())
    best = int(np.argmin(ds.best_test_loss.values if cfg.n_test else ds.best_train_loss.values))
    rule = space.to_rule(np.asarray(ds.best_params.values[best], np.float32))
    out = network_losses(base.model, stack_rules([rule]), eval_seeds, p_turnover_eval)
    part = xr.Dataset({"loss": ("network", np.where(out["blew_up"][0], base.model.loss.blowup_loss, out["loss"][0])),
                       "decoder_r2": ("network", np.asarray(out["decoder_r2"][0])),
                       "coefs": ("term", np.asarray(rule.coefs[t] * rule.term_mask[t])),
                       "search_train_loss": ((), float(ds.best_train_loss.values[best]))})
    if done is not None:
        datasets.write_dataset(part.assign_attrs(kind="refit_part", float_width=64), done)
        ckpt.unlink(missing_ok=True)
    return part


NEAR_FULL = 0.2   # Fig 3d's criterion: a refit's median loss within 20 % of the full rules'


def first_within(k, median_loss, full: float, rel: float = NEAR_FULL) -> int | None:
    """Smallest k whose refit median loss lies within `rel` of the full rules' median `full`
    (at most (1 + rel) * full); None if no k does."""
    return next((int(kk) for kk, m in sorted(zip(np.asarray(k), np.asarray(median_loss, float)))
                 if m <= (1 + rel) * full), None)


def elbow(median_loss, rel_tol: float = 0.1) -> int:
    """Smallest k whose median loss is within rel_tol of the best k's (where the curve bends)."""
    m = np.asarray(median_loss, float)
    best = np.nanmin(m)
    return int(np.argmax(m <= best + rel_tol * abs(best))) + 1
