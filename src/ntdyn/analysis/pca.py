"""Principal component analysis of hidden states (pure NumPy).

States are arrays (..., H): every leading axis (trial, time step, ...) is a sample, so a
(C, T, H) set of trajectories is fitted as C * T points in R^H. `time_window` restricts the
fit to a span of steps (e.g. "PCA of steps 50-100") before the states are flattened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """A fitted PCA with k components of H-dimensional states.

    mean: (H,) sample mean; components: (k, H) orthonormal rows, ordered by decreasing
    variance; explained_variance: (k,) variance along each component (units of the states
    squared, ddof = 1); explained_variance_ratio: (k,) explained_variance / total_variance;
    total_variance: sum of the per-dimension variances of the fitted states (ddof = 1).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    total_variance: float

    @property
    def n_components(self) -> int:
        return self.components.shape[0]


def fit_pca(states: np.ndarray, n_components: int) -> PCA:
    """PCA of states (..., H), all leading axes being samples (N = their product).

    Centres the samples and takes an economy SVD. `n_components` larger than min(N, H) is
    clipped to min(N, H); components beyond the rank of the centred data then carry zero
    variance and span an arbitrary orthonormal complement. Each component's sign is fixed
    so that its largest-magnitude loading is positive (reproducible across refits).
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    states = np.asarray(states, dtype=float)
    if states.ndim < 2:
        raise ValueError(
            f"states must be (..., H) with at least one sample axis; got {states.shape}"
        )
    x = states.reshape(-1, states.shape[-1])
    n, h = x.shape
    if n == 0:
        raise ValueError("states contain no samples")
    k = min(n_components, n, h)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:k]
    # svd_flip-like sign convention: SVD signs are arbitrary otherwise.
    pivot = components[np.arange(k), np.abs(components).argmax(1)]
    components = components * np.where(pivot < 0, -1.0, 1.0)[:, None]
    dof = max(n - 1, 1)
    all_variance = s**2 / dof
    total = float(all_variance.sum())
    variance = all_variance[:k]
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCA(mean, components, variance, ratio, total)


def project(pca: PCA, states: np.ndarray) -> np.ndarray:
    """Coordinates of states (..., H) along the components: (..., k), origin at `pca.mean`."""
    states = np.asarray(states, dtype=float)
    if states.shape[-1] != pca.mean.shape[0]:
        raise ValueError(
            f"states have {states.shape[-1]} dims, PCA was fitted on {pca.mean.shape[0]}"
        )
    return (states - pca.mean) @ pca.components.T


def time_window(
    states: np.ndarray, start: int, stop: int | None, time_axis: int = -2
) -> np.ndarray:
    """Steps start..stop-1 of states along `time_axis` (Python slice rules; stop None = end).

    E.g. states (C, T, H) with start=50, stop=100 -> (C, 50, H). An empty window is an error
    (a PCA of it would fail less clearly).
    """
    states = np.asarray(states)
    if not -states.ndim <= time_axis < states.ndim:
        raise ValueError(f"time_axis {time_axis} out of range for shape {states.shape}")
    axis = time_axis % states.ndim
    index = [slice(None)] * states.ndim
    index[axis] = slice(start, stop)
    out = states[tuple(index)]
    if out.shape[axis] == 0:
        raise ValueError(
            f"empty time window [{start}:{stop}] of {states.shape[axis]} steps (axis {time_axis})"
        )
    return out
