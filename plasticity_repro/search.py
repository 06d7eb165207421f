"""Meta-learning of plasticity rules with CMA-ES (spec §5-6), several runs batched in one program.

A candidate rule is a point in a `ParamSpace` (coefficients and time constants of the plastic
synapse types, an optional term mask and sign constraints). Its loss is the sum of the per-network
losses on `n_train` fixed networks (common random numbers: slot i always has the same seed); the
incumbent is re-scored on `n_test` held-out networks whenever its train loss improves, and the
rule handed on is the incumbent with the lowest test loss.

Bounds: evosax's CMA-ES is unbounded, so each CMA coordinate is mapped into its box by a mirror
(reflection) transform: identity inside [lo, hi], reflected back at the walls, continuous and
periodic. pycma's default BoundTransform (used by the reference) is the same idea with quadratic
smoothing near the walls. No candidate handed to the simulation can leave its box.

Restarts (IPOP): a run whose step size collapses, whose best loss stalls, or whose covariance is
ill-conditioned has stopped; when every run of the batch has stopped, all restart from the start
point with the population doubled (synchronous IPOP, so batched runs keep one shape). A stopped run
keeps its state frozen until then.

Runs x candidates x networks are scored in one jitted program per generation. The search itself
is data and a step (evosax style): a `SearchState` (the CMA-ES states of all runs, restart index,
generation, incumbents, stopped flags, history) made by `init` and advanced one generation by
`step`; `run_search` is the loop on the host, which writes the state as an atomic checkpoint after
every generation, and `resume=True` continues from it to exactly the result of an uninterrupted
search.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import math
import pickle
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from evosax.algorithms import CMA_ES
from flax import struct

from . import datasets
from .config import SYNAPSE_TYPES, LossConfig, ModelConfig, PlasticityConfig, check_number, static, to_dict
from .engine import jit, run_batch
from .loss import candidate_loss, simulate_and_score
from .network import make_networks
from .profiles import SEARCH_PROFILES as PROFILES
from .rules import HETERO_NAMES, HETERO_OFF, N_TAUS, N_TERMS, TERM_NAMES, TERMS, Rule, tau_index


@struct.dataclass
class ParamSpace:
    """Which numbers CMA-ES searches: coefficients of unmasked terms, time constants they use.

    term_mask / signs: 3 x 20 nested tuples (rows ee, ei, ie); signs +1 / -1 fix a coefficient's
    sign (its box becomes [0, c_max] or [-c_max, 0]), 0 leaves it free.
    """
    synapses: tuple = static(("ee",))
    tau_convention: str = static("independent")
    term_mask: tuple = static(tuple((1,) * N_TERMS for _ in range(3)))
    signs: tuple = static(tuple((0,) * N_TERMS for _ in range(3)))
    c_max: float = static(10.0)
    tau_min: float = static(0.5e-3)
    tau_max: float = static(40e-3)
    c_start: float = static(0.0)
    tau_start: float = static(5e-3)
    start: tuple = static(())     # optional full start vector (e.g. a mean rule, for refits)
    # the hand-made rule's heterosynaptic bound (sum limit, rate per step, cap) searched as 3 more
    # numbers (these defaults enter every space's parameters, hence dataset names; the hand-made
    # rule's space, experiments.stress.handmade_space, sets the reference's)
    heterosynaptic: bool = static(False)
    hetero_lo: tuple = static((0.5, 0.0, 0.05))
    hetero_hi: tuple = static((20.0, 10.0, 2.0))
    hetero_start: tuple = static((5.0, 0.5, 1.0))
    # terms held at fixed values, not searched: ((synapse, term, coefficient, tau in s), ...), e.g.
    # the hand-made rule's additive STDP (("ee", "x y~", -0.001, 0.01), ("ee", "x~ y", 0.001, 0.01))
    fixed: tuple = static(())
    # CMA-ES coordinates are the parameters divided by these units (one per parameter; () = 1):
    # the reference searches the hand-made rule with every parameter 1 at its start
    scale: tuple = static(())

    def __post_init__(self):
        PlasticityConfig(synapses=self.synapses, tau_convention=self.tau_convention)
        check_number("c_max", self.c_max, 0.0, 1e6, lo_open=True)
        check_number("tau_min", self.tau_min, 0.0, 10.0, lo_open=True)
        check_number("tau_max", self.tau_max, self.tau_min, 10.0, lo_open=True)
        check_number("tau_start", self.tau_start, self.tau_min, self.tau_max)
        for name in ("term_mask", "signs"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (3, N_TERMS):
                raise ValueError(f"{name} must be 3 x {N_TERMS} nested tuples, got shape {arr.shape}")
        if not set(np.unique(self.term_mask)) <= {0, 1}:
            raise ValueError("term_mask entries must be 0 or 1")
        if not set(np.unique(self.signs)) <= {-1, 0, 1}:
            raise ValueError("signs entries must be -1, 0 or 1")
        if self.n_params == 0:
            raise ValueError("term_mask leaves no coefficient to search")
        if self.start and len(self.start) != self.n_params:
            raise ValueError(f"start must have n_params = {self.n_params} entries, got {len(self.start)}")
        if self.scale and (len(self.scale) != self.n_params or min(self.scale) <= 0):
            raise ValueError(f"scale must have n_params = {self.n_params} positive entries, got {list(self.scale)}")
        for f in self.fixed:
            if (len(f) != 4 or f[0] not in self.synapses or f[1] not in TERM_NAMES
                    or self.term_mask[SYNAPSE_TYPES.index(f[0])][TERM_NAMES.index(f[1])]):
                raise ValueError(f"fixed entries must be (synapse in {list(self.synapses)}, an unsearched term, "
                                 f"coefficient, tau in s), got {f!r}")
            check_number(f"fixed {f[1]!r} tau", f[3], self.tau_min, self.tau_max)

    @classmethod
    def for_terms(cls, terms, synapses=("ee",), signs=None, start_rule=None, **kw) -> "ParamSpace":
        """Space over named terms only, e.g. for_terms(["x~ y", "x y~"], signs=[1, -1]); with
        `start_rule` the search starts from that rule's values of these terms (refits)."""
        mask = np.zeros((3, N_TERMS), int)
        sg = np.zeros((3, N_TERMS), int)
        for i, name in enumerate(terms):
            syn, _, term = name.rpartition(":") if ":" in name else (synapses[0], "", name)
            if term not in TERM_NAMES or syn not in SYNAPSE_TYPES:
                raise ValueError(f"term must be one of {list(TERM_NAMES)} (optionally 'ee:'-prefixed), got {name!r}")
            t, k = SYNAPSE_TYPES.index(syn), TERM_NAMES.index(term)
            mask[t, k] = 1
            sg[t, k] = 0 if signs is None else int(np.sign(signs[i]))
        space = cls(synapses=synapses, term_mask=_tup(mask), signs=_tup(sg), **kw)
        if start_rule is not None:
            lo, hi = space.bounds()
            x = np.clip(space.rule_values(start_rule), lo, hi)
            space = cls(synapses=synapses, term_mask=_tup(mask), signs=_tup(sg), start=tuple(float(v) for v in x), **kw)
        return space

    # -- layout of the flat parameter vector --------------------------------------------------
    @property
    def _types(self):
        return [t for t in range(3) if SYNAPSE_TYPES[t] in self.synapses]

    @property
    def coef_index(self) -> tuple:
        """(type, term) of each searched coefficient, in order."""
        m = np.asarray(self.term_mask)
        return tuple((t, k) for t in self._types for k in range(N_TERMS) if m[t, k])

    @property
    def tau_flat_index(self) -> tuple:
        """Flat indices into Rule.taus.reshape(-1) that some searched term reads, in order."""
        idx = tau_index(self.tau_convention)
        used = {int(idx[t, TERMS[k].tau_slot]) for t, k in self.coef_index if TERMS[k].tau_slot >= 0}
        return tuple(sorted(used))

    @property
    def n_params(self) -> int:
        return len(self.coef_index) + len(self.tau_flat_index) + 3 * self.heterosynaptic

    @property
    def names(self) -> list:
        out = [f"{SYNAPSE_TYPES[t]}:{TERM_NAMES[k]}" for t, k in self.coef_index]
        idx = tau_index(self.tau_convention)
        for f in self.tau_flat_index:
            readers = [(t, j) for t in self._types for j in range(N_TAUS) if idx[t, j] == f]
            t, j = readers[0]
            term = TERM_NAMES[[k for k in range(N_TERMS) if TERMS[k].tau_slot == j][0]]
            out.append(f"{SYNAPSE_TYPES[t]}:tau[{term}]")
        return out + (list(HETERO_NAMES) if self.heterosynaptic else [])

    def bounds(self):
        """(lo, hi) arrays of the flat vector, in the rule's units (tau in s)."""
        sg = np.asarray(self.signs)
        lo = [0.0 if sg[t, k] > 0 else -self.c_max for t, k in self.coef_index]
        hi = [0.0 if sg[t, k] < 0 else self.c_max for t, k in self.coef_index]
        lo += [self.tau_min] * len(self.tau_flat_index)
        hi += [self.tau_max] * len(self.tau_flat_index)
        if self.heterosynaptic:
            lo += list(self.hetero_lo)
            hi += list(self.hetero_hi)
        return np.asarray(lo), np.asarray(hi)

    def x0(self) -> np.ndarray:
        """Start point: all c = c_start (clipped into signed boxes), all tau = tau_start."""
        lo, hi = self.bounds()
        nc = len(self.coef_index)
        x = np.r_[np.full(nc, self.c_start), np.full(len(self.tau_flat_index), self.tau_start)]
        if self.heterosynaptic:
            x = np.r_[x, self.hetero_start]
        if self.start:
            x = np.asarray(self.start, np.float64)
        return np.clip(x, lo, hi) / self._units

    @property
    def _units(self) -> np.ndarray:
        return np.asarray(self.scale, np.float64) if self.scale else np.ones(self.n_params)

    def to_box(self, x):
        """Mirror transform of CMA coordinates into the box (identity inside)."""
        lo, hi = (jnp.asarray(b, x.dtype) for b in self.bounds())
        width = hi - lo
        safe = jnp.where(width > 0, width, 1.0)
        y = jnp.mod(x - lo, 2 * safe)
        y = jnp.where(y > safe, 2 * safe - y, y)
        return jnp.where(width > 0, lo + y, lo)

    def to_rule(self, x) -> Rule:
        """Rule from one flat vector of CMA coordinates (jit/vmap-able)."""
        v = self.to_box(x * jnp.asarray(self._units, x.dtype) if self.scale else x)
        nc = len(self.coef_index)
        coefs = jnp.zeros((3, N_TERMS), x.dtype)
        if nc:
            t, k = (np.asarray(a) for a in zip(*self.coef_index))
            coefs = coefs.at[t, k].set(v[:nc])
        nt = len(self.tau_flat_index)
        taus = jnp.full((3 * N_TAUS,), self.tau_start, x.dtype)
        taus = taus.at[np.asarray(self.tau_flat_index, int)].set(v[nc:nc + nt]).reshape(3, N_TAUS)
        hetero = v[nc + nt:nc + nt + 3] if self.heterosynaptic else jnp.asarray(HETERO_OFF, x.dtype)
        mask = np.asarray(self.term_mask)
        if self.fixed:
            idx = tau_index(self.tau_convention)
            for syn, term, c, tau in self.fixed:
                t, k = SYNAPSE_TYPES.index(syn), TERM_NAMES.index(term)
                coefs = coefs.at[t, k].set(c)
                mask = mask.copy()
                mask[t, k] = 1
                if TERMS[k].tau_slot >= 0:
                    f = int(idx[t, TERMS[k].tau_slot])
                    taus = taus.reshape(-1).at[f].set(tau).reshape(3, N_TAUS)
        return Rule(coefs=coefs, taus=taus, term_mask=jnp.asarray(mask, x.dtype), hetero=hetero)

    def from_rule(self, rule: Rule) -> np.ndarray:
        """CMA coordinates of a rule's searched numbers (inverse of `to_rule` inside the box)."""
        return self.rule_values(rule) / self._units

    def rule_values(self, rule: Rule) -> np.ndarray:
        """A rule's searched numbers in the rule's units (coefficients, tau in s, bound)."""
        c = np.asarray(rule.coefs)
        taus = np.asarray(rule.taus).reshape(-1)
        x = np.r_[[c[t, k] for t, k in self.coef_index], taus[list(self.tau_flat_index)]]
        return np.r_[x, np.asarray(rule.hetero)] if self.heterosynaptic else x


