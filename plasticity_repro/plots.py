"""Figure builders that take this package's datasets, and the house style they share.

House style, in one place (this module's top):
- one sheet per figure, SHEET_WIDTH = 7 in wide (journal page width), landscape or near square,
  PNG at DPI = 300 and SVG; panels lettered a, b, c ... in the paper's order (`Sheet`);
- one font family and one set of sizes (FONT), applied to matplotlib's rcParams and to every
  HoloViews element drawn;
- one fixed colour per plasticity term (TERM_COLORS, all 20 terms: a term and its w-multiplied
  partner share a hue, the w one darker and dashed in line plots), per synapse type
  (SYNAPSE_COLORS), per rule family (RULE_COLORS: learned, learned with turnover, learned on all
  synapses, hand-made, no plasticity), per perturbation kind and per response phase;
- term names as mathtext, as the paper writes them (`term_label("x~ y")` is "$\\tilde{x}y$");
- every colour bar labelled with its quantity and unit; legends outside the data; values beyond
  an axis limit are drawn on the limit with a different marker and counted in the panel;
- the statistic behind a claim (test, p, effect size, N) printed on its panel.

Panels are HoloViews elements rendered by its matplotlib backend into the axes of one
matplotlib figure (`Sheet.render`), so one sheet composes any number of them; colour bars,
letters and annotations are then added in matplotlib. `Sheet.save` writes byte-reproducible
files: SVG with a fixed hash salt and no date, PNG without the software stamp.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import xarray as xr

# -- the house style ------------------------------------------------------------------------------
SHEET_WIDTH = 7.0          # in: one journal page width
DPI = 300                  # PNG resolution
FONT = dict(family="DejaVu Sans", base=7, title=7, labels=7, ticks=6, legend=6, note=5.5, letter=9)
# HoloViews' fontsize option, from FONT
HV_FONTSIZE = {"title": FONT["title"], "labels": FONT["labels"], "xticks": FONT["ticks"],
               "yticks": FONT["ticks"], "legend": FONT["legend"]}
LINE = 1.0                 # default line width (pt)
MARKER = 9                 # default scatter marker area (pt^2)
SVG_HASHSALT = "plasticity_repro"

RC = {
    "font.family": FONT["family"], "font.size": FONT["base"], "axes.titlesize": FONT["title"],
    "axes.labelsize": FONT["labels"], "xtick.labelsize": FONT["ticks"], "ytick.labelsize": FONT["ticks"],
    "legend.fontsize": FONT["legend"], "legend.frameon": False, "axes.linewidth": 0.6,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5, "ytick.minor.size": 1.5, "lines.linewidth": LINE, "axes.spines.top": False,
    "axes.spines.right": False, "axes.titlepad": 3.0, "axes.labelpad": 2.0, "mathtext.fontset": "dejavusans",
    "svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path", "figure.dpi": 100, "savefig.dpi": DPI,
    "image.interpolation": "nearest", "axes.unicode_minus": True,
}

# one colour per term (rules.TERM_NAMES); the w-multiplied partner of a term is its darker shade
TERM_COLORS = {
    "1": "#7f7f7f", "y": "#bcbd22", "x": "#17becf", "x y": "#1f77b4", "y~": "#8c564b",
    "x y~": "#d62728", "x~": "#e377c2", "x~ y": "#2ca02c", "y~ y": "#ff7f0e", "x~ x": "#9467bd",
    "w": "#454545", "w y": "#676712", "w x": "#0c6871", "w x y": "#114163", "w y~": "#4d2f29",
    "w x y~": "#751516", "w x~": "#7c416a", "w x~ y": "#185818", "w y~ y": "#8c4507", "w x~ x": "#513867",
}
SYNAPSE_COLORS = {"ee": "#3b6fb6", "ei": "#c8553d", "ie": "#2a9d8f"}
SYNAPSE_LABELS = {"ee": "E→E", "ei": "E→I", "ie": "I→E"}
RULE_COLORS = {"learned": "#1f4e9c", "learned, turnover": "#e08a00", "learned, all synapses": "#1a9850",
               "hand-made": "#7b3294", "no plasticity": "#8c8c8c", "initial": "#bdbdbd"}
PERTURBATION_COLORS = {"afferent x0.5": "#2166ac", "afferent x1.5": "#b2182b", "input x10": "#e08214",
                       "none": "#7f7f7f"}
PHASE_COLORS = {"before": "#000000", "just_after": "#e6550d", "later": "#35978f"}   # "later": not a perturbation kind's blue
PHASE_LABELS = {"before": "before", "just_after": "just after", "later": "later"}
REDUCED_LABELS = {"two_rules": "two rules", "swapped": "moments swapped",
                  "w_only": "weight rule only", "b_only": "bias rule only"}
REDUCED_DURATION_LABEL = r"$M_0/r_\mathrm{peak}$ (ms)"   # the paper's duration of a response
WEIGHT_UNIT = "a.u."       # weights and rates of the rate model are dimensionless
RATE_UNIT = "a.u."


def term_label(name: str) -> str:
    """A term name as the paper writes it, in mathtext: "x~ y" -> "$\\tilde{x}y$", "w y~ y" ->
    "$w\\tilde{y}y$", "1" -> "$1$". Accepts "ee:x~ y" and "tau[x~ y]" (-> "$\\tau_{\\tilde{x}y}$")."""
    name = str(name).split(":")[-1]
    if name.startswith("tau[") and name.endswith("]"):
        return r"$\tau_{" + _term_tex(name[4:-1]) + "}$"
    return "$" + _term_tex(name) + "$"


def _term_tex(name: str) -> str:
    out = []
    for factor in name.split():
        out.append(r"\tilde{%s}" % factor[0] if factor.endswith("~") else factor)
    return "".join(out)


def term_color(name: str) -> str:
    """Fixed colour of a term ("ee:w x~ y" and "tau[x~ y]" accepted)."""
    name = str(name).split(":")[-1]
    if name.startswith("tau["):
        name = name[4:-1]
    return TERM_COLORS.get(name, "#333333")


def term_text_color(name: str, max_luminance: float = 0.2) -> str:
    """term_color darkened, keeping its hue, until its relative luminance (WCAG, 0 black .. 1
    white) is at most `max_luminance`: the pale terms (y, x, x̃, 1) stay legible as tick labels
    on white. Darker term colours are returned unchanged."""
    import matplotlib.colors as mc
    rgb = np.asarray(mc.to_rgb(term_color(name)))

    def luminance(c):
        lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(lin @ [0.2126, 0.7152, 0.0722])
    for _ in range(40):
        if luminance(rgb) <= max_luminance:
            break
        rgb = rgb * 0.95
    return mc.to_hex(rgb)


def rule_family(name: str) -> str:
    """Rule family (a RULE_COLORS key) of a rule or group name used in this package's datasets."""
    n = str(name).lower()
    if "no plasticity" in n:
        return "no plasticity"
    if "hand" in n:
        return "hand-made"
    if n.startswith("all") or "e->i" in n or "e→i" in n:
        return "learned, all synapses"
    if ("turnover" in n and "no turnover" not in n and "no-turnover" not in n) or n.startswith("e->e"):
        return "learned, turnover"
    return "learned"


def rule_color(name: str) -> str:
    return RULE_COLORS[rule_family(name)]


def fmt_p(p: float) -> str:
    """p-value with one significant digit ("p = 3e-08", "p = 0.04")."""
    if not np.isfinite(p):
        return "p = n/a"
    if p < 1e-12:
        return "p < 1e-12"
    return f"p = {p:.0e}" if p < 1e-3 else f"p = {p:.2g}"


# -- setup, sheets, saving ----------------------------------------------------------------------
def setup():
    """HoloViews with the matplotlib backend (headless Agg) and the house style; returns hv."""
    import matplotlib
    matplotlib.use("Agg")
    import holoviews as hv
    hv.extension("matplotlib", logo=False)
    hv.output(backend="matplotlib", fig="png", dpi=110)
    matplotlib.rcParams.update(RC)
    hv.opts.defaults(hv.opts.Curve(linewidth=LINE), hv.opts.Scatter(s=MARKER),
                     hv.opts.Area(linewidth=0), hv.opts.Segments(linewidth=LINE),
                     hv.opts.HLine(linewidth=0.6), hv.opts.VLine(linewidth=0.6), backend="matplotlib")
    return hv


def _top(ax) -> float:
    """The height of a panel's top edge on the sheet (display points, to 0.1): equal for the
    panels of one row (`get_position` is relative to the panel's own sub-figure)."""
    return round(float(ax.get_window_extent().y1) / ax.get_figure(root=True).dpi * 72, 1)


def saving_enabled() -> bool:
    """False under `make test` (nbval draws the figures but writes no files)."""
    return os.environ.get("PLASTICITY_REPRO_SAVE_FIGURES", "1") != "0"


