"""Means and 95% intervals over seeds (Student's t, as few seeds call for)."""

from __future__ import annotations

import math

from scipy import stats


def mean_and_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided t interval); the half-width is 0 for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, n - 1) * math.sqrt(variance / n))
