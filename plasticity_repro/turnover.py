"""Synaptic turnover (spec §4): before an activation each synapse of a block flips existence
with probability p_turnover; a removed synapse is set to 0, a reborn one to a fixed weight."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def draw_flips(key, shape, p_turnover, diagonal: bool):
    """Bernoulli(p_turnover) flips of a square-or-not block; the diagonal is spared if not `diagonal`."""
    flips = jax.random.uniform(key, shape, jnp.float32) < p_turnover
    if not diagonal and shape[0] == shape[1]:
        flips = flips & ~jnp.eye(shape[0], dtype=bool)
    return flips


def apply_flips(w, exists, flips, reborn):
    """Existing + flip -> removed (w = 0); removed + flip -> reborn at `reborn`."""
    exists_new = exists ^ flips
    w = jnp.where(flips & exists, jnp.zeros_like(w), w)
    w = jnp.where(flips & ~exists, jnp.asarray(reborn, w.dtype), w)
    return w, exists_new