class Sheet:
    """One figure sheet: rows of panels on a SHEET_WIDTH-wide matplotlib figure (constrained layout).

    rows: one entry per row, (height in inches, mosaic) where mosaic is a list of panel keys, or a
    list of such lists (a row with sub-rows), "." an empty cell; an optional third item gives the
    column width ratios. A key that is a single letter is lettered; "e.2", "e.3" are further axes
    of panel e (not lettered). `ax(key)` gives the matplotlib axes, `render(key, element)` draws a
    HoloViews element into it.
    """

    def __init__(self, rows, width: float = SHEET_WIDTH, hspace: float = 0.02, wspace: float = 0.02):
        import matplotlib
        from matplotlib.figure import Figure
        matplotlib.rcParams.update(RC)
        heights = [float(r[0]) for r in rows]
        # a figure outside pyplot's manager (nothing to close, nothing shown twice in a notebook)
        self.figure = Figure(figsize=(width, sum(heights)), layout="constrained")
        self.figure.get_layout_engine().set(h_pad=0.04, w_pad=0.04, hspace=hspace, wspace=wspace)
        subs = self.figure.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0]
        self.axes = {}
        self.elements = {}     # panel key -> the HoloViews elements drawn into it
        self.colorbars = {}    # panel key -> its colour bar's label (for `to_html`)
        self.order = []
        for sub, row in zip(subs, rows):
            mosaic = row[1] if isinstance(row[1][0], (list, tuple)) else [row[1]]
            kw = {"width_ratios": row[2]} if len(row) > 2 and row[2] is not None else {}
            got = sub.subplot_mosaic(mosaic, empty_sentinel=".", gridspec_kw=kw)
            for r in mosaic:
                for k in r:
                    if k != "." and k not in self.order:
                        self.order.append(k)
            self.axes.update(got)

    def ax(self, key):
        return self.axes[key]

    def __repr__(self) -> str:
        """What a log or a text-only front end shows instead of the picture (_repr_png_)."""
        w, h = self.figure.get_size_inches()
        letters = [k for k in self.order if len(k) == 1]
        span = f", panels {letters[0]}-{letters[-1]}" if letters else ""
        return f"figure sheet {w:.1f} x {h:.1f} in{span}"

    def render(self, key, element, **opts):
        """Draw a HoloViews element into panel `key` with the house fonts; returns the hv plot."""
        import holoviews as hv
        labels = {k: opts.pop(k) for k in ("xlabel", "ylabel") if k in opts}
        el = element.opts(fontsize=HV_FONTSIZE, show_legend=False, **opts)
        ax = self.axes[key]
        self.elements.setdefault(key, []).append(el)    # for the interactive copy (`to_html`)
        plot = hv.renderer("matplotlib").get_plot(el, fig=ax.get_figure(root=True), axis=ax)
        if "xlabel" in labels:
            ax.set_xlabel(labels["xlabel"])
        if "ylabel" in labels:
            ax.set_ylabel(labels["ylabel"])
        return plot

    def colorbar(self, keys, mappable, label: str, extend: str = "neither", **kw):
        """A labelled colour bar (quantity and unit) beside the panel(s) `keys`."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        axes = [self.axes[k] for k in keys]
        self.colorbars.update({k: label for k in keys})
        cb = axes[0].figure.colorbar(mappable, ax=axes, label=label, extend=extend,
                                     shrink=kw.pop("shrink", 0.9), aspect=kw.pop("aspect", 18),
                                     pad=kw.pop("pad", 0.02), **kw)
        cb.ax.tick_params(labelsize=FONT["ticks"], width=0.5, length=2)
        cb.outline.set_linewidth(0.5)
        cb.set_label(label, fontsize=FONT["labels"])
        return cb

    def letter(self):
        """Bold panel letters at the top left of each lettered panel, left of its y tick labels."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        fig = self.figure
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        fig.canvas.draw()   # positions after the constrained layout
        if self._align_notes():
            fig.canvas.draw()
        for ax in self.axes.values():
            _place_direct_labels(ax)    # at the panels' final heights
        renderer = fig.canvas.get_renderer()
        inv = fig.transFigure.inverted()
        lettered = [k for k in self.order if len(k) == 1 and k.isalpha()]
        # panels whose axes start at one height form a row: their letters stand at one height,
        # that of the row's tallest title block (a panel with a longer note would lift its own)
        top = {k: _top(self.axes[k]) for k in lettered}
        row_pad = {}
        for k in lettered:
            pad = getattr(self.axes[k], "_house_title_pad", RC["axes.titlepad"])
            row_pad[top[k]] = max(row_pad.get(top[k], pad), pad)
        for key in lettered:
            ax = self.axes[key]
            tight = ax.get_tightbbox(renderer)
            x0 = inv.transform((tight.x0, 0))[0]
            axpos = ax.get_position()
            # the letter stands left over the y tick labels at the panel's outer edge, as high above the
            # frame as the row's tallest title block: its own text offset in points (not a title,
            # whose pad the panel's centred title shares, nor an axes fraction, which the layout's
            # later resizing would change)
            if getattr(ax, "_house_letter", None) is not None:
                ax._house_letter.remove()
            ax._house_letter = ax.annotate(
                key, xy=((x0 - axpos.x0) / axpos.width if axpos.width > 0 else 0.0, 1.0), xycoords="axes fraction",
                xytext=(0, row_pad[top[key]]), textcoords="offset points", ha="left", va="baseline",
                fontsize=FONT["letter"], fontweight="bold", annotation_clip=False)

    def _align_notes(self) -> bool:
        """Panels of one row (axes starting at one height) that all carry a note under their title
        get notes of one height: the shorter ones padded with blank lines under their text, so
        their titles and first lines stand level. A row where some panel has no note keeps its
        panels' own heights. True when a note changed (the layout must be redone)."""
        from matplotlib.text import Annotation
        rows = {}
        for ax in self.axes.values():
            if ax.get_title():
                rows.setdefault(_top(ax), []).append(ax)
        changed = False
        for axes in rows.values():
            notes = []
            for ax in axes:
                note = [t for t in ax.texts if isinstance(t, Annotation) and t.xycoords == "axes fraction"
                        and tuple(t.xy) == (0.5, 1.0)]
                notes.append(note[0] if note else None)
            if len(axes) < 2 or any(n is None for n in notes):
                continue
            lines = [n.get_text().count("\n") + 1 for n in notes]
            for ax, note, n in zip(axes, notes, lines):
                if n < max(lines):
                    note.set_text(note.get_text() + "\n\u00a0" * (max(lines) - n))
                    pad = RC["axes.titlepad"] + max(lines) * FONT["note"] * 1.25 + 2
                    ax.set_title(ax.get_title(), fontsize=FONT["title"], loc="center", pad=pad)
                    ax._house_title_pad = pad
                    changed = True
        return changed

    def footnote(self, text: str):
        """Lines of small text under the sheet (the figure's claims and verdicts); nothing when
        `text` is empty."""
        if text:
            self.figure.supxlabel(text, x=0.005, ha="left", fontsize=FONT["note"], color="#333333",
                                  linespacing=1.15)
        return self

    def finish(self):
        if not getattr(self, "_lettered", False):
            self.letter()
            self._lettered = True
        return self

    def save(self, stem, formats=("png", "svg")) -> list:
        """Write stem.png / stem.svg, byte-identical on every run; nothing under `make test`."""
        self.finish()
        if not saving_enabled():
            return []
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        out = []
        for fmt in formats:
            path = stem.with_suffix("." + fmt)
            path.write_bytes(self.to_bytes(fmt))
            out.append(path)
        return out

    def to_bytes(self, fmt: str = "svg", dpi: float = DPI) -> bytes:
        import matplotlib
        self.finish()
        meta = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None},
                "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}[fmt]
        buf = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            self.figure.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
        return _numbered_clip_ids(buf.getvalue()) if fmt == "svg" else buf.getvalue()

    def to_html(self, title: str) -> str:
        """An interactive copy of the sheet (HoloViews' bokeh backend): every panel drawn through
        `render`, with the static panel's title and the statistics under it, axis labels, limits,
        scales and tick labels, labelled colour bars, the elements' colours and the panel's texts
        (direct labels, the protocol's spans), in one self-contained page (BokehJS inline: it opens
        offline) with hover read-outs. Bokeh has no symlog scale: on such an axis the values are
        drawn through the panel's own symlog transform and the ticks keep the static labels."""
        import holoviews as hv
        import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options; the current backend stays matplotlib)
        from bokeh.embed import file_html
        from bokeh.layouts import column, row
        from bokeh.resources import INLINE
        self.finish()
        dpi = self.figure.dpi
        rows = []    # [(top of the row in display pixels, [(left, width, height, element), ...])], the sheet's rows
        for key in self.order:
            if key not in self.elements:
                continue
            ax = self.axes[key]
            clabel = self.colorbars.get(key)
            els = [_bokeh_copy(e, clabel) for e in self.elements[key]] + _bokeh_texts(ax)
            if ax.get_yscale() == "symlog":
                els = [_y_through(e, ax.yaxis.get_transform().transform) for e in els]
            el = els[0] if len(els) == 1 else hv.Overlay(els)
            name = plain_text(ax.get_title(loc="center"))
            note = _title_note(ax)
            axes = _bokeh_axes(ax, (key + "  " if len(key) == 1 else "") + name)
            el = el.opts(backend="bokeh", toolbar="above", hooks=[_bokeh_notes(note)], **axes)
            box = ax.get_window_extent()      # display pixels of the laid-out static sheet
            line = next((r for top, r in rows if abs(top - box.y1) < 0.1 * dpi), None)
            if line is None:
                rows.append((box.y1, line := []))
            # as large as on the static sheet, plus room for bokeh's axis labels and toolbar
            # the note's lines stand above the frame and vertical term names below it: the panel
            # grows by them
            line.append((box.x0, box.width / dpi * HTML_PX_PER_IN + 70 + (90 if clabel else 0),
                         box.height / dpi * HTML_PX_PER_IN + 100 + 15 * len(note) + (50 if "xrotation" in axes else 0),
                         el))
        renderer = hv.renderer("bokeh")
        lines = []
        for _, line in rows:
            fit = min(1.0, HTML_MAX_WIDTH / sum(w for _, w, _, _ in line))   # a row of 8 heat maps: narrower panels
            lines.append(row(*[renderer.get_plot(el.opts(backend="bokeh", width=int(w * fit), height=int(h))).state
                               for _, w, h, el in sorted(line, key=lambda t: t[0])]))
        layout = column(*lines)
        return file_html(layout, INLINE, title)

    def save_html(self, path, title: str) -> Path:
        """Write `to_html` to `path` (atomically); nothing under `make test`."""
        from .datasets import atomic_write
        path = Path(path)
        if saving_enabled():
            text = self.to_html(title)
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), mode=0o644)
        return path

    def _repr_png_(self):
        """Notebook display at screen resolution (the saved PNG is at DPI)."""
        return self.to_bytes("png", dpi=110)


def save(sheet: Sheet, stem, formats=("png", "svg")) -> list:
    """Write a sheet to stem.png / stem.svg (see Sheet.save). With PLASTICITY_REPRO_HTML_DIR set
    (`make html`) also its interactive copy, <that folder>/<stem's folder name>/<stem's name>.html."""
    out = sheet.save(stem, formats)
    html = os.environ.get("PLASTICITY_REPRO_HTML_DIR")
    if html and saving_enabled():
        stem = Path(stem)
        out.append(sheet.save_html(Path(html) / stem.parent.name / (stem.name + ".html"),
                                   title=f"{stem.name} ({stem.parent.name})"))
    return out


# -- small drawing helpers ------------------------------------------------------------------------
_MATH = ((r"\tilde{", "~{"), (r"\mathrm{", "{"), (r"\mathdefault{", "{"), (r"\tau", "τ"),
         (r"\times", "×"), (r"\Delta", "Δ"), (r"\sigma", "σ"), (r"\rho", "ρ"), (r"\mu", "μ"), (r"\geq", "≥"),
         (r"\leq", "≤"), ("^2", "²"), (r"\,", " "), ("\\", ""))


def plain_text(text: str) -> str:
    """Mathtext as plain Unicode, for the interactive copy: "$w\\tilde{y}y$" -> "wỹy",
    "$R^2$" -> "R²", "$\\tau_{x}$" -> "τ_x"."""
    import re
    out = str(text)
    for a, b in _MATH:
        out = out.replace(a, b)
    out = re.sub(r"~\{(.)\}", "\\1\u0303", out)          # a tilde over one letter: combining tilde
    out = re.sub(r"_\{([^{}]*)\}", r"_\1", out)
    return out.replace("{", "").replace("}", "").replace("$", "")


# matplotlib style options -> bokeh's (HoloViews names)
_BOKEH_STYLE = {"color": "color", "alpha": "alpha", "linewidth": "line_width", "facecolor": "fill_color",
                "edgecolor": "line_color", "cmap": "cmap"}
_BOKEH_DASH = {"--": "dashed", ":": "dotted", "-.": "dashdot", "-": "solid"}
_BOKEH_HOVER = ("Curve", "Scatter", "Image", "QuadMesh")
# a clipped or flagged point keeps its marker in the interactive copy (house style: values beyond
# an axis limit are drawn with a different marker)
_BOKEH_MARKER = {"o": "circle", "v": "inverted_triangle", "^": "triangle", "X": "x", "x": "x", "D": "diamond",
                 "s": "square", "+": "cross"}


