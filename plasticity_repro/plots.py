"""HoloViews figure builders (matplotlib backend, headless) that take this package's datasets.

One house style: term colours, synapse-type colours, font sizes. Static figures go through
`save` (PNG + SVG via hv.save); nothing here needs a browser.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

TERM_COLORS = {
    "1": "#7f7f7f", "y": "#bcbd22", "x": "#17becf", "x y": "#1f77b4", "y~": "#aec7e8",
    "x y~": "#d62728", "x~": "#9edae5", "x~ y": "#2ca02c", "y~ y": "#ff7f0e", "x~ x": "#9467bd",
}
SYNAPSE_COLORS = {"ee": "#1f77b4", "ei": "#d62728", "ie": "#2ca02c"}
FONT = {"title": 11, "labels": 10, "xticks": 8, "yticks": 8, "legend": 8}


def term_color(name: str) -> str:
    """Colour of a term; a w-multiplied term shares its base term's colour."""
    base = name[2:] if name.startswith("w ") else ("1" if name == "w" else name)
    base = base.split(":")[-1]
    return TERM_COLORS.get(base, "#333333")


def setup():
    """Load HoloViews with the matplotlib backend (headless Agg) and the house style."""
    import matplotlib
    matplotlib.use("Agg")
    import holoviews as hv
    hv.extension("matplotlib", logo=False)
    hv.output(backend="matplotlib", fig="png", dpi=110)
    return hv


def save(obj, stem, formats=("png", "svg")) -> list:
    """Write a HoloViews object to stem.png / stem.svg (directories created)."""
    import holoviews as hv
    if os.environ.get("PLASTICITY_REPRO_SAVE_FIGURES", "1") == "0":   # `make test` (nbval) draws only
        return []
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix("." + fmt)
        hv.save(obj, str(path), fmt=fmt, backend="matplotlib")
        out.append(path)
    return out


def _opts(el, **kw):
    base = dict(fontsize=FONT, fig_inches=(3.6, 2.6), aspect="auto")
    base.update(kw)
    return el.opts(**base)


# -- Fig 2 ----------------------------------------------------------------------------------------
def coefficient_traces(search: xr.Dataset, run: int = 0, top: int = 8, kind: str = "coef"):
    """Best-so-far coefficients (or time constants, ms) of one run versus evaluations."""
    import holoviews as hv
    names = [str(p) for p in search.param.values]
    is_tau = np.array(["tau[" in n for n in names])
    hist = search.best_params_history.isel(run=run).values
    evals = search.evaluations.isel(run=run).values
    sel = np.where(is_tau if kind == "tau" else ~is_tau)[0]
    final = np.abs(hist[-1, sel])
    sel = sel[np.argsort(-final)[:top]]
    curves = []
    for i in sel:
        label = names[i].split(":", 1)[-1]
        y = hist[:, i] * (1e3 if kind == "tau" else 1.0)
        color = term_color(label.replace("tau[", "").rstrip("]"))
        curves.append(hv.Curve((evals, y), "evaluations", "tau (ms)" if kind == "tau" else "coefficient",
                               label=label).opts(color=color, linestyle="--" if label.startswith("w") else "-"))
    return _opts(hv.Overlay(curves), title=("time constants" if kind == "tau" else "coefficients"),
                 legend_position="right", fig_inches=(4.2, 2.6))


def loss_curves(search: xr.Dataset, run: int = 0):
    """Best train loss and the test loss of the incumbent versus evaluations (log y)."""
    import holoviews as hv
    evals = search.evaluations.isel(run=run).values
    n_train = max(1, int(_param(search, "n_train", 1)))
    n_test = max(1, int(_param(search, "n_test", 1)))
    train = search.best_train_loss_history.isel(run=run).values / n_train
    test = search.best_test_loss_history.isel(run=run).values / n_test
    ok = np.isfinite(test)
    c1 = hv.Curve((evals, train), "evaluations", "loss per network", label="train").opts(color="k")
    c2 = hv.Curve((evals[ok], test[ok]), "evaluations", "loss per network", label="test").opts(color="#d62728")
    return _opts(c1 * c2, logy=True, title="loss", legend_position="top_right")


