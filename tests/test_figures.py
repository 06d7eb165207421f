"""The house style of plasticity_repro.plots: byte-reproducible files and mathtext term names.

Small synthetic datasets only (no simulation): each test draws in well under a few seconds.
"""
import numpy as np
import pytest
import xarray as xr

from plasticity_repro import plots
from plasticity_repro.rules import TAU_NAMES, TERM_NAMES


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


def test_png_is_byte_identical_when_drawn_twice(hv):
    first, second = _sheet().to_bytes("png"), _sheet().to_bytes("png")
    assert first == second
    assert b"Software" not in first[:4096]    # no software stamp in the PNG text chunks


def test_sheet_is_journal_width(hv):
    sheet = _sheet()
    assert sheet.figure.get_figwidth() == pytest.approx(plots.SHEET_WIDTH)
    assert plots.DPI >= 200


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
