"""Plain-NumPy float64 reference of the rate-network plasticity model (spec sections 1-5).

Written as direct loops from /work/shared/spec/model.md, independent of the JAX package,
so tests can check the JAX implementation for parity. Clarity over speed.
"""

import numpy as np

TERM_NAMES = ["1", "y", "x", "x y", "y~", "x y~", "x~", "x~ y", "y~ y", "x~ x",
              "w", "w y", "w x", "w x y", "w y~", "w x y~", "w x~", "w x~ y", "w y~ y", "w x~ x"]
TYPES = ("ee", "ei", "ie")  # ee: post E / pre E; ei: post I / pre E; ie: post E / pre I


def _block(typ, n_e, n):
    """(post slice, pre slice) of a synapse type in the full W[post, pre]."""
    e, i = slice(0, n_e), slice(n_e, n)
    return {"ee": (e, e), "ei": (i, e), "ie": (e, i)}[typ]


def alpha_kernel(dt=1e-4, tau_alpha=3e-3, n_steps=300):
    """kernel[k] = e * (k dt / tau) * exp(-k dt / tau), k = 0..n_steps-1."""
    t = np.arange(n_steps, dtype=np.float64) * dt / tau_alpha
    return np.e * t * np.exp(-t)


def drive_from_arrivals(arrivals, n_e=25, amp_e=0.09, amp_i=0.02, dt=1e-4, tau_alpha=3e-3,
                        kernel_steps=300):
    """Causal convolution of per-step arrival counts (T, N) with the alpha kernel, scaled per cell type."""
    arrivals = np.asarray(arrivals, dtype=np.float64)
    T, N = arrivals.shape
    kernel = alpha_kernel(dt, tau_alpha, kernel_steps)
    drive = np.zeros((T, N))
    for k in range(min(kernel_steps, T)):  # drive[t] += arrivals[t - k] * kernel[k]
        drive[k:] += arrivals[:T - k] * kernel[k]
    amp = np.where(np.arange(N) < n_e, amp_e, amp_i)
    return drive * amp[None, :]


def _basis_all(x, y, tr_pre, tr_post, w):
    """All 20 basis terms F_k on one block, shape (20, n_post, n_pre).

    x: (n_pre,) and y: (n_post,) normalised rates; tr_pre: (12, n_pre) and tr_post: (12, n_post)
    normalised traces per slot; w: (n_post, n_pre) current block weights.
    """
    shape = w.shape
    Y = np.broadcast_to(y[:, None], shape)   # postsynaptic rate
    X = np.broadcast_to(x[None, :], shape)   # presynaptic rate

    def ty(slot):  # y~ from the postsynaptic cell's trace
        return np.broadcast_to(tr_post[slot][:, None], shape)

    def tx(slot):  # x~ from the presynaptic cell's trace
        return np.broadcast_to(tr_pre[slot][None, :], shape)

    F = np.empty((20,) + shape)
    F[0] = 1.0
    F[1] = Y
    F[2] = X
    F[3] = X * Y
    F[4] = ty(0)
    F[5] = X * ty(1)
    F[6] = tx(2)
    F[7] = tx(3) * Y
    F[8] = ty(4) * Y
    F[9] = tx(5) * X
    F[10] = w
    F[11] = w * Y
    F[12] = w * X
    F[13] = w * X * Y
    F[14] = w * ty(6)
    F[15] = w * X * ty(7)
    F[16] = w * tx(8)
    F[17] = w * tx(9) * Y
    F[18] = w * ty(10) * Y
    F[19] = w * tx(11) * X
    return F


