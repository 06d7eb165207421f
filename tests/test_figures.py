"""The house style of plasticity_repro.plots: byte-reproducible files and mathtext term names;
the committed figures are what the current code draws from the shipped data.

Small synthetic datasets only (no simulation), except one committed figure redrawn from data/ in a
fresh process (about 20-40 s on 2 cores).
"""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from plasticity_repro import plots
from plasticity_repro.profiles import SHIPPED
from plasticity_repro.rules import TAU_NAMES, TERM_NAMES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hv():
    return plots.setup()


def _coefs(n_rules=3, seed=0):
    rng = np.random.default_rng(seed)
    return xr.DataArray(rng.normal(0, 0.01, (n_rules, len(TERM_NAMES))).astype(np.float32),
                        dims=("rule", "term"), coords={"rule": [f"run {i}" for i in range(n_rules)],
                                                       "term": list(TERM_NAMES)})


def _dropout(n_rules=3, n_net=4, seed=1):
    rng = np.random.default_rng(seed)
    variants = ["full"] + list(TERM_NAMES)
    loss = rng.lognormal(4.5, 0.4, (n_rules, len(variants), n_net)).astype(np.float32)
    loss[0, 3, 0] = 1e8                                            # one blow-up penalty
    med = np.median(loss, axis=2)
    shift = np.maximum(med[:, 1:] - med[:, :1], 0)
    return xr.Dataset({"loss": (("rule", "variant", "network"), loss),
                       "median_loss": (("rule", "variant"), med),
                       "shift": (("rule", "term"), shift),
                       "median_shift": (("term",), np.median(shift, axis=0)),
                       "coefs": (("rule", "term"), _coefs(n_rules).values)},
                      coords={"rule": [f"run {i}" for i in range(n_rules)], "variant": variants,
                              "term": list(TERM_NAMES), "network": np.arange(n_net)})


def _sheet():
    dd = _dropout()
    sheet = plots.Sheet([(1.8, ["a", "b"]), (1.8, ["c"])])
    plots.coefficient_distributions(sheet, "a", _coefs())
    plots.dropout_shifts(sheet, "b", dd)
    plots.dropout_losses(sheet, "c", dd)
    return sheet


def test_svg_is_byte_identical_when_drawn_twice(hv):
    first, second = _sheet().to_bytes("svg"), _sheet().to_bytes("svg")
    assert first == second
    assert b"<dc:date>" not in first          # no creation date in the metadata


def test_svg_clip_ids_do_not_depend_on_the_last_bits_of_the_layout(hv):
    """matplotlib hashes a clip rectangle's full-precision floats into its id: the saved SVG
    numbers them instead, so a panel moved by 1e-12 keeps its ids, and every reference still
    names a defined clip path."""
    import re
    a, b = _sheet(), _sheet()
    ax = b.ax("c")
    x0, y0, w, h = ax.get_position().bounds
    ax.set_position([x0 + 1e-12, y0, w, h])
    sa, sb = a.to_bytes("svg"), b.to_bytes("svg")
    ids = [re.findall(rb'(?:id="|url\(#)(p[0-9a-f]{10}|clip\d+)', x) for x in (sa, sb)]
    assert ids[0] == ids[1]                                   # matplotlib's own ids would differ here
    defined = re.findall(rb'<clipPath id="([^"]+)"', sa)
    assert defined == [b"clip%d" % i for i in range(len(defined))] and len(defined) >= 3
    assert set(re.findall(rb'url\(#([^)]+)\)', sa)) <= set(defined)
    assert plots._numbered_clip_ids(b'<clipPath id="p0123456789"/><g clip-path="url(#p0123456789)"/>') == \
        b'<clipPath id="clip0"/><g clip-path="url(#clip0)"/>'


def test_png_is_byte_identical_when_drawn_twice(hv):
    first, second = _sheet().to_bytes("png"), _sheet().to_bytes("png")
    assert first == second
    assert b"Software" not in first[:4096]    # no software stamp in the PNG text chunks


