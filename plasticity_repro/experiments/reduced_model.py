"""The reduced one-neuron model of Fig 6: two homeostatic rules on two moments of one response.

One neuron, r(t) = [w u(t) - b]+, where u is the input low-pass filtered with tau_s = 5 ms
(forward Euler, unit DC gain: u[k+1] = u[k] + dt/tau_s (x[k] - u[k]), u[0] = 0). Each
activation (T = 0.4 s) presents one alpha pulse x(t) = A (t/tau_p) exp(1 - t/tau_p), which peaks
at amplitude A at t = tau_p (the pulse "width"). After each activation two rules update w and b
from the response's moments (spec §7, Fig 6):

    m1 = sum_k r[k] dt          (first moment, s)
    m2 = sum_k r[k]^2 dt^2      (second moment exactly as the paper writes it; note the dt^2,
                                 so target2 = 6e-7 belongs to dt = 0.1 ms: m2 = dt * int r^2 dt)
    "two_rules": dw = eta_w (target2 - m2),  db = eta_b (m1 - target1)
    "w_only":    dw as above, b fixed;   "b_only": db as above, w fixed
    "swapped":   dw = eta_b (target1 - m1),  db = eta_w (m2 - target2)

In "swapped" each moment keeps its own target and its own rate (the rates are sized to their
moment, 1e5 for m2 ~ 1e-6, 2 for m1 ~ 1e-2); only which parameter it drives changes, with the
sign that makes each rule homeostatic on its own (w up when activity is low, b up when high).
After every update w and b are kept >= `floor` = 1e-8 (spec §8: "both updates clipped at 1e-8",
read as a lower bound on the updated values), so w never turns negative and b never lets the
neuron fire tonically.

Besides the two moments each activation records the response's peak, its duration (time with
r > 0; the paper plots M0 / r_peak = m1 / peak, which the figure computes) and its delay, the
first moment in time: sum_k t_k r[k] dt / sum_k r[k] dt (s, t_k = k dt; NaN without a response).

All four modes share one fixed point (w*, b*), where both moments sit on their targets; the
stability check is the Jacobian of the per-activation map (w, b) -> (w', b') there. Near it
d(m1, m2)/d(w, b) = [[a1, -c1], [a2, -c2]] with a, c > 0, and the continuous-time version of
"two_rules" has determinant eta_w eta_b (a2 c1 - a1 c2) while "swapped" has the same product of
rates times (a1 c2 - a2 c1): whenever one is a stable node or focus the other is a saddle.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct

from plasticity_repro.config import to_dict

MODES = ("two_rules", "w_only", "b_only", "swapped")

# The authors' input grid (spec §8, from the reference code): alpha pulses a * alpha(t; tau_a),
# alpha peaking at 1 at t = tau_a, with a in linspace(0.01, 1, 10) and tau_a in linspace(1, 20 ms,
# 10), from w0 = 1, b0 = 0.1. The paper's plots leave out the 3 smallest a and the 3 shortest
# tau_a (PLOT_DROP): the smallest pulses barely reach the threshold within 200 activations, and
# for the shortest ones the fixed point has b* < 0, below the floor, so b sits on the floor there.
DEFAULT_AMPLITUDES = tuple(float(a) for a in np.round(np.linspace(0.01, 1.0, 10), 6))
DEFAULT_WIDTHS = tuple(float(t) for t in np.round(np.linspace(1e-3, 20e-3, 10), 6))
DEFAULT_W0 = (1.0,)
DEFAULT_B0 = (0.1,)
PLOT_DROP = 3       # smallest amplitudes and shortest widths left out of the paper's panels


def static(default: Any) -> Any:
    """A static (non-pytree) dataclass field with a default."""
    return struct.field(pytree_node=False, default=default)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(name: str, v: Any, lo: float, hi: float, integer: bool = False) -> None:
    """Range-check a plain Python number (anything else, e.g. an array, is left to the caller)."""
    if not _is_number(v):
        return
    if (integer and not isinstance(v, int)) or not math.isfinite(v) or v < lo or v > hi:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {v!r}")


@struct.dataclass
class ReducedModelConfig:
    """One threshold-linear neuron with a filtered alpha-pulse input and two homeostatic rules.

    Times in s. `amplitudes` x `widths` is the grid of input conditions (the authors' 10 x 10 by
    default); `w0`, `b0` the initial conditions (paired), run from each.
    """
    dt: float = static(1e-4)               # Euler step (s); target2 is defined for this dt
    T: float = static(0.4)                 # activation length (s)
    tau_s: float = static(5e-3)            # input filter time constant (s)
    amplitudes: tuple = static(DEFAULT_AMPLITUDES)  # alpha-pulse peak values A
    widths: tuple = static(DEFAULT_WIDTHS)          # alpha-pulse time constants tau_p (s), peak at t = tau_p
    w0: tuple = static(DEFAULT_W0)         # initial w per initial condition
    b0: tuple = static(DEFAULT_B0)         # initial b per initial condition (same length as w0)
    floor: float = static(1e-8)            # w and b are kept >= floor after each update
    n_activations: int = static(200)
    eta_w: float = static(1e5)             # rate of the second-moment rule
    target2: float = static(6e-7)          # target of m2 = sum r^2 dt^2
    eta_b: float = static(2.0)             # rate of the first-moment rule
    target1: float = static(0.015)         # target of m1 = sum r dt (s)
    mode: str = static("two_rules")        # one of MODES
    float64: bool = static(False)

    def __post_init__(self):
        _check("dt", self.dt, 1e-6, 1e-2)
        _check("T", self.T, 1e-3, 100.0)
        _check("tau_s", self.tau_s, 1e-5, 10.0)
        _check("n_activations", self.n_activations, 1, 10 ** 6, integer=True)
        _check("eta_w", self.eta_w, 0.0, 1e12)
        _check("target2", self.target2, 0.0, 1e3)
        _check("eta_b", self.eta_b, 0.0, 1e12)
        _check("target1", self.target1, 0.0, 1e3)
        _check("floor", self.floor, -1e6, 1e6)
        if _is_number(self.dt) and _is_number(self.T) and self.T < 2 * self.dt:
            raise ValueError(f"T must be in [{2 * self.dt:g}, 100], got {self.T!r}")
        if _is_number(self.dt) and _is_number(self.tau_s) and self.dt > self.tau_s:
            raise ValueError(f"dt must be in [1e-06, {self.tau_s:g}] (at most tau_s), got {self.dt!r}")
        for name in ("amplitudes", "widths"):
            vals = getattr(self, name)
            if not isinstance(vals, tuple) or len(vals) == 0:
                raise ValueError(f"{name} must be a non-empty tuple of numbers, got {vals!r}")
            hi = 1e6 if name == "amplitudes" else (self.T if _is_number(self.T) else 100.0)
            for v in vals:
                _check(name, v, 0.0 if name == "amplitudes" else 1e-5, hi)
        for name in ("w0", "b0"):
            vals = getattr(self, name)
            if not isinstance(vals, tuple) or len(vals) == 0:
                raise ValueError(f"{name} must be a non-empty tuple of numbers, got {vals!r}")
            for v in vals:
                _check(name, v, -1e6, 1e6)
        if len(self.w0) != len(self.b0):
            raise ValueError(f"w0 and b0 must have the same length, got {len(self.w0)} and {len(self.b0)}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if not isinstance(self.float64, bool):
            raise ValueError(f"float64 must be True or False, got {self.float64!r}")

    @property
    def n_steps(self) -> int:
        return int(round(self.T / self.dt))

    @property
    def dtype(self):
        return jnp.float64 if self.float64 else jnp.float32

    def to_dict(self) -> dict:
        return to_dict(self)


@struct.dataclass
class ReducedRun:
    """Per-activation record of one run; w and b are the values in force during activation k."""
    w: jax.Array
    b: jax.Array
    peak: jax.Array        # max_t r (rate units)
    duration: jax.Array    # time with r > 0 (s)
    m1: jax.Array          # sum r dt (s)
    m2: jax.Array          # sum r^2 dt^2
    delay: jax.Array       # first moment in time, sum t r dt / sum r dt (s)
    w_final: jax.Array     # after the last update
    b_final: jax.Array


def response(cfg: ReducedModelConfig, w, b, amplitude, width):
    """One activation: scan over time steps; returns (m1, m2, peak, duration, delay) of
    r = [w u - b]+ (delay: sum t r dt / m1, NaN when r stays 0)."""
    dt, tau_s = cfg.dt, cfg.tau_s
    w, b, amplitude, width = (jnp.asarray(v, cfg.dtype) for v in (w, b, amplitude, width))
    zero = jnp.zeros((), cfg.dtype)

    def step(carry, k):
        u, m1, m2, mt, peak, dur = carry
        r = jnp.maximum(w * u - b, 0.0)
        t = k.astype(cfg.dtype) * dt
        x = amplitude * (t / width) * jnp.exp(1.0 - t / width)
        u = u + (x - u) * (dt / tau_s)
        return (u, m1 + r * dt, m2 + (r * dt) ** 2, mt + t * r * dt, jnp.maximum(peak, r),
                dur + jnp.where(r > 0, dt, 0.0)), None

    (_, m1, m2, mt, peak, dur), _ = jax.lax.scan(step, (zero,) * 6, jnp.arange(cfg.n_steps))
    delay = jnp.where(m1 > 0, mt / jnp.where(m1 > 0, m1, 1.0), jnp.nan)
    return m1, m2, peak, dur, delay


def update(cfg: ReducedModelConfig, w, b, m1, m2):
    """The per-activation rule of `cfg.mode` (see the module docstring), w and b kept >= cfg.floor."""
    e1 = m1 - cfg.target1          # > 0: too much activity (first moment)
    e2 = m2 - cfg.target2          # > 0: too much activity (second moment)
    if cfg.mode == "two_rules":
        w, b = w - cfg.eta_w * e2, b + cfg.eta_b * e1
    elif cfg.mode == "w_only":
        w = w - cfg.eta_w * e2
    elif cfg.mode == "b_only":
        b = b + cfg.eta_b * e1
    else:                          # swapped
        w, b = w - cfg.eta_b * e1, b + cfg.eta_w * e2
    return jnp.maximum(w, cfg.floor), jnp.maximum(b, cfg.floor)


def activation_map(cfg: ReducedModelConfig, state, amplitude, width):
    """(w, b) -> (w', b'): one activation followed by one update."""
    w, b = state[0], state[1]
    m1, m2, _, _, _ = response(cfg, w, b, amplitude, width)
    return jnp.stack(update(cfg, w, b, m1, m2))


def simulate_reduced(cfg: ReducedModelConfig, w0, b0, amplitude, width) -> ReducedRun:
    """Run `cfg.n_activations` activations from (w0, b0): a scan over activations of a scan over
    time steps. Pure; jit and vmap over (w0, b0, amplitude, width) freely."""
    def one(carry, _):
        w, b = carry
        m1, m2, peak, dur, delay = response(cfg, w, b, amplitude, width)
        return update(cfg, w, b, m1, m2), (w, b, peak, dur, m1, m2, delay)

    init = (jnp.asarray(w0, cfg.dtype), jnp.asarray(b0, cfg.dtype))
    (wf, bf), (w, b, peak, dur, m1, m2, delay) = jax.lax.scan(one, init, None, length=cfg.n_activations)
    return ReducedRun(w=w, b=b, peak=peak, duration=dur, m1=m1, m2=m2, delay=delay, w_final=wf, b_final=bf)


def fixed_point(cfg: ReducedModelConfig, w_guess, b_guess, amplitude, width, n_newton: int = 30):
    """(w*, b*) with m1 = target1 and m2 = target2 (shared by all modes), by Newton's method from a
    guess (e.g. the end of a two-rule run). Returns (w*, b*, |relative residual| of m1, of m2)."""
    def resid(s):
        m1, m2, _, _, _ = response(cfg, s[0], s[1], amplitude, width)
        return jnp.stack([(m1 - cfg.target1) / cfg.target1, (m2 - cfg.target2) / cfg.target2])

    def newton(s, _):
        r, jac = resid(s), jax.jacfwd(resid)(s)
        s_new = s - jnp.linalg.solve(jac, r)
        ok = jnp.all(jnp.isfinite(s_new))
        return jnp.where(ok, s_new, s), None

    s0 = jnp.stack([jnp.asarray(w_guess, cfg.dtype), jnp.asarray(b_guess, cfg.dtype)])
    s, _ = jax.lax.scan(newton, s0, None, length=n_newton)
    r = resid(s)
    return s[0], s[1], jnp.abs(r[0]), jnp.abs(r[1])


def map_jacobian(cfg: ReducedModelConfig, w, b, amplitude, width):
    """Jacobian (2, 2) of `activation_map` at (w, b), by forward-mode differentiation through the
    time scan (the threshold crossing is handled exactly as the Euler discretisation has it)."""
    s = jnp.stack([jnp.asarray(w, cfg.dtype), jnp.asarray(b, cfg.dtype)])
    return jax.jacfwd(lambda st: activation_map(cfg, st, amplitude, width))(s)


def _grid_run(cfg: ReducedModelConfig, w0, b0):
    """vmap of simulate_reduced over inits x amplitudes x widths -> fields shaped (I, A, W, K)."""
    amps = jnp.asarray(cfg.amplitudes, cfg.dtype)
    wids = jnp.asarray(cfg.widths, cfg.dtype)
    f = lambda w, b, a, t: simulate_reduced(cfg, w, b, a, t)
    f = jax.vmap(f, in_axes=(None, None, None, 0))
    f = jax.vmap(f, in_axes=(None, None, 0, None))
    f = jax.vmap(f, in_axes=(0, 0, None, None))
    return jax.jit(f)(jnp.asarray(w0, cfg.dtype), jnp.asarray(b0, cfg.dtype), amps, wids)


def _grid_stability(cfg: ReducedModelConfig, w_guess, b_guess, modes):
    """Fixed point per condition (from guesses shaped (A, W)) and the map's eigenvalues per mode."""
    amps = jnp.asarray(cfg.amplitudes, cfg.dtype)
    wids = jnp.asarray(cfg.widths, cfg.dtype)

    def grid(fn):
        g = jax.vmap(fn, in_axes=(0, 0, None, 0))
        return jax.jit(jax.vmap(g, in_axes=(0, 0, 0, None)))

    fp = grid(lambda w, b, a, t: fixed_point(cfg, w, b, a, t))
    ws, bs, r1, r2 = fp(jnp.asarray(w_guess, cfg.dtype), jnp.asarray(b_guess, cfg.dtype), amps, wids)
    jacs = []
    for m in modes:
        c = cfg.replace(mode=m)
        jacs.append(np.asarray(grid(lambda w, b, a, t: map_jacobian(c, w, b, a, t))(ws, bs, amps, wids)))
    jac = np.stack(jacs)                                  # (mode, A, W, 2, 2)
    eig = np.linalg.eigvals(jac.astype(np.float64))       # (mode, A, W, 2)
    order = np.argsort(-np.abs(eig), axis=-1)             # largest modulus first
    eig = np.take_along_axis(eig, order, axis=-1)
    return (np.asarray(ws), np.asarray(bs), np.asarray(r1), np.asarray(r2), jac, eig)


