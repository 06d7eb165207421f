"""Statistics of the figure comparisons: Kruskal-Wallis with Bonferroni correction, Cohen's d."""
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
