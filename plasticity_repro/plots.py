"""HoloViews figure builders (matplotlib backend, headless) that take this package's datasets.

One house style: term colours, synapse-type colours, font sizes. Static figures go through
`save` (PNG + SVG via hv.save); nothing here needs a browser.
"""
from __future__ import annotations

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
    return _opts(box, title="decoding R^2 (fresh networks)", ylim=(min(0, min(v for _, v in rows)), 1.02))


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
        panels.append(_opts(hv.Image(img[::-1], bounds=(t[0], 0, t[-1] + dt_ms, n_e), kdims=["time (ms)", "E cell (sorted)"]),
                            cmap="Greys", title=f"activation {a}", fig_inches=(2.6, 2.2)))
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
    rows = [(t, float(v)) for t in terms for v in dd["shift"].sel(term=t).values]
    box = hv.BoxWhisker(rows, "term", "loss shift")
    return _opts(box, xrotation=60, title="dropout: max(median(dropped) - median(full), 0)",
                 fig_inches=(4.6, 2.6))


def refit_plot(rf: xr.Dataset, reference=None):
    """Median test loss of the top-k refits versus k (with the quartiles)."""
    import holoviews as hv
    k = rf.k.values
    q1, med, q3 = np.percentile(rf.loss.values, [25, 50, 75], axis=1)
    el = hv.Curve((k, med), "k (terms kept)", "test loss per network").opts(color="k", marker="o")
    sp = hv.Spread((k, med, med - q1, q3 - med), vdims=["y", "yerrneg", "yerrpos"]).opts(alpha=0.2, color="k")
    out = sp * el
    if reference is not None:
        out = out * hv.HLine(reference).opts(color="#d62728", linestyle="--")
    return _opts(out, title="progressive refit", logy=False)
