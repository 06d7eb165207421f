"""Fig 6: single-cell perturbations of organised networks and the homeostatic response.

The paper lets a learned rule organise a network for 400 activations, then at activation 400 of
450 scales one E cell's E->E afferents by 0.5 or 1.5 (once), or multiplies its fresh Poisson input
by 10 (from then on), and follows the cell's summed excitatory input, its recurrent inhibition
sum_k w(E->I)_ik w(I->E)_ki, and its response (peak amplitude normalised to the unperturbed one,
and duration) before, just after and 25 activations after the perturbation.

`perturbation_protocol` scales that to a training length n (400 in the paper): the perturbed
activation is index n - 1 (activation n, 1-based), "later" is max(2, round(n / 16)) activations
after it (25 at n = 400) and the run ends 2 x later after it (450 at n = 400); the "before"
summary averages the max(3, round(n / 40)) activations preceding the perturbation (10 at n = 400).
At the quick profile (n = 24): perturbation at index 23, later = 25 (index), 28 activations.

Which cell: the configuration's perturbed cell is static (one compiled program per cell), so
every network perturbs the same index, by default n_e // 2 = 12. Cell 0 is kicked and starts the
sequence; cell 12's place in each network's learned sequence is whatever the rule made of that
network's random initial weights, so the dataset records it (`cell_rank`, from the mean firing
times of the unperturbed activations before the perturbation).
"""
from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import xarray as xr

from .. import datasets
from ..config import ModelConfig, PerturbationConfig
from ..network import make_networks
from ..rules import Rule
from ..engine import run_networks
from .evaluate import mean_firing_time

AFFERENT_FACTORS = (0.5, 1.5)   # the paper's scalings of the cell's E->E afferents
INPUT_FACTOR = 10.0              # the paper's gain of the cell's fresh input
_KIND = re.compile(r"^(afferent|input) x([0-9.]+)$")


def perturbation_kinds(afferent_factors=AFFERENT_FACTORS, input_factor=INPUT_FACTOR) -> tuple:
    """The kinds 'afferent x<s>' for each afferent scaling s, then 'input x<g>' (factors written
    with up to 15 significant digits, '0.5', '10')."""
    return tuple(f"afferent x{float(f):.15g}" for f in afferent_factors) + (f"input x{float(input_factor):.15g}",)


KINDS = perturbation_kinds()


def perturbation_protocol(n_train: int) -> dict:
    """Perturbed activation (0-based), 'later' offset, run length and before-window length for a
    training length of n_train activations (see the module docstring)."""
    later = max(2, int(round(n_train / 16)))
    return dict(activation=n_train - 1, later=later, n_activations=n_train - 1 + 2 * later + 1,
                n_before=max(3, int(round(n_train / 40))))


def perturbation_config(kind: str, activation: int, cell: int) -> PerturbationConfig:
    """'none', 'afferent x<s>' (scale the cell's E->E afferents once) or 'input x<g>' (fresh input)."""
    if kind == "none":
        return PerturbationConfig()
    m = _KIND.match(kind)
    if m is None:
        raise ValueError(f"kind must be 'none', 'afferent x<scale>' or 'input x<gain>', got {kind!r}")
    value = float(m.group(2))
    if m.group(1) == "afferent":
        return PerturbationConfig(activation=activation, cell=cell, afferent_scale=value)
    return PerturbationConfig(activation=activation, cell=cell, input_gain=value)


def response_measures(rate, dt: float):
    """Peak (max_t r) and duration (s, time with r at or above half the peak; 0 for a silent
    cell) of rate traces rate (..., T)."""
    rate = np.asarray(rate, np.float64)
    peak = rate.max(axis=-1)
    above = (rate >= 0.5 * peak[..., None]) & (peak[..., None] > 0)
    return peak, above.sum(axis=-1) * dt


def summarise(values, act_coord, activation: int, later: int, n_before: int):
    """(before, just_after, later) of per-activation values (..., activation): the mean over the
    n_before activations preceding `activation`, the value at `activation`, at activation + later."""
    act_coord = np.asarray(act_coord)
    pre = (act_coord >= activation - n_before) & (act_coord < activation)
    before = np.asarray(values)[..., pre].mean(axis=-1)
    just = np.asarray(values)[..., int(np.flatnonzero(act_coord == activation)[0])]
    late = np.asarray(values)[..., int(np.flatnonzero(act_coord == activation + later)[0])]
    return np.stack([before, just, late], axis=-1)