def _param(search, name, default):
    import json
    try:
        return json.loads(search.attrs["params_json"])["search"][name]
    except (KeyError, ValueError):
        return default


def r2_comparison(ev: xr.Dataset):
    """Decoder R^2 on fresh networks per rule (box + points)."""
    import holoviews as hv
    rows = [(str(r), float(v)) for r in ev.rule.values for v in ev.decoder_r2.sel(rule=r).values if np.isfinite(v)]
    box = hv.BoxWhisker(rows, "rule", "R^2")
    low = min(v for _, v in rows)
    # a rare failed network (R^2 << 0) would flatten the boxes: clip the axis at -1 and say so
    title = "decoding R^2 (fresh networks)" + (f"\n(axis clipped; min {low:.1f})" if low < -1 else "")
    return _opts(box, title=title, ylim=(max(min(0.0, low), -1.0), 1.02))


def rasters(ev: xr.Dataset, rule, example: int = 0):
    """Rates at the recorded activations, cells sorted by mean firing time of the last one."""
    import holoviews as hv
    from .experiments.evaluate import firing_order, mean_firing_time
    r = ev.example_rates.sel(rule=rule).isel(example=example)
    n_e = int(ev.attrs.get("n_e", 25)) if "n_e" in ev.attrs else 25
    dt_ms = float(r.time.values[1] - r.time.values[0])
    order = firing_order(mean_firing_time(r.isel(rate_activation=-1).values, dt_ms * 1e-3)[:n_e])
    panels = []
    for a in r.rate_activation.values:
        img = r.sel(rate_activation=a).values[:, :n_e][:, order].T
        t = r.time.values
        top = float(np.percentile(img, 99.5)) or float(img.max()) or 1.0   # each panel on its own scale
        panels.append(_opts(hv.Image(img[::-1], bounds=(t[0], 0, t[-1] + dt_ms, n_e), kdims=["time (ms)", "E cell (sorted)"]),
                            cmap="Greys", clim=(0, top), title=f"activation {a}", fig_inches=(2.6, 2.2)))
    return hv.Layout(panels).cols(len(panels))


def weight_matrices(ev: xr.Dataset, rule, example: int = 0):
    """E->E weights at the first and last recorded activation, sorted by firing order."""
    import holoviews as hv
    from .experiments.evaluate import firing_order, mean_firing_time
    r = ev.example_rates.sel(rule=rule).isel(example=example)
    dt_ms = float(r.time.values[1] - r.time.values[0])
    n_e = 25
    order = firing_order(mean_firing_time(r.isel(rate_activation=-1).values, dt_ms * 1e-3)[:n_e])
    w = ev.example_weights.sel(rule=rule).isel(example=example)
    vmax = float(np.nanmax(w.values[:, :n_e, :n_e]))
    panels = []
    for a in w.weight_activation.values:
        m = w.sel(weight_activation=a).values[:n_e, :n_e][np.ix_(order, order)]
        panels.append(_opts(hv.Image(m[::-1], bounds=(0, 0, n_e, n_e), kdims=["pre (sorted)", "post (sorted)"]),
                            cmap="viridis", clim=(0, vmax), colorbar=True, title=f"W E->E, activation {a}",
                            fig_inches=(2.8, 2.4)))
    return hv.Layout(panels).cols(len(panels))


def kernel_plot(ev: xr.Dataset):
    """Mean E->E weight versus lag of mean firing times, per rule (final) and initial."""
    import holoviews as hv
    curves = []
    for i, r in enumerate(ev.rule.values):
        k = ev.kernel.sel(rule=r)
        curves.append(hv.Curve((ev.lag.values, k.values), "lag t_post - t_pre (ms)", "mean weight", label=str(r)))
    r0 = ev.rule.values[0]
    curves.append(hv.Curve((ev.lag.values, ev.kernel_initial.sel(rule=r0).values), "lag t_post - t_pre (ms)",
                           "mean weight", label="initial").opts(color="#999999", linestyle=":"))
    return _opts(hv.Overlay(curves), title="weight vs firing lag", legend_position="top_left")