HTML_PX_PER_IN = 180   # the interactive copy: a 7-in sheet becomes about 1300 px wide
HTML_MAX_WIDTH = 1400  # px; a wider row of panels is narrowed to it


def _bokeh_copy(el, clabel: str | None = None):
    """A copy of a HoloViews element (or overlay) with its matplotlib colours, widths, dashes and
    marker sizes given to the bokeh backend as well; an image or mesh of a panel with a colour bar
    (`clabel`, its label) gets the bar."""
    import holoviews as hv
    if isinstance(el, hv.Overlay):
        return hv.Overlay([_bokeh_copy(e, clabel) for e in el])
    style = hv.Store.lookup_options("matplotlib", el, "style").kwargs
    opts = {}
    from matplotlib.colors import is_color_like, to_hex
    for k, v in style.items():
        if k not in _BOKEH_STYLE or v is None:
            continue
        if k == "cmap":
            opts["cmap"] = getattr(v, "name", v)
        elif k == "alpha" or (isinstance(v, str) and is_color_like(v)):
            opts[_BOKEH_STYLE[k]] = v if k == "alpha" else to_hex(v)   # "k" would name a dimension in bokeh
    if "linestyle" in style:
        opts["line_dash"] = _BOKEH_DASH.get(style["linestyle"], "solid")
    if "s" in style and type(el).__name__ == "Scatter":
        opts["size"] = float(np.sqrt(style["s"])) * 1.4       # area in pt^2 -> diameter in px
    if type(el).__name__ == "Scatter":
        if "marker" in style:
            opts["marker"] = _BOKEH_MARKER.get(str(style["marker"]), "circle")
        if isinstance(style.get("edgecolors"), str) and is_color_like(style["edgecolors"]):
            opts["line_color"] = to_hex(style["edgecolors"])
        if str(style.get("facecolors")) == "none":                # an open marker
            opts["fill_alpha"] = 0.0
    if type(el).__name__ == "Rectangles" and "color" in opts:
        opts.setdefault("fill_color", opts.get("color"))
    if type(el).__name__ in _BOKEH_HOVER:
        opts["tools"] = ["hover"]
    plot = hv.Store.lookup_options("matplotlib", el, "plot").kwargs
    if "clim" in plot:
        opts["clim"] = plot["clim"]
    if clabel and type(el).__name__ in ("Image", "QuadMesh", "HeatMap"):
        opts.update(colorbar=True, clabel=plain_text(clabel))
    return el.clone().opts(backend="bokeh", **opts)


def _title_note(ax) -> list:
    """The lines of the note `_title` puts under a panel's title (its statistics, N, a clipping
    note): the annotation anchored at the top centre of the axes."""
    from matplotlib.text import Annotation
    for t in ax.texts:
        if isinstance(t, Annotation) and t.xycoords == "axes fraction" and tuple(t.xy) == (0.5, 1.0):
            return [plain_text(line) for line in t.get_text().split("\n") if line.strip()]
    return []


def _bokeh_notes(lines):
    """A HoloViews hook putting `lines` under a bokeh plot's title (a title's text may hold
    newlines: further lines of the same title)."""
    def hook(plot, element):
        if lines:
            plot.state.title.text = "\n".join([plot.state.title.text or "", *lines])
    return hook


def _bokeh_texts(ax) -> list:
    """The panel's texts as HoloViews Text elements with their colour and alignment: those placed
    in data coordinates (`ax.text`: direct labels, span labels), and the labels `_direct_labels`
    and `_mark_blowup_row` hang off the right edge at a data height (set inside the edge: bokeh
    draws nothing outside the frame). The note under the title goes with the title."""
    import holoviews as hv
    from matplotlib.colors import to_hex
    from matplotlib.text import Annotation
    out = []
    x_right = max(ax.get_xlim())
    for t in ax.texts:
        if not t.get_text().strip():
            continue
        halign = {"left": "left", "right": "right"}.get(t.get_ha(), "center")
        if isinstance(t, Annotation):
            if t.xycoords != ("axes fraction", "data") or t.xy[0] != 1.0:
                continue
            (x, y), halign = (x_right, t.xy[1]), "right"
        elif t.get_transform() == ax.transData:
            x, y = t.get_position()
        else:
            continue
        out.append(hv.Text(float(x), float(y), plain_text(t.get_text()), fontsize=8, halign=halign,
                           valign={"bottom": "bottom", "top": "top", "baseline": "bottom"}.get(t.get_va(), "center"))
                   .opts(backend="bokeh", text_color=to_hex(t.get_color())))
    return out


def _y_through(el, f):
    """A copy of `el` (an overlay, a HoloViews element or Text) with its y values passed through
    `f` (a symlog axis's transform: bokeh then draws it on a linear axis); options kept."""
    import holoviews as hv
    if isinstance(el, hv.Overlay):
        return hv.Overlay([_y_through(e, f) for e in el])
    g = lambda v: np.asarray(f(np.asarray(v, float).reshape(-1)), float).reshape(np.shape(v))  # noqa: E731
    if isinstance(el, hv.Text):
        out = el.clone()
        out.y = float(g(el.y))
        return out
    if isinstance(el, (hv.HLine,)):
        return el.clone(data=float(g(el.data)))
    if isinstance(el, (hv.Segments, hv.Rectangles)):
        ys = [el.kdims[1], el.kdims[3]]
    elif isinstance(el, hv.Area):      # a band: both of its edges
        ys = el.vdims
    elif isinstance(el, (hv.Scatter, hv.Curve)):
        ys = el.vdims[:1]
    else:                       # no y values (VLine, VSpan) or none drawn on a symlog axis here
        return el
    df = el.dframe()
    for d in ys:
        df[d.name] = g(df[d.name].to_numpy())
    return el.clone(data=df)


def _symlog_ticks(ax) -> tuple:
    """(limits, [(position, label)]) of a symlog y axis in its transformed units (what _y_through
    draws), labels as on the static panel."""
    f = ax.yaxis.get_transform().transform
    lo, hi = (float(f(np.array([v]))[0]) for v in ax.get_ylim())
    ticks = [(float(f(np.array([float(t.get_position()[1])]))[0]), plain_text(t.get_text()))
             for t in ax.get_yticklabels()]
    return (lo, hi), [(v, t) for v, t in ticks if min(lo, hi) <= v <= max(lo, hi) and t]


def _bokeh_axes(ax, title: str) -> dict:
    """The static panel's axes as bokeh plot options: title, labels, limits, log scales, ticks (a
    symlog axis: in its transformed units, `_symlog_ticks`)."""
    opts = dict(title=title, xlabel=plain_text(ax.get_xlabel()),
                ylabel=plain_text(ax.get_ylabel()), xlim=tuple(ax.get_xlim()), ylim=tuple(ax.get_ylim()),
                logx=ax.get_xscale() == "log", logy=ax.get_yscale() == "log", show_legend=False)
    if ax.get_yscale() == "symlog":
        opts["ylim"], opts["yticks"] = _symlog_ticks(ax)
    for axis in ("x", "y") if "yticks" not in opts else ("x",):
        labels = _named_ticks(ax, axis, sorted(opts[axis + "lim"]))
        if labels is not None:
            opts[axis + "ticks"] = labels
            if axis == "x" and sum(bool(t) for _, t in labels) > 10:   # 20 upright term names overlap
                opts["xrotation"] = 90
    if not ax.get_yticks().size or not ax.yaxis.get_visible():   # hidden in the static panel (a timeline)
        opts["yaxis"] = None
    if opts["logy"] and min(opts["ylim"]) <= 0:
        opts.pop("ylim")
    if opts["logx"] and min(opts["xlim"]) <= 0:
        opts.pop("xlim")
    return opts


def _named_ticks(ax, axis: str, lim) -> list | None:
    """(position, text) of `ax`'s tick labels on `axis` within `lim` when they name things (terms,
    rules) or were blanked on purpose (a heat map's rows named only on its row's first panel);
    None when they are numbers, which bokeh draws itself."""
    get = ax.get_xticklabels if axis == "x" else ax.get_yticklabels
    labels = [(float(t.get_position()[0 if axis == "x" else 1]), plain_text(t.get_text())) for t in get()]
    labels = [(v, t) for v, t in labels if lim[0] <= v <= lim[1]]
    if labels and not any(t for _, t in labels):
        return labels
    labels = [(v, t) for v, t in labels if t]
    return labels if any(not _is_number(t) for _, t in labels) else None


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-").replace("×", "").replace("10^", "1e"))
        return True
    except ValueError:
        return False


def _title(ax, text: str, note: str | None = None):
    """Panel title, with an optional smaller second line (a statistic, N, a clipping note)."""
    if note:
        note = _wrap_to_axes(ax, note)
    n = note.count("\n") + 1 if note else 0
    pad = RC["axes.titlepad"] + (n * FONT["note"] * 1.25 + 2 if n else 0)
    ax.set_title(text, fontsize=FONT["title"], loc="center", pad=pad)
    ax._house_title_pad = pad      # Sheet.letter sets the left title with the same pad (it is shared)
    if note:
        ax.annotate(note, xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=FONT["note"], color="#333333", linespacing=1.1)


def _wrap_to_axes(ax, text: str, size: float = FONT["note"]) -> str:
    """`text` broken into lines no wider than the panel (at ~0.55 em per character of `size` pt),
    at '; ' or spaces: a note wider than its panel makes the constrained layout collapse the row."""
    import textwrap
    width_in = ax.get_position().width * ax.get_figure(root=True).get_size_inches()[0]
    chars = max(int(width_in * 72 / (0.55 * size)), 20)
    nb = "\u00a0"   # no break inside "p = 0.04", "0.40 → 0.06", "N = 40 vs 20"
    for op in (" = ", " → ", " vs ", " < ", " > "):
        text = text.replace(op, op.replace(" ", nb))
    out = []
    for line in text.split("\n"):
        cur = ""
        for part in line.split("; "):
            cand = f"{cur}; {part}" if cur else part
            if len(cand) <= chars:
                cur = cand
                continue
            if cur:
                out.append(cur + ";")
            *full, cur = textwrap.wrap(part, chars) or [""]   # a part longer than the panel
            out.extend(full)
        out.append(cur)
    return "\n".join(out).replace(nb, " ")


def _direct_labels(ax, items, min_gap_frac=0.075, logy=False):
    """Labels at the right end of curves, nudged apart vertically. items: (y, text, colour).
    Placed now and again by `Sheet.letter` once the layout has fixed the panel's height, so
    that neighbours stand at least a line of their type apart."""
    if not items:
        return
    items = sorted(items, key=lambda r: r[0])
    notes = [ax.annotate(t, xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(2, 0),
                         textcoords="offset points", va="center", ha="left", fontsize=FONT["legend"], color=c,
                         annotation_clip=False) for y, t, c in items]
    ax._house_direct = getattr(ax, "_house_direct", []) + [(notes, [y for y, _, _ in items], min_gap_frac, logy)]
    _place_direct_labels(ax)