def _tup(a) -> tuple:
    return tuple(tuple(int(v) for v in row) for row in np.asarray(a))


@struct.dataclass
class SearchConfig:
    """A meta-learning problem and its CMA-ES settings (static)."""
    model: ModelConfig = static(ModelConfig())
    space: ParamSpace = static(ParamSpace())
    n_train: int = static(10)
    n_test: int = static(10)
    train_seed: int = static(1_000)     # network slot i uses seed train_seed + i
    test_seed: int = static(2_000)
    p_turnover: float = static(0.0)     # E->E turnover while training, on the even slots
    turnover_slots: str = static("even")  # "even" (reference) or "all"
    # True: run r (search seed s) trains and tests on networks of its own (seeds RUN_STRIDE (s + 1)
    # + train_seed + i); False: every run shares slots train_seed + i (common random numbers)
    independent_networks: bool = static(False)
    sigma0: float = static(0.003)
    popsize: int = static(0)            # 0: 4 + floor(3 ln n)
    max_generations: int = static(100)  # per search (over all restarts)
    max_restarts: int = static(0)       # IPOP restarts allowed
    tol_std: float = static(1e-11)      # stop when sigma * max sqrt(eig C) falls below this
    stall_generations: int = static(0)  # stop when best loss did not improve for this many (0 = off)
    profile: str = static("custom")
    # Planted-rule problems: a teacher rule ((3, 20) coefs, (3, 12) taus as nested tuples). When set,
    # a candidate's loss is 1e4 x the mean squared difference between its final E->E weights and
    # the teacher's on each train network (summed over networks), instead of the decoder loss.
    teacher: tuple = static(())

    def __post_init__(self):
        check_number("n_train", self.n_train, 1, 10 ** 5, integer=True)
        if self.teacher and (np.shape(self.teacher[0]) != (3, N_TERMS) or np.shape(self.teacher[1]) != (3, N_TAUS)):
            raise ValueError("teacher must be (coefs 3 x 20, taus 3 x 12) nested tuples")
        check_number("n_test", self.n_test, 0, 10 ** 5, integer=True)
        check_number("train_seed", self.train_seed, 0, 2 ** 31 - 1, integer=True)
        check_number("test_seed", self.test_seed, 0, 2 ** 31 - 1, integer=True)
        check_number("p_turnover", self.p_turnover, 0.0, 1.0)
        if self.turnover_slots not in ("even", "all"):
            raise ValueError(f"turnover_slots must be one of ['even', 'all'], got {self.turnover_slots!r}")
        check_number("sigma0", self.sigma0, 0.0, 100.0, lo_open=True)
        check_number("popsize", self.popsize, 0, 10 ** 5, integer=True)
        if self.popsize == 1:
            raise ValueError("popsize must be 0 (default) or >= 2, got 1")
        check_number("max_generations", self.max_generations, 1, 10 ** 7, integer=True)
        check_number("max_restarts", self.max_restarts, 0, 100, integer=True)
        check_number("tol_std", self.tol_std, 0.0, 1.0)
        check_number("stall_generations", self.stall_generations, 0, 10 ** 7, integer=True)
        if self.model.plasticity.synapses != self.space.synapses:
            raise ValueError(f"space.synapses {self.space.synapses} must equal model.plasticity.synapses "
                             f"{self.model.plasticity.synapses}")
        if self.model.plasticity.heterosynaptic != self.space.heterosynaptic:
            raise ValueError("space.heterosynaptic must equal model.plasticity.heterosynaptic")
        if self.model.plasticity.tau_convention != self.space.tau_convention:
            raise ValueError("space.tau_convention must equal model.plasticity.tau_convention")

    @property
    def base_popsize(self) -> int:
        return self.popsize or 4 + int(math.floor(3 * math.log(self.space.n_params)))

    def to_dict(self) -> dict:
        d = to_dict(self)
        if not self.independent_networks:   # added later: configs without it keep their hashes
            del d["independent_networks"]
        for name in ("fixed", "scale"):      # likewise
            if not d["space"][name]:
                del d["space"][name]
        return d


