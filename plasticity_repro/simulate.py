"""The simulation: one activation is a `lax.scan` over Euler steps, a run is a scan over
activations, and `vmap` maps it over networks and candidate rules. Pure functions of
(config, rule, network); nothing is stored but what the loss and the figures need.

Exact stepping of the reference (spec §1): time has n_steps points, rows 0 of s and r are zero,
and update i -> i+1 uses input row i and rates row i; r[i+1] = [s[i] - v_th]+ (one-step lag).
Within a step the traces move with rates row i, then the basis uses rates row i+1 and the new
traces, then W is updated (gated, 0.0005 factor) and clamped to its start-of-activation sign.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from . import inputs as inputs_mod
from .config import SYNAPSE_TYPES, ModelConfig
from .network import Network
from .engine.xla_rule import block_effects, block_factors, block_matvec, update_from_vectors, update_vectors
from .engine.xla_rule import gate_sums as block_gate_sums
from .engine import fused as fused_engine
from .rules import N_TERMS, POST_TRACE_SLOTS, PRE_TRACE_SLOTS, Rule
from .parallel import batch_devices, chunk_plan, jit, map_networks, pad_networks
from .model import activation_draws, draws, fresh_events  # noqa: F401  (the run's random draws)
from .turnover import apply_flips


def _blocks(n_e: int, n: int) -> dict:
    """(post slice, pre slice) of each synapse type in W[post, pre]."""
    e, i = slice(0, n_e), slice(n_e, n)
    return {"ee": (e, e), "ei": (i, e), "ie": (e, i)}


def split_blocks(w, n_e):
    n = w.shape[-1]
    return {t: w[..., p, q] for t, (p, q) in _blocks(n_e, n).items()}


def join_blocks(blocks, n_i):
    """Full W from its three blocks (I->I is zero)."""
    w_ee, w_ei, w_ie = blocks["ee"], blocks["ei"], blocks["ie"]
    top = jnp.concatenate([w_ee, w_ie], axis=-1)
    bottom = jnp.concatenate([w_ei, jnp.zeros(w_ei.shape[:-1] + (n_i,), w_ee.dtype)], axis=-1)
    return jnp.concatenate([top, bottom], axis=-2)


@struct.dataclass
class Activation:
    """Result of one activation."""
    rates: jnp.ndarray      # (n_steps, N)
    w: dict                 # blocks at the end
    effects: jnp.ndarray    # (3, 20) sum over steps and gated synapses of |c_k F_k|


def _activation_batch(cfg: ModelConfig, rule: Rule, w: dict, plastic: dict, arrivals):
    """One activation of B networks at once, the network axis last everywhere.

    w, plastic: blocks (n_post, n_pre, B); arrivals (n_steps, N, B). With the networks on the
    last (contiguous) axis every per-step operation is an elementwise loop or a reduction over a
    short leading axis, vectorised across networks. Returns (rates (n_steps, N, B), w blocks,
    effects (3, 20, B)).
    """
    net, inp, pl = cfg.network, cfg.inputs, cfg.plasticity
    dtype = cfg.dtype
    n_e, n = net.n_e, net.n
    dt = net.dt
    tau_cell = np.r_[np.full(n_e, net.tau_e), np.full(net.n_i, net.tau_i)]
    bshape = arrivals.shape[2:]   # () for one network, (B,) for networks on the last axis
    step_cell = jnp.asarray(dt / tau_cell, dtype).reshape((n,) + (1,) * len(bshape))
    consts = inputs_mod.recursion_constants(net, inp)
    amp = jnp.asarray(inputs_mod.cell_amplitudes(net, inp) * consts[3], dtype).reshape(step_cell.shape)
    coefs = (rule.coefs * rule.term_mask).astype(dtype)
    # a per-network rule (leaves (3, k, B), built by run_batch) already holds its effective taus
    per_net = rule.coefs.ndim == 3
    taus = (rule.taus if per_net else rule.effective_taus(pl.tau_convention)).astype(dtype)
    blocks = _blocks(n_e, n)
    types = [SYNAPSE_TYPES[t] for t in pl.type_index]
    post_slots, pre_slots = np.asarray(POST_TRACE_SLOTS), np.asarray(PRE_TRACE_SLOTS)

    # gate and Dale signs from W at the start of the activation
    gate = {t: (plastic[t] & (jnp.abs(w[t]) > pl.gate)).astype(dtype) for t in types}
    lr_gate = {t: pl.lr * gate[t] for t in types}
    sign0 = {t: jnp.where(w[t] >= 0, 1.0, -1.0).astype(dtype) for t in types}
    sums = {t: block_gate_sums(gate[t]) for t in types}
    decay = {t: (dt / taus[SYNAPSE_TYPES.index(t)]).astype(dtype) for t in types}
    def _slots(d, slots):  # (6, 1, B) per network, (6, 1, 1...) for one rule
        d = d[slots]
        return d[:, None] if per_net else d.reshape((-1, 1) + (1,) * len(bshape))
    d_post = {t: _slots(decay[t], post_slots) for t in types}
    d_pre = {t: _slots(decay[t], pre_slots) for t in types}
    # coefficients against (20, n, B) factors
    c_b = {t: coefs[SYNAPSE_TYPES.index(t)] for t in types}

    def matvec(m, v):
        """(n_post, n_pre, ...) @ (n_pre, ...) -> (n_post, ...), unrolled over n_pre (xla_rule.block_matvec)."""
        return block_matvec(m, v[None])[0]

    def factors(t, s, r, post_tr, pre_tr):
        """Block t's traces and rule factors at the step that starts from (s, r, traces): the traces
        move with rates row i, the factors use rates row i+1 = [s - v_th]+ and the new traces."""
        p, q = blocks[t]
        r_new = jnp.maximum(s - net.v_th, 0.0)
        post_new = post_tr[t] * (1 - d_post[t]) + r[p][None] * d_post[t]
        pre_new = pre_tr[t] * (1 - d_pre[t]) + r[q][None] * d_pre[t]
        P, Q = block_factors(r_new[p], r_new[q], post_new, pre_new, pl.rate_norm, pl.trace_norm)
        return post_new, pre_new, P, Q

    def vectors(s, r, post_tr, pre_tr):
        """The per-cell vectors of each block's update at the step that starts from this state.
        Computed one step ahead and carried: a loop-carried array is materialised, so the W-sized
        update kernel reads them instead of recomputing them per synapse (xla_rule.update_vectors)."""
        return {t: update_vectors(c_b[t], *factors(t, s, r, post_tr, pre_tr)[2:]) for t in types}

    # The named scopes label the step's parts in XLA's op metadata, for `make bench`'s step profile.
    def step(carry, i):
        s, r, A, B, wb, post_tr, pre_tr, eff, vec = carry
        # this step's arrivals and those leaving the truncated kernel (inputs.delayed), read in
        # place: slicing them out as scan inputs wrote two (n_steps, N, B) copies per activation
        a_now = jax.lax.dynamic_index_in_dim(arrivals, i, keepdims=False)
        a_old = jnp.where(i >= n_kernel, jax.lax.dynamic_index_in_dim(
            arrivals, jnp.maximum(i - n_kernel, 0), keepdims=False), 0.0)
        with jax.named_scope("drive"):
            A, B = inputs_mod.drive_step(A, B, a_now, a_old, consts)
            r_e, r_i = r[:n_e], r[n_e:]
            v_e = amp[:n_e] * B[:n_e] + matvec(wb["ee"], r_e) + matvec(wb["ie"], r_i)
            v_i = amp[n_e:] * B[n_e:] + matvec(wb["ei"], r_e)
            v = jnp.concatenate([v_e, v_i])
            s_new = s + (v - s) * step_cell
            r_new = jnp.maximum(s - net.v_th, 0.0)
        wb_new, post_new, pre_new, eff_new = dict(wb), {}, {}, dict(eff)
        for t in types:
            with jax.named_scope("traces"):
                post_new[t], pre_new[t], P, Q = factors(t, s, r, post_tr, pre_tr)
            with jax.named_scope("rule_update"):
                w_t = wb[t] + lr_gate[t] * update_from_vectors(vec[t], wb[t])
                if pl.heterosynaptic and t == "ee":
                    w_t = _heterosynaptic(w_t, gate[t], rule.hetero.astype(dtype))
                wb_new[t] = jnp.where(sign0[t] * w_t < 0, sign0[t] * pl.dale_eps, w_t)
            if pl.track_effects:
                with jax.named_scope("effects"):
                    eff_new[t] = eff[t] + block_effects(c_b[t], P, Q, gate[t], wb[t], sums[t])
        with jax.named_scope("traces"):
            vec_new = vectors(s_new, r_new, post_new, pre_new)
        return (s_new, r_new, A, B, wb_new, post_new, pre_new, eff_new, vec_new), r_new

    zeros_n = jnp.zeros((n,) + bshape, dtype)
    post0 = {t: jnp.zeros((len(post_slots), w[t].shape[0]) + bshape, dtype) for t in types}
    pre0 = {t: jnp.zeros((len(pre_slots), w[t].shape[1]) + bshape, dtype) for t in types}
    eff0 = {t: jnp.zeros((N_TERMS,) + bshape, dtype) for t in types}
    carry0 = (zeros_n, zeros_n, zeros_n, zeros_n, dict(w), post0, pre0, eff0,
              vectors(zeros_n, zeros_n, post0, pre0))
    arrivals = arrivals.astype(dtype)
    n_kernel = inp.kernel_steps
    xs = jnp.arange(arrivals.shape[0] - 1)
    (_, _, _, _, w_end, _, _, eff, _), rates = jax.lax.scan(step, carry0, xs)
    rates = jnp.concatenate([jnp.zeros((1, n) + bshape, dtype), rates])
    effects = jnp.stack([eff[t] if t in eff else jnp.zeros((N_TERMS,) + bshape, dtype) for t in SYNAPSE_TYPES])
    return rates, w_end, effects


def _heterosynaptic(w, gate, hetero):
    """`model.heterosynaptic` on a batch: w (n_post, n_pre, ...), gate 0/1 of the same shape,
    hetero (3, ...) = (summed-weight limit, rate per step, cap)."""
    sum_max, rate, cap = hetero[0], hetero[1], hetero[2]
    w = w - gate * rate * jnp.maximum(jnp.sum(w, axis=0) - sum_max, 0.0)[None]
    w = w - gate * rate * jnp.maximum(jnp.sum(w, axis=1) - sum_max, 0.0)[:, None]
    return jnp.where(gate > 0, jnp.minimum(w, cap), w)


def activation(cfg: ModelConfig, rule: Rule, w: dict, plastic: dict, arrivals) -> Activation:
    """One activation from rest: `arrivals` (n_steps, N) are all kick + Poisson arrival counts."""
    rates, w_end, effects = _activation_batch(cfg, rule, w, plastic, arrivals)
    return Activation(rates=rates, w=w_end, effects=effects)


@struct.dataclass
class RunResult:
    """What one network's run keeps (no full rate history)."""
    fit_rates: jnp.ndarray      # (n_fit_acts, n_fit, n_e) E rates at the decoder training points
    test_rates: jnp.ndarray     # (n_test_acts, n_test, n_e)
    mean_rate: jnp.ndarray      # (n_activations,) mean over cells and time points
    rates: jnp.ndarray          # (len(record_rates), n_steps, N) full rates of chosen activations
    weights: jnp.ndarray        # (len(record_weights), N, N) W at the end of chosen activations
    w_final: jnp.ndarray        # (N, N)
    effects: jnp.ndarray        # (3, 20) summed over the run
    blew_up: jnp.ndarray        # () bool: NaN rate, |w| > blowup_w, or all E->E |w| < blowup_min_ee
    fit_steps: jnp.ndarray      # (n_fit,) the decoder's time points (copied from the network)
    test_steps: jnp.ndarray