def _place_direct_labels(ax):
    """Set the heights of the panel's `_direct_labels`: each at its curve's end, moved up to keep
    min_gap_frac of the y span, or one line of the labels' type (whichever is more), from the one
    below, and the stack moved down as a whole where it would leave the axes."""
    lo, hi = ax.get_ylim()
    height_pt = ax.get_window_extent().height / ax.get_figure(root=True).dpi * 72
    for notes, ys, min_gap_frac, logy in getattr(ax, "_house_direct", []):
        f = (lambda v: np.log10(v)) if logy else (lambda v: v)
        g = (lambda v: 10 ** v) if logy else (lambda v: v)
        span = f(hi) - f(lo)
        gap = max(min_gap_frac, 1.2 * FONT["legend"] / height_pt if height_pt > 0 else 0.0) * span
        placed = []
        for y in (f(v) for v in ys):
            placed.append(max(y, placed[-1] + gap) if placed else y)
        over = placed[-1] - (f(hi) - 0.02 * span)
        if over > 0:
            placed = [y - over for y in placed]
        for note, y in zip(notes, placed):
            note.xy = (1.0, g(y))


def _legend_outside(ax, handles, labels, loc="upper left", anchor=(1.01, 1.0), ncol=1, title=None):
    """A legend beside the axes (outside the data area)."""
    leg = ax.legend(handles, labels, loc=loc, bbox_to_anchor=anchor, ncol=ncol, frameon=False,
                    fontsize=FONT["legend"], handlelength=1.4, handletextpad=0.4, borderaxespad=0.0,
                    columnspacing=0.8, labelspacing=0.3, title=title, title_fontsize=FONT["legend"])
    return leg


def _line_handle(color, ls="-", marker=None, lw=LINE):
    from matplotlib.lines import Line2D
    return Line2D([], [], color=color, linestyle=ls, marker=marker, linewidth=lw, markersize=3)


def _clip(values, lo=None, hi=None):
    """Values clipped into [lo, hi] and the masks of those below lo / above hi."""
    v = np.asarray(values, float)
    below = np.zeros(v.shape, bool) if lo is None else v < lo
    above = np.zeros(v.shape, bool) if hi is None else v > hi
    return np.clip(v, lo if lo is not None else -np.inf, hi if hi is not None else np.inf), below, above


def _box_and_points(i, v, color, dims, half_width, spread, box_alpha, size, alpha, lo=None, hi=None):
    """One group's interquartile box, median bar and points at x = i (points spread over `spread`
    axis units). Points below lo or above hi are drawn on that limit as open triangles (down,
    up) so that an axis limit hides no network. Returns the elements and the masks (below,
    above) for the panel's note to count."""
    import holoviews as hv
    q1, med, q3 = _quartiles(v)
    xs = i + _offsets(len(v), spread)
    vc, below, above = _clip(v, lo=lo, hi=hi)
    inside = ~(below | above)
    els = [hv.Rectangles([(i - half_width, q1, i + half_width, q3)]).opts(
               facecolor=color, alpha=box_alpha, edgecolor=color, linewidth=0.6),
           hv.Segments([(i - half_width, med, i + half_width, med)]).opts(color=color, linewidth=1.4),
           hv.Scatter((xs[inside], vc[inside]), *dims).opts(color=color, s=size, alpha=alpha)]
    for out, marker in ((below, "v"), (above, "^")):
        if out.any():
            els.append(hv.Scatter((xs[out], vc[out]), *dims).opts(
                color=color, s=14, marker=marker, facecolors="none", edgecolors=color, linewidth=0.6))
    return els, below, above


def _numbered_clip_ids(svg: bytes) -> bytes:
    """An SVG with matplotlib's clip-path ids ("p" and 10 hex digits: a hash of the clip
    rectangle's full-precision coordinates, which can differ in their last bits between two
    drawings of the same figure, on a fresh clone against a used checkout) renamed clip0, clip1,
    ... in order of definition, so that the file depends only on what is drawn."""
    import re
    ids = dict.fromkeys(re.findall(rb'<clipPath id="(p[0-9a-f]{10})"', svg))
    new = {old: b"clip%d" % i for i, old in enumerate(ids)}
    return re.sub(rb'(?<=id=")p[0-9a-f]{10}(?=")|(?<=url\(#)p[0-9a-f]{10}(?=\))',
                  lambda m: new.get(m.group(0), m.group(0)), svg)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _offsets(n: int, width: float = 0.5) -> np.ndarray:
    """Deterministic horizontal spread of n points within +-width/2 (no random jitter)."""
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-width / 2, width / 2, n)


def _quartiles(v):
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return np.percentile(v, [25, 50, 75]) if v.size else np.full(3, np.nan)


def _set_term_xticks(ax, terms, rotation=90):
    ax.set_xticks(np.arange(len(terms)))
    ax.set_xticklabels([term_label(t) for t in terms], rotation=rotation, fontsize=FONT["ticks"])
    for lab, t in zip(ax.get_xticklabels(), terms):
        lab.set_color(term_text_color(t))
    ax.set_xlim(-0.6, len(terms) - 0.4)


# -- Fig 2 --------------------------------------------------------------------------------------
def _param_index(search: xr.Dataset, kind: str, synapse: str = "ee"):
    names = [str(p) for p in search.param.values]
    sel = [i for i, n in enumerate(names) if n.startswith(synapse + ":") and (("tau[" in n) == (kind == "tau"))]
    return sel, [names[i].split(":", 1)[1] for i in sel]


def _search_param(search, name, default):
    import json
    try:
        return json.loads(search.attrs["params_json"])["search"][name]
    except (KeyError, ValueError, TypeError):
        return default


def coefficient_traces(sheet: Sheet, key: str, search: xr.Dataset, run: int, kind: str = "coef", label_top: int = 5):
    """Best-so-far coefficients (or time constants, ms) of one run versus evaluations, every term
    in its colour (w-terms dashed); the label_top largest at the end labelled directly."""
    import holoviews as hv
    sel, names = _param_index(search, kind)
    hist = search.best_params_history.isel(run=run).values[:, sel] * (1e3 if kind == "tau" else 1.0)
    evals = search.evaluations.isel(run=run).values
    ylabel = "time constant τ (ms)" if kind == "tau" else "coefficient $c_k$"
    curves = [hv.Curve((evals, hist[:, j]), "evaluations", ylabel).opts(
        color=term_color(n), linewidth=0.8, linestyle="--" if n.startswith("w") or n.startswith("tau[w") else "-")
        for j, n in enumerate(names)]
    if kind != "tau":
        curves.append(hv.HLine(0).opts(color="#bbbbbb", linewidth=0.5))
    sheet.render(key, hv.Overlay(curves), aspect="auto", xlabel="evaluations", ylabel=ylabel)
    ax = sheet.ax(key)
    top = np.argsort(-np.abs(hist[-1] - (0 if kind != "tau" else 5.0)))[:label_top]
    _direct_labels(ax, [(hist[-1, j], term_label(names[j]), term_color(names[j])) for j in top])
    _title(ax, f"{'time constants' if kind == 'tau' else 'coefficients'}, best run ({run})")


def loss_curves(sheet: Sheet, key: str, search: xr.Dataset, run: int):
    """Best train loss and the incumbent's test loss per network versus evaluations (log y)."""
    import holoviews as hv
    evals = search.evaluations.isel(run=run).values
    n_train = max(1, int(_search_param(search, "n_train", 1)))
    n_test = max(1, int(_search_param(search, "n_test", 1)))
    train = search.best_train_loss_history.isel(run=run).values / n_train
    test = search.best_test_loss_history.isel(run=run).values / n_test
    ok = np.isfinite(test) & (test > 0)
    el = hv.Curve((evals, train), "evaluations", "loss per network").opts(color="k")
    el = el * hv.Curve((evals[ok], test[ok]), "evaluations", "loss per network").opts(color="#d62728")
    sheet.render(key, el, logy=True, aspect="auto")
    ax = sheet.ax(key)
    _direct_labels(ax, [(train[-1], f"train ({n_train} nets)", "k"),
                        (test[ok][-1] if ok.any() else train[-1], f"test ({n_test} nets)", "#d62728")],
                   logy=True, min_gap_frac=0.12)
    _title(ax, f"loss, best run ({run})")


def r2_comparison(sheet: Sheet, key: str, ev: xr.Dataset, clip: float = -0.5):
    """Decoder R^2 per network (points) and quartiles (box) for each learned rule and no plasticity,
    on the same fresh networks. Values below `clip` are drawn on the clip line as open triangles
    and counted. A network that blew up has no R² (its rates are the penalty's): left out and
    counted, as in the Fig 2 claim. Mann-Whitney U of all learned-rule networks against no plasticity."""
    import holoviews as hv
    from .experiments.evaluate import decoder_r2_unless_blown_up
    rules = [str(r) for r in ev.rule.values]
    r2 = decoder_r2_unless_blown_up(ev)
    n_blew = int(ev.blew_up.sum()) if "blew_up" in ev else 0
    els, n_clip, lows, clipped_rules = [], 0, [], set()
    for i, r in enumerate(rules):
        v = r2.sel(rule=r).values.astype(float)
        v = v[np.isfinite(v)]
        group, below, _ = _box_and_points(i, v, rule_color(r), ("rule", "decoder $R^2$"), half_width=0.3,
                                          spread=0.45, box_alpha=0.18, size=5, alpha=0.8, lo=clip)
        els += group
        n_clip += int(below.sum())
        lows += list(v[below])
        if below.any():
            clipped_rules.add(r)
    sheet.render(key, hv.Overlay(els), aspect="auto", ylim=(clip - 0.05, 1.02), xlabel="", ylabel="decoder $R^2$")
    ax = sheet.ax(key)
    ax.set_xticks(range(len(rules)))
    many = len(rules) > 4     # "run 0 .. run 7" would overlap: run numbers under a "learned rule (run)" label
    ax.set_xticklabels([r.replace("no plasticity", "no\nplasticity").removeprefix("run " if many else "\0")
                        for r in rules], fontsize=FONT["ticks"])
    ax.set_xlim(-0.6, len(rules) - 0.4)
    ax.set_xlabel("learned rule (run)" if many and any(r.startswith("run ") for r in rules) else "")
    learned = [r for r in rules if rule_family(r) != "no plasticity"]
    notes = []
    from .experiments.stats import mann_whitney
    if "no plasticity" in rules and learned:
        a = np.concatenate([r2.sel(rule=r).values for r in learned])
        b = r2.sel(rule="no plasticity").values
        s = mann_whitney(a, b, alternative="greater")    # what the Fig 2 claim tests (claims.fig2_r2)
        notes.append(f"learned > none, one-sided Mann–Whitney:\n{fmt_p(s['p'])}, r = {s['r']:.2f}, "
                     f"N = {s['n_a']} vs {s['n_b']}")
    extra = []
    if n_clip:
        where = "no plasticity, " if clipped_rules == {"no plasticity"} else ""
        extra.append(f"▽ {n_clip} below {clip:g} ({where}min {min(lows):.1f})")
    if n_blew:
        extra.append(f"{n_blew} blew up: left out")
    if extra:
        notes.append("; ".join(extra))
    _title(ax, "decoding on fresh networks", "\n".join(notes))


