"""Comparing a data-trained model with the task-trained system it was fitted to.

All functions take arrays with the sample axes first and features last
((B, T, D) or (N, D)). Fitted maps are fitted on training trials and scored on held-out ones
(the caller's split), as the Computation-Through-Dynamics benchmark does.
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


def co_bps_ctdb(spikes: np.ndarray, rates: np.ndarray, n_inputs: int) -> float:
    """The benchmark's "co-bps": `co_bps` over the neurons from index `n_inputs` to the last.

    spikes, rates (..., N). The Computation-Through-Dynamics benchmark
    (`Comparison.compute_metrics` in ctd/comparison/comparison.py of
    snel-repo/ComputationThruDynamicsBenchmark) takes `n_input_neurons` from the shape of the
    task inputs (3 for the 3-bit flip-flop, 20 for MultiTask) and scores the neurons after
    them, held-in ones included (with 50 + 10 neurons: 47 held-in and 10 held-out for the
    flip-flop). The null model is each of those neurons' mean over the evaluated bins, as in
    `co_bps`. It is not ntdyn's held-out co-bps: most of its neurons were read by the model.
    """
    n_neurons = np.shape(spikes)[-1]
    if isinstance(n_inputs, bool) or not 0 <= n_inputs < n_neurons:
        raise ValueError(
            f"n_inputs = {n_inputs!r}: the benchmark's co-bps scores neurons n_inputs .. "
            f"{n_neurons - 1}, so it must be in [0, {n_neurons})"
        )
    return co_bps(np.asarray(spikes)[..., n_inputs:], np.asarray(rates)[..., n_inputs:])


def fit_affine(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares y ~ x W + b; returns (W (Dx, Dy), b (Dy,))."""
    xf, yf = _flat(x), _flat(y)
    design = np.column_stack([xf, np.ones(len(xf))])
    coef, *_ = np.linalg.lstsq(design, yf, rcond=None)
    return coef[:-1], coef[-1]


def affine_r2(
    source_train: np.ndarray, target_train: np.ndarray, source_test: np.ndarray,
    target_test: np.ndarray,
) -> float:  # fmt: skip
    """Cross-validated R^2 of an affine map source -> target (variance-weighted over target dims).

    The map is fitted by least squares (with an offset) on the training trials and scored on
    the held-out ones, as the Computation-Through-Dynamics benchmark scores state R^2 and input
    R^2 (`get_signal_r2_linear` in ctd/comparison/metrics.py of
    snel-repo/ComputationThruDynamicsBenchmark: sklearn's LinearRegression, r2_score with
    multioutput="variance_weighted", no PCA first). A map fitted and scored on the same trials
    rewards spare inferred dimensions that fit noise (see `affine_r2_in_sample`).

    For latents: true -> inferred penalises inferred dimensions the truth cannot explain;
    inferred -> true measures how much of the truth the model recovered.
    """
    W, b = fit_affine(source_train, target_train)
    return r2_variance_weighted(target_test, _flat(source_test) @ W + b)


def affine_r2_in_sample(source: np.ndarray, target: np.ndarray) -> float:
    """R^2 of the affine map source -> target scored on the trials it was fitted to (an upper
    bound of `affine_r2`; what ntdyn reported as state R^2 before it was cross-validated)."""
    return affine_r2(source, target, source, target)


def round_trip_r2(
    inferred_train: np.ndarray, true_train: np.ndarray, inferred_test: np.ndarray
) -> float:
    """R^2 of held-out inferred latents mapped to the true latents and back (ntdyn's own).

    Both affine maps (inferred -> true, true -> inferred) are fitted on the training trials;
    1 when the inferred latents are an invertible affine copy of the truth, lower by the
    share of inferred variance the truth cannot carry. Not the benchmark's cycle consistency
    (that is `cycle_consistency_r2`).
    """
    to_true = fit_affine(inferred_train, true_train)
    back = fit_affine(true_train, inferred_train)
    round_trip = (_flat(inferred_test) @ to_true[0] + to_true[1]) @ back[0] + back[1]
    return r2_variance_weighted(inferred_test, round_trip)


def principal_axes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and principal axes (D, K) of x (..., D), K = min(samples, D), every axis kept
    (the coordinates are only rotated, none dropped)."""
    xf = _flat(x)
    mean = xf.mean(axis=0)
    _, _, vt = np.linalg.svd(xf - mean, full_matrices=False)
    return mean, vt.T


def truncated_pinv(W: np.ndarray, variance_threshold: float) -> np.ndarray:
    """Pseudo-inverse (Dy, Dx) of W (Dx, Dy) from its largest singular values only.

    Singular values are kept, largest first, until their squares hold at least
    1 - variance_threshold of the sum of all squares; the rest (directions the map barely
    uses, and the round-off of a rank-deficient fit) are dropped instead of inverted.
    A zero map has a zero pseudo-inverse.
    """
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    power = s**2
    if power.sum() == 0:
        return np.zeros(W.T.shape)
    held = np.cumsum(power) / power.sum()
    k = min(int(np.sum(held < 1.0 - variance_threshold)) + 1, len(s))
    return Vt[:k].T @ np.diag(1.0 / s[:k]) @ U[:, :k].T


def cycle_consistency_r2(
    latents_train: np.ndarray, log_rates_train: np.ndarray, latents_test: np.ndarray,
    variance_threshold: float = 0.01,
) -> float:  # fmt: skip
    """The benchmark's cycle consistency: can a model's latents be read back from its rates?

    latents (B, T, G) and log_rates (B, T, N) are the data-trained model's own (inferred;
    log of expected counts per bin). Steps, after `get_cycle_consistency` in
    ctd/comparison/metrics.py of snel-repo/ComputationThruDynamicsBenchmark:
    1. latents and log-rates are put in the principal-axis coordinates of their training
       trials (centred on the training mean, rotated, all axes kept);
    2. an affine readout latents -> log-rates is fitted on the training trials;
    3. the held-out latents go through it to predicted log-rates, and back to latents through
       the readout's pseudo-inverse truncated at `variance_threshold` (1 %) of its squared
       singular values (`truncated_pinv`), after the readout's offset is removed;
    4. R^2 (variance-weighted) of the reconstruction against the held-out latents.
    The held-out log-rates themselves are not used: the readout is the model's map from
    latents to rates. Latent directions the rates do not read (extra dimensions, a readout of
    lower rank, directions read with < 1 % of the readout's power) cannot come back and lower
    the score by their share of the held-out latent variance.
    """
    z_mean, z_axes = principal_axes(latents_train)
    r_mean, r_axes = principal_axes(log_rates_train)
    z_train = (_flat(latents_train) - z_mean) @ z_axes
    z_test = (_flat(latents_test) - z_mean) @ z_axes
    W, b = fit_affine(z_train, (_flat(log_rates_train) - r_mean) @ r_axes)
    predicted = z_test @ W + b
    reconstructed = (predicted - b) @ truncated_pinv(W, variance_threshold)
    return r2_variance_weighted(z_test, reconstructed)


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
