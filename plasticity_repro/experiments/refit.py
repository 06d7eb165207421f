"""Progressive refitting (Fig 3d, 4c): refit a rule restricted to its top-k terms (signs fixed to
those of the mean rule, started from the mean rule, CMA-ES without restarts) for k = 1..K, and
test each refit on fresh networks. Where the test loss stops falling is the rule's core."""
from __future__ import annotations

import dataclasses

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
                  extra_params: dict | None = None) -> xr.Dataset:
    """For each k: search over the top-k terms of `ranking` (of the first plastic type) with signs
    fixed to `start`'s (a zero coefficient gets +), then the test losses of the refit on `eval_seeds`."""
    synapse = base.space.synapses[0]
    t = SYNAPSE_TYPES.index(synapse)
    ks = [int(k) for k in ks]
    losses, r2, coefs, train = [], [], [], []
    for k in ks:
        terms = list(ranking[:k])
        signs = [float(np.sign(start.coefs[t, TERM_NAMES.index(n)])) or 1.0 for n in terms]
        space = ParamSpace.for_terms(terms, synapses=base.space.synapses, signs=signs, start_rule=start,
                                     tau_convention=base.space.tau_convention)
        cfg = dataclasses.replace(base, space=space, max_restarts=0)
        ds = run_search(cfg, seeds=seeds, progress=progress)
        best = int(np.argmin(ds.best_test_loss.values if cfg.n_test else ds.best_train_loss.values))
        rule = space.to_rule(np.asarray(ds.best_params.values[best], np.float32))
        out = network_losses(base.model, stack_rules([rule]), eval_seeds, p_turnover_eval)
        losses.append(np.where(out["blew_up"][0], base.model.loss.blowup_loss, out["loss"][0]))
        r2.append(out["decoder_r2"][0])
        coefs.append(np.asarray(rule.coefs[t] * rule.term_mask[t]))
        train.append(float(ds.best_train_loss.values[best]))
    ds = xr.Dataset(
        {"loss": (("k", "network"), np.stack(losses)), "decoder_r2": (("k", "network"), np.stack(r2)),
         "median_loss": (("k",), np.median(np.stack(losses), axis=1)),
         "coefs": (("k", "term"), np.stack(coefs)), "search_train_loss": (("k",), np.asarray(train)),
         "start_coefs": (("term",), np.asarray(start.coefs[t]))},
        coords={"k": ks, "term": list(TERM_NAMES), "network": np.asarray(eval_seeds),
                "ranked_term": (("rank",), list(ranking[:max(ks)]))})
    params = dict(search=base.to_dict(), ranking=list(ranking), ks=ks, seeds=list(seeds),
                  eval_seeds=np.asarray(eval_seeds).tolist(), p_turnover_eval=p_turnover_eval,
                  **(extra_params or {}))
    ds.attrs.update(datasets.provenance(params, profile, seeds, base.model.float64, kind="refit"))
    return ds


def elbow(median_loss, rel_tol: float = 0.1) -> int:
    """Smallest k whose median loss is within rel_tol of the best k's (where the curve bends)."""
    m = np.asarray(median_loss, float)
    best = np.nanmin(m)
    return int(np.argmax(m <= best + rel_tol * abs(best))) + 1