def _sorted_by_last(ev, rule, example=0, n_e=25):
    from .experiments.evaluate import firing_order, mean_firing_time
    r = ev.example_rates.sel(rule=rule).isel(example=example)
    dt_ms = float(r.time.values[1] - r.time.values[0])
    order = firing_order(mean_firing_time(r.isel(rate_activation=-1).values, dt_ms * 1e-3)[:n_e])
    return r, dt_ms, order


def rasters(sheet: Sheet, keys, ev: xr.Dataset, rule, example: int = 0, n_e: int = 25):
    """E rates at the recorded activations, cells sorted by the mean firing time of the last one,
    on one colour scale (clipped at the 99.5th percentile; the bar's arrow marks the clipped)."""
    import holoviews as hv
    r, dt_ms, order = _sorted_by_last(ev, rule, example, n_e)
    t = r.time.values
    imgs = [r.sel(rate_activation=a).values[:, :n_e][:, order].T for a in r.rate_activation.values]
    top = float(np.percentile(np.concatenate([i.ravel() for i in imgs]), 99.5)) or 1.0
    plot = None
    for j, (k, a, img) in enumerate(zip(keys, r.rate_activation.values, imgs)):
        el = hv.Image(img[::-1], bounds=(t[0], 0, t[-1] + dt_ms, n_e), kdims=["time (ms)", "E cell (sorted)"])
        plot = sheet.render(k, el, cmap="Greys", clim=(0, top), aspect="auto")
        ax = sheet.ax(k)
        ax.set_title(f"{rule}: activation {int(a)}" if j == 0 else f"activation {int(a)}", fontsize=FONT["title"])
        if j:
            ax.set_ylabel("")
            ax.set_yticklabels([])
    sheet.colorbar(keys, plot.handles["artist"], f"rate r ({RATE_UNIT})", extend="max")


def weight_matrices(sheet: Sheet, keys, ev: xr.Dataset, rule, example: int = 0, n_e: int = 25):
    """E->E weights W[post, pre] at the first and last recorded activation, both axes in the
    firing order of the last recorded activation; one colour scale clipped at the 99th
    percentile of the last matrix (the bar's arrow)."""
    import holoviews as hv
    _, _, order = _sorted_by_last(ev, rule, example, n_e)
    w = ev.example_weights.sel(rule=rule).isel(example=example)
    mats = [w.sel(weight_activation=a).values[:n_e, :n_e][np.ix_(order, order)] for a in w.weight_activation.values]
    vmax = float(np.percentile(mats[-1], 99)) or 1.0
    plot = None
    for j, (k, a, m) in enumerate(zip(keys, w.weight_activation.values, mats)):
        el = hv.Image(m[::-1], bounds=(0, 0, n_e, n_e), kdims=["pre E (sorted)", "post E (sorted)"])
        plot = sheet.render(k, el, cmap="viridis", clim=(0, vmax), aspect="equal")
        ax = sheet.ax(k)
        ax.set_title(f"{rule}: activation {int(a)}" if j == 0 else f"activation {int(a)}", fontsize=FONT["title"])
        if j:
            ax.set_ylabel("")
            ax.set_yticklabels([])
    sheet.colorbar(keys, plot.handles["artist"], f"E→E weight w ({WEIGHT_UNIT})",
                   extend="max" if max(float(m.max()) for m in mats) > vmax else "neither")


def kernel_plot(sheet: Sheet, key: str, ev: xr.Dataset):
    """Mean E->E weight versus the lag t_post - t_pre of mean firing times (pooled over the
    evaluation networks) at the last activation, per rule, and before plasticity. Up to 4 learned
    rules get a line style each; more are thin lines of one style under one legend entry (8 runs
    in 4 styles would pair runs that are not the same)."""
    import holoviews as hv
    lag = ev.lag.values
    rules = [str(r) for r in ev.rule.values]
    els, handles, labels = [], [], []
    learned = [r for r in rules if rule_family(r) not in ("no plasticity",)]
    styles = ["-", "--", ":", "-."]
    many = len(learned) > len(styles)
    for i, r in enumerate(rules):
        c = rule_color(r)
        ls = "-" if many or r not in learned else styles[learned.index(r)]
        thin = many and r in learned
        els.append(hv.Curve((lag, ev.kernel.sel(rule=r).values), "lag $t_{post} - t_{pre}$ (ms)",
                            f"mean E→E weight ({WEIGHT_UNIT})").opts(color=c, linestyle=ls,
                                                                     **(dict(linewidth=0.7, alpha=0.75) if thin else {})))
        if thin and r != learned[0]:
            continue
        handles.append(_line_handle(c, ls))
        labels.append(f"learned ({len(learned)} runs)" if thin else r)
    els.append(hv.Curve((lag, ev.kernel_initial.isel(rule=0).values), "lag $t_{post} - t_{pre}$ (ms)",
                        f"mean E→E weight ({WEIGHT_UNIT})").opts(color=RULE_COLORS["initial"], linestyle=":", linewidth=1.4))
    handles.append(_line_handle(RULE_COLORS["initial"], ":", lw=1.4))
    labels.append("initial")
    els.append(hv.VLine(0).opts(color="#dddddd", linewidth=0.5))
    sheet.render(key, hv.Overlay(els), aspect="auto", xlabel="lag $t_{post} - t_{pre}$ (ms)",
                 ylabel=f"mean E→E weight ({WEIGHT_UNIT})")
    ax = sheet.ax(key)
    _legend_outside(ax, handles, labels)
    _title(ax, "weight vs firing lag")


def coefficient_heatmaps(sheet: Sheet, keys, search: xr.Dataset, synapse: str = "ee", pct: float = 98):
    """Best-so-far coefficients of every term (rows) versus evaluations (columns) for every run
    (one panel each), on one diverging scale clipped at the pct-th percentile of |c|."""
    import holoviews as hv
    sel, names = _param_index(search, "coef", synapse)
    runs = list(range(search.sizes["run"]))[:len(keys)]
    allv = np.abs(search.best_params_history.values[:, :, sel])
    vmax = float(np.percentile(allv[np.isfinite(allv)], pct)) or 1.0
    plot = None
    for j, (k, run) in enumerate(zip(keys, runs)):
        h = search.best_params_history.isel(run=run).values[:, sel]           # (generation, term)
        ev_ = search.evaluations.isel(run=run).values.astype(float)
        edges = np.r_[0.0, ev_]
        yedges = np.arange(len(names) + 1) - 0.5
        el = hv.QuadMesh((edges, yedges, h.T[::-1]), ["evaluations", "term"], "c")
        plot = sheet.render(k, el, cmap="RdBu_r", clim=(-vmax, vmax), aspect="auto")
        ax = sheet.ax(k)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels([term_label(n) for n in names[::-1]] if j == 0 else [], fontsize=FONT["ticks"] - 0.5)
        if j == 0:
            for lab, n in zip(ax.get_yticklabels(), names[::-1]):
                lab.set_color(term_text_color(n))
        ax.set_ylabel("")
        ax.set_title(f"run {run}", fontsize=FONT["title"])
        ax.tick_params(axis="y", length=0)
    sheet.colorbar(keys, plot.handles["artist"], "coefficient $c_k$", extend="both" if allv.max() > vmax else "neither",
                   aspect=12)


# -- Fig 3 / 4: distributions, dropout, refit ---------------------------------------------------
STRIP_BAND_MIN = 4   # rules a strip category needs before `_strip` draws its quartile band


def _strip(ax_key, sheet, values_per_cat, ylabel, colors, logy=False, symlog=None, ylim=None, box=True):
    """Points per category (rules), a median bar and (optionally) the interquartile box."""
    import holoviews as hv
    els = []
    for i, (vals, c) in enumerate(zip(values_per_cat, colors)):
        vals = np.asarray(vals, float)
        ok = np.isfinite(vals)
        xs = i + _offsets(len(vals), 0.5)
        q1, med, q3 = _quartiles(vals)
        if box and ok.sum() >= STRIP_BAND_MIN:
            els.append(hv.Rectangles([(i - 0.32, q1, i + 0.32, q3)]).opts(facecolor=c, alpha=0.15, edgecolor="none"))
        if ok.any():
            els.append(hv.Segments([(i - 0.36, med, i + 0.36, med)]).opts(color=c, linewidth=1.3))
        els.append(hv.Scatter((xs[ok], vals[ok]), "x", ylabel).opts(color=c, s=7, alpha=0.85, edgecolors="none"))
    opts = dict(aspect="auto", logy=logy, xlabel="", ylabel=ylabel)
    if ylim is not None:
        opts["ylim"] = ylim
    sheet.render(ax_key, hv.Overlay(els), **opts)
    ax = sheet.ax(ax_key)
    if symlog is not None:
        ax.set_yscale("symlog", linthresh=symlog, linscale=0.6)
    ax.set_xlabel("")
    return ax


def _strip_note(values_per_cat) -> str:
    """What `_strip` draws, for the note under a panel's title (the band only where it is drawn)."""
    band = any(np.isfinite(np.asarray(v, float)).sum() >= STRIP_BAND_MIN for v in values_per_cat)
    return "a point per rule; bar: median" + ("; band: quartiles" if band else "")


def coefficient_distributions(sheet: Sheet, key: str, coefs: xr.DataArray, terms=None, title=None):
    """Coefficient of each term across the learned rules (one point per rule, bar: median, band:
    quartiles), terms in their colours; symmetric-log y (linear within +-1e-3) so small and large
    both show; the note under the title says so."""
    terms = [str(t) for t in coefs.term.values] if terms is None else list(terms)
    vals = [coefs.sel(term=t).values for t in terms]
    linear = 1e-3    # the symlog axis is linear within +-linear
    ax = _strip(key, sheet, vals, "coefficient $c_k$", [term_color(t) for t in terms], symlog=linear)
    ax.axhline(0, color="#bbbbbb", linewidth=0.5, zorder=0)
    _set_term_xticks(ax, terms)
    _title(ax, title or f"coefficients across rules (N = {coefs.sizes.get('rule', coefs.sizes.get('run', 0))})",
           f"{_strip_note(vals)}; y linear within ±{linear:g}")


def tau_distributions(sheet: Sheet, key: str, taus: xr.DataArray, bounds_ms=None):
    """Time constant (ms) of each trace-bearing term across the learned rules (log y; the search's
    bounds dotted, default search.ParamSpace's tau_min and tau_max)."""
    if bounds_ms is None:
        from .search import ParamSpace
        bounds_ms = (ParamSpace.tau_min * 1e3, ParamSpace.tau_max * 1e3)
    slots = [str(s) for s in taus.tau_slot.values]
    vals = [taus.sel(tau_slot=s).values * 1e3 for s in slots]
    ax = _strip(key, sheet, vals, "time constant τ (ms)", [term_color(s) for s in slots], logy=True,
                ylim=(bounds_ms[0] / 1.3, bounds_ms[1] * 1.3))
    for b in bounds_ms:
        ax.axhline(b, color="#999999", linewidth=0.5, linestyle=":", zorder=0)
    ax.set_xticks(np.arange(len(slots)))
    ax.set_xticklabels([term_label(f"tau[{s}]") for s in slots], rotation=90, fontsize=FONT["ticks"])
    for lab, s in zip(ax.get_xticklabels(), slots):
        lab.set_color(term_text_color(s))
    ax.set_xlim(-0.6, len(slots) - 0.4)
    _title(ax, "time constants", f"{_strip_note(vals)}; dotted: search bounds {bounds_ms[0]:g}-{bounds_ms[1]:g} ms")