# -- profiles (the table: plasticity_repro.profiles) ---------------------------------------------
def scaled_protocol(n_act: int, lr_scale: float = 1.0, synapses=("ee",), tau_convention="independent") -> ModelConfig:
    """The decoder protocol scaled to n_act activations: fit on 6 activations 5 apart ending 30
    before the end, test on the last 6 (the paper's 344..369 / 374..399 at n_act = 400)."""
    fit = tuple(range(n_act - 56, n_act - 30, 5)) if n_act >= 60 else tuple(range(n_act - 12, n_act - 6))
    test = tuple(range(n_act - 26, n_act, 5)) if n_act >= 60 else tuple(range(n_act - 6, n_act))
    return ModelConfig(
        plasticity=PlasticityConfig(synapses=synapses, tau_convention=tau_convention, lr=5e-4 * lr_scale),
        loss=LossConfig(fit_activations=fit, test_activations=test), n_activations=n_act)


def with_horizon(model: ModelConfig, n_act: int) -> ModelConfig:
    """`model` run for n_act activations, its decoder windows scaled as `scaled_protocol` scales
    them and everything else (the plasticity as trained) kept."""
    windows = scaled_protocol(int(n_act)).loss
    loss = dataclasses.replace(model.loss, fit_activations=windows.fit_activations,
                               test_activations=windows.test_activations)
    return dataclasses.replace(model, n_activations=int(n_act), loss=loss)


