"""Correlation metrics shared by training and benchmarks: Pearson r, and r at the best small lag."""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two equal-length series; 0.0 when either is constant."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 1e-12 else 0.0


def best_lag_pearson(x: np.ndarray, y: np.ndarray, max_lag: int = 4, min_points: int = 10) -> tuple[float, int]:
    """Max over |lag| <= max_lag of r(x[t], y[t + lag]), and that lag (the first one on ties).

    Pairs with a NaN on either side are skipped; lags with fewer than `min_points` pairs or a constant
    side are not candidates. Returns (-inf, 0) when no lag qualifies.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = min(len(x), len(y))
    best = (-np.inf, 0)
    for lag in range(-max_lag, max_lag + 1):
        a = x[max(0, -lag) : n - max(0, lag)]
        b = y[max(0, lag) : n - max(0, -lag)]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < min_points or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
            continue
        r = pearson(a[ok], b[ok])
        if r > best[0]:
            best = (r, lag)
    return best