def _mark_blowup_row(ax, y):
    """A dotted line and a label at the height where blown-up networks are drawn (off scale)."""
    ax.axhline(y, color="#999999", linewidth=0.5, linestyle=":", zorder=0)
    ax.annotate("blew up\n(off scale)", xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(2, 0),
                textcoords="offset points", ha="left", va="center", fontsize=FONT["note"], color="#555555",
                annotation_clip=False)


PENALTY_FLOOR = 1e7   # a loss at or above this is the blow-up penalty (1e8 per network), not a loss


def dropout_losses(sheet: Sheet, key: str, dd: xr.Dataset, cap: float | None = None):
    """Per-network loss of every rule with each term set to 0 (and the full rule), rules pooled;
    log y. Networks that blew up (penalty >= 1e7) are drawn at the top edge as crosses and counted."""
    import holoviews as hv
    variants = [str(v) for v in dd.variant.values]
    loss = dd.loss.values                                   # (rule, variant, network)
    ok_all = loss[loss < PENALTY_FLOOR]
    cap = cap or float(ok_all.max()) * 2.0
    lo = float(ok_all.min()) / 1.5
    els, n_blow = [], 0
    full_med = float(np.median(loss[:, variants.index("full")]))
    els.append(hv.HLine(full_med).opts(color="#555555", linewidth=0.6, linestyle="--"))
    for i, v in enumerate(variants):
        vals = loss[:, i].ravel().astype(float)
        c = "#333333" if v == "full" else term_color(v)
        blow = vals >= PENALTY_FLOOR
        n_blow += int(blow.sum())
        q1, med, q3 = _quartiles(vals)        # penalties included: they are what the rule does
        xs = i + _offsets(len(vals), 0.55)
        els.append(hv.Segments([(i - 0.38, min(med, cap), i + 0.38, min(med, cap))]).opts(color=c, linewidth=1.3))
        els.append(hv.Scatter((xs[~blow], vals[~blow]), "x", "loss per network").opts(color=c, s=4, alpha=0.7))
        if blow.any():
            els.append(hv.Scatter((xs[blow], np.full(blow.sum(), cap)), "x", "loss per network").opts(
                color=c, s=10, marker="X", edgecolors="none"))
    sheet.render(key, hv.Overlay(els), logy=True, ylim=(lo, cap * 1.6), aspect="auto", ylabel="loss per network")
    ax = sheet.ax(key)
    ax.set_xticks(np.arange(len(variants)))
    ax.set_xticklabels(["full"] + [term_label(v) for v in variants[1:]], rotation=90, fontsize=FONT["ticks"])
    for lab, v in zip(ax.get_xticklabels(), variants):
        lab.set_color("#333333" if v == "full" else term_text_color(v))
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.set_xlabel("term set to 0")
    if n_blow:
        _mark_blowup_row(ax, cap)
    n_rules, n_net = dd.sizes["rule"], dd.sizes["network"]
    note = f"N = {n_rules} rules × {n_net} networks; bar: median; dashed: median of the full rules"
    if n_blow:
        note += f"; crosses: {n_blow} networks that blew up (penalty 1e8, drawn on the top row, off scale)"
    _title(ax, "loss with one term dropped", note)


def dropout_shifts(sheet: Sheet, key: str, dd: xr.Dataset, top: int | None = None, title=None, ranked=None):
    """Per rule (points), the shift max(median(dropped) - median(full), 0) of each term, and its
    median over rules (bar); terms in the order of evaluate.term_ranking (median within-rule rank
    over rules, robust to blow-ups). Symmetric-log y (linear below 1); shifts from a blow-up
    penalty (>= 1e7) drawn at the top edge as crosses and counted. `ranked`: indices of the rules
    the ranking uses (spec §8's loss threshold, evaluate.ranking_selection); the others are drawn
    as open circles and do not set the order. None: all rules rank."""
    import holoviews as hv
    from .experiments.evaluate import term_ranking
    n_rules = dd.sizes["rule"]
    ranked = np.arange(n_rules) if ranked is None else np.asarray(ranked, int)
    in_rank = np.isin(np.arange(n_rules), ranked)
    terms = term_ranking(dd.isel(rule=ranked))
    terms = terms if top is None else terms[:top]
    shift = dd["shift"]
    finite = shift.values[shift.values < PENALTY_FLOOR]
    cap = max(float(finite.max()) * 2.0 if finite.size else 10.0, 10.0)
    els, n_blow = [], 0
    for i, t in enumerate(terms):
        v = shift.sel(term=t).values.astype(float)
        c = term_color(t)
        blow = v >= PENALTY_FLOOR
        n_blow += int(blow.sum())
        med = float(dd.median_shift.sel(term=t))
        xs = i + _offsets(len(v), 0.5)
        els.append(hv.Segments([(i - 0.38, min(med, cap), i + 0.38, min(med, cap))]).opts(color=c, linewidth=1.4))
        for sel, face in ((~blow & in_rank, c), (~blow & ~in_rank, "none")):
            if sel.any():
                els.append(hv.Scatter((xs[sel], v[sel]), "x", "loss shift").opts(
                    color=c, s=8, alpha=0.85, facecolors=face, edgecolors=c, linewidth=0.6))
        if blow.any():
            els.append(hv.Scatter((xs[blow], np.full(blow.sum(), cap)), "x", "loss shift").opts(
                color=c, s=14, marker="X", edgecolors="none"))
    sheet.render(key, hv.Overlay(els), aspect="auto", ylim=(0, cap * 1.4), ylabel="loss shift")
    ax = sheet.ax(key)
    ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_ylim(0, cap * 1.6)
    _set_term_xticks(ax, terms)
    ax.set_xlabel("term set to 0 (ranked)")
    if n_blow:
        _mark_blowup_row(ax, cap)
    note = (f"per rule: max(median dropped − median full, 0); N = {dd.sizes['rule']} rules, "
            f"{dd.sizes['network']} networks each; bar: median over rules; order: median rank over "
            + ("rules" if in_rank.all() else
               f"the {len(ranked)} rule{'s' if len(ranked) != 1 else ''} below the loss threshold (filled; "
               f"open: above it)"))
    if n_blow:
        note += (f"; crosses: {n_blow} rules whose dropped median is a blow-up (on the top row, off scale; "
                 "a bar there: the median over rules is one)")
    _title(ax, title or "rise of the median loss with the term set to 0", note)


def refit_plot(sheet: Sheet, key: str, rf: xr.Dataset, reference: float | None = None,
               other: xr.Dataset | None = None, other_label: str = "other terms"):
    """Median test loss per network (band: quartiles) of the top-k refits versus k, log y; the
    k-th term added is named under each k; dashed: the median loss of the full learned rules.
    `other`: a refit of other terms at its k (e.g. the paper's own three), an open diamond with
    its quartiles, named in the note."""
    import holoviews as hv
    from .experiments.refit import elbow, first_within
    k = rf.k.values.astype(float)
    q1, med, q3 = np.nanpercentile(rf.loss.values, [25, 50, 75], axis=1)
    els = [hv.Area((k, q1, q3), "k", ["loss", "q3"]).opts(facecolor="#333333", alpha=0.15, linewidth=0),
           hv.Curve((k, med), "k", "test loss per network").opts(color="k", marker="o", ms=3)]
    if other is not None:
        k_other = int(other.k.values[-1])
        o1, om, o3 = np.nanpercentile(other.loss.values[-1], [25, 50, 75])
        ko = k_other + 0.18                         # beside the ranking's point at the same k
        els += [hv.Segments([(ko, o1, ko, o3)]).opts(color=RULE_COLORS["learned"], linewidth=1.0),
                hv.Scatter(([ko], [om]), "k", "test loss per network").opts(
                    color=RULE_COLORS["learned"], marker="D", s=18, facecolors="none", edgecolors=RULE_COLORS["learned"],
                    linewidth=1.0)]
    if reference is not None:
        els.append(hv.HLine(reference).opts(color=RULE_COLORS["learned"], linestyle="--", linewidth=0.8))
    sheet.render(key, hv.Overlay(els), logy=True, aspect="auto")
    ax = sheet.ax(key)
    ranked = [str(t) for t in rf.ranked_term.values]
    ax.set_xticks(k)
    ax.set_xticklabels([f"{int(kk)}\n+{term_label(ranked[int(kk) - 1])}" if int(kk) - 1 < len(ranked) else f"{int(kk)}"
                        for kk in k], fontsize=FONT["ticks"])
    for lab, kk in zip(ax.get_xticklabels(), k):
        if int(kk) - 1 < len(ranked):
            lab.set_color(term_text_color(ranked[int(kk) - 1]))
    ax.set_xlim(k.min() - 0.5, k.max() + 0.5)   # room for the first and last term names under the ticks
    ax.set_xlabel("terms kept (k) and the term added")
    ax.set_ylabel("test loss per network")
    note = f"N = {rf.sizes['network']} networks per k"
    if reference is None:
        note += f"; elbow at k = {elbow(rf.median_loss.values)}"
    else:   # the claims' criterion (claims.fig3_refit, fig4b_refit): the median within 20 % of the full rules'
        first = first_within(rf.k.values, rf.median_loss.values, reference)
        note += (f";\nwithin 20 % of the full rules (dashed) from k = {first}" if first is not None
                 else ";\nno k within 20 % of the full rules (dashed)")
    if other is not None:
        terms = ", ".join(term_label(str(t)) for t in other.ranked_term.values[:k_other])
        note += f";\n◇ k = {k_other} with {other_label} ({terms}): median {om:.0f}"
    _title(ax, "progressive refit", note)


# -- Fig 4 stress test --------------------------------------------------------------------------
def _parse_acts(s) -> list:
    if isinstance(s, str):
        return [int(v) for v in s.split(",") if v.strip()]
    return [int(v) for v in np.atleast_1d(s)]