# -- Fig 3 / 4 ----------------------------------------------------------------------------------
def coefficient_distributions(coefs: xr.DataArray, terms=None):
    """Coefficients across learned rules per term (points + box), E->E terms."""
    import holoviews as hv
    terms = list(coefs.term.values) if terms is None else terms
    rows = [(t, float(v)) for t in terms for v in coefs.sel(term=t).values]
    box = hv.BoxWhisker(rows, "term", "coefficient")
    return _opts(box, xrotation=70, title="coefficients across rules", fig_inches=(6, 2.6))


def dropout_plot(dd: xr.Dataset, top: int = 8):
    """Per-rule loss shift when each term is dropped, top terms by median shift."""
    import holoviews as hv
    from .experiments.evaluate import term_ranking
    terms = term_ranking(dd)[:top]
    # a dropped term that makes networks blow up scores the 1e8 penalty: log axis (shift + 1)
    rows = [(t, float(v) + 1.0) for t in terms for v in dd["shift"].sel(term=t).values]
    box = hv.BoxWhisker(rows, "term", "loss shift + 1")
    return _opts(box, xrotation=60, logy=True, title="dropout: max(median(dropped) - median(full), 0)",
                 fig_inches=(4.6, 2.6))


def refit_plot(rf: xr.Dataset, reference=None):
    """Median test loss of the top-k refits versus k (with the quartiles)."""
    import holoviews as hv
    k = rf.k.values
    q1, med, q3 = np.percentile(rf.loss.values, [25, 50, 75], axis=1)
    el = hv.Curve((k, med), "k (terms kept)", "test loss per network").opts(color="k", marker="o")
    sp = hv.Spread((k, med, med - q1, q3 - med), kdims=["k (terms kept)"],
                   vdims=["test loss per network", "yerrneg", "yerrpos"]).opts(alpha=0.2, color="k")
    out = sp * el
    if reference is not None:
        out = out * hv.HLine(reference).opts(color="#d62728", linestyle="--")
    return _opts(out, title="progressive refit", logy=False)


# -- Fig 4 stress test --------------------------------------------------------------------------
def stress_plot(sd: xr.Dataset, condition: str = "stressed", ylim=None):
    """Per-network loss of each rule group (pooled over its rules) in one condition of the stress
    test; blown-up networks are left out of the boxes (their number goes in the title)."""
    import holoviews as hv
    c = sd.sel(condition=condition)
    rows = []
    for g in [str(g) for g in sd.group.values]:
        sel = c.rule_group.values == g
        vals = c.loss.values[sel][c.blew_up.values[sel] == 0]
        rows += [(g, float(v)) for v in vals]
    box = hv.BoxWhisker(rows, "group", "loss per network")
    title = {"stressed": "after turnover (no refit)", "unperturbed": "before turnover"}.get(condition, condition)
    n_blew = int(c.blew_up.sum())
    if n_blew:
        title += f" ({n_blew} blown up)"
    return _opts(box, title=title, xrotation=20, fig_inches=(3.4, 2.8), aspect=1.2, logy=True,
                 **({"ylim": ylim} if ylim else {}))


def stress_comparison(sd: xr.Dataset):
    """Unperturbed and stressed losses side by side on a shared logarithmic y range (Fig 4d): one
    network whose sequence breaks can cost 100x the median."""
    import holoviews as hv
    ok = sd.blew_up.values == 0
    vals = sd.loss.values[ok]
    ylim = (float(vals.min()) / 1.25, float(vals.max()) * 1.25) if vals.size else None
    return hv.Layout([stress_plot(sd, c, ylim) for c in ("unperturbed", "stressed")]).cols(2)


