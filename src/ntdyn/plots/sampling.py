"""Bounded samples of single items for figures: evenly spaced, so a figure's size is bounded.

A figure that draws every single item (trial, condition, fixed point) grows with the
research-scale axes without bound; it draws summaries plus one of these samples instead,
and says how many of how many items it shows.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int


def evenly(n: int, k: int) -> Int[np.ndarray, " m"]:
    """Indices of at most `k` of `n` items, evenly spaced, the first and last included.

    Every index (0..n-1) when k >= n; otherwise `k` distinct ascending indices (one, the
    first, when k == 1). Raises ValueError for negative n or k < 1.
    """
    if n < 0:
        raise ValueError(f"n = {n!r}: must be an integer >= 0")
    if k < 1:
        raise ValueError(f"k = {k!r}: must be an integer >= 1")
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def by_rank(values: Float[np.ndarray, " n"], k: int) -> Int[np.ndarray, " m"]:
    """Indices of at most `k` items at evenly spaced ranks of `values` (ascending).

    The items with the smallest and the largest value are always included, so the sample
    spans the whole range of `values` (e.g. fixed points by spectral radius: the most stable
    and the least stable point are drawn whatever the sample size). NaN ranks last (numpy's
    sort order). Indices are returned in ascending order of value.
    """
    v = np.asarray(values, dtype=float).ravel()
    order = np.argsort(v, kind="stable")
    return order[evenly(len(v), k)]
