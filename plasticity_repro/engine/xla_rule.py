"""The rule's update and effects in the form the XLA engine computes them (plasticity_repro.simulate).

Because every term of the family (rules.TERMS) is a product of a post vector and a pre vector, the
per-step update of a block is low rank:

    dW = lr * G . ( P0^T diag(c0) Q0  +  W . (P1^T diag(c1) Q1) )

with P, Q the stacked post/pre factors of the plain (0) and w-multiplied (1) terms and G the
gate; see `block_update`. The same factors give the per-term effects |c_k F_k| as bilinear forms.
The sums are unrolled into elementwise loops over the trailing (network) axes, which XLA:CPU runs
far faster than its reductions; `term_by_term` is the plain definition the tests compare with.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..rules import POST_TRACE_SLOTS, PRE_TRACE_SLOTS, TERMS


def block_factors(y, x, post_tr, pre_tr, rate_norm, trace_norm):
    """Stacked post factors P (20, n_post, ...) and pre factors Q (20, n_pre, ...) of the 20 terms.

    y, x: post and pre rates; post_tr: (6, n_post) traces for POST_TRACE_SLOTS; pre_tr: (6, n_pre).
    Trailing axes (a batch of networks) ride along.
    """
    y = y / rate_norm
    x = x / rate_norm
    post_tr = post_tr / trace_norm
    pre_tr = pre_tr / trace_norm
    one_post = jnp.ones_like(y)
    one_pre = jnp.ones_like(x)
    P, Q = [], []
    for term in TERMS:
        s = term.tau_slot
        P.append({"1": one_post, "y": y,
                  "y~": post_tr[POST_TRACE_SLOTS.index(s)] if s in POST_TRACE_SLOTS else None,
                  "y~ y": post_tr[POST_TRACE_SLOTS.index(s)] * y if s in POST_TRACE_SLOTS else None,
                  }[term.post])
        Q.append({"1": one_pre, "x": x,
                  "x~": pre_tr[PRE_TRACE_SLOTS.index(s)] if s in PRE_TRACE_SLOTS else None,
                  "x~ x": pre_tr[PRE_TRACE_SLOTS.index(s)] * x if s in PRE_TRACE_SLOTS else None,
                  }[term.pre])
    return jnp.stack(P), jnp.stack(Q)


def _factor_key(factor: str, slot: int):
    """Identity of a post or pre factor: plain ("1", "y", "x") or a trace of one slot."""
    return (factor, slot if "~" in factor else -1)


def _half_structure(half: int):
    """How the 10 terms of one half (0: plain, 1: times w) share factors, from the term table.

    Returns (post_only, pre_only, bilinear_by_post, bilinear_by_pre):
      post_only: terms whose pre factor is 1 (term "1" included): sum_k c_k P_k is one column vector;
      pre_only:  terms whose post factor is 1 (but not the pre one): one row vector;
      bilinear_by_post: {post key: [terms]} of the rest, grouped by a shared post factor, so
        sum_k c_k P_k Q_k^T is one outer product per group;
      bilinear_by_pre: the same terms grouped by a shared pre factor (one matvec M Q per group
        gives every bilinear form P_k^T M Q_k of the group).
    """
    ks = range(10 * half, 10 * half + 10)
    post_only = tuple(k for k in ks if TERMS[k].pre == "1")
    pre_only = tuple(k for k in ks if TERMS[k].post == "1" and TERMS[k].pre != "1")
    bilinear = [k for k in ks if TERMS[k].post != "1" and TERMS[k].pre != "1"]
    by_post, by_pre = {}, {}
    for k in bilinear:
        by_post.setdefault(_factor_key(TERMS[k].post, TERMS[k].tau_slot), []).append(k)
        by_pre.setdefault(_factor_key(TERMS[k].pre, TERMS[k].tau_slot), []).append(k)
    return post_only, pre_only, tuple(map(tuple, by_post.values())), tuple(map(tuple, by_pre.values()))


_HALVES = (_half_structure(0), _half_structure(1))


def _outer(p, q):
    """p (n_post, ...) x q (n_pre, ...) -> (n_post, n_pre, ...)."""
    return p[:, None] * q[None, :]


def _bcast(c):
    """A coefficient (scalar, or batched on trailing axes) against a factor (n, ...)."""
    return c[None] if jnp.ndim(c) else c


def _half_vectors(c, P, Q, half):
    """The rank-structured pieces of sum_k c_k P_k Q_k^T over one half: (column vector, row
    vector, [(post factor, combined pre factor) of each bilinear group])."""
    post_only, pre_only, by_post, _ = _HALVES[half]
    col = sum(_bcast(c[k]) * P[k] for k in post_only)
    row = sum(_bcast(c[k]) * Q[k] for k in pre_only)
    pairs = [(P[g[0]], sum(_bcast(c[k]) * Q[k] for k in g)) for g in by_post]
    return col, row, pairs


def _half_matrix(col, row, pairs):
    m = col[:, None] + row[None, :]
    for p, q in pairs:
        m = m + _outer(p, q)
    return m


def update_vectors(c, P, Q):
    """The per-cell vectors of `block_update`, stacked: post (k, n_post, ...) and pre (k, n_pre, ...)
    arrays holding, for each half, its column (row) vector and the post (pre) factors of its
    outer products.

    The simulation computes them one step ahead and carries them through its loop, so that the
    W-sized update kernel reads them from memory: left to itself XLA fuses these (n, ...)-sized
    sums into that kernel and recomputes them for every synapse (an optimization barrier does not
    stop it: XLA:CPU drops barriers before fusion). Two stacks rather than a dozen arrays keep
    the loop's carry copies few."""
    post, pre = [], []
    for half in (0, 1):
        col, row, pairs = _half_vectors(c, P, Q, half)
        post += [col] + [p for p, _ in pairs]
        pre += [row] + [q for _, q in pairs]
    return jnp.stack(post), jnp.stack(pre)