def activation(W, drive, plastic, coefs, taus, synapses=("ee",), n_e=25, dt=1e-4, tau_e=10e-3,
               tau_i=1e-4, v_th=0.1, lr=5e-4, rate_norm=0.02, trace_norm=0.01, gate=2e-6,
               dale_eps=1e-6, hetero=None):
    """Run one activation (T = drive.shape[0] time points, T-1 updates) with plasticity.

    hetero = (sum limit, rate, cap): the hand-made rule's bound on E->E after every step's update
    (spec §8): each gated synapse is depressed by rate * (excess of its pre cell's summed outgoing
    E->E weight over the limit), then, on the depressed weights, by rate * (excess of its post
    cell's summed incoming weight), then capped at `cap`; rate is per step (not x lr); None: no
    bound.

    Returns dict(r=(T, N) rates, W=(N, N) final weights, effects=(3, 20) summed |c_k F_k|).
    """
    W = np.array(W, dtype=np.float64, copy=True)
    drive = np.asarray(drive, dtype=np.float64)
    plastic = np.asarray(plastic, dtype=bool)
    coefs = np.asarray(coefs, dtype=np.float64)
    taus = np.asarray(taus, dtype=np.float64)
    T, N = drive.shape
    tau_cell = np.where(np.arange(N) < n_e, tau_e, tau_i)

    W_start = W.copy()
    gate_mask = plastic & (np.abs(W_start) > gate)
    sign0 = np.where(W_start >= 0, 1.0, -1.0)

    s = np.zeros((T, N))
    r = np.zeros((T, N))
    # traces[type, slot, cell]: each (type, slot) filters every cell's rate with its own tau
    traces = np.zeros((3, 12, N))
    effects = np.zeros((3, 20))
    decay = dt / taus  # (3, 12)

    for i in range(T - 1):
        # network dynamics (uses W before this step's plasticity); r[i+1] uses s[i]
        v = drive[i] + W @ r[i]
        s[i + 1] = s[i] + (v - s[i]) * dt / tau_cell
        r[i + 1] = np.maximum(s[i] - v_th, 0.0)
        # traces from rates row i
        traces = traces * (1.0 - decay[:, :, None]) + r[i][None, None, :] * decay[:, :, None]

        rn = r[i + 1] / rate_norm
        W_now = W.copy()  # w-terms use the current W (before this step's update)
        for typ in synapses:
            ti = TYPES.index(typ)
            post, pre = _block(typ, n_e, N)
            g = gate_mask[post, pre]
            w = W_now[post, pre]
            x, y = rn[pre], rn[post]
            trn = traces[ti] / trace_norm  # (12, N)
            cF = coefs[ti][:, None, None] * _basis_all(x, y, trn[:, pre], trn[:, post], w)
            dW = cF.sum(axis=0)
            effects[ti] += np.abs(cF[:, g]).sum(axis=1)
            W[post, pre] = w + lr * np.where(g, dW, 0.0)
            if hetero is not None and typ == "ee":
                sum_max, rate, cap = hetero
                w_new = W[post, pre]
                w_new = w_new - g * rate * np.maximum(w_new.sum(axis=0) - sum_max, 0.0)[None, :]
                w_new = w_new - g * rate * np.maximum(w_new.sum(axis=1) - sum_max, 0.0)[:, None]
                W[post, pre] = np.where(g, np.minimum(w_new, cap), w_new)

        # Dale's law against the sign at the start of the activation
        W = np.where(sign0 * W < 0, sign0 * dale_eps, W)

    return dict(r=r, W=W, effects=effects)


def turnover(W, exists, flips, reborn, block):
    """Flip existence of synapses in block "ee" (W[:n_e,:n_e]) or "ie" (W[:n_e,n_e:]).

    flips is block-shaped; n_e = flips.shape[0]. exists may be full (N, N) or block-shaped and is
    returned in the same shape. Existing + flip -> removed (w = 0); removed + flip -> reborn at
    `reborn`. Flips are applied literally, diagonal included (pass flips with a False diagonal to
    forbid autapses). Returns copies (W_new, exists_new).
    """
    W_new = np.array(W, dtype=np.float64, copy=True)
    exists_new = np.array(exists, dtype=bool, copy=True)
    flips = np.asarray(flips, dtype=bool)
    n_e = flips.shape[0]
    N = W_new.shape[0]
    post, pre = {"ee": (slice(0, n_e), slice(0, n_e)), "ie": (slice(0, n_e), slice(n_e, N))}[block]
    wb = W_new[post, pre]
    eb = exists_new[post, pre] if exists_new.shape == W_new.shape else exists_new
    removed = flips & eb
    reborn_mask = flips & ~eb
    wb = np.where(removed, 0.0, wb)
    wb = np.where(reborn_mask, reborn, wb)
    eb_new = eb ^ flips
    W_new[post, pre] = wb
    if exists_new.shape == W_new.shape:
        exists_new[post, pre] = eb_new
    else:
        exists_new = eb_new
    return W_new, exists_new


def run(W0, plastic, drives, coefs, taus, synapses=("ee",), flips_ee=None, flips_ie=None,
        reborn_ee=0.08, reborn_ie=-0.015, **kw):
    """Run len(drives) activations; turnover (if given) before activation a >= 1.

    Returns dict(r=list of (T, N), W=list of (N, N) end-of-activation weights, effects=(3, 20) summed).
    """
    W = np.array(W0, dtype=np.float64, copy=True)
    N = W.shape[0]
    exists = np.ones((N, N), dtype=bool)
    rs, Ws = [], []
    effects = np.zeros((3, 20))
    for a, drive in enumerate(drives):
        if a >= 1:
            if flips_ee is not None:
                W, exists = turnover(W, exists, flips_ee[a], reborn_ee, "ee")
            if flips_ie is not None:
                W, exists = turnover(W, exists, flips_ie[a], reborn_ie, "ie")
        out = activation(W, drive, plastic, coefs, taus, synapses=synapses, **kw)
        W = out["W"]
        rs.append(out["r"])
        Ws.append(W.copy())
        effects += out["effects"]
    return dict(r=rs, W=Ws, effects=effects)


