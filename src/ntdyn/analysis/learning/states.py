"""Behavioural mapping of the parameter trajectory: states of learning.

After Berman et al. 2014 (J R Soc Interface 11:20140672): Morlet wavelet amplitudes of the
top PCA scores -> t-SNE -> smoothed density -> watershed regions, the discrete states of
learning over training (docs/science.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ntdyn.analysis.learning._checks import _as_1d, _as_2d
from ntdyn.analysis.learning.units import _tsne

# Morlet centre angular frequency (dimensionless), as in Berman et al. 2014.
MORLET_OMEGA0 = 5.0


@dataclass(frozen=True)
class LearningStates:
    """States of learning from a behavioural map of the parameter trajectory.

    embedding: (S, 2) t-SNE coordinates of each record; density: (grid, grid) smoothed
    density of the embedding (sums to 1), density[i, j] for x bin i, y bin j; labels_map:
    (grid, grid) int watershed region of each bin, 0..n_states-1 in decreasing order of peak
    density; state: (S,) int region each record falls in; edges_x, edges_y: (grid + 1,) bin
    edges in embedding units; frequencies: (n_frequencies,) wavelet centre frequencies in
    cycles per training step.
    """

    embedding: np.ndarray
    density: np.ndarray
    labels_map: np.ndarray
    state: np.ndarray
    edges_x: np.ndarray
    edges_y: np.ndarray
    frequencies: np.ndarray

    @property
    def n_states(self) -> int:
        return int(self.labels_map.max()) + 1


def morlet_amplitudes(
    series: np.ndarray, frequencies: np.ndarray, omega0: float = MORLET_OMEGA0
) -> np.ndarray:
    """Morlet wavelet amplitudes (N, n_freq) of series (N,) at frequencies (cycles/sample).

    The wavelet at frequency f has scale s = (omega0 + sqrt(2 + omega0^2)) / (4 pi f)
    samples (Berman et al. 2014: the scale whose Fourier period is 1 / f), a Gaussian
    envelope truncated at +-4 s, and is normalised so that a sinusoid of amplitude A at f
    reads ~A. The series is mean-centred and mirrored at both ends (within ~s of an end the
    amplitudes blend in the mirrored signal).
    """
    x = _as_1d("series", series)
    x = x - x.mean()
    out = np.empty((x.size, len(frequencies)))
    for i, freq in enumerate(frequencies):
        scale = (omega0 + np.sqrt(2.0 + omega0**2)) / (4.0 * np.pi * freq)
        half = int(np.ceil(4.0 * scale))
        tau = np.arange(-half, half + 1)
        envelope = np.exp(-0.5 * (tau / scale) ** 2)
        # Sum of envelope / 2: a real sinusoid puts half its amplitude at +f.
        kernel = np.exp(1j * omega0 * tau / scale) * envelope / (envelope.sum() / 2.0)
        # Mirror the series at its ends: zero padding would read as a drop in amplitude.
        padded = np.pad(x, half, mode="symmetric")
        out[:, i] = np.abs(np.convolve(padded, kernel, mode="valid"))
    return out


def _watershed_states(density: np.ndarray, min_distance: int, peak_threshold: float) -> np.ndarray:
    """Watershed labels (grid, grid) of -density, 0-based, basins seeded at density peaks."""
    from skimage.feature import peak_local_max  # heavy import, only where used
    from skimage.segmentation import watershed

    peaks = peak_local_max(
        density, min_distance=min_distance, threshold_rel=peak_threshold, exclude_border=False
    )
    markers = np.zeros(density.shape, dtype=int)
    # peak_local_max lists peaks by decreasing density, so state 0 is the densest.
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-density, markers) - 1


def learning_states(
    scores: np.ndarray,
    step_interval: int,
    n_frequencies: int = 8,
    perplexity: float = 20.0,
    grid: int = 64,
    sigma: float = 1.5,
    seed: int = 0,
    min_distance: int = 2,
    peak_threshold: float = 0.05,
) -> LearningStates:
    """Behavioural map of a trajectory's top PCA scores (S, k), after Berman et al. 2014.

    1. Morlet amplitudes (`morlet_amplitudes`, omega0 = 5) of each component at
       `n_frequencies` log-spaced frequencies from 2 / S to the Nyquist 0.5 cycles per
       record (= 1 / step_interval cycles per training step);
    2. per record, the k * n_frequencies amplitudes normalised to sum 1 (the spectral shape,
       not the size of the motion);
    3. t-SNE to 2-D (`perplexity`, clipped below S; PCA init; `seed`);
    4. a 2-D histogram on a grid x grid map spanning the embedding (plus 5% margins),
       smoothed by a Gaussian of `sigma` bins and normalised to sum 1;
    5. watershed of the negated density from its local maxima (at least `min_distance` bins
       apart and >= `peak_threshold` times the highest peak); each record takes the state of
       the region its embedding point falls in.

    sigma sets the granularity: with a few hundred records t-SNE strings each regime out
    over much of the map and sigma = 1.5 bins yields ~20 small states; sigma ~ 6 bins of a
    64-bin grid merges them into one state per regime (see tests/analysis/test_learning.py).
    """
    if step_interval < 1:
        raise ValueError(f"step_interval must be >= 1 training step, got {step_interval}")
    if n_frequencies < 1:
        raise ValueError(f"n_frequencies must be >= 1, got {n_frequencies}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    if grid < 4:
        raise ValueError(f"grid must be >= 4 bins, got {grid}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 bins, got {sigma}")
    if min_distance < 1:
        raise ValueError(f"min_distance must be >= 1 bin, got {min_distance}")
    if not 0 <= peak_threshold < 1:
        raise ValueError(f"peak_threshold must be in [0, 1), got {peak_threshold}")
    x = _as_2d("scores", scores)
    n_records = x.shape[0]
    if n_records < 8:
        raise ValueError(f"scores need >= 8 recorded steps (rows); got {n_records}")
    frequencies = np.geomspace(2.0 / n_records, 0.5, n_frequencies)
    amplitudes = np.hstack([morlet_amplitudes(col, frequencies) for col in x.T])
    total = amplitudes.sum(1, keepdims=True)
    features = np.divide(amplitudes, total, out=np.zeros_like(amplitudes), where=total > 0)
    embedding = _tsne(features, perplexity, seed)
    edges = []
    for coord in embedding.T:
        low, high = coord.min(), coord.max()
        pad = 0.05 * (high - low) if high > low else 1.0
        edges.append(np.linspace(low - pad, high + pad, grid + 1))
    hist, _, _ = np.histogram2d(embedding[:, 0], embedding[:, 1], bins=edges)
    density = ndimage.gaussian_filter(hist, sigma, mode="constant")
    density /= density.sum()
    labels_map = _watershed_states(density, min_distance, peak_threshold)
    bins = [
        np.clip(np.searchsorted(e, c, side="right") - 1, 0, grid - 1)
        for e, c in zip(edges, embedding.T, strict=True)
    ]
    state = labels_map[bins[0], bins[1]]
    return LearningStates(
        embedding, density, labels_map, state, edges[0], edges[1], frequencies / step_interval
    )
