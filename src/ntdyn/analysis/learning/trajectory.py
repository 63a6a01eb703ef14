"""The parameter trajectory: PCA and the power spectra of its top components.

The trajectory is all weights at each of S records, (S, P); `parameter_pca` finds its
principal directions and `power_spectra` the periodograms of the scores along them, in
cycles per training step (docs/science.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import signal

from ntdyn.analysis.learning._checks import _as_2d


@dataclass(frozen=True)
class ParameterPCA:
    """PCA of a parameter trajectory with k components of P parameters over S records.

    scores: (S, k) coordinates of each record along the components (parameter units);
    components: (k, P) orthonormal rows, ordered by decreasing variance (zero rows for
    components beyond the rank of the centred trajectory); explained_variance_ratio: (k,)
    fraction of the total variance along each component; mean: (P,) mean over records.
    """

    scores: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray


def parameter_pca(trajectory: np.ndarray, n_components: int) -> ParameterPCA:
    """PCA of a parameter trajectory (S records, P parameters), centred over records.

    When P > S the eigenvectors of the (S, S) Gram matrix give the left singular vectors
    (memory and time O(S^2 P) instead of an SVD of a (S, P) matrix with P in the millions).
    k = min(n_components, S, P). Each component's sign is fixed so that its largest-magnitude
    loading is positive, as in `ntdyn.analysis.pca.fit_pca`.
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    x = _as_2d("trajectory", trajectory)
    s_count, p_count = x.shape
    if s_count < 2:
        raise ValueError(f"trajectory needs >= 2 recorded steps (rows); got {s_count}")
    k = min(n_components, s_count, p_count)
    mean = x.mean(0)
    x = x - mean
    if p_count > s_count:
        eigval, u = np.linalg.eigh(x @ x.T)
        order = np.argsort(eigval)[::-1][:k]
        sing = np.sqrt(np.clip(eigval[order], 0.0, None))
        u = u[:, order]
    else:
        u, sing, _ = np.linalg.svd(x, full_matrices=False)
        u, sing = u[:, :k], sing[:k]
    # Directions with ~zero variance are numerically undefined: return them as zero rows.
    keep = sing > sing.max(initial=0.0) * 1e-10
    components = np.zeros((k, p_count))
    components[keep] = (u[:, keep].T @ x) / sing[keep, None]
    pivot = components[np.arange(k), np.abs(components).argmax(1)]
    sign = np.where(pivot < 0, -1.0, 1.0)
    components *= sign[:, None]
    scores = x @ components.T
    total = float((x**2).sum())
    ratio = sing**2 / total if total > 0 else np.zeros(k)
    return ParameterPCA(scores, components, ratio, mean)


def power_spectra(
    scores: np.ndarray,
    step_interval: int,
    n_components: int | None = None,
    window: str = "hann",
) -> pd.DataFrame:
    """Periodogram of each column of scores (S, k) recorded every `step_interval` steps.

    Each column is detrended linearly first (training trajectories drift) and tapered by
    `window` (any scipy.signal window name; "boxcar" for none). Only the first
    `n_components` columns are used (all when None). Long table with columns component
    (int, 0-based), frequency (cycles per training step, from 1 / (S * step_interval) to the
    Nyquist 0.5 / step_interval; frequency 0 is excluded) and power (density, units of the
    scores squared per cycle per training step).
    """
    if step_interval < 1:
        raise ValueError(f"step_interval must be >= 1 training step, got {step_interval}")
    x = _as_2d("scores", scores)
    if x.shape[0] < 4:
        raise ValueError(f"scores need >= 4 recorded steps (rows); got {x.shape[0]}")
    if n_components is not None:
        if not 1 <= n_components <= x.shape[1]:
            raise ValueError(
                f"n_components must be in 1..{x.shape[1]} (columns of scores), got {n_components}"
            )
        x = x[:, :n_components]
    freq, power = signal.periodogram(
        x, fs=1.0 / step_interval, window=window, detrend="linear", axis=0
    )
    nonzero = freq > 0
    freq, power = freq[nonzero], power[nonzero]
    k = x.shape[1]
    return pd.DataFrame(
        {
            "component": np.repeat(np.arange(k), freq.size),
            "frequency": np.tile(freq, k),
            "power": power.T.ravel(),
        }
    )