def test_sheet_is_journal_width(hv):
    sheet = _sheet()
    assert sheet.figure.get_figwidth() == pytest.approx(plots.SHEET_WIDTH)
    assert plots.DPI >= 200


def test_a_rows_letters_align_without_moving_the_panels_titles(hv):
    """Panel a carries a three-line note, b none: both letters stand at a's height, and b's own
    title stays just above its frame (the three titles of an axes share one pad)."""
    sheet = plots.Sheet([(1.8, ["a", "b"])])
    for k in "ab":
        sheet.render(k, hv.Curve(([0, 1], [0, 1])), aspect="auto")
    plots._title(sheet.ax("a"), "with a note", "line one\nline two\nline three")
    sheet.ax("b").set_title("plain", fontsize=plots.FONT["title"])
    sheet.finish()
    sheet.figure.canvas.draw()
    r = sheet.figure.canvas.get_renderer()
    letter = {k: sheet.ax(k)._house_letter.get_window_extent(r) for k in "ab"}
    assert letter["a"].y0 == pytest.approx(letter["b"].y0, abs=1.0)
    b = sheet.ax("b")
    gap_pt = (b.title.get_window_extent(r).y0 - b.get_window_extent(r).y1) * 72 / sheet.figure.dpi
    assert gap_pt < plots.RC["axes.titlepad"] + 3          # not lifted by a's note
    assert letter["b"].y0 > b.title.get_window_extent(r).y1   # the letter above it, at the row's height


def test_notes_of_one_row_get_one_height_and_titles_stand_level(hv):
    """Three panels of a row with notes of 1, 3 and 2 lines: their titles stand at one height,
    each note's first line just under its title; the next row (its own sub-figure, whose axes
    sit at the same fraction of it) is not padded to this one."""
    sheet = plots.Sheet([(1.8, ["a", "b", "c"]), (1.8, ["d", "e"])])
    for k in "abcde":
        sheet.render(k, hv.Curve(([0, 1], [0, 1])), aspect="auto")
    for k, note in zip("abc", ("one", "one\ntwo\nthree", "one\ntwo")):
        plots._title(sheet.ax(k), f"title {k}", note)
    plots._title(sheet.ax("d"), "title d", "one")
    plots._title(sheet.ax("e"), "title e", "one")
    sheet.finish()
    sheet.figure.canvas.draw()
    r = sheet.figure.canvas.get_renderer()
    tops = [sheet.ax(k).title.get_window_extent(r).y0 for k in "abc"]
    assert max(tops) - min(tops) < 1.0, tops
    for k in "abc":
        assert plots._title_note(sheet.ax(k))[0] == "one"    # padding is blank lines, not text
    d = sheet.ax("d")
    gap_pt = (d.title.get_window_extent(r).y0 - d.get_window_extent(r).y1) * 72 / sheet.figure.dpi
    assert gap_pt < plots.RC["axes.titlepad"] + 2 * plots.FONT["note"] * 1.25 + 3   # one note line


def test_direct_labels_stand_a_line_apart_on_a_short_panel(hv):
    """Two curve ends 2 % of the span apart on a short panel: their labels are placed at least
    the labels' font size apart once the layout has fixed the panel's height."""
    sheet = plots.Sheet([(1.2, ["a"])])
    sheet.render("a", hv.Curve(([0, 1], [0, 100])) * hv.Curve(([0, 1], [0, 98])), aspect="auto")
    plots._direct_labels(sheet.ax("a"), [(100, "upper", "k"), (98, "lower", "k")])
    sheet.finish()
    sheet.figure.canvas.draw()
    r = sheet.figure.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(r) for t in sheet.ax("a").texts if t.get_text() in ("upper", "lower")}
    apart_pt = (boxes["upper"].y0 + boxes["upper"].y1 - boxes["lower"].y0 - boxes["lower"].y1) / 2 * 72 / sheet.figure.dpi
    assert apart_pt >= plots.FONT["legend"], apart_pt
    assert boxes["upper"].y0 >= boxes["lower"].y1 - 0.5      # no overlap


