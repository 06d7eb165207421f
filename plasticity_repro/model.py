"""The model as the specification states it (spec §1-4), for reading and for checking the engines.

One activation of one network is a `lax.scan` over the Euler steps; a run is a scan over the
activations, with the synaptic turnover and the fresh input of each drawn before it. The rule is
the `rules.TERMS` table written out: term k is (w if it is a w-term) x its post factor of the
postsynaptic cell x its pre factor of the presynaptic cell, each factor one of 1, the rate, its
trace, or trace x rate, with the term's own time constant. Everything runs in the config's dtype
(float64 end to end with `float64=True`, the rule included).

Nothing here is arranged for speed (no batching, no low-rank forms, no chunks or devices): the
engines (plasticity_repro.simulate for XLA, plasticity_repro.engine.fused for the CPU) compute the
same numbers fast and are tested against this module and against the NumPy reference.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import inputs
from .config import SYNAPSE_TYPES, ModelConfig
from .network import Network
from .rules import N_TERMS, TERMS, Rule
from .turnover import apply_flips, draw_flips


def blocks(n_e: int, n: int) -> dict:
    """(post cells, pre cells) of each synapse type in W[post, pre]."""
    e, i = slice(0, n_e), slice(n_e, n)
    return {"ee": (e, e), "ei": (i, e), "ie": (e, i)}


def factor(name: str, rate, trace):
    """A term's post or pre factor of a cell: "1", the rate ("x" / "y"), its trace ("x~" / "y~")
    or trace x rate ("x~ x" / "y~ y"); rates and traces already normalised."""
    if name == "1":
        return jnp.ones_like(rate)
    if "~" not in name:
        return rate
    return trace * rate if " " in name else trace


def terms(c, y, x, post_trace, pre_trace, w):
    """The 20 update matrices c_k F_k of one block (20, n_post, n_pre).

    y (n_post,), x (n_pre,): normalised rates; post_trace (12, n_post), pre_trace (12, n_pre):
    normalised traces of every slot (a term reads its own slot); w (n_post, n_pre)."""
    out = []
    for k, term in enumerate(TERMS):
        slot = max(term.tau_slot, 0)
        p = factor(term.post, y, post_trace[slot])
        q = factor(term.pre, x, pre_trace[slot])
        f = p[:, None] * q[None, :]
        out.append(c[k] * (w * f if term.times_w else f))
    return jnp.stack(out)


def activation(cfg: ModelConfig, rule: Rule, w, plastic, arrivals):
    """One activation from rest of one network.

    w (N, N) weights at its start, plastic (N, N) bool, arrivals (n_steps, N) (kick + Poisson).
    Returns rates (n_steps, N), W at the end (N, N) and the effects (3, 20): per type and term,
    sum over steps and gated synapses of |c_k F_k|.
    """
    net, pl, dtype = cfg.network, cfg.plasticity, cfg.dtype
    n_e, n = net.n_e, net.n
    tau = jnp.asarray(np.r_[np.full(n_e, net.tau_e), np.full(net.n_i, net.tau_i)], dtype)
    consts = inputs.recursion_constants(net, cfg.inputs)
    amp = jnp.asarray(inputs.cell_amplitudes(net, cfg.inputs) * consts[3], dtype)
    coefs = (rule.coefs * rule.term_mask).astype(dtype)
    taus = rule.effective_taus(pl.tau_convention).astype(dtype)
    w = w.astype(dtype)
    gate = plastic & (jnp.abs(w) > pl.gate)           # Heaviside gate, fixed for the activation
    sign0 = jnp.where(w >= 0, 1.0, -1.0).astype(dtype)  # Dale: signs at the start
    arrivals = arrivals.astype(dtype)
    old = inputs.delayed(arrivals, cfg.inputs)         # what leaves the truncated kernel
    types = [t for t in SYNAPSE_TYPES if t in pl.synapses]
    where = blocks(n_e, n)

    def step(state, i):
        s, r, A, B, w, traces, eff = state
        # input: the alpha-kernel recursion; v = inp + W r uses W and the rates before this step
        A, B = inputs.drive_step(A, B, arrivals[i], old[i], consts)
        v = amp * B + w @ r
        s_new = s + (v - s) * net.dt / tau
        r_new = jnp.maximum(s - net.v_th, 0.0)           # the reference's one-step lag
        # traces move with the old rates; the basis uses the new rates and the new traces
        traces = traces * (1 - net.dt / taus[:, :, None]) + r[None, None, :] * (net.dt / taus[:, :, None])
        rn, trn = r_new / pl.rate_norm, traces / pl.trace_norm
        w_new, eff = w, list(eff)
        for t in types:
            k = SYNAPSE_TYPES.index(t)
            post, pre = where[t]
            cf = terms(coefs[k], rn[post], rn[pre], trn[k][:, post], trn[k][:, pre], w[post, pre])
            g = gate[post, pre]
            eff[k] = eff[k] + jnp.sum(jnp.where(g, jnp.abs(cf), 0.0), axis=(1, 2))
            wb = w[post, pre] + pl.lr * jnp.where(g, jnp.sum(cf, axis=0), 0.0)
            if pl.heterosynaptic and t == "ee":
                wb = heterosynaptic(wb, g, rule.hetero.astype(dtype))
            wb = jnp.where(sign0[post, pre] * wb < 0, sign0[post, pre] * pl.dale_eps, wb)
            w_new = w_new.at[post, pre].set(wb)
        return (s_new, r_new, A, B, w_new, traces, tuple(eff)), r_new

    zeros = jnp.zeros(n, dtype)
    state = (zeros, zeros, zeros, zeros, w, jnp.zeros((3, 12, n), dtype),
             tuple(jnp.zeros(N_TERMS, dtype) for _ in SYNAPSE_TYPES))
    (_, _, _, _, w_end, _, eff), rates = jax.lax.scan(step, state, jnp.arange(net.n_steps - 1))
    return jnp.concatenate([zeros[None], rates]), w_end, jnp.stack(eff)


def heterosynaptic(w, gate, hetero):
    """The hand-made rule's bound (spec §8) on an E->E block after a step's update, in the
    reference's order: every gated synapse is depressed by rate x (its pre cell's summed outgoing
    weight above the limit); then, on the weights so depressed, by rate x (its post cell's summed
    incoming weight above the limit); then capped. rate is per Euler step (the reference's 0.01),
    not scaled by the learning rate."""
    sum_max, rate, cap = hetero
    w = jnp.where(gate, w - rate * jnp.maximum(jnp.sum(w, axis=0) - sum_max, 0.0)[None, :], w)
    w = jnp.where(gate, w - rate * jnp.maximum(jnp.sum(w, axis=1) - sum_max, 0.0)[:, None], w)
    return jnp.where(gate, jnp.minimum(w, cap), w)


def draws(cfg: ModelConfig, network: Network, a):
    """Everything random about activation `a` of a network: its fresh arrivals as event steps
    (N, K) and the turnover flips of the E->E and I->E blocks applied just before it."""
    net, tc = cfg.network, cfg.turnover
    k_in, k_ee, k_ie = jax.random.split(jax.random.fold_in(network.key, a), 3)
    on = (a >= tc.first_activation) & (a < tc.stop_activation)
    flips_ee = draw_flips(k_ee, (net.n_e, net.n_e), network.p_turnover_ee, tc.diagonal) & on
    flips_ie = draw_flips(k_ie, (net.n_e, net.n_i), network.p_turnover_ie, True) & on
    return fresh_events(cfg, k_in, a), flips_ee, flips_ie


def activation_draws(cfg: ModelConfig, network: Network, a):
    """`draws` with the arrivals made dense: (all arrivals (n_steps, N), flips_ee, flips_ie)."""
    events, flips_ee, flips_ie = draws(cfg, network, a)
    arr = network.arrivals + inputs.events_to_arrivals(events, cfg.network.n_steps, cfg.dtype)
    return arr, flips_ee, flips_ie


def fresh_events(cfg: ModelConfig, key, a):
    """The fresh Poisson arrivals of activation `a` as event steps (inputs.fresh_events), with
    Fig 6's input boost of one cell from the perturbed activation on."""
    pt = cfg.perturbation
    if pt.activation >= 0 and pt.input_gain != 1.0:
        return inputs.fresh_events(cfg.network, cfg.inputs, key, pt.cell, pt.input_gain, a >= pt.activation)
    return inputs.fresh_events(cfg.network, cfg.inputs, key)


def run(cfg: ModelConfig, rule: Rule, network: Network):
    """All activations of one network: before activation a, the turnover flips of the E->E and
    I->E blocks (existing -> removed, removed -> reborn) and the fresh input, then the activation.
    Returns (rates (n_activations, n_steps, N), W at the end of each activation, summed effects)."""
    tc, n_e = cfg.turnover, cfg.network.n_e

    def one(state, a):
        w, ex_ee, ex_ie, eff = state
        events, flips_ee, flips_ie = draws(cfg, network, a)
        w_ee, ex_ee = apply_flips(w[:n_e, :n_e], ex_ee, flips_ee, tc.reborn_ee)
        w_ie, ex_ie = apply_flips(w[:n_e, n_e:], ex_ie, flips_ie, tc.reborn_ie)
        w = w.at[:n_e, :n_e].set(w_ee).at[:n_e, n_e:].set(w_ie)
        arr = network.arrivals + inputs.events_to_arrivals(events, cfg.network.n_steps, cfg.dtype)
        rates, w, e = activation(cfg, rule, w, network.plastic, arr)
        return (w, ex_ee, ex_ie, eff + e), (rates, w)

    n_i = cfg.network.n_i
    state = (network.w0.astype(cfg.dtype), jnp.ones((n_e, n_e), bool), jnp.ones((n_e, n_i), bool),
             jnp.zeros((3, N_TERMS), cfg.dtype))
    (_, _, _, eff), (rates, weights) = jax.lax.scan(one, state, jnp.arange(cfg.n_activations))
    return rates, weights, eff