def update_from_vectors(vectors, w):
    """sum_k c_k F_k from `update_vectors`: the W-sized part of `block_update`."""
    post, pre = vectors
    halves, i = [], 0
    for half in (0, 1):
        n_pairs = len(_HALVES[half][2])
        halves.append(_half_matrix(post[i], pre[i], [(post[i + 1 + g], pre[i + 1 + g]) for g in range(n_pairs)]))
        i += 1 + n_pairs
    return halves[0] + w * halves[1]


def block_update(c, P, Q, w):
    """sum_k c_k F_k for one block: P0^T diag(c0) Q0 + w . P1^T diag(c1) Q1.

    The ten products of a half share factors (terms with a pre or post factor of 1 collapse to one
    vector, x y and x~ y share y), so each half is a broadcast sum plus two outer products.
    c: (20, ...) coefficients, P (20, n_post, ...), Q (20, n_pre, ...), w (n_post, n_pre, ...).
    """
    return update_from_vectors(update_vectors(c, P, Q), w)


UNROLL_MAX = 48   # leading axes up to this length are summed unrolled; longer ones by a reduction


def _dot0(a, b):
    """sum_i a[i] b[i] over the leading axis, as one fused elementwise loop over the trailing
    axes (XLA:CPU reductions and batched dots over a non-minor axis are far slower here). Past
    UNROLL_MAX terms (networks of hundreds of cells) the unrolled program grows too large to
    compile quickly, and a plain reduction is used."""
    if a.shape[0] > UNROLL_MAX:
        return jnp.sum(a * b, axis=0)
    out = a[0] * b[0]
    for i in range(1, a.shape[0]):
        out = out + a[i] * b[i]
    return out


def _dot1(m, v):
    """sum_j m[:, j] v[j] over the second axis, unrolled like _dot0 but slicing m in place."""
    if m.shape[1] > UNROLL_MAX:
        return jnp.sum(m * v[None], axis=1)
    out = m[:, 0] * v[0][None]
    for j in range(1, m.shape[1]):
        out = out + m[:, j] * v[j][None]
    return out


def block_matvec(m, v):
    """m (n_post, n_pre, ...) times vectors v (k, n_pre, ...) -> (k, n_post, ...), unrolled over
    n_pre into elementwise loops over the trailing (network) axes. m is sliced in place: moving its
    pre axis first made XLA:CPU write a transposed copy of m every step (for the effects' G . |w|
    the costliest kernel of the step; 8-37 % slower at batch 340-1000)."""
    return jnp.stack([_dot1(m, vk) for vk in v])


def _vecmat(v, m):
    """v (n_post, ...) times m (n_post, n_pre, ...) -> (n_pre, ...)."""
    return _dot0(m, v[:, None])


def gate_sums(gate):
    """What the effects of the plain terms need from the (activation-constant) gate G:
    (G, row sums, column sums)."""
    return gate, jnp.sum(gate, axis=1), jnp.sum(gate, axis=0)


def _half_effects(P, Q, m, m_rows, m_cols, half):
    """P_k^T M Q_k for the 10 terms of one half, M >= 0 (n_post, n_pre, ...); factors >= 0.
    m_rows / m_cols: row and column sums of M, or None to have them computed here."""
    post_only, pre_only, _, by_pre = _HALVES[half]
    vs = [Q[g[0]] for g in by_pre]
    if m_rows is None:
        vs.append(jnp.ones_like(Q[0]))
    mq = block_matvec(m, jnp.stack(vs))                 # M Q for each pre group (and M 1)
    if m_rows is None:
        m_rows, m_cols = mq[-1], _vecmat(jnp.ones_like(P[0]), m)
    out = {}
    for k in post_only:
        out[k] = _dot0(P[k], m_rows)
    for k in pre_only:
        out[k] = _dot0(Q[k], m_cols)
    for g, group in enumerate(by_pre):
        for k in group:
            out[k] = _dot0(P[k], mq[g])
    return [out[k] for k in range(10 * half, 10 * half + 10)]


def block_effects(c, P, Q, gate, w, sums=None):
    """Per-term sum over gated synapses of |c_k F_k| = |c_k| P_k^T G Q_k (plain terms) and
    |c_k| P_k^T (G . |w|) Q_k (w terms), as bilinear forms (factors >= 0).

    `sums` = gate_sums(gate) may be passed in when the gate is fixed over many calls.
    Returns (20, ...).
    """
    g, g_rows, g_cols = gate_sums(gate) if sums is None else sums
    h = g * jnp.abs(w)
    e = _half_effects(P, Q, g, g_rows, g_cols, 0) + _half_effects(P, Q, h, None, None, 1)
    e = jnp.stack(e)
    c = jnp.abs(c)
    return c.reshape(c.shape + (1,) * (e.ndim - c.ndim)) * e


def term_by_term(c, P, Q, w):
    """The 20 update matrices c_k F_k one by one (for tests and the definition's sake)."""
    F = P[:, :, None] * Q[:, None, :]
    F = F.at[10:].multiply(w[None])
    return c[:, None, None] * F