def test_term_labels_are_mathtext():
    from matplotlib.mathtext import MathTextParser
    parser = MathTextParser("path")
    for name in list(TERM_NAMES) + list(TAU_NAMES):
        label = plots.term_label(name)
        assert label.startswith("$") and label.endswith("$") and label.count("$") == 2, label
        assert ("~" in name) == (r"\tilde" in label), label
        assert "~" not in label, label
        parser.parse(label)                   # valid mathtext: raises otherwise


def test_term_labels_as_the_paper_writes_them():
    assert plots.term_label("x~ y") == r"$\tilde{x}y$"
    assert plots.term_label("x y~") == r"$x\tilde{y}$"
    assert plots.term_label("w y~ y") == r"$w\tilde{y}y$"
    assert plots.term_label("ee:1") == "$1$"
    assert plots.term_label("tau[x~ y]") == r"$\tau_{\tilde{x}y}$"


def test_every_term_has_its_own_colour():
    colours = [plots.term_color(t) for t in TERM_NAMES]
    assert len(set(colours)) == len(TERM_NAMES) == 20
    assert plots.term_color("ee:w y~ y") == plots.term_color("w y~ y")


def test_rule_families_have_fixed_colours():
    assert plots.rule_family("run 0") == "learned"
    assert plots.rule_family("turnover run 1") == "learned, turnover"
    assert plots.rule_family("no-turnover run 0") == "learned"
    assert plots.rule_family("hand-made") == "hand-made"
    assert plots.rule_family("no plasticity") == "no plasticity"
    assert plots.rule_family("E->E, E->I, I->E") == "learned, all synapses"
    assert len(set(plots.RULE_COLORS.values())) == len(plots.RULE_COLORS)
    assert set(plots.SYNAPSE_COLORS) == {"ee", "ei", "ie"}


def _small_sheet(note: str = "N = 3 rules"):
    """One panel with mathtext term labels and a note: cheap to draw."""
    sheet = plots.Sheet([(1.4, ["a"])])
    plots.coefficient_distributions(sheet, "a", _coefs())
    sheet.ax("a").annotate(note, xy=(0.5, 0.5), xycoords="axes fraction", fontsize=plots.FONT["note"])
    return sheet


