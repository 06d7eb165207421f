"""One seed -> one network (spec §1-2): initial weights, plastic mask, frozen input, and the keys
of everything drawn later (fresh input and turnover per activation, decoder time points).

Common random numbers: a network slot's seed fixes all of these, so every candidate rule is
scored on identical networks, inputs and noise.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .config import ModelConfig, NetworkConfig
from .inputs import frozen_arrivals


@struct.dataclass
class Network:
    """Leaves of one network; stack them (leading axis) to vmap over networks."""
    w0: jnp.ndarray            # (N, N) initial weights W[post, pre]
    plastic: jnp.ndarray       # (N, N) bool, initial W != 0
    arrivals: jnp.ndarray      # (n_steps, N) frozen arrivals (kick + frozen Poisson)
    fit_steps: jnp.ndarray     # (n_fit,) decoder training time points
    test_steps: jnp.ndarray    # (n_test,) decoder test time points
    key: jnp.ndarray           # key for per-activation draws (fresh input, turnover)
    p_turnover_ee: jnp.ndarray  # () probability per synapse and activation
    p_turnover_ie: jnp.ndarray  # ()


def initial_weights(net: NetworkConfig, key) -> jnp.ndarray:
    """Initial W (float32): dense E->E off-diagonal, E->I and I->E with prob p, no I->I."""
    n_e, n_i = net.n_e, net.n_i
    k_ee, k_eim, k_ei, k_iem, k_ie = jax.random.split(key, 5)
    f32 = jnp.float32
    w_ee = net.w_ee_max * (net.w_ee_low + (1 - net.w_ee_low) * jax.random.uniform(k_ee, (n_e, n_e), f32))
    w_ee = w_ee * (1 - jnp.eye(n_e, dtype=f32))
    w_ei = net.w_ei_mean + net.w_ei_std * jax.random.normal(k_ei, (n_i, n_e), f32)
    w_ei = jnp.where(jax.random.uniform(k_eim, (n_i, n_e), f32) < net.p_ei, jnp.maximum(w_ei, 0), 0)
    w_ie = net.w_ie_mean + net.w_ie_std * jax.random.normal(k_ie, (n_e, n_i), f32)
    w_ie = jnp.where(jax.random.uniform(k_iem, (n_e, n_i), f32) < net.p_ie, jnp.minimum(w_ie, 0), 0)
    top = jnp.concatenate([w_ee, w_ie], axis=1)
    bottom = jnp.concatenate([w_ei, jnp.zeros((n_i, n_i), f32)], axis=1)
    return jnp.concatenate([top, bottom], axis=0)


def make_network(cfg: ModelConfig, seed, p_turnover_ee=0.0, p_turnover_ie=0.0) -> Network:
    """Build one network from an integer seed (or a JAX key). Random draws are float32 and then
    cast, so a float64 network is the exact upcast of the float32 one."""
    key = jax.random.PRNGKey(seed) if np.ndim(seed) == 0 else seed
    k_w, k_in, k_dec, k_run = jax.random.split(key, 4)
    dtype = cfg.dtype
    w0 = initial_weights(cfg.network, k_w)
    k_fit, k_test = jax.random.split(k_dec)
    lo, hi = cfg.loss.window_start, cfg.loss.window_stop
    return Network(
        w0=w0.astype(dtype),
        plastic=w0 != 0,
        arrivals=frozen_arrivals(cfg.network, cfg.inputs, k_in, dtype),
        fit_steps=jax.random.randint(k_fit, (cfg.loss.n_fit,), lo, hi, dtype=jnp.int32),
        test_steps=jax.random.randint(k_test, (cfg.loss.n_test,), lo, hi, dtype=jnp.int32),
        key=k_run,
        p_turnover_ee=jnp.asarray(p_turnover_ee, dtype),
        p_turnover_ie=jnp.asarray(p_turnover_ie, dtype),
    )


def make_networks(cfg: ModelConfig, seeds, p_turnover_ee=0.0, p_turnover_ie=0.0) -> Network:
    """A batch of networks (leading axis) from a sequence of seeds; p_turnover may be per network."""
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty 1-d sequence of integers, got shape {seeds.shape}")
    p_ee = np.broadcast_to(np.asarray(p_turnover_ee, np.float64), seeds.shape)
    p_ie = np.broadcast_to(np.asarray(p_turnover_ie, np.float64), seeds.shape)
    for name, p in (("p_turnover_ee", p_ee), ("p_turnover_ie", p_ie)):
        if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"{name} must be in [0, 1], got {p.min() if np.any(p < 0) else p.max()}")
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
    return jax.vmap(lambda k, a, b: make_network(cfg, k, a, b))(keys, jnp.asarray(p_ee), jnp.asarray(p_ie))