# -- Fig 5 ----------------------------------------------------------------------------------------
def weight_blocks(ev: xr.Dataset, rule, example: int = 0):
    """E->E, E->I and I->E weights at the first and last recorded activation; E cells sorted by
    the mean firing time of the last recorded rates, I cells in index order. |w| on one colour
    scale per block type (I->E weights are negative)."""
    import holoviews as hv
    from .experiments.evaluate import firing_order, mean_firing_time
    r = ev.example_rates.sel(rule=rule).isel(example=example)
    dt_ms = float(r.time.values[1] - r.time.values[0])
    n_cells = ev.sizes["cell"]
    n_e = 25 if n_cells == 33 else int(ev.attrs.get("n_e", 25))
    order = firing_order(mean_firing_time(r.isel(rate_activation=-1).values, dt_ms * 1e-3)[:n_e])
    w = np.abs(ev.example_weights.sel(rule=rule).isel(example=example).values)
    inh = np.arange(n_e, n_cells)
    blocks = {"E->E": (order, order, "pre E (sorted)", "post E (sorted)"),
              "E->I": (inh, order, "pre E (sorted)", "post I"),
              "I->E": (order, inh, "pre I", "post E (sorted)")}
    panels = []
    for name, (post, pre, xl, yl) in blocks.items():
        vmax = float(np.nanmax(w[:, post][:, :, pre])) or 1.0
        for k, a in enumerate(ev.weight_activation.values):
            m = w[k][np.ix_(post, pre)]
            panels.append(_opts(hv.Image(m[::-1], bounds=(0, 0, len(pre), len(post)), kdims=[xl, yl]),
                                cmap="viridis", clim=(0, vmax), colorbar=True, title=f"|W| {name}, act. {a}",
                                fig_inches=(2.4, 2.0)))
    return hv.Layout(panels).cols(2)


def sweep_plot(sw: xr.Dataset):
    """Median per-network loss (band: quartiles) versus turnover probability, one curve per group."""
    import holoviews as hv
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"]
    p = sw.p_turnover.values * 1e4
    out = []
    for i, g in enumerate(sw.group.values):
        med = sw.median_loss.sel(group=g).values
        lo, hi = sw.q25_loss.sel(group=g).values, sw.q75_loss.sel(group=g).values
        c = colors[i % len(colors)]
        out.append(hv.Spread((p, med, med - lo, hi - med), "p_ST (x 1e-4)", vdims=["loss per network", "neg", "pos"])
                   .opts(color=c, alpha=0.2))
        out.append(hv.Curve((p, med), "p_ST (x 1e-4)", "loss per network", label=str(g)).opts(color=c, marker="o"))
    return _opts(hv.Overlay(out), title="loss vs turnover", legend_position="top_left")


# -- Fig 6 ----------------------------------------------------------------------------------------
PERTURBATION_COLORS = {"afferent x0.5": "#1f77b4", "afferent x1.5": "#d62728", "input x10": "#ff7f0e",
                       "none": "#7f7f7f"}


def perturbation_traces(pd: xr.Dataset, var: str, ylabel: str | None = None):
    """Median over networks of one per-activation measure of the perturbed cell, per kind, with a
    dashed line at the perturbed activation."""
    import holoviews as hv
    act = pd.activation.values
    curves = []
    for k in pd.kind.values:
        y = np.nanmedian(pd[var].sel(kind=k).values, axis=0)
        curves.append(hv.Curve((act, y), "activation", ylabel or var, label=str(k)).opts(
            color=PERTURBATION_COLORS.get(str(k), "#333333")))
    line = hv.VLine(float(pd.attrs["perturbed_activation"])).opts(color="k", linestyle="--", linewidth=0.8)
    return _opts(hv.Overlay(curves) * line, title=ylabel or var, legend_position="top_left",
                 fig_inches=(3.2, 2.4))


def reduced_trajectories(rd: xr.Dataset, mode: str, amplitudes=(0, 4, 9), widths=(1, 5, 8)):
    """Trajectories of the reduced model's response in (duration, peak) space over activations
    for a few input conditions (indices into the amplitude and width grids); dots mark the start."""
    import holoviews as hv
    out = []
    for ai in amplitudes:
        for wi in widths:
            r = rd.sel(mode=mode).isel(init=0, amplitude=ai, width=wi)
            d, p = r.duration.values * 1e3, r.peak.values
            out.append(hv.Curve((d, p), "duration (ms)", "peak").opts(color="#1f77b4", alpha=0.6))
            out.append(hv.Scatter((d[:1], p[:1]), "duration (ms)", "peak").opts(color="#7f7f7f", s=12))
            out.append(hv.Scatter((d[-1:], p[-1:]), "duration (ms)", "peak").opts(color="#d62728", s=16))
    return _opts(hv.Overlay(out), title=mode.replace("_", " "), show_legend=False, fig_inches=(2.6, 2.4))