def perturbation_dataset(cfg_base: ModelConfig, rule: Rule, seeds, *, profile: str, kinds=KINDS,
                         cell: int | None = None, activation: int | None = None, later: int | None = None,
                         n_activations: int | None = None, n_before: int | None = None, chunk: int = 10,
                         extra_params: dict | None = None) -> xr.Dataset:
    """One rule on fresh networks, each perturbation kind on the same networks and noise.

    cfg_base: the training protocol (its plasticity, learning rate and n_activations = n_train set
    the defaults of `perturbation_protocol`). Weights and rates are recorded on the window from
    n_before activations before the perturbation to the end of the run.

    Variables (kind, network, activation): e_input (summed E->E weight onto the cell, end of the
    activation), inhibition (|sum_k w(E->I)_kc w(I->E)_ck|, end of the activation), peak,
    amplitude (peak / mean peak of the before window), duration (s); the same as
    (kind, network, phase) summaries with phase = before / just_after / later.
    """
    seeds = np.asarray(seeds)
    proto = perturbation_protocol(cfg_base.n_activations)
    act = proto["activation"] if activation is None else activation
    later = proto["later"] if later is None else later
    n_act = proto["n_activations"] if n_activations is None else n_activations
    n_before = proto["n_before"] if n_before is None else n_before
    n_e = cfg_base.network.n_e
    cell = n_e // 2 if cell is None else cell
    if act - n_before < 0 or act + later >= n_act:
        raise ValueError(f"the window [activation - n_before, activation + later] must lie in [0, {n_act - 1}], "
                         f"got [{act - n_before}, {act + later}]")
    window = tuple(range(act - n_before, n_act))
    dt = cfg_base.network.dt
    fields = ("e_input", "inhibition", "peak", "duration")
    per = {k: [] for k in fields}
    rank = None
    for kind in kinds:
        cfg = dataclasses.replace(cfg_base, n_activations=n_act, perturbation=perturbation_config(kind, act, cell),
                                  record_rates=window, record_weights=window)
        acc = {k: [] for k in fields}
        t_pre = []
        for i in range(0, len(seeds), chunk):
            nets = make_networks(cfg, seeds[i:i + chunk])
            res = run_networks(cfg, rule, nets)
            w = np.asarray(res.weights, np.float64)                 # (net, window, N, N)
            rates = np.asarray(res.rates)                           # (net, window, T, N)
            acc["e_input"].append(w[:, :, cell, :n_e].sum(axis=-1))
            acc["inhibition"].append(np.abs(np.einsum("nak,nak->na", w[:, :, n_e:, cell], w[:, :, cell, n_e:])))
            peak, dur = response_measures(rates[..., cell], dt)
            acc["peak"].append(peak)
            acc["duration"].append(dur)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # a cell silent in every activation
                t_pre.append(np.nanmean(mean_firing_time(rates[:, :n_before, :, :n_e], dt), axis=1))
        for k in fields:
            per[k].append(np.concatenate(acc[k]))
        if rank is None:   # the window before the perturbation is the same run for every kind
            t = np.concatenate(t_pre)
            t = np.where(np.isnan(t), np.inf, t)
            rank = np.argsort(np.argsort(t, axis=1, kind="stable"), axis=1)[:, cell]
    data = {k: np.stack(v) for k, v in per.items()}                # (kind, network, activation)
    act_coord = np.asarray(window)
    pre = (act_coord >= act - n_before) & (act_coord < act)
    base_peak = data["peak"][..., pre].mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        data["amplitude"] = np.where(base_peak > 0, data["peak"] / base_peak, np.nan)
    dims = ("kind", "network", "activation")
    variables = {k: (dims, v) for k, v in data.items()}
    for k, v in data.items():
        variables[k + "_summary"] = (("kind", "network", "phase"), summarise(v, act_coord, act, later, n_before))
    ds = xr.Dataset(variables, coords={
        "kind": list(kinds), "network": seeds, "activation": act_coord, "phase": ["before", "just_after", "later"],
        "cell_rank": ("network", rank)})
    ds["activation"].attrs["long_name"] = "activation (0-based); W is recorded at its end"
    ds["duration"].attrs.update(units="s", long_name="time with the cell's rate >= half its peak")
    ds["amplitude"].attrs["long_name"] = "peak rate / mean peak of the before window"
    ds["e_input"].attrs["long_name"] = "summed E->E weight onto the perturbed cell"
    ds["inhibition"].attrs["long_name"] = "|sum_k w(E->I)_kc w(I->E)_ck| of the perturbed cell c"
    ds["cell_rank"].attrs["long_name"] = "position of the perturbed cell in the sequence before the perturbation (0 = first)"
    ds.attrs.update(perturbed_cell=cell, perturbed_activation=act, later=later, n_before=n_before)
    params = dict(model=cfg_base.to_dict(), seeds=seeds.tolist(), kinds=list(kinds), cell=cell, activation=act,
                  later=later, n_activations=n_act, n_before=n_before, **(extra_params or {}))
    ds.attrs.update(datasets.provenance(params, profile, seeds, cfg_base.float64, kind="perturbation"))
    return ds