def profile_config(profile: str, synapses=("ee",), p_turnover: float = 0.0,
                   tau_convention: str = "independent", **overrides) -> SearchConfig:
    """SearchConfig of a named profile; keyword overrides replace SearchConfig fields."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    p = dict(PROFILES[profile])
    model = scaled_protocol(p.pop("n_act"), p.pop("lr_scale"), tuple(synapses), tau_convention)
    space = ParamSpace(synapses=tuple(synapses), tau_convention=tau_convention)
    p.update(overrides)
    return SearchConfig(model=model, space=space, p_turnover=p_turnover, profile=profile, **p)


# -- the batched generation -------------------------------------------------------------------
def train_networks(cfg: SearchConfig, n_runs: int, p_turnover=None, search_seeds=None):
    """(runs, n_train) networks: slot i has seed train_seed + i (network_seeds: offset per run
    with independent_networks); turnover on even slots."""
    p = cfg.p_turnover if p_turnover is None else p_turnover
    return _networks(cfg, cfg.train_seed, cfg.n_train, n_runs, p, search_seeds)


def test_networks(cfg: SearchConfig, n_runs: int, p_turnover=None, search_seeds=None):
    p = cfg.p_turnover if p_turnover is None else p_turnover
    return _networks(cfg, cfg.test_seed, cfg.n_test, n_runs, p, search_seeds)


RUN_STRIDE = 100_000   # network seeds of independent runs: RUN_STRIDE (search seed + 1) + slot seed


def network_seeds(cfg: SearchConfig, seed0: int, n: int, search_seed: int) -> np.ndarray:
    """Seeds of a run's n networks from slot seed seed0 (train_seed or test_seed)."""
    base = RUN_STRIDE * (search_seed + 1) if cfg.independent_networks else 0
    return base + seed0 + np.arange(n)


def _networks(cfg, seed0, n, n_runs, p_turnover, search_seeds=None):
    p = np.broadcast_to(np.asarray(p_turnover, float), (n_runs,))
    slots = np.arange(n)
    on = (slots % 2 == 0) if cfg.turnover_slots == "even" else np.ones(n, bool)
    search_seeds = list(range(n_runs)) if search_seeds is None else list(search_seeds)
    nets = [make_networks(cfg.model, network_seeds(cfg, seed0, n, search_seeds[r]), p_turnover_ee=on * p[r])
            for r in range(n_runs)]
    return jax.tree.map(lambda *a: jnp.asarray(np.stack(a)), *nets)   # stacked on the host: no op-by-op compiles


def _score(cfg: SearchConfig, x, networks):
    """Candidate losses (R, P) and R^2 (R, P, N) of flat vectors x (R, P, n), run r's candidates
    on its networks (R, N): all R x P x N runs form one flattened simulation batch."""
    model = cfg.model
    R, P = x.shape[:2]
    N = networks.w0.shape[1]
    rules = jax.vmap(jax.vmap(cfg.space.to_rule))(x)                                   # (R, P)
    flat_rules = jax.tree.map(lambda a: jnp.repeat(a.reshape((R * P,) + a.shape[2:]), N, axis=0), rules)
    flat_nets = jax.tree.map(lambda a: jnp.repeat(a, P, axis=0).reshape((R * P * N,) + a.shape[2:]), networks)
    res, nl = simulate_and_score(model, flat_rules, flat_nets)
    nl = jax.tree.map(lambda a: a.reshape((R, P, N) + a.shape[1:]), nl)
    if cfg.teacher:
        teacher = Rule.create(np.asarray(cfg.teacher[0]), np.asarray(cfg.teacher[1]))
        target = run_batch(model, teacher, jax.tree.map(lambda a: a.reshape((R * N,) + a.shape[2:]), networks))
        target = target.w_final.reshape((R, 1, N) + target.w_final.shape[1:])
        n_e = model.network.n_e
        w = res.w_final.reshape((R, P, N) + res.w_final.shape[1:])
        mse = jnp.mean((w[..., :n_e, :n_e] - target[..., :n_e, :n_e]) ** 2, axis=(-1, -2))
        nl = nl.replace(loss=jnp.where(nl.blew_up, jnp.nan, 1e4 * mse))
    losses = jax.vmap(jax.vmap(lambda rule, n: candidate_loss(model, rule, n)))(rules, nl)
    return losses, nl.decoder_r2