def _slot_table(n_act: int, acts: tuple) -> np.ndarray:
    """Activation index -> slot in a record buffer (len(acts) = a dummy slot for the rest)."""
    table = np.full(n_act, len(acts), np.int32)
    table[list(acts)] = np.arange(len(acts))
    return table


def _last(x):
    """Network axis from first to last."""
    return jnp.moveaxis(x, 0, -1)


def _first(x):
    return jnp.moveaxis(x, -1, 0)


def _fused_arguments(cfg: ModelConfig, rule: Rule, n_b: int):
    """The rule as the fused engine takes it: coefficients with the term mask (3, 20, B), trace
    decays dt / tau (3, 12, B) and the heterosynaptic bound (3, B), in the run's dtype."""
    dtype = cfg.dtype
    per_net = rule.coefs.ndim == 3
    coefs = (rule.coefs * rule.term_mask).astype(dtype)
    taus = (rule.taus if per_net else rule.effective_taus(cfg.plasticity.tau_convention)).astype(dtype)
    decay = cfg.network.dt / taus
    hetero = rule.hetero.astype(dtype)
    if not per_net:
        coefs, decay = (jnp.broadcast_to(x[..., None], x.shape + (n_b,)) for x in (coefs, decay))
        hetero = jnp.broadcast_to(hetero[:, None], (3, n_b))
    return coefs, decay, hetero


