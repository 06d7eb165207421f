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


def rank_biserial(a, b) -> float:
    """P(a < b) - P(a > b) over all pairs (ties count half): -1 when every a is below every b,
    0 for no shift; 2U/(n_a n_b) - 1 with U Mann-Whitney's statistic of a (pairs a > b). NaNs dropped."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    return float(2.0 * u / (len(a) * len(b)) - 1.0)