@functools.partial(jit, static_argnums=(0,))
def score_batch(cfg: SearchConfig, x, networks):
    """Losses (R, P) and R^2 (R, P, N) of R runs' candidates, each run on its own networks."""
    return _score(cfg, x, networks)


# -- the search as state and step -------------------------------------------------------------
CHECKPOINT_FORMAT = "plasticity_repro.search/1"


@dataclasses.dataclass(frozen=True, eq=False)
class Incumbents:
    """Per run (leading axis R): the best candidate on the train networks so far (the incumbent)
    and, of the incumbents, the one with the lowest test loss (the rule the search hands on)."""
    train_loss: np.ndarray       # the incumbent's train loss (sum over the train networks)
    x: np.ndarray                # (R, n_params) the incumbent, inside the box
    test_loss: np.ndarray        # the lowest test loss of an incumbent
    test_x: np.ndarray           # (R, n_params) that incumbent
    test_r2: np.ndarray          # its mean test R^2
    test_train_loss: np.ndarray  # its train loss
    evals: np.ndarray            # candidates scored (int)
    last_improve: np.ndarray     # generation of the last improvement of the train loss (int)


class Generation(NamedTuple):
    """One generation of the history, per run (leading axis R), after the CMA-ES update."""
    loss: np.ndarray       # (R, largest IPOP population) candidate train losses, NaN past this population
    mean: np.ndarray       # (R, n_params) CMA-ES mean, mapped into the box
    best_x: np.ndarray     # (R, n_params) the incumbent
    best_loss: np.ndarray  # its train loss
    test_loss: np.ndarray  # the lowest test loss of an incumbent
    sigma: np.ndarray      # CMA-ES step size
    restart: np.ndarray    # IPOP restart index
    evals: np.ndarray      # candidates scored so far
    seconds: float         # wall time of the generation (s)


@dataclasses.dataclass(frozen=True, eq=False)
class SearchState:
    """R batched CMA-ES searches between two generations: what `step` advances and a checkpoint
    holds. Never changed in place: `step` returns a new state."""
    seeds: tuple             # search seed of each run
    p_turnover: np.ndarray   # (R,) E->E turnover probability while training
    restart: int             # IPOP restart index: population base_popsize * 2 ** restart
    generation: int          # generations done, over all restarts
    cma: object              # the evosax CMA-ES states of all runs (leaves with leading axis R)
    best: Incumbents
    stopped: np.ndarray      # (R,) bool: the run has stopped; its CMA-ES state is frozen until all restart
    history: tuple = ()      # one Generation per generation done
    elapsed: float = 0.0     # seconds spent in generations, over all calls
    segments: tuple = ()     # per call of run_search: first generation, machine, engine, commit


class _Strategy(NamedTuple):
    popsize: int
    params: object
    init: object
    ask: object    # vmapped over runs and jitted: (keys, states, params) -> (population, states)
    tell: object   # (keys, population, fitness, states, params) -> (states, metrics)


def _strategy(cfg: SearchConfig, restart: int) -> _Strategy:
    """evosax CMA-ES of restart `restart`'s population (sigma0 as std_init), compiled once per
    process (keyed on jax_enable_x64 too: evosax's default parameters take their dtype from it)."""
    return _strategy_of(cfg, restart, bool(jax.config.jax_enable_x64))


@functools.lru_cache(maxsize=16)
def _strategy_of(cfg: SearchConfig, restart: int, x64: bool) -> _Strategy:
    popsize = cfg.base_popsize * 2 ** restart
    es = CMA_ES(population_size=popsize, solution=jnp.zeros(cfg.space.n_params, jnp.float32))
    params = es.default_params.replace(std_init=jnp.asarray(cfg.sigma0, jnp.float32))
    return _Strategy(popsize, params, es.init, jit(jax.vmap(es.ask, in_axes=(0, 0, None))),
                     jit(jax.vmap(es.tell, in_axes=(0, 0, 0, 0, None))))


def _runs(cfg: SearchConfig, seeds, p_turnover) -> tuple:
    """(seeds, p_turnover per run) checked: distinct non-negative seeds, probabilities in [0, 1]."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    p = np.broadcast_to(np.asarray(cfg.p_turnover if p_turnover is None else p_turnover, float), (len(seeds),))
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"p_turnover must be in [0, 1], got {p.tolist()}")
    return seeds, p


def init(cfg: SearchConfig, seeds=(0,), p_turnover=None) -> SearchState:
    """The state before the first generation of len(seeds) runs (p_turnover: per-run E->E
    turnover while training, default cfg.p_turnover): CMA-ES at the start point, no incumbents."""
    seeds, p = _runs(cfg, seeds, p_turnover)
    R = len(seeds)
    x0 = np.tile(cfg.space.x0(), (R, 1))
    best = Incumbents(train_loss=np.full(R, np.inf), x=x0, test_loss=np.full(R, np.inf), test_x=x0.copy(),
                      test_r2=np.full(R, np.nan), test_train_loss=np.full(R, np.inf), evals=np.zeros(R, int),
                      last_improve=np.zeros(R, int))
    return SearchState(seeds=seeds, p_turnover=p, restart=0, generation=0, cma=_reseed(cfg, seeds, 0), best=best,
                       stopped=np.zeros(R, bool))


def search_networks(cfg: SearchConfig, state: SearchState) -> tuple:
    """(train, test) networks of the state's runs; test is None without test networks."""
    R = len(state.seeds)
    train = train_networks(cfg, R, state.p_turnover, state.seeds)
    return train, (test_networks(cfg, R, state.p_turnover, state.seeds) if cfg.n_test else None)


