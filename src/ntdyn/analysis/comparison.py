"""Comparing a data-trained model with the task-trained system it was fitted to.

All functions take arrays with the sample axes first and features last
((B, T, D) or (N, D)); they are evaluated on held-out trials by the caller.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, float).reshape(-1, np.shape(x)[-1])


def r2_variance_weighted(true: np.ndarray, pred: np.ndarray) -> float:
    """1 - SS_res / SS_tot summed over all features (features weighted by their variance)."""
    t, p = _flat(true), _flat(pred)
    return float(1.0 - ((t - p) ** 2).sum() / ((t - t.mean(axis=0)) ** 2).sum())


def poisson_log_likelihood(spikes: np.ndarray, rates: np.ndarray) -> float:
    """sum y log(lambda) - lambda - log(y!) over all bins and neurons (nats)."""
    rates = np.maximum(rates, 1e-12)
    return float((spikes * np.log(rates) - rates - gammaln(spikes + 1)).sum())


def co_bps(spikes: np.ndarray, rates: np.ndarray) -> float:
    """Bits per spike of predicted `rates` over each neuron's mean rate (held-out neurons).

    0 for the mean-rate model itself; > 0 when the rates explain the spikes better.
    """
    y = _flat(spikes)
    null = np.broadcast_to(y.mean(axis=0), y.shape)
    gain = poisson_log_likelihood(y, _flat(rates)) - poisson_log_likelihood(y, null)
    return float(gain / (y.sum() * np.log(2)))


def fit_affine(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares y ~ x W + b; returns (W (Dx, Dy), b (Dy,))."""
    xf, yf = _flat(x), _flat(y)
    design = np.column_stack([xf, np.ones(len(xf))])
    coef, *_ = np.linalg.lstsq(design, yf, rcond=None)
    return coef[:-1], coef[-1]


def state_r2(source: np.ndarray, target: np.ndarray) -> float:
    """R^2 of the best affine map source -> target (variance-weighted over target dims).

    true -> inferred penalises inferred dimensions the truth cannot explain;
    inferred -> true measures how much of the truth the model recovered.
    """
    W, b = fit_affine(source, target)
    return r2_variance_weighted(target, _flat(source) @ W + b)


def cycle_consistency_r2(inferred: np.ndarray, true: np.ndarray) -> float:
    """R^2 of inferred latents mapped to the true ones and back (affine both ways)."""
    to_true = fit_affine(inferred, true)
    back = fit_affine(true, inferred)
    round_trip = (_flat(inferred) @ to_true[0] + to_true[1]) @ back[0] + back[1]
    return r2_variance_weighted(inferred, round_trip)


def compare_fixed_points(
    points_a: np.ndarray, stable_a: np.ndarray, points_b: np.ndarray, stable_b: np.ndarray,
    affine: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:  # fmt: skip
    """Fixed points of two systems as numbers (the reference benchmark only plots them).

    points_a (Ma, Da) are mapped into system b's space with `affine` (W (Da, Db), b
    (Db,), e.g. `fit_affine` between their latent trajectories) and matched to
    points_b (Mb, Db) by minimum total distance. Returns counts and stable counts of
    both, the number matched, the mean and max matched distance (relative to the
    spread of b's points, or absolute with one point) and the share of matched
    pairs with the same stability.
    """
    a = np.asarray(points_a, float) @ affine[0] + affine[1]
    b = np.asarray(points_b, float)
    out = {
        "n_a": len(a), "n_b": len(b), "n_stable_a": int(np.sum(stable_a)),
        "n_stable_b": int(np.sum(stable_b)),
    }  # fmt: skip
    if len(a) == 0 or len(b) == 0:
        return out | {"n_matched": 0, "mean_distance": np.nan, "max_distance": np.nan,
                      "same_stability": np.nan}  # fmt: skip
    dist = np.linalg.norm(a[:, None] - b[None], axis=-1)
    rows, cols = linear_sum_assignment(dist)
    scale = np.linalg.norm(b - b.mean(0), axis=1).mean() if len(b) > 1 else 1.0
    matched = dist[rows, cols] / max(scale, 1e-12)
    same = np.asarray(stable_a)[rows] == np.asarray(stable_b)[cols]
    return out | {
        "n_matched": len(rows), "mean_distance": float(matched.mean()),
        "max_distance": float(matched.max()), "same_stability": float(same.mean()),
    }  # fmt: skip
