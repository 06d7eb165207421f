"""Robustness stress test of Fig 4 and the hand-made comparison rule.

Protocol (paper, 1-based activations): 400 activations organise the network; the decoder is fit
on activations 375..400 (every 5th); turnover at p = 0.00072 acts on all E->E synapses of ALL
networks on activations 401..549; the decoder is tested, without refitting, on 575..600.
In this package's 0-based indices: fit on 374, 379, ..., 399; turnover before activations
400..548, i.e. TurnoverConfig(first_activation=400, stop_activation=549); test on 574, ..., 599.
The "unperturbed" loss of the same rule and network is the ordinary training protocol's loss
at the end of the organising phase (fit 344..369, test 374..399, no turnover).

The hand-made rule is the reference's (spec §8): fixed additive STDP plus multiplicative STDP
(w x~ y with c > 0, w x y~ with c < 0) with a summed incoming/outgoing weight bound and a
single-weight cap (Fiete et al. 2010 style), its 2 coefficients, 2 time constants and 3 bound
parameters tuned by CMA-ES on the learned rules' loss with a 3x longer organising phase (1200
activations); its stress test runs on the same phases shifted by that difference.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import xarray as xr

from .. import datasets
from ..config import ModelConfig
from ..rules import HETERO_NAMES, TERM_NAMES
from ..profiles import FIGURE_PROFILES
from ..search import ParamSpace, SearchConfig, profile_config, scaled_protocol
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
# the reference's hand-made rule (spec §8): additive STDP held fixed, w-STDP and the bound tuned
HANDMADE_FIXED = (("ee", "x y~", -0.001, 10e-3), ("ee", "x~ y", 0.001, 10e-3))
# start, in the space's order: c(w x y~), c(w x~ y), their tau (s), summed limit, rate per step, cap
HANDMADE_START = (-0.02, 0.02, 10e-3, 10e-3, 7.5, 0.01, 2.5)


def handmade_space(synapses=("ee",), **kw) -> ParamSpace:
    """The reference's hand-made rule (Fiete et al. 2010 style): additive STDP x y~ (-0.001) and
    x~ y (+0.001), tau 10 ms, held fixed; multiplicative STDP c(w x y~) <= 0 and c(w x~ y) >= 0,
    their two time constants, and the summed incoming/outgoing bound (limit, rate per step) and
    the single-synapse cap searched: 7 numbers, starting at HANDMADE_START, each in units of its
    start's magnitude (so CMA-ES starts at +-1, as the reference's). Boxes as the reference's:
    coefficients within 10 of 0 on their sign's side, tau 0.5-40 ms, bound and cap in [0, 10]."""
    kw = dict(dict(fixed=HANDMADE_FIXED, start=HANDMADE_START, scale=tuple(abs(v) for v in HANDMADE_START),
                   hetero_lo=(0.0, 0.0, 0.0), hetero_hi=(10.0, 10.0, 10.0), hetero_start=HANDMADE_START[4:]), **kw)
    return ParamSpace.for_terms(list(HANDMADE_TERMS), synapses=synapses, signs=list(HANDMADE_SIGNS),
                                heterosynaptic=True, **kw)


def handmade_model(profile: str) -> ModelConfig:
    """The hand-made rule's organising protocol: the profile's handmade_activations (the
    reference's 1200 at repro and paper) at its handmade_lr_scale, decoder windows scaled as
    the learned rules' (1144..1169 -> 1174..1199 at 1200), the summed-weight bound compiled in."""
    fp = FIGURE_PROFILES[profile]
    base = scaled_protocol(fp["handmade_activations"], fp["handmade_lr_scale"])
    return dataclasses.replace(base, plasticity=dataclasses.replace(base.plasticity, heterosynaptic=True))


def handmade_search_config(profile: str, p_turnover: float = 0.0, sigma0: float = 0.33,
                           **overrides) -> SearchConfig:
    """The hand-made rule's tuning: the learned rules' networks and loss (the profile's train and
    test networks), its own organising protocol (`handmade_model`), the hand-made space, CMA-ES
    at sigma0 = 0.33 in that space's units without restarts for the profile's
    handmade_generations. The reference tunes it without turnover (p_turnover = 0)."""
    base = profile_config(profile, p_turnover=p_turnover)
    kw = dict(max_restarts=0, sigma0=sigma0, max_generations=FIGURE_PROFILES[profile]["handmade_generations"])
    kw.update(overrides)
    return dataclasses.replace(base, model=handmade_model(profile), space=handmade_space(), **kw)