def stress_timeline(sheet: Sheet, key: str, sd: xr.Dataset):
    """The stress-test protocol (1-based activations): organising, decoder fit, turnover window,
    recovery, decoder test, read from the dataset's attributes."""
    import holoviews as hv
    n = int(sd.attrs["n_activations"])
    t0, t1 = int(sd.attrs["turnover_first_activation"]), int(sd.attrs["turnover_stop_activation"])
    fit, test = _parse_acts(sd.attrs["fit_activations"]), _parse_acts(sd.attrs["test_activations"])
    p = float(sd.attrs.get("p_turnover", np.nan))
    # 0-based activation a occupies [a, a + 1) on the axis; labels are 1-based
    spans = [(0, t0, "organise, no turnover", "#d9d9d9", 0),
             (t0, t1, f"turnover (p = {p:g})", "#e34a33", 0),
             (t1, n, "recovery", "#f0f0f0", 0),
             (fit[0], fit[-1] + 1, "decoder fit", RULE_COLORS["learned"], 1),
             (test[0], test[-1] + 1, "decoder test, no refit", "#31a354", 1)]
    gap = 1.3                                         # the lower row's labels clear of the upper row's bars
    els = [hv.Rectangles([(a, gap * row, b, gap * row + 0.35)]).opts(facecolor=c, edgecolor="#555555", linewidth=0.4)
           for a, b, lab, c, row in spans]
    sheet.render(key, hv.Overlay(els), aspect="auto", xlim=(0, n), ylim=(-0.05, gap + 0.9), yaxis=None,
                 xlabel="activation (1-based)")
    ax = sheet.ax(key)
    for a, b, lab, c, row in spans:
        at_end = b >= n                               # centred there, the label would run past the axis
        ax.text(b if at_end else (a + b) / 2, gap * row + 0.42, f"{lab}: {a + 1}–{b}", ha="right" if at_end else "center",
                va="bottom", fontsize=FONT["note"], color="#222222")
    ax.spines["left"].set_visible(False)
    _title(ax, "stress-test protocol (turnover on every network)",
           f"stressed: decoder fit on {fit[0] + 1}–{fit[-1] + 1}, tested on {test[0] + 1}–{test[-1] + 1} without refit; "
           f"unperturbed: tested on {fit[0] + 1}–{fit[-1] + 1} (fit on the window before, as in training), no turnover")


def stress_boxes(sheet: Sheet, keys, sd: xr.Dataset):
    """Per-network loss of each rule group (rules pooled), before turnover (unperturbed) and after
    it (stressed), on one log axis; blown-up networks counted. Each panel states, for each learned
    group against the hand-made rule, what the Fig 4d claim computes (experiments.stats.stress_pair):
    Kruskal-Wallis p with Bonferroni over the 4 comparisons, Cohen's d and rank-biserial r.
    The axis ends at the first power of 10 at least half a decade above the 99.5th percentile of
    all networks: the few networks beyond are drawn on that line as open triangles and counted."""
    import holoviews as hv
    from .experiments.stats import STRESS_COMPARISONS, stress_pair
    groups = [str(g) for g in sd.group.values]
    conds = [str(c) for c in sd.condition.values]
    ok = sd.blew_up.values == 0
    vals_all = sd.loss.values[ok]
    hi, ylim = None, None
    if vals_all.size:
        top = 10.0 ** np.ceil(np.log10(np.percentile(vals_all, 99.5)) + 0.5)
        hi = top if vals_all.max() > top else None
        ylim = (float(vals_all.min()) / 1.4, (hi or float(vals_all.max())) * 1.4)
    titles = {"unperturbed": "before turnover", "stressed": "after turnover (no refit)"}
    for j, (k, c) in enumerate(zip(keys, conds)):
        cs = sd.sel(condition=c)
        els, n_blow, n_above, lines = [], 0, 0, []
        for i, g in enumerate(groups):
            sel = cs.rule_group.values == g
            v = cs.loss.values[sel].ravel()
            b = cs.blew_up.values[sel].ravel() != 0
            n_blow += int(b.sum())
            v = v[~b]
            group, _, above = _box_and_points(i, v, rule_color(g), ("group", "loss per network"), half_width=0.32,
                                              spread=0.5, box_alpha=0.2, size=3, alpha=0.6, hi=hi)
            els += group
            n_above += int(above.sum())
        opts = dict(logy=True, aspect="auto", ylabel="loss per network", xlabel="")
        if ylim:
            opts["ylim"] = ylim
        sheet.render(k, hv.Overlay(els), **opts)
        ax = sheet.ax(k)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g.replace(", ", ",\n") for g in groups], fontsize=FONT["ticks"])
        for lab, g in zip(ax.get_xticklabels(), groups):
            lab.set_color(rule_color(g))
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_xlabel("")
        if j:
            ax.set_ylabel("")
        if "hand-made" in groups:
            lines.append(f"vs hand-made (Kruskal–Wallis, ×{STRESS_COMPARISONS} Bonferroni; d, r < 0: lower loss):")
        for g in groups:
            if g == "hand-made" or "hand-made" not in groups:
                continue
            st = stress_pair(sd, c, g, "hand-made")
            short = g.replace("learned, no turnover", "trained without turnover").replace(
                "learned, turnover", "trained with turnover")
            lines.append(f"{short}: {fmt_p(st['p_bonferroni'])}, d\u00a0=\u00a0{st['cohens_d']:.2f}, "
                         f"r\u00a0=\u00a0{st['rank_biserial']:.2f}")
        n = {g: int((cs.rule_group.values == g).sum()) * int(cs.sizes["network"]) for g in groups}
        lines.append("N = " + " / ".join(str(n[g]) for g in groups) + " networks" + (
            f"; {n_blow} blew up (last in p, r; not in d, points)" if n_blow else "")
            + (f"; △ {n_above} above 10{str(round(np.log10(hi))).translate(_SUPERSCRIPT)}" if n_above else ""))
        _title(ax, titles.get(c, c), "\n".join(lines))


# -- Fig 5 ----------------------------------------------------------------------------------------
def weight_blocks(sheet: Sheet, keys, ev: xr.Dataset, rule, example: int = 0, n_e: int = 25):
    """|W| of the E->E, E->I and I->E blocks at the first and last recorded activation (keys in
    that order, two per block), E cells in the firing order of the last recorded rates, I cells in
    index order; one colour scale per block, clipped at the 99th percentile of both its matrices (of
    the last alone, a block whose weights shrink, as E->I may, would saturate the first)."""
    import holoviews as hv
    from .experiments.evaluate import firing_order, mean_firing_time
    r = ev.example_rates.sel(rule=rule).isel(example=example)
    dt_ms = float(r.time.values[1] - r.time.values[0])
    n_cells = ev.sizes["cell"]
    order = firing_order(mean_firing_time(r.isel(rate_activation=-1).values, dt_ms * 1e-3)[:n_e])
    w = np.abs(ev.example_weights.sel(rule=rule).isel(example=example).values)
    inh = np.arange(n_e, n_cells)
    blocks = [("ee", order, order, "pre E (sorted)", "post E (sorted)"),
              ("ei", inh, order, "pre E (sorted)", "post I"),
              ("ie", order, inh, "pre I", "post E (sorted)")]
    acts = ev.weight_activation.values
    for b, (syn, post, pre, xl, yl) in enumerate(blocks):
        pair = keys[2 * b: 2 * b + 2]
        both = np.concatenate([w[0][np.ix_(post, pre)].ravel(), w[-1][np.ix_(post, pre)].ravel()])
        vmax = float(np.percentile(both, 99)) or 1.0
        plot = None
        for j, (k, a) in enumerate(zip(pair, acts)):
            m = w[j if j < len(w) else -1][np.ix_(post, pre)]
            el = hv.Image(m[::-1], bounds=(0, 0, len(pre), len(post)), kdims=[xl, yl])
            plot = sheet.render(k, el, cmap="viridis", clim=(0, vmax), aspect="auto")
            ax = sheet.ax(k)
            ax.set_title(f"{SYNAPSE_LABELS[syn]}, act. {int(a)}", fontsize=FONT["title"], color=SYNAPSE_COLORS[syn])
            for s in ax.spines.values():
                s.set_edgecolor(SYNAPSE_COLORS[syn])
            if j:
                ax.set_ylabel("")
                ax.set_yticklabels([])
        sheet.colorbar(pair, plot.handles["artist"], f"|w| ({WEIGHT_UNIT})",
                       extend="max" if float(w[:, post][:, :, pre].max()) > vmax else "neither", aspect=14)


def sweep_plot(sheet: Sheet, key: str, sw: xr.Dataset):
    """Median per-network loss (band: quartiles) versus the turnover probability p_ST, one curve per
    rule group (rules pooled, labelled at the right end), and each rule's own median as a thin
    line of its group's colour (a rule whose median is a blow-up is left out and counted); under
    each p_ST the two-sided Mann-Whitney U result of the dataset (stars), and the rank-biserial r
    per p_ST in the note."""
    import holoviews as hv
    p = sw.p_turnover.values * 1e4
    xlabel = "$p_{ST}$ (×10$^{-4}$ per synapse and activation)"
    els, ends = [], []
    per_rule = np.median(sw.loss_or_penalty.values, axis=-1) if "loss_or_penalty" in sw else None   # (p, rule)
    off = 0
    for g in sw.group.values:
        all_syn = rule_family(str(g)) == "learned, all synapses"
        c = RULE_COLORS["learned, all synapses" if all_syn else "learned, turnover"]
        if per_rule is not None:
            for i in np.flatnonzero(sw.rule_group.values == str(g)):
                if np.all(per_rule[:, i] < PENALTY_FLOOR):
                    els.append(hv.Curve((p, per_rule[:, i]), xlabel, "loss per network").opts(
                        color=c, linewidth=0.6, alpha=0.5))
                else:
                    off += 1
        med = sw.median_loss.sel(group=g).values
        lo, hi = sw.q25_loss.sel(group=g).values, sw.q75_loss.sel(group=g).values
        els.append(hv.Area((p, lo, hi), "p", ["loss", "hi"]).opts(facecolor=c, alpha=0.18, linewidth=0))
        els.append(hv.Curve((p, med), xlabel, "loss per network").opts(color=c, marker="o", ms=3))
        ends.append((float(med[-1]), "all synapses" if all_syn else "E→E only", c))
    sheet.render(key, hv.Overlay(els), aspect="auto", ylabel="loss per network", xlabel=xlabel)
    ax = sheet.ax(key)
    stars = ["***" if pv < 1e-3 else "**" if pv < 1e-2 else "*" if pv < 0.05 else "n.s." if np.isfinite(pv) else ""
             for pv in sw.mannwhitney_p.values]
    n = sw.sizes["network"]
    n_r = [int((sw.rule_group.values == str(g)).sum()) for g in sw.group.values]
    # effect size: rank-biserial r of the last group against the first (< 0: its losses lower),
    # from the dataset's U of the first group's losses (r of the first, negated)
    from .experiments.stats import rank_biserial_from_u
    r = [-rank_biserial_from_u(u, n_r[0] * n, n_r[-1] * n) for u in sw.mannwhitney_u.values]
    ax.set_xticks(p)   # under each p_ST its test: stars, then r
    ax.set_xticklabels([f"{v:g}\n{st}\n{'' if not np.isfinite(e) else f'{e:+.2f}'}" for v, st, e in zip(p, stars, r)])
    _direct_labels(ax, ends, min_gap_frac=0.1)
    short = [("all synapses" if rule_family(str(g)) == "learned, all synapses" else "E→E only") for g in sw.group.values]
    thin = "" if per_rule is None else ("; thin: each rule's median" +
                                        (f" ({off} rule{'s' if off != 1 else ''} blew up: not drawn)" if off else ""))
    _title(ax, "loss vs turnover",
           f"under each $p_{{ST}}$: Mann–Whitney * < .05, ** < .01, *** < .001, and rank-biserial r,\n{short[-1]} vs "
           f"{short[0]} (> 0: higher loss); N = {n_r[0]} vs {n_r[-1]} rules × {n} networks{thin}")


