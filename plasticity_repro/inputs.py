"""Input of one activation (spec §2): a kick on E0, frozen and fresh Poisson arrivals on every
other cell, all filtered by a truncated alpha kernel.

Arrivals are Poisson counts with mean rate * dt per step and cell, as in the reference, drawn by
inverse CDF from one uniform per step and cell (counts above 4 are cut; at 60 Hz and dt = 0.1 ms
that happens with probability < 1e-13 per draw).
The filtered drive is computed inside the step loop by an exact two-state recursion of the
truncated kernel, so no (steps x steps) convolution is ever formed; `drive_direct` is the plain
convolution used by tests to check it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .config import InputConfig, NetworkConfig


def alpha_kernel(net: NetworkConfig, inp: InputConfig) -> np.ndarray:
    """kernel[k] = e (k dt / ta) exp(-k dt / ta), k = 0 .. kernel_steps - 1 (float64)."""
    t = np.arange(inp.kernel_steps) * net.dt / inp.tau_alpha
    return np.e * t * np.exp(-t)


def cell_amplitudes(net: NetworkConfig, inp: InputConfig) -> np.ndarray:
    """Per-cell scale of the filtered arrivals: amp_e for E cells, amp_i for I cells."""
    return np.concatenate([np.full(net.n_e, inp.amp_e), np.full(net.n_i, inp.amp_i)])


def _poisson_cells(net: NetworkConfig) -> np.ndarray:
    """Cells that receive Poisson input: all but E0 (which gets the kick)."""
    m = np.ones(net.n_e + net.n_i, bool)
    m[0] = False
    return m


def poisson_arrivals(net: NetworkConfig, inp: InputConfig, key, rate_hz: float, dtype,
                     gain=None) -> jnp.ndarray:
    """(n_steps, N) Poisson(rate dt) arrival counts on steps [start_step, stop_step), all cells but E0.
    `gain` (N,), optional, multiplies each cell's rate (one cell's input boosted in Fig 6)."""
    n = net.n_e + net.n_i
    u = jax.random.uniform(key, (inp.stop_step - inp.start_step, n), jnp.float32)
    if gain is None:
        a = poisson_counts(u, poisson_cdf(rate_hz * net.dt), jnp)
    else:  # per-cell rates: thresholds per cell, a Poisson cdf with up to 8 arrivals per step
        a = jnp.zeros(u.shape, jnp.float32)
        lam = rate_hz * net.dt * gain
        pmf = jnp.exp(-lam)
        cdf = pmf
        for k in range(1, 9):
            a = a + (u >= cdf)
            pmf = pmf * lam / k
            cdf = cdf + pmf
    a = a * jnp.asarray(_poisson_cells(net))[None]
    full = jnp.zeros((net.n_steps, n), dtype)
    return full.at[inp.start_step:inp.stop_step].set(a.astype(dtype))


def poisson_counts(u, cdf, xp=np):
    """Inverse-CDF Poisson counts (float32) of uniforms u (NumPy or JAX arrays, xp their module):
    the number of thresholds in `cdf` that u reaches."""
    a = xp.zeros(u.shape, xp.float32)
    for c in cdf:
        a = a + (u >= c)
    return a


def poisson_cdf(lam: float, k_max: int = 4) -> np.ndarray:
    """P(N <= k) for k = 0 .. k_max - 1 of a Poisson(lam) count: thresholds for inverse-CDF draws."""
    k = np.arange(k_max)
    pmf = np.exp(-lam) * lam ** k / np.cumprod(np.concatenate([[1], np.maximum(k[1:], 1)]))
    return np.cumsum(pmf).astype(np.float32)


def frozen_arrivals(net: NetworkConfig, inp: InputConfig, u, dtype=np.float32) -> np.ndarray:
    """Arrivals shared by every activation of one network: the kick plus the frozen Poisson part,
    from its uniforms u (stop_step - start_step, N) (NumPy; network.make_network draws them)."""
    a = poisson_counts(np.asarray(u), poisson_cdf(inp.rate_hz * inp.frozen_fraction * net.dt))
    a = a * _poisson_cells(net)[None]
    full = np.zeros((net.n_steps, net.n_e + net.n_i), dtype)
    full[inp.start_step:inp.stop_step] = a.astype(dtype)
    full[:inp.kick_steps, 0] += 1.0
    return full


def fresh_arrivals(net: NetworkConfig, inp: InputConfig, key, dtype=jnp.float32, gain=None) -> jnp.ndarray:
    """Arrivals drawn anew for each activation (the non-frozen share of the Poisson rate)."""
    return poisson_arrivals(net, inp, key, inp.rate_hz * (1.0 - inp.frozen_fraction), dtype, gain)


def delayed(arrivals: jnp.ndarray, inp: InputConfig) -> jnp.ndarray:
    """arrivals[t - kernel_steps] (zero before the start): what leaves the truncated kernel at t."""
    k = inp.kernel_steps
    pad = jnp.zeros((k,) + arrivals.shape[1:], arrivals.dtype)
    return jnp.concatenate([pad, arrivals])[:arrivals.shape[0]]


def recursion_constants(net: NetworkConfig, inp: InputConfig):
    """(q, q^K, K q^K, e dt / ta) of the exact recursion for the truncated alpha kernel."""
    q = float(np.exp(-net.dt / inp.tau_alpha))
    qk = q ** inp.kernel_steps
    return q, qk, inp.kernel_steps * qk, float(np.e * net.dt / inp.tau_alpha)


def drive_step(A, B, a_now, a_old, consts):
    """One step of the kernel recursion.

    With A[t] = sum_{k<K} q^k a[t-k] and B[t] = sum_{k<K} k q^k a[t-k]:
      A[t] = q A[t-1] + a[t] - q^K a[t-K],  B[t] = q (B[t-1] + A[t-1]) - K q^K a[t-K],
    and the filtered drive is (e dt / ta) B[t] (before the per-cell amplitude).
    """
    q, qk, kqk, _ = consts
    B_new = q * (B + A) - kqk * a_old
    A_new = q * A + a_now - qk * a_old
    return A_new, B_new


def drive_direct(net: NetworkConfig, inp: InputConfig, arrivals) -> np.ndarray:
    """The filtered drive by plain causal convolution (float64 NumPy), for tests and plots."""
    arrivals = np.asarray(arrivals, np.float64)
    ker = alpha_kernel(net, inp)
    out = np.zeros_like(arrivals)
    for c in range(arrivals.shape[1]):
        out[:, c] = np.convolve(arrivals[:, c], ker)[:arrivals.shape[0]]
    return out * cell_amplitudes(net, inp)[None]