def test_svg_and_png_are_byte_identical_across_processes(hv):
    # what `make figures` relies on to leave git status clean: a fresh interpreter with another
    # hash seed (the Makefile fixes it to 0 anyway) writes the same bytes as this one
    import hashlib
    code = ("import sys, hashlib; sys.path.insert(0, 'tests'); import test_figures as t; "
            "t.plots.setup(); s = t._small_sheet(); "
            "print(hashlib.sha256(s.to_bytes('svg')).hexdigest(), hashlib.sha256(s.to_bytes('png')).hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    here = _small_sheet()
    assert r.stdout.split() == [hashlib.sha256(here.to_bytes(f)).hexdigest() for f in ("svg", "png")]


# -- the committed figures are what the current code draws ----------------------------------------
# Every figure `make figures` draws, at its shipped profile (profiles.SHIPPED; 20-40 s each on 2
# busy cores).
NOTEBOOK_OF = {p.stem.split("_")[0]: p.stem for p in sorted((ROOT / "notebooks").glob("fig*.ipynb"))}
REDRAWN = [(NOTEBOOK_OF[fig], profile, fig) for fig, profile in SHIPPED.items()]
# Drawn here with the locked matplotlib (its own FreeType), a figure is byte-identical to the
# committed one. The tolerance admits a few antialiased edge pixels, not a change: a panel's points
# moving or one digit of a panel note changing exceeds it (test_pixel_tolerance_flags_one_digit).
MAX_MEAN_ABS = 1e-4        # mean |difference| over pixels and RGBA channels (values in [0, 1])
MAX_PIXELS_DIFFERING = 30  # pixels whose largest channel difference exceeds 0.1
# Run a figure notebook's code cells as papermill does (parameters injected after the cell tagged
# "parameters"), only reading data/ and writing the figure to a scratch folder, with every entry
# into a network simulation (the engines' and the readable model's) made to raise: drawing a
# shipped figure, as `make figures` does, simulates no network-activation.
REDRAW = r"""
import sys, nbformat
import plasticity_repro.model, plasticity_repro.simulate
def refuse(*args, **kw):
    raise RuntimeError("a network was simulated while drawing a figure from shipped data")
for module, names in ((plasticity_repro.simulate, ("_activation_batch", "activation", "run_batch", "run",
                                                   "run_networks", "run_grid")),
                      (plasticity_repro.model, ("activation", "run"))):
    for name in names:
        setattr(module, name, refuse)
path, profile, fig_dir = sys.argv[1:4]
nb = nbformat.read(path, as_version=4)
ns = {"__name__": "__main__"}
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    exec(compile(cell.source, path, "exec"), ns)
    if "parameters" in cell.metadata.get("tags", []):
        ns.update(profile=profile, fig_dir=fig_dir)
"""


def _rgba(png: bytes) -> np.ndarray:
    from matplotlib.image import imread
    return imread(io.BytesIO(png), format="png")


def png_difference(a: bytes, b: bytes) -> tuple:
    """(mean absolute difference, number of pixels differing by > 0.1 in some channel) of two PNGs
    of the same size (None, None for different sizes)."""
    x, y = _rgba(a), _rgba(b)
    if x.shape != y.shape:
        return None, None
    d = np.abs(x.astype(np.float64) - y.astype(np.float64))
    return float(d.mean()), int((d.max(axis=-1) > 0.1).sum())


def test_pixel_tolerance_flags_one_digit(hv):
    base = _small_sheet("N = 3 rules").to_bytes("png")
    assert png_difference(base, _small_sheet("N = 3 rules").to_bytes("png")) == (0.0, 0)
    mean, n = png_difference(base, _small_sheet("N = 8 rules").to_bytes("png"))
    assert n > MAX_PIXELS_DIFFERING, (mean, n)


@pytest.mark.parametrize("notebook,profile,name", REDRAWN, ids=[r[2] for r in REDRAWN])
def test_committed_figure_is_what_the_code_draws(tmp_path, notebook, profile, name):
    committed = ROOT / "figures" / profile / f"{name}.png"
    env = dict(os.environ, PLASTICITY_REPRO_READ_ONLY="1", PLASTICITY_REPRO_SAVE_FIGURES="1",
               PYTHONHASHSEED="0", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", REDRAW, str(ROOT / "notebooks" / f"{notebook}.ipynb"), profile,
                        str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    drawn = (tmp_path / profile / f"{name}.png").read_bytes()
    mean, n = png_difference(drawn, committed.read_bytes())
    assert mean is not None, f"{committed} has another size than the figure the code draws: run `make {name}`"
    assert mean <= MAX_MEAN_ABS and n <= MAX_PIXELS_DIFFERING, (
        f"{committed} is not what the code draws (mean |diff| {mean:.2e}, {n} pixels differ): run `make {name}`")


def test_notebooks_are_paired_with_their_sources():
    # `make figures` runs the .ipynb; its code must be the .py source's (jupytext --sync)
    import jupytext
    for py in sorted((ROOT / "notebooks").glob("fig*.py")):
        src = [c.source for c in jupytext.read(py, fmt="py:percent").cells if c.cell_type == "code"]
        nb = [c.source for c in jupytext.read(py.with_suffix(".ipynb")).cells if c.cell_type == "code"]
        assert src == nb, f"{py.with_suffix('.ipynb')} is not the notebook of {py}: jupytext --sync {py}"


def test_the_notebook_kernel_logs_only_critical_messages():
    # `make env` (tools/quiet_kernel.py): no kernel-application warnings between a figure's cells
    import json
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    if not spec.exists():
        pytest.skip("no python3 kernelspec in this environment (make env installs it)")
    assert "--IPKernelApp.log_level=CRITICAL" in json.loads(spec.read_text())["argv"]


# -- the interactive copy (make html) -------------------------------------------------------------
def test_plain_text_of_mathtext():
    assert plots.plain_text(plots.term_label("w y~ y")) == "wy\u0303y"
    assert plots.plain_text(plots.term_label("tau[x~ y]")) == "τ_x\u0303y"
    assert plots.plain_text("decoder $R^2$") == "decoder R²"
    assert plots.plain_text(r"$\mathdefault{10^{2}}$") == "10^2"


def test_html_copy_carries_titles_term_ticks_and_colours(hv, tmp_path, monkeypatch):
    import json
    import re
    sheet = _sheet()
    sheet.ax("c").text(0.5, 100.0, "a direct label", color="#123456")   # data coordinates: carried over
    html = sheet.to_html("test sheet")
    assert hv.Store.current_backend == "matplotlib"           # the static figures stay matplotlib
    doc = json.loads(re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>',
                               html, re.S).group(1))
    text = json.dumps(doc, ensure_ascii=False)
    title = sheet.ax("b").get_title(loc="center")
    assert f"b  {title}" in text                              # the panel's letter and title
    assert "wy\u0303y" in text                                # term tick labels as Unicode
    assert plots.TERM_COLORS["x~ y"] in text                  # the term's house colour
    assert "HoverTool" in text
    assert "a direct label" in text and "#123456" in text
    # the statistics under a panel's title, and a labelled colour bar
    img = plots.Sheet([(1.8, ["a"])])
    plot = img.render("a", hv.Image(np.arange(12.0).reshape(3, 4)).opts(cmap="viridis"))
    img.colorbar("a", plot.handles["artist"], f"rate r ({plots.RATE_UNIT})")
    plots._title(img.ax("a"), "rates", "Mann-Whitney p = 0.003; N = 40 networks")
    text = img.to_html("t")
    assert "ColorBar" in text and f"rate r ({plots.RATE_UNIT})" in text
    note = plots._title_note(img.ax("a"))                 # the note as wrapped to the panel's width
    assert " ".join(note) == "Mann-Whitney p = 0.003; N = 40 networks"
    assert "\\n".join(["a  rates", *note]) in text
    # a label hung off the right edge at a data height (a direct label, "blew up") comes along
    img.ax("a").annotate("edge label", xy=(1.0, 1.5), xycoords=("axes fraction", "data"))
    assert "edge label" in img.to_html("t")
    # self-contained: BokehJS inline, so the page opens offline (a CDN script drew a blank page here)
    assert "Bokeh" in html and not re.findall(r'<script[^>]*src="https?:', html)
    # laid out in the sheet's rows: panels a and b side by side, c below them
    layout = next(r for r in doc.values() if isinstance(r, dict) and "roots" in r)["roots"][0]
    assert layout["name"] == "Column" and [len(r["attributes"]["children"]) for r in
                                           layout["attributes"]["children"]] == [2, 1]
    monkeypatch.setenv("PLASTICITY_REPRO_SAVE_FIGURES", "0")  # under make test nothing is written
    assert not sheet.save_html(tmp_path / "f.html", "t").exists()
    # a point drawn on an axis limit keeps its open triangle, a blow-up its cross
    pts = plots.Sheet([(1.8, ["a"])])
    pts.render("a", hv.Overlay([hv.Scatter([(0, 1.0)]).opts(color="#0000ff", s=5),
                                hv.Scatter([(1, 2.0)]).opts(color="#ff0000", s=14, marker="^", facecolors="none",
                                                            edgecolors="#ff0000"),
                                hv.Scatter([(2, 3.0)]).opts(color="#00ff00", s=10, marker="X")]))
    markers = re.findall(r'"marker":\{"type":"value","value":"(\w+)"', pts.to_html("t"))
    assert {"triangle", "x"} <= set(markers)


def test_html_copy_of_a_symlog_axis_keeps_its_scale(hv):
    """Bokeh has no symlog: the points go through the panel's transform, the ticks keep their labels."""
    import xarray as xr
    sheet = plots.Sheet([(1.8, ["a"])])
    coefs = xr.DataArray([[0.5, -2e-4], [0.02, 1e-3], [-0.3, 0.0]], dims=("rule", "term"),
                         coords={"term": ["x~ y", "x y~"]})
    plots.coefficient_distributions(sheet, "a", coefs)
    ax = sheet.ax("a")
    sheet.finish()
    f = ax.yaxis.get_transform().transform
    scatter = next(e for e in sheet.elements["a"][0] if isinstance(e, hv.Scatter))
    moved = plots._y_through(scatter, f)
    np.testing.assert_allclose(moved.dimension_values(1), f(scatter.dimension_values(1)))
    assert np.ptp(moved.dimension_values(1)) < np.ptp(scatter.dimension_values(1))   # 0.5 and -0.3 drawn closer
    axes = plots._bokeh_axes(ax, "a")
    assert not axes["logy"] and axes["ylim"][0] < f(np.array([-0.3]))[0] < axes["ylim"][1]
    labels = dict((t, v) for v, t in axes["yticks"])
    assert "0" in labels and abs(labels["0"]) < 1e-12       # labels as the static panel's, at their transformed places
    assert any(t.startswith("10^") or t.startswith("−10^") for t in labels)
    band = hv.Area(([0, 1], [-0.3, 1e-4], [0.5, 0.02]), "x", ["lo", "hi"])
    np.testing.assert_allclose(plots._y_through(band, f).dimension_values(2), f(np.array([0.5, 0.02])))
    assert "Bokeh" in sheet.to_html("t")


def test_fig2_decoding_panel_leaves_blown_up_networks_out_of_its_test(hv):
    """A blown-up network's R² (read from the penalty's rates) is neither drawn nor tested, and is
    counted in the note, as the Fig 2 claim does."""
    rng = np.random.default_rng(0)
    r2 = np.concatenate([0.9 + 0.01 * rng.standard_normal((2, 10)), 0.6 + 0.01 * rng.standard_normal((1, 10))])
    blew = np.zeros((3, 10), np.int8)
    blew[1, :3] = 1
    ev = xr.Dataset({"decoder_r2": (("rule", "network"), r2), "blew_up": (("rule", "network"), blew)},
                    coords={"rule": ["run 0", "run 1", "no plasticity"]})
    sheet = plots.Sheet([(1.8, ["a"])])
    plots.r2_comparison(sheet, "a", ev)
    note = " ".join(plots._title_note(sheet.ax("a")))
    assert "N = 17 vs 10" in note and "3 blew up: left out" in note


def test_stress_panel_draws_far_outliers_on_its_top_line_and_counts_them(hv):
    """Fig 4d's axis ends at the first power of 10 at least half a decade above the 99.5th
    percentile: a network far above it is drawn on that line and counted, and the statistics in
    the note still use its loss."""
    rng = np.random.default_rng(0)
    loss = rng.lognormal(4.5, 0.3, (2, 3, 200))
    loss[1, 0, 0] = 1e6                                     # one network far above the rest, after turnover
    sd = xr.Dataset({"loss": (("condition", "rule", "network"), loss),
                     "blew_up": (("condition", "rule", "network"), np.zeros(loss.shape, np.int8))},
                    coords={"condition": ["unperturbed", "stressed"], "group": ["learned, turnover", "hand-made"],
                            "rule_group": ("rule", ["learned, turnover", "learned, turnover", "hand-made"])})
    sheet = plots.Sheet([(1.8, ["a", "b"])])
    plots.stress_boxes(sheet, ["a", "b"], sd)
    before, after = (" ".join(plots._title_note(sheet.ax(k))) for k in "ab")
    assert "△ 1 above 10³" in after and "△" not in before        # 99.5th percentile about 200
    assert sheet.ax("b").get_ylim()[1] == pytest.approx(1.4e3)
    from plasticity_repro.experiments.stats import stress_pair
    d = stress_pair(sd, "stressed", "learned, turnover")["cohens_d"]
    assert f"d = {d:.2f}" in after.replace("\u00a0", " ")