def decoder_r2(r_fit, t_fit, r_test, t_test):
    """OLS with intercept from rates (n_samples, n_e) to time; R^2 on the test set."""
    r_fit = np.asarray(r_fit, dtype=np.float64)
    r_test = np.asarray(r_test, dtype=np.float64)
    t_fit = np.asarray(t_fit, dtype=np.float64)
    t_test = np.asarray(t_test, dtype=np.float64)
    A = np.column_stack([np.ones(len(r_fit)), r_fit])
    beta, *_ = np.linalg.lstsq(A, t_fit, rcond=None)
    pred = np.column_stack([np.ones(len(r_test)), r_test]) @ beta
    ss_res = np.sum((t_test - pred) ** 2)
    ss_tot = np.sum((t_test - t_test.mean()) ** 2)
    return float(1.0 - ss_res / ss_tot)


def network_loss(r2, mean_rate, effects_sum, w_decoder=1000.0, w_rate=100.0, w_effect=5e-7):
    """Per-network loss: w_dec (1 - R^2) + w_rate * mean rate + w_effect * sum of effects."""
    return float(w_decoder * (1.0 - r2) + w_rate * mean_rate + w_effect * np.sum(effects_sum))


if __name__ == "__main__":
    import time

    rng = np.random.default_rng(0)
    n_e, n_i, T = 25, 8, 1100
    N = n_e + n_i
    W0 = np.zeros((N, N))
    W0[:n_e, :n_e] = 0.4 * (0.2 + 0.8 * rng.random((n_e, n_e)))
    np.fill_diagonal(W0[:n_e, :n_e], 0.0)
    W0[n_e:, :n_e] = np.maximum(rng.normal(0.5, 0.15, (n_i, n_e)), 0) * (rng.random((n_i, n_e)) < 0.8)
    W0[:n_e, n_e:] = np.minimum(rng.normal(-0.3, 0.09, (n_e, n_i)), 0) * (rng.random((n_e, n_i)) < 0.8)
    plastic = W0 != 0

    def make_drive():
        arr = np.zeros((T, N))
        arr[:10, 0] = 1.0
        arr[10:650, 1:] = rng.random((640, N - 1)) < 80 * 1e-4
        return drive_from_arrivals(arr)

    # temporally asymmetric Oja-like rule (x~ y +, x y~ -, w y~ y -) on all three synapse types
    coefs = np.zeros((3, 20))
    coefs[:, 7] = 0.1    # x~ y
    coefs[:, 5] = -0.05  # x y~
    coefs[:, 18] = -0.1  # w y~ y
    taus = np.full((3, 12), 5e-3)
    drives = [make_drive() for _ in range(3)]
    t0 = time.perf_counter()
    out = run(W0, plastic, drives, coefs, taus, synapses=("ee", "ei", "ie"))
    dt_act = (time.perf_counter() - t0) / len(drives)
    print("r shapes", [x.shape for x in out["r"]], "W shapes", [x.shape for x in out["W"]])
    print("mean rate", np.mean(out["r"]), "max |dW|", np.abs(out["W"][-1] - W0).max())
    print("effects (ee)", {TERM_NAMES[k]: round(out["effects"][0, k], 2) for k in np.flatnonzero(out["effects"][0])})
    assert np.array_equal(out["W"][-1][~plastic], W0[~plastic]), "non-plastic weights changed"
    assert np.all(out["W"][-1][n_e:, :] >= 0) and np.all(out["W"][-1][:n_e, :n_e] >= 0), "Dale violated"

    flips = [rng.random((n_e, n_e)) < 0.05 for _ in range(3)]
    out_t = run(W0, plastic, drives, coefs, taus, flips_ee=flips)
    print("turnover run: zeros in E->E block", int(np.sum(out_t["W"][-1][:n_e, :n_e] == 0)))

    idx = rng.integers(30, 650, 400)
    r_last = out["r"][-1][:, :n_e]
    print("R^2 (toy, one activation)", decoder_r2(r_last[idx[:300]], idx[:300] * 1e-4,
                                                  r_last[idx[300:]], idx[300:] * 1e-4))
    print(f"time per activation: {dt_act:.3f} s (all three types plastic)")
