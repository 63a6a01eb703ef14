"""Unit-unit correlations: fire together, wire together.

Does co-activity of two units go with the weight connecting them? Pearson correlations
between units, the strongest pairs, and the Spearman rank correlation of co-activity with
weight over all pairs (docs/science.md §7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ntdyn.analysis.learning._checks import _as_2d, _zscore_columns


def cross_correlation(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Pearson correlation (n_post, n_pre) of post units with pre units over samples.

    pre: (n_samples, n_pre), post: (n_samples, n_post) activations on the same samples
    (e.g. probe inputs x records). Entry [i, j] is corr(post_i, pre_j), laid out like the
    weight matrix W (n_post, n_pre) connecting the layers. A constant unit correlates 0
    (not NaN) with everything.
    """
    a = _as_2d("pre", pre)
    b = _as_2d("post", post)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"pre and post must have the same samples; got {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"need >= 2 samples for a correlation; got {a.shape[0]}")
    corr = _zscore_columns(b).T @ _zscore_columns(a) / a.shape[0]
    return np.clip(corr, -1.0, 1.0)


def unit_correlations(activations: np.ndarray) -> np.ndarray:
    """Pearson correlation (U, U) between the units of activations (n_samples, U).

    A constant unit has correlation 0 with every unit, itself included (not NaN).
    """
    x = _as_2d("activations", activations)
    return cross_correlation(x, x)


def strongest_pairs(corr_pre_post: np.ndarray, weights: np.ndarray, n: int) -> pd.DataFrame:
    """The n (post, pre) unit pairs with the largest |correlation|, strongest first.

    corr_pre_post: (n_post, n_pre) correlations, e.g. `cross_correlation(pre, post)`;
    weights: (n_post, n_pre) the weights W connecting pre unit j to post unit i. Columns
    post, pre (unit indices), correlation, weight. Ties keep row-major order; n is clipped
    to the number of pairs.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    corr = _as_2d("corr_pre_post", corr_pre_post)
    w = _as_2d("weights", weights)
    if corr.shape != w.shape:
        raise ValueError(
            f"corr_pre_post {corr.shape} and weights {w.shape} must both be (n_post, n_pre)"
        )
    order = np.argsort(-np.abs(corr).ravel(), kind="stable")[:n]
    post, pre = np.unravel_index(order, corr.shape)
    return pd.DataFrame(
        {"post": post, "pre": pre, "correlation": corr[post, pre], "weight": w[post, pre]}
    )


def correlation_weight_relation(corr: np.ndarray, weights: np.ndarray) -> float:
    """Spearman rank correlation between co-activity and weight over all pairs.

    corr, weights: same shape, e.g. (n_post, n_pre). rho > 0: units that fire together are
    wired together more strongly. NaN if either is constant.
    """
    c = np.asarray(corr, dtype=float)
    w = np.asarray(weights, dtype=float)
    if c.shape != w.shape:
        raise ValueError(f"corr {c.shape} and weights {w.shape} must have the same shape")
    if c.size < 3:
        raise ValueError(f"need >= 3 pairs for a rank correlation; got {c.size}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(w))):
        raise ValueError("corr and weights must be finite")
    if np.ptp(c) == 0 or np.ptp(w) == 0:
        return float("nan")
    return float(stats.spearmanr(c.ravel(), w.ravel()).statistic)
