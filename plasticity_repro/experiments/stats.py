"""Statistics of the figure comparisons: Kruskal-Wallis with Bonferroni correction, Cohen's d
(the paper's effect size) and the rank-biserial correlation (an effect size that one network's
loss of 1e6 cannot dominate)."""
from __future__ import annotations

import numpy as np
from scipy import stats


def cohens_d(a, b) -> float:
    """(mean a - mean b) / pooled standard deviation (ddof = 1); NaNs dropped."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled)


def kruskal_bonferroni(a, b, n_comparisons: int = 1) -> tuple:
    """Kruskal-Wallis H test of two samples; returns (H, p, p Bonferroni-corrected, capped at 1)."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    h, p = stats.kruskal(a, b)
    return float(h), float(p), float(min(1.0, p * n_comparisons))


def mann_whitney(a, b, alternative: str = "two-sided") -> dict:
    """Mann-Whitney U of a against b ("greater": a tends to be larger); effect size the
    rank-biserial correlation r = 2U/(n_a n_b) - 1 (r > 0: a tends to be larger). NaNs dropped;
    p and r NaN when a sample is empty or all values are equal."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    if min(a.size, b.size) == 0 or np.ptp(np.r_[a, b]) == 0:
        return dict(u=np.nan, p=np.nan, r=np.nan, n_a=a.size, n_b=b.size)
    u, p = stats.mannwhitneyu(a, b, alternative=alternative)
    return dict(u=float(u), p=float(p), r=rank_biserial_from_u(u, a.size, b.size), n_a=a.size, n_b=b.size)


def wilcoxon_paired(a, b) -> dict:
    """Two-sided Wilcoxon signed-rank test of paired samples a, b; effect size the matched-pairs
    rank-biserial correlation r (> 0: a tends to be larger); n the pairs without a NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    d = d[d != 0]
    if d.size == 0:
        return dict(p=np.nan, r=np.nan, n=int(ok.sum()))
    ranks = stats.rankdata(np.abs(d))
    r = float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())
    return dict(p=float(stats.wilcoxon(a[ok], b[ok]).pvalue), r=r, n=int(ok.sum()))


def rank_biserial_from_u(u: float, n_a: int, n_b: int) -> float:
    """Rank-biserial r = 2U/(n_a n_b) - 1 from Mann-Whitney's U of sample a (pairs a > b, ties
    half): > 0 when a tends to be larger."""
    return float(2.0 * u / (n_a * n_b) - 1.0)


def rank_biserial(a, b) -> float:
    """P(a < b) - P(a > b) over all pairs (ties count half): -1 when every a is below every b,
    0 for no shift; 2U/(n_a n_b) - 1 with U Mann-Whitney's statistic of a (pairs a > b). NaNs dropped."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    return rank_biserial_from_u(u, len(a), len(b))


# Fig 4d's family of tests: each learned group (trained with and without turnover) against the
# hand-made rule, before and after turnover
STRESS_COMPARISONS = 4


def stress_pair(sd, condition: str, first: str, second: str = "hand-made",
                n_comparisons: int = STRESS_COMPARISONS) -> dict:
    """Fig 4d's statistics of rule group `first` against `second` in one condition of a stress
    dataset (experiments.stress), per-network losses, the group's rules pooled: Kruskal-Wallis H, p
    and p Bonferroni-corrected over `n_comparisons`, rank-biserial r, medians and numbers over every
    network (a blow-up at its penalty: the rank statistics place it last, as it is); Cohen's d over
    the networks that did not blow up (a mean with the penalty in it is the penalty's, as the
    dataset's own `cohens_d`). d and r negative: `first` lower. The claim and the figure's panel
    both print these."""
    cond = sd.sel(condition=condition)
    groups = np.asarray(sd.rule_group.values).astype(str)
    a = cond.loss.values[groups == first].ravel()
    b = cond.loss.values[groups == second].ravel()
    ok_a = cond.blew_up.values[groups == first].ravel() == 0
    ok_b = cond.blew_up.values[groups == second].ravel() == 0
    h, p, pb = kruskal_bonferroni(a, b, n_comparisons)
    return dict(kruskal_h=h, p=p, p_bonferroni=pb, n_comparisons=n_comparisons, cohens_d=cohens_d(a[ok_a], b[ok_b]),
                rank_biserial=rank_biserial(a, b), median_first=float(np.nanmedian(a)),
                median_second=float(np.nanmedian(b)), n_first=int(a.size), n_second=int(b.size),
                n_rules_first=int((groups == first).sum()))