def reduced_model_dataset(cfg: ReducedModelConfig | None = None, w0=None, b0=None,
                          modes=MODES, profile: str = "paper") -> xr.Dataset:
    """Every mode x initial condition x amplitude x width, per activation, as one dataset.

    Variables (mode, init, amplitude, width, activation): w, b, peak, duration, m1, m2, delay;
    per (mode, init, amplitude, width): w_final, b_final; the shared fixed point per (amplitude,
    width): w_star, b_star, its relative residuals and whether it lies above the floor
    (fixed_point_feasible); per (mode, amplitude, width, eig): the per-activation map's Jacobian
    eigenvalues at the fixed point (eig_modulus, eig_real, eig_imag), largest modulus first.
    `cfg.mode` is ignored: every mode in `modes` is run. w0, b0 (default: cfg's) replace cfg's.
    """
    from plasticity_repro.datasets import provenance

    cfg = ReducedModelConfig() if cfg is None else cfg
    if w0 is not None or b0 is not None:
        cfg = cfg.replace(w0=tuple(float(v) for v in np.atleast_1d(cfg.w0 if w0 is None else w0)),
                          b0=tuple(float(v) for v in np.atleast_1d(cfg.b0 if b0 is None else b0)))
    w0, b0 = cfg.w0, cfg.b0
    modes = tuple(modes)
    for m in modes:
        if m not in MODES:
            raise ValueError(f"modes must be drawn from {list(MODES)}, got {m!r}")

    runs = {m: jax.device_get(_grid_run(cfg.replace(mode=m), w0, b0)) for m in modes}
    # Newton starts from the end of the two-rule run of the first initial condition.
    guide = runs["two_rules"] if "two_rules" in runs else jax.device_get(
        _grid_run(cfg.replace(mode="two_rules"), w0[:1], b0[:1]))
    ws, bs, r1, r2, jac, eig = _grid_stability(cfg, guide.w_final[0], guide.b_final[0], modes)

    dims = ("mode", "init", "amplitude", "width", "activation")
    data = {}
    for name in ("w", "b", "peak", "duration", "m1", "m2", "delay"):
        data[name] = (dims, np.stack([np.asarray(getattr(runs[m], name)) for m in modes]))
    for name in ("w_final", "b_final"):
        data[name] = (dims[:4], np.stack([np.asarray(getattr(runs[m], name)) for m in modes]))
    data["w_star"] = (("amplitude", "width"), ws)
    data["b_star"] = (("amplitude", "width"), bs)
    data["fixed_point_residual_m1"] = (("amplitude", "width"), r1)
    data["fixed_point_residual_m2"] = (("amplitude", "width"), r2)
    data["fixed_point_feasible"] = (("amplitude", "width"), (ws > cfg.floor) & (bs > cfg.floor))
    data["jacobian"] = (("mode", "amplitude", "width", "row", "col"), jac)
    data["eig_modulus"] = (("mode", "amplitude", "width", "eig"), np.abs(eig))
    data["eig_real"] = (("mode", "amplitude", "width", "eig"), eig.real)
    data["eig_imag"] = (("mode", "amplitude", "width", "eig"), eig.imag)

    coords = {
        "mode": list(modes),
        "init": np.arange(len(w0)),
        "w0": ("init", np.asarray(w0)),
        "b0": ("init", np.asarray(b0)),
        "amplitude": np.asarray(cfg.amplitudes),
        "width": np.asarray(cfg.widths),
        "activation": np.arange(cfg.n_activations),
        "eig": np.arange(2),
        "row": ["w", "b"],
        "col": ["w", "b"],
    }
    ds = xr.Dataset(data, coords=coords)
    units = {"w": "1", "b": "rate", "peak": "rate", "duration": "s", "m1": "rate s",
             "m2": "rate^2 s^2", "delay": "s", "width": "s"}
    for k, u in units.items():
        ds[k].attrs["units"] = u
    ds["duration"].attrs["long_name"] = "time with r > 0"
    ds["delay"].attrs["long_name"] = "first moment of the response in time, sum t r dt / sum r dt"
    ds["fixed_point_feasible"].attrs["long_name"] = ("w_star and b_star above the floor (else the floored "
                                                     "map cannot reach the shared fixed point)")
    ds["width"].attrs["long_name"] = "alpha-pulse time constant (peak time)"
    ds["eig_modulus"].attrs["long_name"] = "|eigenvalue| of d(w', b')/d(w, b) at the fixed point"
    params = dict(cfg.to_dict(), modes=list(modes))
    params.pop("mode")
    ds.attrs.update(provenance(params=params, profile=profile, seeds=None, float64=cfg.float64,
                               kind="reduced_model"))
    authors = (cfg.amplitudes, cfg.widths, cfg.w0, cfg.b0) == (DEFAULT_AMPLITUDES, DEFAULT_WIDTHS, DEFAULT_W0, DEFAULT_B0)
    ds.attrs["input_grid"] = ("the authors' (spec §8): a in linspace(0.01, 1, 10), tau_a in linspace(1, 20 ms, 10), "
                              "w0 = 1, b0 = 0.1" if authors else "not the authors' (see params_json)")
    ds.attrs["plot_drop"] = PLOT_DROP
    return ds


def plotted_inputs(rd, drop: int | None = None):
    """The reduced-model dataset restricted to the input conditions the paper plots: the `drop`
    smallest amplitudes and shortest widths left out (default the dataset's plot_drop, PLOT_DROP)."""
    drop = int(rd.attrs.get("plot_drop", PLOT_DROP)) if drop is None else int(drop)
    return rd.isel(amplitude=slice(drop, None), width=slice(drop, None))


def converged_fraction(rd, mode: str, tol: float = 0.05, drop: int | None = None) -> float:
    """Share of the plotted input conditions (`plotted_inputs`) whose two moments both end within
    `tol` (relative) of their targets after the last activation, under rule set `mode` (Fig 6's
    claim of convergence)."""
    import json
    prm = json.loads(rd.attrs["params_json"])
    last = plotted_inputs(rd, drop).isel(init=0, activation=-1).sel(mode=mode)
    ok = (np.abs(last.m1.values / prm["target1"] - 1) < tol) & (np.abs(last.m2.values / prm["target2"] - 1) < tol)
    return float(ok.mean())