# A scorer scores candidates of every run of a search: score(x, split) with x (R, P, n_params) flat
# vectors, run r's on its own networks of `split` ("train" or "test"), returns losses (R, P) and
# R^2 (R, P, N). It comes from a factory (cfg, state) -> score; `local_scorer` builds the networks
# here, `distributed.DaskScorer` spreads the runs over Dask workers; their numbers agree to float32
# rounding (a worker has one XLA host device, parallel.py).
def local_scorer(cfg: SearchConfig, state: SearchState) -> Callable:
    """The in-process scorer of the state's runs: their networks built once, score_batch on them."""
    train, test = search_networks(cfg, state)

    def score(x, split: str):
        return score_batch(cfg, x, train if split == "train" else test)
    return score


_SCORER = contextvars.ContextVar("plasticity_repro_scorer", default=None)


@contextlib.contextmanager
def scored_by(scorer):
    """Within the block every run_search without its own `scorer` uses this scorer factory (None:
    the in-process one): how a caller sends every search a pipeline step makes, the refits'
    included, to a Dask cluster."""
    token = _SCORER.set(scorer)
    try:
        yield scorer
    finally:
        _SCORER.reset(token)


def step(cfg: SearchConfig, state: SearchState, score: Callable) -> SearchState:
    """One generation of every run: ask, score on the train networks, tell (a stopped run keeps
    its state), the incumbents and their test losses, the stop criteria, and the IPOP restart
    once every run has stopped. The keys come from (seed, restart, generation) alone; `score` is
    a scorer of the state's runs (`local_scorer(cfg, state)`)."""
    t0 = time.time()
    es = _strategy(cfg, state.restart)
    R, gen = len(state.seeds), state.generation
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s), state.restart), gen))(
        jnp.asarray(state.seeds))
    k_ask, k_tell = jax.vmap(jax.random.split, out_axes=1)(keys)
    pop, asked = es.ask(k_ask, state.cma, es.params)
    losses, _ = score(pop, "train")
    losses = np.asarray(losses, np.float64)
    fit = jnp.asarray(np.where(np.isfinite(losses), losses, 1e30), jnp.float32)
    told, _ = es.tell(k_tell, pop, fit, asked, es.params)
    # stopped runs keep their state frozen (synchronous IPOP)
    keep = jnp.asarray(state.stopped)
    cma = jax.tree.map(lambda old, new: jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), old, new),
                       state.cma, told)
    popx = np.asarray(jax.vmap(jax.vmap(cfg.space.to_box))(pop))
    best = _incumbents(cfg, state.best, ~state.stopped, es.popsize, losses, popx, gen, score)
    stopped = state.stopped | _stop_criteria(cfg, cma, best, gen)
    dt = time.time() - t0
    full = np.full((R, cfg.base_popsize * 2 ** cfg.max_restarts), np.nan)
    full[:, :es.popsize] = losses
    record = Generation(loss=full, mean=np.asarray(jax.vmap(cfg.space.to_box)(cma.mean)), best_x=best.x,
                        best_loss=best.train_loss, test_loss=best.test_loss, sigma=np.asarray(cma.std),
                        restart=np.full(R, state.restart), evals=best.evals, seconds=dt)
    state = dataclasses.replace(state, generation=gen + 1, cma=cma, best=best, stopped=stopped,
                                history=state.history + (record,), elapsed=state.elapsed + dt)
    if stopped.all() and state.restart < cfg.max_restarts:
        restart = state.restart + 1
        state = dataclasses.replace(
            state, restart=restart, cma=_reseed(cfg, state.seeds, restart), stopped=np.zeros(R, bool),
            best=dataclasses.replace(best, last_improve=np.full_like(best.last_improve, state.generation)))
    return state


def finished(cfg: SearchConfig, state: SearchState) -> bool:
    """Whether the search is over: max_generations done, or every run stopped with no restart left."""
    return state.generation >= cfg.max_generations or bool(state.stopped.all() and state.restart >= cfg.max_restarts)


def _incumbents(cfg, best: Incumbents, active, popsize: int, losses, popx, gen: int, score) -> Incumbents:
    """The incumbents after a generation with candidate losses (R, P) at popx (R, P, n) in the box:
    an active run's best candidate replaces its incumbent if it is better on the train networks,
    and an improved incumbent is scored on the test networks."""
    R = len(losses)
    imin = np.argmin(losses, axis=1)
    lmin = losses[np.arange(R), imin]
    improved = active & (lmin < best.train_loss)
    train_loss = np.where(improved, lmin, best.train_loss)
    x = np.where(improved[:, None], popx[np.arange(R), imin], best.x)
    evals = np.where(active, best.evals + popsize, best.evals)
    best = dataclasses.replace(best, train_loss=train_loss, x=x, evals=evals,
                               last_improve=np.where(improved, gen, best.last_improve))
    if not cfg.n_test or not improved.any():
        return best
    # the incumbents lie inside the box, where the mirror transform is the identity
    tl, tr2 = score(jnp.asarray(x[:, None], jnp.float32), "test")
    tl = np.asarray(tl)[:, 0]
    better = improved & (tl < best.test_loss)
    return dataclasses.replace(
        best, test_loss=np.where(better, tl, best.test_loss), test_x=np.where(better[:, None], x, best.test_x),
        test_r2=np.where(better, np.nanmean(np.asarray(tr2)[:, 0], axis=-1), best.test_r2),
        test_train_loss=np.where(better, train_loss, best.test_train_loss))


