"""Frozen configurations of the model, with the reference code's values as defaults.

Every field here is static (hashable, part of the compiled program): sizes, step counts and
constants. What one wants to vmap over (rule coefficients and time constants, networks,
turnover probabilities, seeds) lives in leaf arrays elsewhere (`rules.Rule`, `network.Network`).

Validation runs at construction with Python values and raises a one-line `ValueError` that
names the field and its allowed range; nothing is checked inside jitted code.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from flax import struct

SYNAPSE_TYPES = ("ee", "ei", "ie")
TAU_CONVENTIONS = ("independent", "shifted")


def static(default: Any) -> Any:
    """A static (non-pytree) dataclass field with a default."""
    return struct.field(pytree_node=False, default=default)


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> None:
    """Check one number against its range; raise a one-line ValueError naming it (the check of
    every config field and of the library's numeric arguments)."""
    kind = "an integer" if integer else "a number"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    rng = f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open or hi is None else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            integer and not isinstance(value, int)):
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _steps(name: str, value: Any, n: int) -> None:
    """A tuple of distinct, increasing integers in [0, n)."""
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in value):
        raise ValueError(f"{name} must be a tuple of integers in [0, {n - 1}], got {value!r}")
    if any(v < 0 or v >= n for v in value) or list(value) != sorted(set(value)):
        raise ValueError(f"{name} must be increasing distinct integers in [0, {n - 1}], got {value!r}")


@struct.dataclass
class NetworkConfig:
    """25 E + 8 I threshold-linear rate units and their initial weights (spec §1). Times in s."""
    n_e: int = static(25)
    n_i: int = static(8)
    dt: float = static(1e-4)
    n_steps: int = static(1100)
    tau_e: float = static(10e-3)
    tau_i: float = static(0.1e-3)
    v_th: float = static(0.1)
    w_ee_max: float = static(0.4)        # E->E = w_ee_max * (w_ee_low + (1 - w_ee_low) U[0,1])
    w_ee_low: float = static(0.2)
    p_ei: float = static(0.8)            # connection probability E->I
    p_ie: float = static(0.8)            # connection probability I->E
    w_ei_mean: float = static(0.5)
    w_ei_std: float = static(0.15)
    w_ie_mean: float = static(-0.3)
    w_ie_std: float = static(0.09)

    def __post_init__(self):
        check_number("n_e", self.n_e, 2, 4096, integer=True)
        check_number("n_i", self.n_i, 0, 4096, integer=True)
        check_number("dt", self.dt, 0, 1e-2, lo_open=True)
        check_number("n_steps", self.n_steps, 2, 10 ** 6, integer=True)
        check_number("tau_e", self.tau_e, self.dt, 10.0)
        check_number("tau_i", self.tau_i, self.dt, 10.0)
        check_number("v_th", self.v_th, 0.0, 10.0)
        check_number("w_ee_max", self.w_ee_max, 0.0, 100.0)
        check_number("w_ee_low", self.w_ee_low, 0.0, 1.0)
        check_number("p_ei", self.p_ei, 0.0, 1.0)
        check_number("p_ie", self.p_ie, 0.0, 1.0)
        check_number("w_ei_mean", self.w_ei_mean, 0.0, 100.0)
        check_number("w_ei_std", self.w_ei_std, 0.0, 100.0)
        check_number("w_ie_mean", self.w_ie_mean, -100.0, 0.0)
        check_number("w_ie_std", self.w_ie_std, 0.0, 100.0)

    @property
    def n(self) -> int:
        return self.n_e + self.n_i


@struct.dataclass
class InputConfig:
    """Kick on E0, then Poisson drive to every other cell, through an alpha kernel (spec §2)."""
    kick_steps: int = static(10)          # E0 gets one arrival on each of these first steps
    rate_hz: float = static(80.0)         # Poisson rate per cell
    frozen_fraction: float = static(0.75)  # share of the rate frozen per network
    start_step: int = static(10)          # Poisson arrivals on steps [start_step, stop_step)
    stop_step: int = static(650)
    tau_alpha: float = static(3e-3)       # alpha kernel e (t/ta) exp(-t/ta), s
    kernel_steps: int = static(300)       # truncation (30 ms at dt = 0.1 ms)
    amp_e: float = static(0.09)
    amp_i: float = static(0.02)

    def __post_init__(self):
        check_number("kick_steps", self.kick_steps, 0, 10 ** 6, integer=True)
        check_number("rate_hz", self.rate_hz, 0.0, 1e4)
        check_number("frozen_fraction", self.frozen_fraction, 0.0, 1.0)
        check_number("start_step", self.start_step, 0, 10 ** 6, integer=True)
        check_number("stop_step", self.stop_step, self.start_step, 10 ** 6, integer=True)
        check_number("tau_alpha", self.tau_alpha, 0.0, 1.0, lo_open=True)
        check_number("kernel_steps", self.kernel_steps, 1, 10 ** 6, integer=True)
        check_number("amp_e", self.amp_e, 0.0, 100.0)
        check_number("amp_i", self.amp_i, 0.0, 100.0)


