"""Robustness stress test of Fig 4 and the hand-made comparison rule.

Protocol (paper, 1-based activations): 400 activations organise the network; the decoder is fit
on activations 375..400 (every 5th); turnover at p = 0.00072 acts on all E->E synapses of ALL
networks on activations 401..549; the decoder is tested, without refitting, on 575..600.
In this package's 0-based indices: fit on 374, 379, ..., 399; turnover before activations
400..548, i.e. TurnoverConfig(first_activation=400, stop_activation=549); test on 574, ..., 599.
The "unperturbed" loss of the same rule and network is the ordinary training protocol's loss
at the end of the organising phase (fit 344..369, test 374..399, no turnover).

The hand-made rule is multiplicative STDP (w x~ y with c > 0, w x y~ with c < 0) with a summed
incoming/outgoing weight bound and a single-weight cap (Fiete et al. 2010 style), its 2
coefficients, 2 time constants and 3 bound parameters tuned by CMA-ES under the learned rules'
training protocol (turnover on the even train slots).
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import xarray as xr

from .. import datasets
from ..config import ModelConfig
from ..rules import HETERO_NAMES, TERM_NAMES
from ..search import ParamSpace, SearchConfig, profile_config
from .evaluate import network_losses, stack_rules
from .stats import cohens_d, kruskal_bonferroni

P_STRESS = 0.00072            # E->E turnover probability per synapse and activation (training value)
# the paper's phases at 400 organising activations (0-based, stop exclusive)
PAPER_ORGANISE = 400          # activations 0..399 organise
PAPER_TURNOVER = 149          # turnover before activations 400..548 (paper: 401..549, 1-based)
PAPER_RECOVERY = 25           # activations 549..573 without turnover before the test window
HANDMADE_TERMS = ("w x~ y", "w x y~")
HANDMADE_SIGNS = (1, -1)


@dataclasses.dataclass(frozen=True)
class StressProtocol:
    """The two protocols of one stress test: `unperturbed` (the training protocol, ending at the
    end of the organising phase) and `stressed` (organise, turnover window, recovery, test)."""
    unperturbed: ModelConfig
    stressed: ModelConfig

    @property
    def turnover_window(self) -> tuple:
        """0-based (first, stop) activations before which turnover acts (stop exclusive)."""
        t = self.stressed.turnover
        return t.first_activation, t.stop_activation


def stress_protocol(base: ModelConfig, organise: int | None = None, turnover_stop: int | None = None,
                    total: int | None = None, heterosynaptic: bool = True) -> StressProtocol:
    """Both protocols of the stress test (the turnover probability is a network leaf: pass it to
    `stress_dataset` / `make_networks`, it is not part of the static config).

    organise: organising activations (default base.n_activations; the paper's 400).
    turnover_stop: 0-based exclusive end of the turnover window, which starts at `organise`
      (default organise + round(149/400 organise): 549 at 400, 33 at the quick profile's 24).
    total: activations of the stressed run (default turnover_stop + round(25/400 organise), at
      least 1, + the length of the decoder's test window: 600 at 400, 41 at 24).
    The stressed decoder is fit on the base protocol's test activations (shifted to end at
    `organise`) and tested on the same pattern ending at `total` (374..399 and 574..599 in the
    paper; 18..23 and 35..40 at the quick profile, whose protocol uses 6 consecutive activations).
    With heterosynaptic=True the summed-weight bound is compiled in, so the hand-made rule can run
    in the same batch as learned rules (whose Rule.hetero = HETERO_OFF never binds: their
    dynamics are exactly unchanged).
    """
    organise = base.n_activations if organise is None else organise
    if not isinstance(organise, int) or organise < 1:
        raise ValueError(f"organise must be a positive integer, got {organise!r}")
    shift = organise - base.n_activations
    fit_u = tuple(a + shift for a in base.loss.fit_activations)
    test_u = tuple(a + shift for a in base.loss.test_activations)
    if min(fit_u) < 0:
        raise ValueError(f"organise = {organise} is too short for the base decoder protocol "
                         f"(fit on {base.loss.fit_activations} of {base.n_activations})")
    if turnover_stop is None:
        turnover_stop = organise + max(1, round(PAPER_TURNOVER * organise / PAPER_ORGANISE))
    if not isinstance(turnover_stop, int) or turnover_stop <= organise:
        raise ValueError(f"turnover_stop must be an integer > organise = {organise}, got {turnover_stop!r}")
    span = test_u[-1] - test_u[0] + 1
    if total is None:
        total = turnover_stop + max(1, round(PAPER_RECOVERY * organise / PAPER_ORGANISE)) + span
    if not isinstance(total, int) or total - span < turnover_stop:
        raise ValueError(f"total must be an integer >= turnover_stop + test window = {turnover_stop + span}, "
                         f"got {total!r}")
    test_s = tuple(a + total - organise for a in test_u)
    plast = dataclasses.replace(base.plasticity, heterosynaptic=heterosynaptic)
    unperturbed = dataclasses.replace(
        base, plasticity=plast, n_activations=organise, record_rates=(), record_weights=(),
        loss=dataclasses.replace(base.loss, fit_activations=fit_u, test_activations=test_u))
    stressed = dataclasses.replace(
        base, plasticity=plast, n_activations=total, record_rates=(), record_weights=(),
        turnover=dataclasses.replace(base.turnover, first_activation=organise, stop_activation=turnover_stop),
        loss=dataclasses.replace(base.loss, fit_activations=test_u, test_activations=test_s))
    return StressProtocol(unperturbed=unperturbed, stressed=stressed)


# -- the hand-made rule -----------------------------------------------------------------------
def handmade_space(synapses=("ee",), **kw) -> ParamSpace:
    """Multiplicative STDP + summed incoming/outgoing bound + cap: c(w x~ y) >= 0, c(w x y~) <= 0,
    their two time constants, and (sum limit, rate, cap): 7 numbers."""
    return ParamSpace.for_terms(list(HANDMADE_TERMS), synapses=synapses, signs=list(HANDMADE_SIGNS),
                                heterosynaptic=True, **kw)


def handmade_search_config(profile: str, p_turnover: float = P_STRESS, sigma0: float = 0.1,
                           **overrides) -> SearchConfig:
    """The learned rules' training problem of `profile` (same networks, protocol and turnover on
    the even slots) over the hand-made space, CMA-ES without restarts.

    sigma0 = 0.1 (not the learned rules' 0.003): the 7 numbers start far from their useful values
    (c = 0, bound (5, 0.5, 1)) and the space is small; time constants (box 0.5-40 ms) are then
    explored across their whole box through the mirror transform."""
    base = profile_config(profile, p_turnover=p_turnover)
    model = dataclasses.replace(base.model, plasticity=dataclasses.replace(base.model.plasticity, heterosynaptic=True))
    kw = dict(max_restarts=0, sigma0=sigma0)
    kw.update(overrides)
    return dataclasses.replace(base, model=model, space=handmade_space(), **kw)


# -- the stress test --------------------------------------------------------------------------
def stress_dataset(cfg: ModelConfig, rules: list, rule_names: list, seeds, *, profile: str,
                   groups: list | None = None, reference: str = "hand-made", p_turnover: float = P_STRESS,
                   organise: int | None = None, turnover_stop: int | None = None, total: int | None = None,
                   chunk: int = 32, extra_params: dict | None = None) -> xr.Dataset:
    """Per rule and network the unperturbed loss (training protocol, no turnover) and the stressed
    loss (decoder fit before the turnover window, tested after it without refitting) on the same
    fresh networks (`cfg`: the training protocol's ModelConfig); group medians; pairwise
    Kruskal-Wallis (Bonferroni over the pairs of a condition) and Cohen's d between groups.

    A blown-up network counts with the per-network blow-up loss in medians and Kruskal-Wallis
    (ranked worst); Cohen's d, a difference of means, is taken over networks that did not blow
    up (the counts are stored). Groups pool all networks of all their rules; d < 0 means the
    first group of a pair has the lower loss.
    """
    seeds = np.asarray(seeds)
    groups = list(rule_names) if groups is None else list(groups)
    if len(groups) != len(rules) or len(rule_names) != len(rules):
        raise ValueError(f"rules, rule_names and groups must have one entry per rule, got "
                         f"{len(rules)}, {len(rule_names)}, {len(groups)}")
    proto = stress_protocol(cfg, organise, turnover_stop, total)
    batch = stack_rules(rules)
    outs = [network_losses(proto.unperturbed, batch, seeds, 0.0, chunk),
            network_losses(proto.stressed, batch, seeds, p_turnover, chunk)]
    blew = np.stack([o["blew_up"] for o in outs]).astype(bool)              # (condition, rule, network)
    raw = np.stack([o["loss"] for o in outs])
    loss = np.where(blew, cfg.loss.blowup_loss, raw)
    r2 = np.stack([o["decoder_r2"] for o in outs])
    conditions = ["unperturbed", "stressed"]
    group_names = list(dict.fromkeys(groups))
    gidx = {g: [i for i, x in enumerate(groups) if x == g] for g in group_names}
    pairs = list(itertools.combinations(group_names, 2))
    if reference in group_names:  # reference second, so d < 0 reads "beats the reference"
        pairs = [(b, a) if a == reference else (a, b) for a, b in pairs]
    pair_names = [f"{a} vs {b}" for a, b in pairs]
    gmed = np.zeros((2, len(group_names)))
    H, P, PB, D = (np.full((2, len(pairs)), np.nan) for _ in range(4))
    for c in range(2):
        pooled = {g: loss[c, gidx[g]].reshape(-1) for g in group_names}
        ok = {g: raw[c, gidx[g]].reshape(-1)[~blew[c, gidx[g]].reshape(-1)] for g in group_names}
        gmed[c] = [np.median(pooled[g]) for g in group_names]
        for j, (a, b) in enumerate(pairs):
            try:
                H[c, j], P[c, j], PB[c, j] = kruskal_bonferroni(pooled[a], pooled[b], len(pairs))
            except ValueError:  # all values identical (e.g. every network blew up): no test
                pass
            D[c, j] = cohens_d(ok[a], ok[b]) if min(len(ok[a]), len(ok[b])) > 1 else np.nan
    ds = xr.Dataset(
        {"loss": (("condition", "rule", "network"), loss),
         "decoder_r2": (("condition", "rule", "network"), r2),
         "blew_up": (("condition", "rule", "network"), blew.astype(np.int8)),
         "median_loss": (("condition", "rule"), np.median(loss, axis=-1)),
         "group_median_loss": (("condition", "group"), gmed),
         "kruskal_h": (("condition", "pair"), H),
         "p_value": (("condition", "pair"), P),
         "p_bonferroni": (("condition", "pair"), PB),
         "cohens_d": (("condition", "pair"), D),
         "coefs": (("rule", "term"), np.asarray(batch.coefs[:, 0] * batch.term_mask[:, 0])),
         "hetero": (("rule", "hetero_param"), np.asarray(batch.hetero))},
        coords={"condition": conditions, "rule": list(rule_names), "rule_group": ("rule", groups),
                "network": seeds, "group": group_names, "pair": pair_names,
                "pair_first": ("pair", [a for a, _ in pairs]), "pair_second": ("pair", [b for _, b in pairs]),
                "term": list(TERM_NAMES), "hetero_param": list(HETERO_NAMES)})
    ds["loss"].attrs["long_name"] = "per-network loss (blow-ups at the per-network blow-up value)"
    ds["cohens_d"].attrs["long_name"] = "Cohen's d of pair_first - pair_second (networks without blow-up)"
    ds["p_bonferroni"].attrs["long_name"] = f"Kruskal-Wallis p x {len(pairs)} pairs per condition, capped at 1"
    first, stop = proto.turnover_window
    ds.attrs.update(datasets.provenance(
        dict(unperturbed=proto.unperturbed.to_dict(), stressed=proto.stressed.to_dict(),
             seeds=seeds.tolist(), p_turnover=p_turnover, groups=groups, **(extra_params or {})),
        profile, seeds, cfg.float64, kind="stress"))
    ds.attrs.update(p_turnover=float(p_turnover), turnover_first_activation=first, turnover_stop_activation=stop,
                    n_activations=proto.stressed.n_activations,
                    fit_activations=",".join(map(str, proto.stressed.loss.fit_activations)),
                    test_activations=",".join(map(str, proto.stressed.loss.test_activations)),
                    activation_indexing="0-based; turnover acts before activations first..stop-1")
    return ds

