"""Fig 5: loss of learned rules under synaptic turnover of increasing probability p_ST.

The paper runs each rule for 600 activations with E->E turnover at p_ST on every activation
(from the second on, as in training), fits the time decoder on activations 374..399 and tests it
on 574..599 without refitting, 100 networks per point, and compares rules with plasticity on E->E
only against rules with plasticity on E->E, E->I and I->E.

`sweep_protocol` scales that protocol to a profile's training length n (400 in the paper): the
decoder is fitted on the training protocol's own test activations (the last 6, 5 apart: 374..399
at n = 400), the run lasts 1.5 n activations and the test activations are the fit ones shifted by
n / 2 (574..599 at n = 400). At the quick profile (n = 24) that is fit on 18..23, test on 30..35 of
36 activations.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import xarray as xr
from scipy import stats

from .. import datasets
from ..config import ModelConfig
from .evaluate import network_losses, stack_rules

P_VALUES = (0.0, 4e-4, 8e-4, 12e-4, 16e-4, 20e-4)


def sweep_protocol(cfg: ModelConfig) -> ModelConfig:
    """The 1.5 x longer protocol of the turnover sweep, from a training config (see module doc)."""
    n = cfg.n_activations
    fit = tuple(cfg.loss.test_activations)
    shift = n // 2
    test = tuple(a + shift for a in fit)
    loss = dataclasses.replace(cfg.loss, fit_activations=fit, test_activations=test)
    return dataclasses.replace(cfg, loss=loss, n_activations=n + shift, record_rates=(), record_weights=())


def _config_for(configs, group: str) -> ModelConfig:
    if isinstance(configs, ModelConfig):
        return configs
    if isinstance(configs, dict):
        if group not in configs:
            raise ValueError(f"configs has no entry for group {group!r}; groups: {sorted(configs)}")
        return configs[group]
    if callable(configs):
        return configs(group)
    raise ValueError(f"configs must be a ModelConfig, a dict group -> ModelConfig or a callable, got {type(configs)}")


def turnover_sweep_dataset(configs: ModelConfig | dict | Callable, rules: list, rule_names: list, groups: list,
                           seeds, *, profile: str, p_values=P_VALUES, chunk: int = 64,
                           extra_params: dict | None = None) -> xr.Dataset:
    """Per-network loss of every rule at every p_ST, on the same networks, as one dataset.

    configs: the protocol to run (already the long sweep protocol, see `sweep_protocol`), either
    one ModelConfig, a dict group -> ModelConfig or a callable group -> ModelConfig. Rules of one
    group run together under their group's config (E->E-only rules with plasticity.synapses =
    ("ee",), all-synapse rules with ("ee", "ei", "ie")). `groups[i]` names rule i's group.

    Variables: loss, decoder_r2, mean_rate, blew_up (p, rule, network); a blown-up network's loss
    is NaN in `loss` and the blow-up value in `loss_or_penalty`; per (p, group) the median and
    quartiles of the pooled per-network losses (loss_or_penalty) of the group's rules; per p a
    two-sided Mann-Whitney U test between the first two groups (p value, U statistic).
    """
    seeds = np.asarray(seeds)
    p_values = tuple(float(p) for p in p_values)
    if len(rules) != len(rule_names) or len(rules) != len(groups):
        raise ValueError(f"rules, rule_names and groups must have the same length, got "
                         f"{len(rules)}, {len(rule_names)}, {len(groups)}")
    if any(not 0.0 <= p <= 1.0 for p in p_values):
        raise ValueError(f"p_values must lie in [0, 1], got {p_values}")
    group_names = list(dict.fromkeys(groups))
    shape = (len(p_values), len(rules), len(seeds))
    out = {k: np.full(shape, np.nan) for k in ("loss", "decoder_r2", "mean_rate")}
    out["blew_up"] = np.zeros(shape, bool)
    used = {}
    for g in group_names:
        cfg = _config_for(configs, g)
        used[g] = cfg.to_dict()
        idx = [i for i, gi in enumerate(groups) if gi == g]
        batch = stack_rules([rules[i] for i in idx])
        for j, p in enumerate(p_values):
            res = network_losses(cfg, batch, seeds, p_turnover_ee=p, chunk=chunk)
            for k in out:
                out[k][j, idx] = res[k]
    blow = max(_config_for(configs, g).loss.blowup_loss for g in group_names)
    scored = np.where(out["blew_up"], blow, out["loss"])
    group_arr = np.asarray(groups)
    q = np.full((len(p_values), len(group_names), 3), np.nan)
    for gi, g in enumerate(group_names):
        pooled = scored[:, group_arr == g].reshape(len(p_values), -1)
        q[:, gi] = np.percentile(pooled, [25, 50, 75], axis=1).T
    p_mw = np.full(len(p_values), np.nan)
    u_mw = np.full(len(p_values), np.nan)
    if len(group_names) >= 2:
        for j in range(len(p_values)):
            a = scored[j, group_arr == group_names[0]].ravel()
            b = scored[j, group_arr == group_names[1]].ravel()
            if np.ptp(np.r_[a, b]) > 0:
                u, pv = stats.mannwhitneyu(a, b, alternative="two-sided")
                u_mw[j], p_mw[j] = u, pv
    ds = xr.Dataset(
        {"loss": (("p_turnover", "rule", "network"), out["loss"]),
         "loss_or_penalty": (("p_turnover", "rule", "network"), scored),
         "decoder_r2": (("p_turnover", "rule", "network"), out["decoder_r2"]),
         "mean_rate": (("p_turnover", "rule", "network"), out["mean_rate"]),
         "blew_up": (("p_turnover", "rule", "network"), out["blew_up"].astype(np.int8)),
         "median_loss": (("p_turnover", "group"), q[:, :, 1]),
         "q25_loss": (("p_turnover", "group"), q[:, :, 0]),
         "q75_loss": (("p_turnover", "group"), q[:, :, 2]),
         "mannwhitney_p": (("p_turnover",), p_mw),
         "mannwhitney_u": (("p_turnover",), u_mw)},
        coords={"p_turnover": np.asarray(p_values), "rule": list(rule_names), "network": seeds,
                "group": group_names, "rule_group": ("rule", list(groups))})
    ds["p_turnover"].attrs["long_name"] = "E->E turnover probability per synapse and activation (p_ST)"
    ds["mannwhitney_p"].attrs["long_name"] = (f"two-sided Mann-Whitney U, per-network losses of group "
                                              f"{group_names[0]!r} vs {group_names[-1]!r} (rules pooled)")
    params = dict(models=used, seeds=seeds.tolist(), p_values=list(p_values), groups=list(groups),
                  rule_names=list(rule_names), **(extra_params or {}))
    any_cfg = _config_for(configs, group_names[0])
    ds.attrs.update(datasets.provenance(params, profile, seeds, any_cfg.float64, kind="turnover_sweep"))
    return ds