def _reseed(cfg: SearchConfig, seeds, restart: int):
    """CMA-ES states of all runs at the start point, for restart `restart`."""
    es = _strategy(cfg, restart)
    x0 = jnp.asarray(cfg.space.x0(), jnp.float32)
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), 10_000 + restart) for s in seeds])
    return jax.vmap(lambda k: es.init(k, x0, es.params))(keys)


def _stop_criteria(cfg: SearchConfig, cma, best: Incumbents, gen: int):
    std = np.asarray(cma.std)
    d = np.asarray(cma.D)
    spread = std * d.max(axis=-1)
    cond = (d.max(axis=-1) / np.maximum(d.min(axis=-1), 1e-30)) ** 2
    stop = (spread < cfg.tol_std) | (cond > 1e14) | ~np.isfinite(spread)
    if cfg.stall_generations:
        stop |= (gen - best.last_improve) >= cfg.stall_generations
    return stop


# -- checkpoints: the state, pickled ----------------------------------------------------------
def _config_json(cfg: SearchConfig, seeds, p_turnover) -> str:
    """What a checkpoint must have been written for: the search parameters, seeds, turnover.
    max_generations only says when to stop, so a checkpoint may be resumed with a larger one."""
    return json.dumps({"search": {k: v for k, v in cfg.to_dict().items() if k != "max_generations"},
                       "seeds": list(seeds), "p_turnover": np.asarray(p_turnover).tolist()}, sort_keys=True)


def to_checkpoint(cfg: SearchConfig, state: SearchState) -> dict:
    """The state as a checkpoint: a dict of plain Python and NumPy values (format
    plasticity_repro.search/1, unchanged since that format was introduced)."""
    return dict(format=CHECKPOINT_FORMAT, config_json=_config_json(cfg, state.seeds, state.p_turnover),
                restart=state.restart, generation=state.generation, states=jax.tree.map(np.asarray, state.cma),
                history={k: [getattr(g, k) for g in state.history] for k in Generation._fields},
                best={f.name: getattr(state.best, f.name) for f in dataclasses.fields(Incumbents)},
                stopped=state.stopped, elapsed=state.elapsed, segments=list(state.segments))


def from_checkpoint(obj: dict, seeds, p_turnover) -> SearchState:
    """The state of a checkpoint dict (to_checkpoint) of the runs `seeds`, `p_turnover`."""
    hist = obj["history"]
    return SearchState(
        seeds=tuple(seeds), p_turnover=p_turnover, restart=obj["restart"], generation=obj["generation"],
        cma=jax.tree.map(jnp.asarray, obj["states"]), best=Incumbents(**obj["best"]), stopped=obj["stopped"],
        history=tuple(Generation(*g) for g in zip(*(hist[k] for k in Generation._fields))),
        elapsed=obj["elapsed"],
        # checkpoints of the code before segments were recorded
        segments=tuple(obj.get("segments") or [dict(first_generation=0, host_cpu="not recorded")]))