def handmade_stress_protocol(protocol: StressProtocol, profile: str) -> StressProtocol:
    """The learned rules' stress `protocol` shifted to start after the hand-made rule's longer
    organising phase (the reference: organise 1200, decoder 1174..1199, turnover before
    1200..1348, test 1374..1399, against 400 / 374..399 / 400..548 / 574..599)."""
    organise = protocol.unperturbed.n_activations
    first, stop = protocol.turnover_window
    base = handmade_model(profile)
    shift = base.n_activations - organise
    test = base.loss.test_activations   # a short profile's hand-made decoder windows may be longer
    total = max(protocol.stressed.n_activations + shift, stop + shift + 1 + test[-1] - test[0] + 1)
    return stress_protocol(base, organise=organise + shift, turnover_stop=stop + shift, total=total)


# -- the stress test --------------------------------------------------------------------------
def stress_dataset(cfg: ModelConfig, rules: list, rule_names: list, seeds, *, profile: str,
                   groups: list | None = None, reference: str = "hand-made", p_turnover: float = P_STRESS,
                   organise: int | None = None, turnover_stop: int | None = None, total: int | None = None,
                   chunk: int = 32, extra_params: dict | None = None,
                   protocols: dict | None = None) -> xr.Dataset:
    """Per rule and network the unperturbed loss (training protocol, no turnover) and the stressed
    loss (decoder fit before the turnover window, tested after it without refitting) on the same
    fresh networks (`cfg`: the training protocol's ModelConfig); group medians; pairwise
    Kruskal-Wallis (Bonferroni over the pairs of a condition) and Cohen's d between groups.

    A blown-up network counts with the per-network blow-up loss in medians and Kruskal-Wallis
    (ranked worst); Cohen's d, a difference of means, is taken over networks that did not blow
    up (the counts are stored). Groups pool all networks of all their rules; d < 0 means the
    first group of a pair has the lower loss.
    protocols: {group: StressProtocol} for groups that run on their own phases (the hand-made
    rule: `handmade_stress_protocol`); every other rule runs on stress_protocol(cfg, organise,
    turnover_stop, total). Rules that share a protocol run in one batch.
    """
    seeds = np.asarray(seeds)
    groups = list(rule_names) if groups is None else list(groups)
    if len(groups) != len(rules) or len(rule_names) != len(rules):
        raise ValueError(f"rules, rule_names and groups must have one entry per rule, got "
                         f"{len(rules)}, {len(rule_names)}, {len(groups)}")
    proto = stress_protocol(cfg, organise, turnover_stop, total)
    protocols = dict(protocols or {})
    unknown = sorted(set(protocols) - set(groups))
    if unknown:
        raise ValueError(f"protocols names groups {unknown} that no rule belongs to; groups: {sorted(set(groups))}")
    of_rule = [protocols.get(g, proto) for g in groups]
    batch = stack_rules(rules)
    shape = (2, len(rules), len(seeds))
    blew, raw, r2 = np.zeros(shape, bool), np.zeros(shape), np.zeros(shape)
    for pr in {id(p): p for p in of_rule}.values():
        idx = [i for i, p in enumerate(of_rule) if p is pr]
        sub = stack_rules([rules[i] for i in idx])
        for c, (model, p) in enumerate(((pr.unperturbed, 0.0), (pr.stressed, p_turnover))):
            o = network_losses(model, sub, seeds, p, chunk)
            blew[c, idx], raw[c, idx], r2[c, idx] = np.asarray(o["blew_up"], bool), o["loss"], o["decoder_r2"]
    loss = np.where(blew, cfg.loss.blowup_loss, raw)
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
             seeds=seeds.tolist(), p_turnover=p_turnover, groups=groups, **(extra_params or {}),
             **({"protocols": {g: dict(unperturbed=pr.unperturbed.to_dict(), stressed=pr.stressed.to_dict())
                               for g, pr in protocols.items()}} if protocols else {})),
        profile, seeds, cfg.float64, kind="stress"))
    ds.attrs.update(p_turnover=float(p_turnover), turnover_first_activation=first, turnover_stop_activation=stop,
                    n_activations=proto.stressed.n_activations,
                    fit_activations=",".join(map(str, proto.stressed.loss.fit_activations)),
                    test_activations=",".join(map(str, proto.stressed.loss.test_activations)),
                    activation_indexing="0-based; turnover acts before activations first..stop-1")
    for g, pr in protocols.items():   # the groups on their own phases, e.g. the hand-made rule's
        key = g.replace(" ", "_").replace("-", "_")
        gf, gs = pr.turnover_window
        ds.attrs.update({f"{key}_n_activations": pr.stressed.n_activations, f"{key}_turnover_first_activation": gf,
                         f"{key}_turnover_stop_activation": gs,
                         f"{key}_fit_activations": ",".join(map(str, pr.stressed.loss.fit_activations)),
                         f"{key}_test_activations": ",".join(map(str, pr.stressed.loss.test_activations))})
    return ds

