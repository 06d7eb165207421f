"""The figures' statistics (experiments.stats) on samples whose answers are known."""
import json

import numpy as np
import pytest
import xarray as xr

from plasticity_repro.experiments import stats
from plasticity_repro.experiments.reduced_model import converged_fraction


def test_rank_biserial_signs_and_extremes():
    lo, hi = np.arange(5.0), np.arange(5.0) + 10
    assert stats.rank_biserial(lo, hi) == -1.0 and stats.rank_biserial(hi, lo) == 1.0
    assert stats.rank_biserial(lo, lo) == 0.0
    assert stats.rank_biserial_from_u(0, 5, 5) == -1.0 and stats.rank_biserial_from_u(25, 5, 5) == 1.0


def test_mann_whitney_one_sided_is_half_the_two_sided_in_the_direction_of_the_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 40)
    two, greater, less = (stats.mann_whitney(a, b, alternative=alt) for alt in ("two-sided", "greater", "less"))
    assert greater["p"] == pytest.approx(two["p"] / 2, rel=1e-6) and less["p"] > 0.5
    assert greater["r"] == two["r"] > 0 and two["n_a"] == two["n_b"] == 40
    assert np.isnan(stats.mann_whitney([1.0, 1.0], [1.0])["p"])      # all equal: no test


def _stress(loss, blew):
    """A stress dataset of 2 conditions x 2 rules (a learned one, the hand-made one) x N networks."""
    loss, blew = np.asarray(loss, float), np.asarray(blew, np.int8)
    return xr.Dataset({"loss": (("condition", "rule", "network"), loss),
                       "blew_up": (("condition", "rule", "network"), blew)},
                      coords={"condition": ["unperturbed", "stressed"], "rule": ["a", "h"],
                              "rule_group": ("rule", ["learned, turnover", "hand-made"])})


def test_stress_pair_ranks_every_network_and_leaves_blow_ups_out_of_d():
    learned = np.arange(10.0)
    handmade = np.arange(10.0) + 5
    loss = np.stack([np.stack([learned, handmade])] * 2)
    blew = np.zeros_like(loss)
    loss[1, 0, 0], blew[1, 0, 0] = 1e8, 1      # one learned network blows up after turnover
    before = stats.stress_pair(_stress(loss, blew), "unperturbed", "learned, turnover")
    after = stats.stress_pair(_stress(loss, blew), "stressed", "learned, turnover")
    assert before["cohens_d"] < 0 and before["rank_biserial"] < 0
    assert before["p_bonferroni"] == pytest.approx(min(1.0, 4 * before["p"]))
    # the blow-up ranks last (r moves up) but stays out of d, which the penalty would flip
    assert after["rank_biserial"] > before["rank_biserial"]
    assert after["cohens_d"] < 0 and after["n_first"] == 10 and after["median_second"] == 9.5


def test_converged_fraction_reads_both_moments_against_their_targets():
    m1 = np.array([[1.0, 1.04], [1.2, 1.0]])
    m2 = np.array([[2.0, 2.0], [2.0, 2.2]])
    ds = xr.Dataset({"m1": (("mode", "init", "activation", "amplitude", "width"), m1[None, None, None]),
                     "m2": (("mode", "init", "activation", "amplitude", "width"), m2[None, None, None])},
                    coords={"mode": ["two_rules"]}, attrs={"params_json": json.dumps(dict(target1=1.0, target2=2.0))})
    assert converged_fraction(ds, "two_rules", drop=0) == 0.5         # (1, 2) and (1.04, 2) within 5 %
    assert converged_fraction(ds, "two_rules", drop=1) == 0.0         # only (1.0, 2.2) is plotted


def test_wilcoxon_paired_drops_nan_pairs_and_signs_r_by_which_is_larger():
    from scipy import stats as sst
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.5, np.nan])
    b = np.array([0.0, 1.0, 1.0, 2.0, 2.0, 1.0])
    s = stats.wilcoxon_paired(a, b)
    assert s["n"] == 5 and s["r"] == 1.0
    assert s["p"] == pytest.approx(sst.wilcoxon(a[:5], b[:5]).pvalue)
    assert stats.wilcoxon_paired(b, a)["r"] == -1.0
    assert np.isnan(stats.wilcoxon_paired(a, a)["p"])      # no differences: no test