def save_checkpoint(path, cfg: SearchConfig, state: SearchState) -> None:
    """Write the state to `path` atomically (a temporary file in its folder, then a rename)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump(to_checkpoint(cfg, state), f, protocol=4)
    datasets.atomic_write(path, write)


def load_checkpoint(path, cfg: SearchConfig, seeds=(0,), p_turnover=None) -> SearchState:
    """The state a checkpoint at `path` holds, checked to be a search checkpoint of exactly these
    parameters (one-line ValueErrors otherwise)."""
    seeds, p = _runs(cfg, seeds, p_turnover)
    where = f"checkpoint {str(path)!r}"
    corrupt = f"{where} is corrupt or not a search checkpoint"
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f)
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist (drop --resume to start fresh)") from None
    except Exception as e:  # truncated or foreign file
        raise ValueError(f"{corrupt} ({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{where} is not a plasticity_repro search checkpoint")
    if obj.get("config_json") != _config_json(cfg, seeds, p):
        raise ValueError(f"{where} was written for other search parameters")
    try:
        return from_checkpoint(obj, seeds, p)
    except (KeyError, TypeError) as e:  # the format's dict with parts missing
        raise ValueError(f"{corrupt} ({type(e).__name__})") from None


# -- the loop ---------------------------------------------------------------------------------
def run_search(cfg: SearchConfig, seeds=(0,), p_turnover=None, checkpoint=None, resume=False,
               max_seconds=None, progress=True, stop_after=None, scorer=None) -> xr.Dataset:
    """Run len(seeds) independent CMA-ES searches batched together; return their dataset.

    p_turnover: per-run E->E turnover while training (default cfg.p_turnover for all runs).
    checkpoint: path of an atomic per-generation checkpoint; resume=True continues from it.
    max_seconds: wall-time budget; stop_after: stop (as if killed) after this many generations
    of this call, leaving the checkpoint (for tests of resume).
    scorer: a scorer factory (cfg, state) -> score (default: the one `scored_by` set, else
    `local_scorer`; a `distributed.DaskScorer` scores the runs on a Dask cluster). The state and
    the checkpoint do not depend on it: a search may be resumed with another.
    """
    seeds, p_runs = _runs(cfg, seeds, p_turnover)
    if max_seconds is not None:
        check_number("max_seconds", max_seconds, 0.0, 1e9, lo_open=True)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume and ckpt is None:
        raise ValueError("resume=True needs a checkpoint path")
    # a checkpoint is read and checked before any network is built
    state = load_checkpoint(ckpt, cfg, seeds, p_runs) if resume else init(cfg, seeds, p_runs)
    scorer = scorer or _SCORER.get() or local_scorer
    segment = {**_segment(state.generation), **getattr(scorer, "segment", {})}
    state = dataclasses.replace(state, segments=state.segments + (segment,))
    score = scorer(cfg, state)
    bar = _progress(progress, cfg.max_generations, state.generation)
    done_this_call = 0
    while not finished(cfg, state):
        if max_seconds is not None and state.elapsed >= max_seconds:
            break
        if stop_after is not None and done_this_call >= stop_after:
            if bar is not None:
                bar.close()
            return None
        state = step(cfg, state, score)
        done_this_call += 1
        if ckpt is not None:
            save_checkpoint(ckpt, cfg, state)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(evals=int(state.best.evals.sum()), train=f"{np.min(state.best.train_loss):.1f}",
                            test=f"{np.min(state.best.test_loss):.1f}", s_per_gen=f"{state.history[-1].seconds:.1f}")
    if bar is not None:
        bar.close()
    return search_dataset(cfg, state)


def _segment(first_generation: int) -> dict:
    """Where one call of run_search computed generations first_generation.. (a search resumed on
    other machines is made of several segments; their float32 results may differ in the last bits)."""
    from .engine import settings
    backend, threads = settings()
    return dict(first_generation=int(first_generation), host_cpu=datasets.cpu_name(), engine=backend,
                engine_threads=int(threads), git_commit=datasets.git_commit(),
                simulation_code=datasets.simulation_code_hash(),
                started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _progress(progress, total, initial):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc="CMA-ES generations", unit="gen")


def search_dataset(cfg: SearchConfig, state: SearchState) -> xr.Dataset:
    """The search as an xr.Dataset: history per (generation, run[, member]), best rules per run
    with term names as coordinates, the final CMA-ES covariance, provenance (with the segments:
    which machine, engine and commit computed which generations)."""
    names = cfg.space.names
    hist = {k: [getattr(g, k) for g in state.history] for k in Generation._fields}
    best, seeds, p_runs = state.best, state.seeds, state.p_turnover
    G = len(hist["loss"])
    R = len(seeds)
    run_coord = np.arange(R)
    member = np.arange(hist["loss"][0].shape[1]) if G else np.arange(cfg.base_popsize)
    std = np.asarray(state.cma.std)[:, None, None]
    cov = np.asarray(state.cma.C) * std ** 2
    best_x = best.test_x if cfg.n_test else best.x
    best_rule = jax.vmap(cfg.space.to_rule)(jnp.asarray(best_x, jnp.float32))
    ds = xr.Dataset(
        {
            "loss": (("generation", "run", "member"), np.asarray(hist["loss"]).reshape(G, R, -1)),
            "mean_params": (("generation", "run", "param"), np.asarray(hist["mean"]).reshape(G, R, -1)),
            "best_params_history": (("generation", "run", "param"), np.asarray(hist["best_x"]).reshape(G, R, -1)),
            "best_train_loss_history": (("generation", "run"), np.asarray(hist["best_loss"]).reshape(G, R)),
            "best_test_loss_history": (("generation", "run"), np.asarray(hist["test_loss"]).reshape(G, R)),
            "sigma": (("generation", "run"), np.asarray(hist["sigma"]).reshape(G, R)),
            "restart": (("generation", "run"), np.asarray(hist["restart"]).reshape(G, R)),
            "evaluations": (("generation", "run"), np.asarray(hist["evals"]).reshape(G, R)),
            "seconds_per_generation": (("generation",), np.asarray(hist["seconds"], float)),
            "best_params": (("run", "param"), best_x),
            "best_train_loss": (("run",), best.test_train_loss if cfg.n_test else best.train_loss),
            "best_test_loss": (("run",), best.test_loss),
            "best_test_r2": (("run",), best.test_r2),
            "incumbent_params": (("run", "param"), best.x),
            "incumbent_train_loss": (("run",), best.train_loss),
            "coefs": (("run", "synapse", "term"), np.asarray(best_rule.coefs)),
            "taus": (("run", "synapse", "tau_slot"), np.asarray(best_rule.taus)),
            "hetero": (("run", "hetero_param"), np.asarray(best_rule.hetero)),
            "covariance": (("run", "param", "param2"), cov),
            "search_seed": (("run",), np.asarray(seeds)),
            "train_network_seed": (("run", "train_slot"), np.stack(
                [network_seeds(cfg, cfg.train_seed, cfg.n_train, s) for s in seeds])),
            "test_network_seed": (("run", "test_slot"), np.stack(
                [network_seeds(cfg, cfg.test_seed, cfg.n_test, s) for s in seeds]).reshape(R, cfg.n_test)),
            "p_turnover": (("run",), p_runs),
        },
        coords={"generation": np.arange(G), "run": run_coord, "member": member, "param": names,
                "param2": names, "synapse": list(SYNAPSE_TYPES), "term": list(TERM_NAMES),
                "tau_slot": [TERM_NAMES[k] for k in range(N_TERMS) if TERMS[k].tau_slot >= 0],
                "hetero_param": list(HETERO_NAMES)},
    )
    ds["loss"].attrs["long_name"] = "candidate train loss (sum over train networks)"
    ds["taus"].attrs["units"] = "s"
    ds.attrs.update(datasets.provenance(
        params={"search": cfg.to_dict(), "p_turnover": p_runs.tolist()}, profile=cfg.profile, seeds=list(seeds),
        float64=cfg.model.float64, kind="search"))
    ds.attrs.update(tau_convention=cfg.space.tau_convention, synapses=",".join(cfg.space.synapses),
                    bounds="mirror transform into [-c_max, c_max] and [tau_min, tau_max]",
                    ipop="synchronous", elapsed_seconds=float(state.elapsed),
                    segments_json=json.dumps(list(state.segments), sort_keys=True))
    return ds