def run_batch(cfg: ModelConfig, rule: Rule, networks: Network) -> RunResult:
    """All activations of a batch of networks (leading axis) under one rule, or under one rule
    per network (rule leaves with the same leading axis: candidates x networks flattened into one
    batch). A scan over activations whose per-network bookkeeping (draws, turnover, records) is
    vmapped and whose activations run all networks together with the network axis last. With
    several devices each runs this on its share of the networks (parallel.map_networks), on CPU in
    chunks of at most 32 networks (parallel.chunk_plan)."""
    n_given = networks.w0.shape[0]
    from .engine import settings
    backend, n_threads = settings()
    if backend == "fused":
        # each host device runs its share of the networks (the per-activation draws, turnover and
        # records are XLA work on that device's thread), its fused calls on threads / devices threads
        per_dev = max(1, n_threads // len(batch_devices()))
        if rule.coefs.ndim == 3:
            return map_networks(lambda _, rn: _run_local(cfg, rn[0], rn[1], per_dev), None, (rule, networks), n_given)
        return map_networks(lambda r, n: _run_local(cfg, r, n, per_dev), rule, networks, n_given)
    if rule.coefs.ndim == 3:   # one rule per network: it travels with its network
        return map_networks(lambda _, rn: _run_chunks(cfg, rn[0], rn[1]), None, (rule, networks), n_given)
    return map_networks(lambda r, n: _run_chunks(cfg, r, n), rule, networks, n_given)


def _run_chunks(cfg: ModelConfig, rule: Rule, networks: Network) -> RunResult:
    """_run_local on one device's networks in chunks run one after the other (parallel.chunk_plan:
    cache-sized, cache-line-aligned network axes on CPU); the padding networks repeat the last one
    and are cut off."""
    n_b = networks.w0.shape[0]
    n_chunks, size = chunk_plan(n_b)
    if (n_chunks, size) == (1, n_b):
        return _run_local(cfg, rule, networks)
    total = n_chunks * size
    per_net = rule.coefs.ndim == 3

    def split(x):
        return pad_networks(x, total).reshape((n_chunks, size) + x.shape[1:])

    if per_net:
        res = jax.lax.map(lambda rn: _run_local(cfg, rn[0], rn[1]), jax.tree.map(split, (rule, networks)))
    else:
        res = jax.lax.map(lambda n: _run_local(cfg, rule, n), jax.tree.map(split, networks))
    return jax.tree.map(lambda x: x.reshape((total,) + x.shape[2:])[:n_b], res)


def _run_local(cfg: ModelConfig, rule: Rule, networks: Network, fused_threads: int = 0) -> RunResult:
    """run_batch on one device; fused_threads > 0: activations by the fused CPU engine, which keeps
    an activation's full rates only where a record needs them and reports every mean rate."""
    net, lc, tc = cfg.network, cfg.loss, cfg.turnover
    if rule.coefs.ndim == 3:
        taus = jax.vmap(lambda r: r.effective_taus(cfg.plasticity.tau_convention))(rule)
        rule = Rule(coefs=_last(rule.coefs), taus=_last(taus), term_mask=_last(rule.term_mask),
                    hetero=_last(rule.hetero))
    dtype = cfg.dtype
    n_e, n = net.n_e, net.n
    n_b = networks.w0.shape[0]
    w0 = split_blocks(networks.w0.astype(dtype), n_e)
    plastic_last = {t: _last(x) for t, x in split_blocks(networks.plastic, n_e).items()}
    tables = {name: jnp.asarray(_slot_table(cfg.n_activations, acts)) for name, acts in
              (("fit", lc.fit_activations), ("test", lc.test_activations),
               ("rates", cfg.record_rates), ("weights", cfg.record_weights))}
    wants_rates = np.zeros(cfg.n_activations, bool)
    wants_rates[list(lc.fit_activations) + list(lc.test_activations) + list(cfg.record_rates)] = True
    wants_rates = jnp.asarray(wants_rates)
    frozen = networks.arrivals.astype(dtype)

    def before(network, w, ex_ee, ex_ie, a):
        events, flips_ee, flips_ie = draws(cfg, network, a)
        w_ee, ex_ee2 = apply_flips(w["ee"], ex_ee, flips_ee, tc.reborn_ee)
        w_ie, ex_ie2 = apply_flips(w["ie"], ex_ie, flips_ie, tc.reborn_ie)
        pt = cfg.perturbation
        if pt.activation >= 0 and pt.afferent_scale != 1.0:  # one E cell's E->E afferents, once
            scale = jnp.where(a == pt.activation, pt.afferent_scale, 1.0).astype(w_ee.dtype)
            w_ee = w_ee.at[pt.cell].multiply(scale)
        return dict(w, ee=w_ee, ie=w_ie), ex_ee2, ex_ie2, events

    def record_rates(network, rates, buf, a):
        """Keep the E rates at the decoder's points (fit / test activations) and recorded rates."""
        fit_b, test_b, rate_b, w_b = buf
        e_rates = rates[:, :n_e]
        fit_b = fit_b.at[tables["fit"][a]].set(e_rates[network.fit_steps])
        test_b = test_b.at[tables["test"][a]].set(e_rates[network.test_steps])
        if cfg.record_rates:
            rate_b = rate_b.at[tables["rates"][a]].set(rates)
        return fit_b, test_b, rate_b, w_b

    def after(w, w_new, nan_rate, bad, buf, a):
        full = join_blocks(w_new, net.n_i)
        bad = bad | nan_rate | jnp.any(jnp.abs(full) > lc.blowup_w) | jnp.all(
            jnp.abs(w_new["ee"]) < lc.blowup_min_ee)
        # CMA-ES hands in wild candidates: once a network is bad its weights stop moving so that
        # no inf/NaN arithmetic runs on, and the run ends with the penalty flag set.
        w_new = jax.tree.map(lambda x_new, x_old: jnp.where(bad, x_old, x_new), w_new, w)
        fit_b, test_b, rate_b, w_b = buf
        if cfg.record_weights:
            w_b = w_b.at[tables["weights"][a]].set(full)
        return w_new, bad, (fit_b, test_b, rate_b, w_b)

    def activation_xla(w, events, buf, a):
        arr = frozen + jax.vmap(
            lambda e: inputs_mod.events_to_arrivals(e, net.n_steps, dtype))(events)
        rates, w_new, effects = _activation_batch(cfg, rule, {t: _last(x) for t, x in w.items()},
                                                  plastic_last, _last(arr))
        rates = _first(rates)
        buf = jax.vmap(record_rates, (0, 0, 0, None))(networks, rates, buf, a)
        nan_rate = jnp.any(jnp.isnan(rates), axis=(1, 2))
        return w_new, effects, jnp.mean(rates, axis=(1, 2)), nan_rate, buf

    def activation_fused(w, events, buf, a):
        args = _fused_arguments(cfg, rule, n_b)
        w_last = {t: _last(x) for t, x in w.items()}

        def run(write_rates, buf):
            rates, mean, w_new, effects = fused_engine.activation(
                cfg, *args, w_last, plastic_last, frozen, events, fused_threads, write_rates)
            if write_rates:
                buf = jax.vmap(record_rates, (0, 0, 0, None))(networks, _first(rates), buf, a)
            return w_new, effects, mean, buf

        w_new, effects, mean, buf = jax.lax.cond(
            wants_rates[a], partial(run, True), partial(run, False), buf)
        return w_new, effects, mean, jnp.isnan(mean), buf

    def one(carry, a):
        w, ex_ee, ex_ie, eff, bad, buf = carry
        with jax.named_scope("inputs_turnover"):
            w_in, ex_ee2, ex_ie2, events = jax.vmap(before, (0, 0, 0, 0, None))(networks, w, ex_ee, ex_ie, a)
        step = activation_fused if fused_threads else activation_xla
        w_new, effects, mean_rate, nan_rate, buf = step(w_in, events, buf, a)
        with jax.named_scope("records"):
            w_new = {t: _first(x) for t, x in w_new.items()}
            w_new, bad, buf = jax.vmap(after, (0, 0, 0, 0, 0, None))(w_in, w_new, nan_rate, bad, buf, a)
        return (w_new, ex_ee2, ex_ie2, eff + _first(effects), bad, buf), mean_rate

    buf0 = (jnp.zeros((len(lc.fit_activations) + 1, lc.n_fit, n_e), dtype),
            jnp.zeros((len(lc.test_activations) + 1, lc.n_test, n_e), dtype),
            jnp.zeros((len(cfg.record_rates) + 1, net.n_steps, n) if cfg.record_rates else (1,), dtype),
            jnp.zeros((len(cfg.record_weights) + 1, n, n) if cfg.record_weights else (1,), dtype))
    carry0 = (w0, jnp.ones((n_e, n_e), bool), jnp.ones((n_e, net.n_i), bool),
              jnp.zeros((3, N_TERMS), dtype), jnp.asarray(False), buf0)
    carry0 = (w0,) + jax.tree.map(lambda x: jnp.broadcast_to(x, (n_b,) + x.shape), carry0[1:])
    (w_end, _, _, eff, bad, buf), mean_rate = jax.lax.scan(one, carry0, jnp.arange(cfg.n_activations))
    fit_b, test_b, rate_b, w_b = buf
    n_rr, n_rw = len(cfg.record_rates), len(cfg.record_weights)
    res = RunResult(
        fit_rates=fit_b[:, :-1], test_rates=test_b[:, :-1], mean_rate=mean_rate.T,
        rates=rate_b[:, :-1] if n_rr else jnp.zeros((n_b, 0, net.n_steps, n), dtype),
        weights=w_b[:, :-1] if n_rw else jnp.zeros((n_b, 0, n, n), dtype),
        w_final=join_blocks(w_end, net.n_i), effects=eff, blew_up=bad,
        fit_steps=networks.fit_steps, test_steps=networks.test_steps)
    return res


def run(cfg: ModelConfig, rule: Rule, network: Network) -> RunResult:
    """All activations of one network under one rule (scan over activations)."""
    res = run_batch(cfg, rule, jax.tree.map(lambda x: x[None], network))
    return jax.tree.map(lambda x: x[0], res)


@partial(jit, static_argnums=0)
def run_networks(cfg: ModelConfig, rule: Rule, networks: Network) -> RunResult:
    """One rule on a batch of networks (leading axis)."""
    return run_batch(cfg, rule, networks)


def grid_batch(rules: Rule, networks: Network) -> tuple:
    """Every rule (leading axis R) paired with every network (leading axis N) as one flat batch
    of R x N (rule-major: rule r, network n at r N + n): (rules, networks) for run_batch."""
    R = rules.coefs.shape[0]
    N = networks.w0.shape[0]
    flat_rules = jax.tree.map(lambda x: jnp.repeat(x, N, axis=0), rules)
    flat_nets = jax.tree.map(lambda x: jnp.tile(x, (R,) + (1,) * (x.ndim - 1)), networks)
    return flat_rules, flat_nets


def run_grid(cfg: ModelConfig, rules: Rule, networks: Network) -> RunResult:
    """Every rule (leading axis R) on every network (leading axis N) as one flattened batch of
    R x N networks; result axes (rule, network)."""
    R = rules.coefs.shape[0]
    N = networks.w0.shape[0]
    res = run_batch(cfg, *grid_batch(rules, networks))
    return jax.tree.map(lambda x: x.reshape((R, N) + x.shape[1:]), res)