# -- Fig 6 ----------------------------------------------------------------------------------------
def perturbation_traces(sheet: Sheet, key: str, pd: xr.Dataset, var: str, ylabel: str, scale: float = 1.0,
                        legend: bool = False, title: str | None = None):
    """Median over networks (band: quartiles) of one per-activation measure of the perturbed cell,
    per perturbation kind; dashed: the perturbed activation; dotted: the 'later' activation. A
    network with a NaN anywhere (a blow-up, or a silent cell's amplitude) is left out of every
    kind, so that one set of networks makes each curve; the subtitle counts them."""
    import holoviews as hv
    act = pd.activation.values + 1                   # 1-based
    p_act = int(pd.attrs["perturbed_activation"]) + 1
    later = p_act + int(pd.attrs["later"])
    els, handles, labels = [], [], []
    keep = np.isfinite(pd[var].values).all(axis=(0, 2))            # (network,)
    for k in pd.kind.values:
        v = pd[var].sel(kind=k).values[keep] * scale
        q1, med, q3 = np.nanpercentile(v, [25, 50, 75], axis=0)    # NaN, not an error, with no network left
        c = PERTURBATION_COLORS.get(str(k), "#333333")
        els.append(hv.Area((act, q1, q3), "activation", ["v", "q3"]).opts(facecolor=c, alpha=0.15, linewidth=0))
        els.append(hv.Curve((act, med), "activation", ylabel).opts(color=c))
        handles.append(_line_handle(c))
        labels.append(str(k).replace(" x", " ×"))
    els.append(hv.VLine(p_act).opts(color="k", linestyle="--", linewidth=0.6))
    els.append(hv.VLine(later).opts(color="k", linestyle=":", linewidth=0.6))
    sheet.render(key, hv.Overlay(els), aspect="auto", xlabel="activation", ylabel=ylabel)
    ax = sheet.ax(key)
    if legend:
        _legend_outside(ax, handles, labels)
    n_all = int(pd.sizes["network"])
    _title(ax, title or ylabel, f"median, quartiles; N = {int(keep.sum())}" + (
        f" of {n_all} networks; the others: a NaN (blow-up, silent cell)" if keep.sum() < n_all else " networks"))


def amplitude_duration_phases(sheet: Sheet, keys, pd: xr.Dataset, phases=("before", "just_after", "later")):
    """Peak rate against duration (ms) of the perturbed cell's response before the perturbation
    (mean of the n_before activations), just after it and `later` activations after it, one
    point per network, coloured by perturbation kind, on shared axes. The 'later' panel states,
    per kind, a paired Wilcoxon test of the relative distance |peak / peak before - 1| later
    against just after (r < 0: closer to the unperturbed response later)."""
    import holoviews as hv
    peak = pd.peak_summary.values
    dur = pd.duration_summary.values * 1e3
    xlim = (0.0, float(np.nanmax(dur)) * 1.05 or 1.0)
    ylim = (0.0, float(np.nanmax(peak)) * 1.08 or 1.0)
    p_act = int(pd.attrs["perturbed_activation"]) + 1
    for j, (key, phase) in enumerate(zip(keys, phases)):
        els = []
        ph = pd.sel(phase=phase)
        # before the perturbation every kind is the same run: one set of points, in black
        same = bool(np.allclose(ph.peak_summary.values, ph.peak_summary.values[:1], equal_nan=True))
        for k in (pd.kind.values[:1] if same else pd.kind.values):
            c = PHASE_COLORS["before"] if same else PERTURBATION_COLORS.get(str(k), "#333333")
            a = ph.peak_summary.sel(kind=k).values
            d = ph.duration_summary.sel(kind=k).values * 1e3
            els.append(hv.Scatter((d, a), "duration (ms)", "peak").opts(color=c, s=8, alpha=0.8, edgecolors="none"))
        sheet.render(key, hv.Overlay(els), aspect="auto", xlim=xlim, ylim=ylim, xlabel="duration (ms)",
                     ylabel=f"peak rate ({RATE_UNIT})" if j == 0 else "")
        ax = sheet.ax(key)
        if j:
            ax.set_yticklabels([])
        if phase == "later":
            from .experiments.stats import wilcoxon_paired
            tests = {}
            for k in pd.kind.values:
                amp = pd.amplitude_summary.sel(kind=k)
                tests[k] = wilcoxon_paired(np.abs(amp.sel(phase="later").values - 1),
                                           np.abs(amp.sel(phase="just_after").values - 1))
            ns = {s["n"] for s in tests.values()}     # the pairs without a NaN
            one_n = len(ns) == 1
            lines = [f"{int(pd.attrs['later'])} activations after; Wilcoxon of |peak / before − 1|, later vs just after, N = "
                     + (f"{ns.pop()}" if one_n else "per kind") + f" of {pd.sizes['network']}:"]
            for k, s in tests.items():
                lines.append(f"{str(k).replace(' x', ' ×')}: " + ("" if one_n else f"N = {s['n']}, ")
                             + f"{fmt_p(s['p'])}, r = {s['r']:.2f}")
            note = "\n".join(lines)
        elif phase == "before":
            note = f"mean of the {int(pd.attrs['n_before'])} activations before" + ("\n(the same for every kind)" if same else "")
        else:
            note = f"activation {p_act}"
        _title(ax, PHASE_LABELS[phase], note)


def _reduced_first_last(rd: xr.Dataset, mode: str, drop: int | None = None) -> dict:
    """Reduced model, one mode, the plotted inputs (the `drop` smallest amplitudes and shortest
    widths left out as in the paper; default: the dataset's plot_drop): per phase ("first": the
    first activation, "last": the last), flat arrays of the response's peak, duration M0 / r_peak
    (ms, the paper's) and delay (first moment in time, ms)."""
    from .experiments.reduced_model import plotted_inputs
    r = plotted_inputs(rd, drop).sel(mode=mode).isel(init=0)
    out = {}
    for phase, k in (("first", 0), ("last", -1)):
        a = r.isel(activation=k)
        peak = a.peak.values.ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            dur = np.where(peak > 0, a.m1.values.ravel() / peak, np.nan) * 1e3
        out[phase] = dict(peak=peak, duration=dur, delay=a.delay.values.ravel() * 1e3)
    return out


def _cv(v) -> float:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(np.std(v) / np.mean(v)) if v.size else float("nan")


def _cv_note(fl: dict, names) -> str:
    """Panel note: the coefficient of variation over inputs of each quantity, first → last."""
    return "\n".join(f"CV {n} {_cv(fl['first'][n]):.2f} → {_cv(fl['last'][n]):.2f}" for n in names)


def _first_last_scatter(sheet: Sheet, key: str, fl: dict, x: str, y: str, xlabel: str, ylabel: str, **opts):
    """Each input at the first activation (black) and the last (teal), a grey line joining the two."""
    import holoviews as hv
    f, l = fl["first"], fl["last"]
    segs = hv.Segments([tuple(v) for v in zip(f[x], f[y], l[x], l[y])]).opts(color="#cccccc", linewidth=0.4)
    els = [segs,
           hv.Scatter((f[x], f[y]), x, y).opts(color=PHASE_COLORS["before"], s=5),
           hv.Scatter((l[x], l[y]), x, y).opts(color=PHASE_COLORS["later"], s=5)]
    sheet.render(key, hv.Overlay(els), aspect="auto", xlabel=xlabel, ylabel=ylabel,
                 **{k: v for k, v in opts.items() if v is not None})
    return sheet.ax(key)


def reduced_before_after(sheet: Sheet, key: str, rd: xr.Dataset, mode: str, drop: int | None = None, xlim=None,
                         ylim=None, first: bool = False):
    """Reduced model: response duration M0 / r_peak (ms) and peak of every plotted input
    condition (alpha pulse amplitude x width) at the first activation (black) and after the last
    (teal), lines joining each condition; the note gives the share of conditions that converged
    (both moments within 5 % of their targets: the Fig 6 claim's test) and the CVs."""
    from .experiments.reduced_model import converged_fraction
    fl = _reduced_first_last(rd, mode, drop)
    ax = _first_last_scatter(sheet, key, fl, "duration", "peak", REDUCED_DURATION_LABEL,
                             f"peak rate ({RATE_UNIT})" if first else "", xlim=xlim, ylim=ylim)
    n = fl["first"]["peak"].size
    _title(ax, REDUCED_LABELS.get(mode, mode),
           f"converged: {converged_fraction(rd, mode, drop=drop):.0%} of {n}\n" + _cv_note(fl, ("peak", "duration")))


def reduced_delay_amplitude(sheet: Sheet, key: str, rd: xr.Dataset, mode: str = "two_rules", drop: int | None = None):
    """Reduced model: delay of the response (its first moment in time, ms) against its peak, for
    every plotted input condition at the first activation (black) and after the last (teal). The
    two rules pin amplitude and duration, not the delay: it keeps following the input's width."""
    fl = _reduced_first_last(rd, mode, drop)
    ax = _first_last_scatter(sheet, key, fl, "peak", "delay", f"peak rate ({RATE_UNIT})", "delay (ms)")
    _title(ax, f"delay, {REDUCED_LABELS.get(mode, mode)}", _cv_note(fl, ("peak", "delay")))


def legend_panel(sheet: Sheet, key: str, handles, labels, title=None):
    """A cell of the sheet that holds only a legend (no axes drawn)."""
    ax = sheet.ax(key)
    ax.axis("off")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 1.0), frameon=False, fontsize=FONT["legend"],
              handlelength=1.2, handletextpad=0.4, borderaxespad=0.0, labelspacing=0.4, title=title,
              title_fontsize=FONT["legend"])


def reduced_legend(sheet: Sheet, key: str, rd: xr.Dataset | None = None):
    """Legend of the reduced-model panels; with `rd`, its title gives the number of plotted inputs
    (over which the panels' coefficients of variation, CV, are taken)."""
    title = None
    if rd is not None:
        drop = int(rd.attrs.get("plot_drop", 3))
        title = f"N = {(rd.sizes['amplitude'] - drop) * (rd.sizes['width'] - drop)}\ninputs"
    legend_panel(sheet, key, [_line_handle(PHASE_COLORS["before"], ls="none", marker="o"),
                              _line_handle(PHASE_COLORS["later"], ls="none", marker="o")],
                 ["first\nactivation", "last\nactivation"], title=title)


def perturbation_legend(sheet: Sheet, key: str, pd: xr.Dataset):
    """Legend of the perturbation panels: a colour per kind, and the two vertical lines of the
    traces (the perturbed activation, dashed; the 'later' one, dotted; 1-based)."""
    kinds = [str(k) for k in pd.kind.values]
    p_act = int(pd.attrs["perturbed_activation"]) + 1
    later = p_act + int(pd.attrs["later"])
    legend_panel(sheet, key, [_line_handle(PERTURBATION_COLORS.get(k, "#333333"), marker="o") for k in kinds]
                 + [_line_handle("k", "--", lw=0.6), _line_handle("k", ":", lw=0.6)],
                 [k.replace(" x", " ×") for k in kinds] + [f"perturbed ({p_act})", f"later ({later})"],
                 title="perturbation")
