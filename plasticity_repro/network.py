"""One seed -> one network (spec §1-2): initial weights, plastic mask, frozen input, and the keys
of everything drawn later (fresh input and turnover per activation, decoder time points).

Common random numbers: a network slot's seed fixes all of these, so every candidate rule is
scored on identical networks, inputs and noise.
"""
from __future__ import annotations

import functools

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


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _draws(key, n_e: int, n_i: int, n_poisson_steps: int, n_fit: int, n_test: int, lo, hi) -> dict:
    """Every random number one network is built from, drawn from its key in one compiled program
    (sizes static, so one compile per network size, kept in the persistent compilation cache;
    op by op these draws compiled ~10 s of small programs in every fresh process)."""
    k_w, k_in, k_dec, k_run = jax.random.split(key, 4)
    k_ee, k_eim, k_ei, k_iem, k_ie = jax.random.split(k_w, 5)
    k_fit, k_test = jax.random.split(k_dec)
    f32 = jnp.float32
    return dict(
        u_ee=jax.random.uniform(k_ee, (n_e, n_e), f32),
        z_ei=jax.random.normal(k_ei, (n_i, n_e), f32),
        u_ei=jax.random.uniform(k_eim, (n_i, n_e), f32),
        z_ie=jax.random.normal(k_ie, (n_e, n_i), f32),
        u_ie=jax.random.uniform(k_iem, (n_e, n_i), f32),
        u_in=jax.random.uniform(k_in, (n_poisson_steps, n_e + n_i), f32),
        fit_steps=jax.random.randint(k_fit, (n_fit,), lo, hi, dtype=jnp.int32),
        test_steps=jax.random.randint(k_test, (n_test,), lo, hi, dtype=jnp.int32),
        key=k_run,
    )


def initial_weights(net: NetworkConfig, d: dict) -> np.ndarray:
    """Initial W (float32) from a network's draws d (_draws): dense E->E off-diagonal, E->I and
    I->E with prob p, no I->I. NumPy float32, one rounding per operation: the same bits as the
    op-by-op JAX construction the shipped datasets were made with (a compiled program may fuse
    a multiply and an add into one rounding)."""
    n_e, n_i = net.n_e, net.n_i
    w_ee = net.w_ee_max * (net.w_ee_low + (1 - net.w_ee_low) * d["u_ee"])
    w_ee = w_ee * (1 - np.eye(n_e, dtype=np.float32))
    w_ei = net.w_ei_mean + net.w_ei_std * d["z_ei"]
    w_ei = np.where(d["u_ei"] < net.p_ei, np.maximum(w_ei, 0), 0).astype(np.float32)
    w_ie = net.w_ie_mean + net.w_ie_std * d["z_ie"]
    w_ie = np.where(d["u_ie"] < net.p_ie, np.minimum(w_ie, 0), 0).astype(np.float32)
    top = np.concatenate([w_ee, w_ie], axis=1)
    bottom = np.concatenate([w_ei, np.zeros((n_i, n_i), np.float32)], axis=1)
    return np.concatenate([top, bottom], axis=0)


def _host_network(cfg: ModelConfig, key) -> dict:
    """One network's leaves as NumPy arrays (w0 and arrivals in cfg.dtype)."""
    net, inp, loss = cfg.network, cfg.inputs, cfg.loss
    d = jax.device_get(_draws(key, net.n_e, net.n_i, inp.stop_step - inp.start_step, loss.n_fit,
                              loss.n_test, loss.window_start, loss.window_stop))
    w0 = initial_weights(net, d)
    return dict(w0=w0.astype(cfg.dtype), plastic=w0 != 0,
                arrivals=frozen_arrivals(net, inp, d["u_in"], cfg.dtype),
                fit_steps=d["fit_steps"], test_steps=d["test_steps"], key=d["key"])


def _seed_key(seed) -> np.ndarray:
    """jax.random.PRNGKey(seed) for a seed in [0, 2^32) (threefry: [high, low] 32-bit words)."""
    return np.array([0, seed], np.uint32)


def make_network(cfg: ModelConfig, seed, p_turnover_ee=0.0, p_turnover_ie=0.0) -> Network:
    """Build one network from an integer seed (or a JAX key). Random draws are float32 and then
    cast, so a float64 network is the exact upcast of the float32 one."""
    key = jax.random.PRNGKey(seed) if np.ndim(seed) == 0 else seed
    leaves = _host_network(cfg, key)
    return Network(**{k: jnp.asarray(v) for k, v in leaves.items()},
                   p_turnover_ee=jnp.asarray(p_turnover_ee, cfg.dtype),
                   p_turnover_ie=jnp.asarray(p_turnover_ie, cfg.dtype))


def make_networks(cfg: ModelConfig, seeds, p_turnover_ee=0.0, p_turnover_ie=0.0) -> Network:
    """A batch of networks (leading axis) from a sequence of seeds; p_turnover may be per network."""
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty 1-d sequence of integers, got shape {seeds.shape}")
    if not np.issubdtype(seeds.dtype, np.integer) or seeds.min() < 0 or seeds.max() >= 2 ** 32:
        raise ValueError(f"seeds must be integers in [0, 2**32), got {seeds.min()} .. {seeds.max()}")
    p_ee = np.broadcast_to(np.asarray(p_turnover_ee, np.float64), seeds.shape)
    p_ie = np.broadcast_to(np.asarray(p_turnover_ie, np.float64), seeds.shape)
    for name, p in (("p_turnover_ee", p_ee), ("p_turnover_ie", p_ie)):
        if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"{name} must be in [0, 1], got {p.min() if np.any(p < 0) else p.max()}")
    nets = [_host_network(cfg, _seed_key(s)) for s in seeds]
    return Network(**{k: jnp.asarray(np.stack([n[k] for n in nets])) for k in nets[0]},
                   p_turnover_ee=jnp.asarray(p_ee, cfg.dtype), p_turnover_ie=jnp.asarray(p_ie, cfg.dtype))