@struct.dataclass
class PlasticityConfig:
    """Which synapse types are plastic and the constants of the generalized-Oja update (spec §3)."""
    synapses: tuple = static(("ee",))
    tau_convention: str = static("independent")  # or "shifted": the paper-era shared time constants
    lr: float = static(5e-4)              # per-step factor on sum_k c_k F_k
    rate_norm: float = static(0.02)       # x and y are divided by this inside the basis
    trace_norm: float = static(0.01)      # every trace is divided by this inside the basis
    gate: float = static(2e-6)            # synapses with |w| <= gate at activation start are frozen
    dale_eps: float = static(1e-6)        # a sign-flipped weight is set to +-dale_eps
    track_effects: bool = static(True)    # accumulate sum |c_k F_k| (needed by the loss)
    # The hand-made comparison rule (Fig 4): after each step, E->E synapses onto a cell whose summed
    # incoming weight exceeds Rule.hetero[0] (and from a cell whose summed outgoing weight does) are
    # depressed at rate Rule.hetero[1] x the excess, and no E->E weight exceeds Rule.hetero[2].
    heterosynaptic: bool = static(False)

    def __post_init__(self):
        if (not isinstance(self.synapses, tuple) or len(self.synapses) == 0
                or any(s not in SYNAPSE_TYPES for s in self.synapses)
                or len(set(self.synapses)) != len(self.synapses)):
            raise ValueError(f"synapses must be a non-empty tuple of distinct values from "
                             f"{list(SYNAPSE_TYPES)}, got {self.synapses!r}")
        _choice("tau_convention", self.tau_convention, TAU_CONVENTIONS)
        check_number("lr", self.lr, 0.0, 1.0)
        check_number("rate_norm", self.rate_norm, 0.0, 1e3, lo_open=True)
        check_number("trace_norm", self.trace_norm, 0.0, 1e3, lo_open=True)
        check_number("gate", self.gate, 0.0, 1.0)
        check_number("dale_eps", self.dale_eps, 0.0, 1.0)
        if isinstance(self.gate, (int, float)) and isinstance(self.dale_eps, (int, float)) and self.dale_eps > self.gate:
            raise ValueError(f"dale_eps must be in [0, gate = {self.gate:g}] so a clamped weight is frozen, "
                             f"got {self.dale_eps!r}")

    @property
    def type_index(self) -> tuple:
        """Indices of the plastic types into SYNAPSE_TYPES, in canonical order."""
        return tuple(i for i, s in enumerate(SYNAPSE_TYPES) if s in self.synapses)


@struct.dataclass
class TurnoverConfig:
    """Synaptic turnover (spec §4). The probabilities themselves are per-network leaves."""
    reborn_ee: float = static(0.08)
    reborn_ie: float = static(-0.015)
    # The reference flips the diagonal too, so a reborn E->E "synapse" can appear as a (frozen,
    # non-plastic) autapse. Default True reproduces that; False keeps the diagonal empty.
    diagonal: bool = static(True)
    # Turnover acts before activations >= first_activation. The E+I reference starts at 1 (the
    # spec); its E->E-only branch also flipped before activation 0 (first_activation=0).
    first_activation: int = static(1)
    # ... and before activations < stop_activation (the stress test: turnover on 401..549 only)
    stop_activation: int = static(10 ** 7)

    def __post_init__(self):
        check_number("first_activation", self.first_activation, 0, 10 ** 7, integer=True)
        check_number("stop_activation", self.stop_activation, self.first_activation, 10 ** 7, integer=True)
        check_number("reborn_ee", self.reborn_ee, 0.0, 100.0)
        check_number("reborn_ie", self.reborn_ie, -100.0, 0.0)
        if not isinstance(self.diagonal, bool):
            raise ValueError(f"diagonal must be True or False, got {self.diagonal!r}")


def _every(start: int, stop: int, step: int) -> tuple:
    return tuple(range(start, stop + 1, step))


