"""Input of one activation (spec §2): a kick on E0, frozen and fresh Poisson arrivals on every
other cell, all filtered by a truncated alpha kernel.

Arrivals are Poisson counts with mean rate * dt per step and cell, as in the reference. The frozen
part is drawn by inverse CDF from one uniform per step and cell (counts above 4 are cut; at 60 Hz
and dt = 0.1 ms that happens with probability < 1e-13 per draw); the fresh part, drawn for every
activation, as each cell's count and the steps of its arrivals (`fresh_events`: the same law from
~13 draws per cell instead of 640).
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


TAIL = 1e-12   # largest probability that a cell's fresh arrivals in one activation exceed their capacity


def fresh_mean(net: NetworkConfig, inp: InputConfig) -> float:
    """Expected fresh arrivals of one Poisson cell in one activation (1.28 at 20 Hz over 64 ms)."""
    return inp.rate_hz * (1.0 - inp.frozen_fraction) * net.dt * (inp.stop_step - inp.start_step)


def fresh_capacity(net: NetworkConfig, inp: InputConfig, max_gain: float = 1.0) -> int:
    """Fresh arrivals kept per cell and activation: the smallest K with P(Poisson(mean) > K) < TAIL
    at the largest rate gain (15 at the default 20 Hz over 64 ms; 45 with one cell's input x10)."""
    mu = fresh_mean(net, inp) * max_gain
    k = np.arange(int(mu + 40 * np.sqrt(mu + 1) + 40))
    cdf = np.cumsum(np.exp(k * np.log(max(mu, 1e-300)) - mu - np.cumsum(np.log(np.maximum(k, 1)))))
    return max(1, int(np.argmax(cdf > 1.0 - TAIL)))


def _count_thresholds(mu: float, k_max: int) -> np.ndarray:
    """P(N <= k), k = 0 .. k_max - 1, of N ~ Poisson(mu), computed in float64 (float32 thresholds)."""
    k = np.arange(k_max)
    logpmf = k * np.log(max(mu, 1e-300)) - mu - np.cumsum(np.log(np.maximum(k, 1)))
    return np.cumsum(np.exp(logpmf)).astype(np.float32)


def fresh_events(net: NetworkConfig, inp: InputConfig, key, gain_cell: int = -1, gain: float = 1.0,
                 boosted=False) -> jnp.ndarray:
    """Steps of the fresh (non-frozen) Poisson arrivals of one activation: (N, K) int32, -1 for none.

    A Poisson process of rate lambda per step over S = stop_step - start_step steps is drawn as
    its count N ~ Poisson(lambda S) (inverse CDF of one uniform per cell) and N steps uniform in
    [start_step, stop_step): the same law as one Poisson(lambda) count per step and cell, from
    N + K draws per cell instead of S (K = fresh_capacity; counts above K, probability < TAIL, are
    cut). `gain_cell` >= 0 with `boosted` (a traced bool) multiplies that cell's rate by `gain`
    (Fig 6's input perturbation)."""
    n = net.n_e + net.n_i
    k_cap = fresh_capacity(net, inp, max(1.0, gain) if gain_cell >= 0 else 1.0)
    mu = fresh_mean(net, inp)
    thr = np.repeat(_count_thresholds(mu, k_cap)[None], n, axis=0)
    k_n, k_t = jax.random.split(key)
    if gain_cell >= 0:
        thr_b = thr.copy()
        thr_b[gain_cell] = _count_thresholds(mu * gain, k_cap)
        thr = jnp.where(boosted, jnp.asarray(thr_b), jnp.asarray(thr))
    u = jax.random.uniform(k_n, (n, 1), jnp.float32)
    count = jnp.sum(u >= thr, axis=1) * jnp.asarray(_poisson_cells(net))
    # the k-th arrival's step from its own key: the first arrivals do not depend on the capacity
    steps = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k_t, k), (n,), inp.start_step,
                                                  inp.stop_step, dtype=jnp.int32), out_axes=1)(jnp.arange(k_cap))
    return jnp.where(jnp.arange(k_cap)[None] < count[:, None], steps, -1)


def events_to_arrivals(events, n_steps: int, dtype=jnp.float32) -> jnp.ndarray:
    """(n_steps, N) arrival counts from fresh_events' (N, K) steps (-1: none)."""
    n, k = events.shape
    steps = jnp.where(events >= 0, events, n_steps)   # out of range: dropped
    cells = jnp.broadcast_to(jnp.arange(n)[:, None], (n, k))
    return jnp.zeros((n_steps, n), dtype).at[steps, cells].add(1.0, mode="drop")


def fresh_arrivals(net: NetworkConfig, inp: InputConfig, key, dtype=jnp.float32, gain_cell: int = -1,
                   gain: float = 1.0, boosted=False) -> jnp.ndarray:
    """Arrivals drawn anew for each activation (the non-frozen share of the Poisson rate), (n_steps, N)."""
    return events_to_arrivals(fresh_events(net, inp, key, gain_cell, gain, boosted), net.n_steps, dtype)


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
