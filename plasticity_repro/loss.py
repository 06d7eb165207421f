"""Loss of a network run and of a candidate rule (spec §5), with blow-ups turned into a penalty
value (never an exception, never a NaN handed to the search); `simulate_and_score`, the one place
where networks are run and scored (the evaluations and the search's score_batch call it)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .config import ModelConfig
from .decoder import decoder_r2
from .engine import jit, run_batch
from .rules import Rule
from .simulate import RunResult, grid_batch


@struct.dataclass
class NetworkLoss:
    loss: jnp.ndarray          # 1000 (1 - R^2) + 100 mean_rate + 5e-7 sum effects
    decoder_r2: jnp.ndarray
    mean_rate: jnp.ndarray     # over all cells and time points of the decoder activations
    effects: jnp.ndarray       # (3, 20)
    blew_up: jnp.ndarray


def network_loss(cfg: ModelConfig, result: RunResult) -> NetworkLoss:
    """Per-network loss of one run (vmap it over networks)."""
    lc = cfg.loss
    r2 = decoder_r2(result.fit_rates, result.fit_steps, result.test_rates, result.test_steps)
    acts = np.asarray(lc.recorded_activations)
    mean_rate = jnp.mean(result.mean_rate[acts])
    eff = jnp.sum(result.effects)
    loss = lc.w_decoder * (1.0 - r2) + lc.w_rate * mean_rate + lc.w_effect * eff
    bad = result.blew_up | ~jnp.isfinite(loss)
    return NetworkLoss(loss=jnp.where(bad, jnp.nan, loss), decoder_r2=r2, mean_rate=mean_rate,
                       effects=result.effects, blew_up=bad)


def candidate_loss(cfg: ModelConfig, rule: Rule, per_network: NetworkLoss):
    """Sum over the candidate's networks; any blow-up gives blowup_loss * n + blowup_coef * sum|c|
    (c of the plastic types, after the term mask)."""
    lc = cfg.loss
    n = per_network.loss.shape[-1]
    c = (rule.coefs * rule.term_mask)[np.asarray(cfg.plasticity.type_index)]
    penalty = lc.blowup_loss * n + lc.blowup_coef * jnp.sum(jnp.abs(c))
    bad = jnp.any(per_network.blew_up, axis=-1)
    return jnp.where(bad, penalty.astype(per_network.loss.dtype), jnp.sum(per_network.loss, axis=-1))


def simulate_and_score(cfg: ModelConfig, rules: Rule, networks, shape: tuple | None = None) -> tuple:
    """Run a flat batch of networks (leading axis B) under one rule, or one rule per network
    (rule leaves with the same leading axis), and score each: (RunResult, NetworkLoss), with the
    leading axis reshaped to `shape` (a tuple whose product is B) when given. Jit it, or call it
    inside a jitted function."""
    res = run_batch(cfg, rules, networks)
    nl = jax.vmap(lambda r: network_loss(cfg, r))(res)
    if shape is not None:
        res, nl = jax.tree.map(lambda a: a.reshape(tuple(shape) + a.shape[1:]), (res, nl))
    return res, nl


@partial(jit, static_argnums=0)
def evaluate_rules(cfg: ModelConfig, rules: Rule, networks):
    """Losses of a batch of rules on one batch of networks: (candidate_loss (R,), NetworkLoss (R, N)).
    All R x N runs go through the simulation as one flattened batch."""
    shape = (rules.coefs.shape[0], networks.w0.shape[0])
    _, nl = simulate_and_score(cfg, *grid_batch(rules, networks), shape=shape)
    return jax.vmap(lambda rule, n: candidate_loss(cfg, rule, n))(rules, nl), nl