@struct.dataclass
class LossConfig:
    """Decoder protocol and loss weights (spec §5). Activation indices are 0-based."""
    fit_activations: tuple = static(_every(344, 369, 5))
    test_activations: tuple = static(_every(374, 399, 5))
    n_fit: int = static(500)              # time points per fit activation (same points in each)
    n_test: int = static(200)             # time points per test activation
    window_start: int = static(30)        # time points drawn uniformly (with replacement)
    window_stop: int = static(649)        # from [window_start, window_stop): the reference's [30, 648]
    w_decoder: float = static(1000.0)     # L = w_decoder (1 - R^2) + w_rate mean_rate + w_effect sum effects
    w_rate: float = static(100.0)
    w_effect: float = static(5e-7)
    blowup_w: float = static(100.0)       # any |w| above this is a blow-up
    blowup_min_ee: float = static(1.5e-6)  # all E->E |w| below this is a blow-up (dead network)
    blowup_loss: float = static(1e8)      # per network, plus blowup_coef * sum |c|
    blowup_coef: float = static(1e7)

    def __post_init__(self):
        check_number("n_fit", self.n_fit, 2, 10 ** 6, integer=True)
        check_number("n_test", self.n_test, 2, 10 ** 6, integer=True)
        check_number("window_start", self.window_start, 0, 10 ** 6, integer=True)
        check_number("window_stop", self.window_stop, self.window_start + 1, 10 ** 6, integer=True)
        for f in ("w_decoder", "w_rate", "w_effect", "blowup_loss", "blowup_coef"):
            check_number(f, getattr(self, f), 0.0, 1e12)
        check_number("blowup_w", self.blowup_w, 0.0, 1e12, lo_open=True)
        check_number("blowup_min_ee", self.blowup_min_ee, 0.0, 1.0)
        for f in ("fit_activations", "test_activations"):
            _steps(f, getattr(self, f), 10 ** 6)
            if len(getattr(self, f)) == 0:
                raise ValueError(f"{f} must hold at least one activation index, got ()")

    @property
    def recorded_activations(self) -> tuple:
        return tuple(sorted(set(self.fit_activations) | set(self.test_activations)))


@struct.dataclass
class PerturbationConfig:
    """A single-cell perturbation (Fig 6): at activation `activation` (0-based; -1 = none) scale one
    E cell's E->E afferents by `afferent_scale` once, and from then on multiply its fresh Poisson
    rate by `input_gain`."""
    activation: int = static(-1)
    cell: int = static(0)
    afferent_scale: float = static(1.0)
    input_gain: float = static(1.0)

    def __post_init__(self):
        check_number("activation", self.activation, -1, 10 ** 7, integer=True)
        check_number("cell", self.cell, 0, 4095, integer=True)
        check_number("afferent_scale", self.afferent_scale, 0.0, 100.0)
        check_number("input_gain", self.input_gain, 0.0, 1000.0)


@struct.dataclass
class ModelConfig:
    """Everything static about one simulated run of a network: model, protocol and records."""
    network: NetworkConfig = static(NetworkConfig())
    inputs: InputConfig = static(InputConfig())
    plasticity: PlasticityConfig = static(PlasticityConfig())
    turnover: TurnoverConfig = static(TurnoverConfig())
    loss: LossConfig = static(LossConfig())
    perturbation: PerturbationConfig = static(PerturbationConfig())
    n_activations: int = static(400)
    record_rates: tuple = static(())      # extra activations whose full rates are kept (figures)
    record_weights: tuple = static(())    # activations whose end-of-activation W is kept
    float64: bool = static(False)

    def __post_init__(self):
        check_number("n_activations", self.n_activations, 1, 10 ** 7, integer=True)
        if self.inputs.stop_step > self.network.n_steps:
            raise ValueError(f"inputs.stop_step must be <= network.n_steps = {self.network.n_steps}, "
                             f"got {self.inputs.stop_step}")
        if self.loss.window_stop > self.network.n_steps:
            raise ValueError(f"loss.window_stop must be <= network.n_steps = {self.network.n_steps}, "
                             f"got {self.loss.window_stop}")
        if self.perturbation.cell >= self.network.n_e:
            raise ValueError(f"perturbation.cell must be an E cell in [0, {self.network.n_e - 1}], "
                             f"got {self.perturbation.cell}")
        _steps("record_rates", self.record_rates, self.n_activations)
        _steps("record_weights", self.record_weights, self.n_activations)
        for f in ("fit_activations", "test_activations"):
            acts = getattr(self.loss, f)
            if max(acts) >= self.n_activations:
                raise ValueError(f"loss.{f} must lie in [0, {self.n_activations - 1}] "
                                 f"(n_activations = {self.n_activations}), got {acts!r}")
        if not isinstance(self.float64, bool):
            raise ValueError(f"float64 must be True or False, got {self.float64!r}")

    @property
    def dtype(self):
        import jax.numpy as jnp
        return jnp.float64 if self.float64 else jnp.float32

    @property
    def rate_activations(self) -> tuple:
        """All activations whose full rate traces the run keeps: decoder ones first, then extras."""
        return tuple(sorted(set(self.loss.recorded_activations) | set(self.record_rates)))

    def to_dict(self) -> dict:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def to_dict(cfg: Any) -> Any:
    """Nested plain-Python dict of a config (tuples become lists), for JSON provenance."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def from_dict(cls: type, data: dict) -> Any:
    """Inverse of `to_dict` for the config classes above."""
    kwargs = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in data.items():
        if name not in hints:
            raise ValueError(f"unknown field {name!r} for {cls.__name__}; allowed: {sorted(hints)}")
        default = hints[name].default
        if dataclasses.is_dataclass(default):
            value = from_dict(type(default), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
