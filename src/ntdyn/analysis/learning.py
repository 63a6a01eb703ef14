"""Analyses of a training trace: how a network learns (docs/science.md §7).

A classifier is trained and every `step_interval` training steps one record is taken: all
weights, losses, accuracies, gradient norms and the activations of every unit on a fixed probe
batch. S is the number of records. Everything here is NumPy/pandas in and out:

- `parameter_pca`, `power_spectra`: PCA of the parameter trajectory (S, P) and the power
  spectra of its top components.
- `unit_features`, `unit_tsne`: a 2-D map of the units from their incoming weights and their
  activation profile over training.
- `unit_correlations`, `cross_correlation`, `strongest_pairs`, `correlation_weight_relation`:
  "fire together, wire together" - does co-activity of two units go with their weight?
- `convergent_cross_mapping`, `ccm_direction`: does training variable X drive Y (pyEDM CCM)?
- `ar_forecast`: an autoregressive baseline forecast of a series such as the loss.
- `learning_states`: behavioural mapping of the trajectory (Berman et al. 2014, J R Soc
  Interface 11:20140672): Morlet wavelets -> t-SNE -> density -> watershed states of learning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage, signal, stats

# Quantile levels of the |incoming weight| distribution summarising a unit (fan-in free).
WEIGHT_QUANTILES = (np.arange(10) + 0.5) / 10
# Morlet centre angular frequency (dimensionless), as in Berman et al. 2014.
MORLET_OMEGA0 = 5.0


def _finite(name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    """`value` as a finite float array of `ndim` dimensions, or a ValueError naming `name`."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _as_2d(name: str, value: np.ndarray) -> np.ndarray:
    """`value` as a finite float (N, M) array."""
    return _finite(name, value, 2)


def _as_1d(name: str, value: np.ndarray) -> np.ndarray:
    """`value` as a finite float (N,) array."""
    return _finite(name, value, 1)


def _zscore_columns(x: np.ndarray) -> np.ndarray:
    """Columns of x (N, M) centred and scaled to unit std (ddof 0); constant columns -> 0."""
    centred = x - x.mean(0)
    std = centred.std(0)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)


# --- parameter trajectory: PCA and spectra -----------------------------------------------------


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


# --- units: features and t-SNE -----------------------------------------------------------------


def _weight_summary(weights: np.ndarray) -> np.ndarray:
    """(n_out, 12) summary of each row of incoming weights W (n_out, n_in).

    W is z-scored over the whole layer first (layers differ in scale, e.g. 1/sqrt(fan-in)
    initialisation), then each unit is described by quantiles of |w| at WEIGHT_QUANTILES,
    the mean and the std of its inputs: a fixed width whatever the fan-in.
    """
    std = weights.std()
    z = (weights - weights.mean()) / std if std > 0 else np.zeros_like(weights)
    quantiles = np.quantile(np.abs(z), WEIGHT_QUANTILES, axis=1).T
    return np.column_stack([quantiles, z.mean(1), z.std(1)])


def unit_features(incoming_weights: list[np.ndarray], activations: list[np.ndarray]) -> np.ndarray:
    """Feature vectors (U, F) of every unit of every layer, layers in the order given.

    incoming_weights[l]: (n_out_l, n_in_l) weights into layer l at the final record;
    activations[l]: (S, n_probe, n_out_l) activations of layer l on the probe batch over the
    S records. A unit's features are two blocks:

    - weights (12): `_weight_summary` of its incoming weights, each feature then z-scored
      across all U units;
    - activation profile (S): its mean activation over probes at each record, z-scored over
      records (a unit whose mean activation never changes gets zeros).

    Each block is divided by sqrt(its width) so both weigh equally in Euclidean distances.
    U = sum_l n_out_l; F = 12 + S.
    """
    if len(incoming_weights) != len(activations):
        raise ValueError(
            f"incoming_weights and activations must list the same layers; got "
            f"{len(incoming_weights)} and {len(activations)}"
        )
    if not incoming_weights:
        raise ValueError("incoming_weights must list at least one layer; got none")
    weight_blocks, activation_blocks = [], []
    n_records = None
    for layer, (w, a) in enumerate(zip(incoming_weights, activations, strict=True)):
        w = _as_2d(f"incoming_weights[{layer}]", w)
        a = np.asarray(a, dtype=float)
        if a.ndim != 3 or a.shape[2] != w.shape[0]:
            raise ValueError(
                f"activations[{layer}] must be (S, n_probe, {w.shape[0]}) to match "
                f"incoming_weights[{layer}] {w.shape}; got {a.shape}"
            )
        if n_records is None:
            n_records = a.shape[0]
        if a.shape[0] != n_records:
            raise ValueError(
                f"activations[{layer}] has {a.shape[0]} records, layer 0 has {n_records}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"activations[{layer}] contains NaN or inf values")
        weight_blocks.append(_weight_summary(w))
        activation_blocks.append(_zscore_columns(a.mean(1)).T)
    weight_part = _zscore_columns(np.concatenate(weight_blocks))
    activation_part = np.concatenate(activation_blocks)
    return np.hstack(
        [
            weight_part / np.sqrt(weight_part.shape[1]),
            activation_part / np.sqrt(activation_part.shape[1]),
        ]
    )


def _tsne(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE (PCA init, fixed seed) of features (N, F); perplexity clipped below N."""
    from sklearn.manifold import TSNE  # heavy import, only where t-SNE is used

    n = features.shape[0]
    return TSNE(
        n_components=2,
        perplexity=min(perplexity, n - 1.0),
        init="pca",
        random_state=seed,
    ).fit_transform(features)


def unit_tsne(features: np.ndarray, perplexity: float = 15.0, seed: int = 0) -> np.ndarray:
    """t-SNE map (U, 2) of unit features (U, F), e.g. from `unit_features`.

    perplexity (effective number of neighbours) is clipped to U - 1 (sklearn needs it
    < U). Initialised by PCA and seeded, so the same inputs and seed give the same map.
    """
    x = _as_2d("features", features)
    if x.shape[0] < 3 or x.shape[1] < 2:
        raise ValueError(f"features must be (U >= 3 units, F >= 2 features); got {x.shape}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    return _tsne(x, perplexity, seed)


# --- unit-unit correlations: fire together, wire together --------------------------------------


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


# --- convergent cross mapping ------------------------------------------------------------------


def convergent_cross_mapping(
    x: np.ndarray,
    y: np.ndarray,
    embedding_dim: int = 3,
    tau: int = 1,
    library_sizes: Sequence[int] | None = None,
    sample: int = 50,
    seed: int = 0,
    exclusion_radius: int = 0,
) -> pd.DataFrame:
    """Convergent cross mapping (Sugihara et al. 2012, Science 338:496) between x and y (N,).

    Columns:
    - library_size: number of library points L;
    - x_xmap_y: Pearson skill of estimating y from the shadow manifold of x (pyEDM
      columns=x, target=y, its 'x:y'). High and rising with L means **y drives x**: a
      cause leaves its trace in the dynamics of its effect;
    - y_xmap_x: skill of estimating x from y's shadow manifold (pyEDM 'y:x'): **x drives y**.

    Shadow manifolds are delay embeddings with `embedding_dim` (E) coordinates `tau` records
    apart (tau > 0 means lags into the past; pyEDM's tau is its negative). Skill is averaged
    over `sample` random libraries per size, drawn from `seed` (same seed, same numbers).
    library_sizes default to 8 sizes from E + 2 to N, spaced evenly. `exclusion_radius`
    drops neighbours within that many records of the predicted point (autocorrelation).
    """
    from pyEDM import CCM  # optional heavy dependency, only where used

    xs = _as_1d("x", x)
    ys = _as_1d("y", y)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length; got {xs.size} and {ys.size}")
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
    if tau < 1:
        raise ValueError(f"tau must be >= 1 record (a lag into the past), got {tau}")
    if sample < 1:
        raise ValueError(f"sample must be >= 1, got {sample}")
    if exclusion_radius < 0:
        raise ValueError(f"exclusion_radius must be >= 0 records, got {exclusion_radius}")
    n = xs.size
    smallest = embedding_dim + 2  # pyEDM's minimum library for E + 1 neighbours
    if n < smallest + (embedding_dim - 1) * tau:
        raise ValueError(
            f"x and y have {n} records; embedding_dim={embedding_dim}, tau={tau} need >= "
            f"{smallest + (embedding_dim - 1) * tau}"
        )
    if library_sizes is None:
        library_sizes = np.unique(np.linspace(smallest, n, 8).round().astype(int))
    sizes = [int(size) for size in library_sizes]
    if not sizes or any(not smallest <= size <= n for size in sizes):
        raise ValueError(
            f"library_sizes must be non-empty, each in {smallest}..{n} "
            f"(embedding_dim + 2 .. N); got {sizes}"
        )
    frame = pd.DataFrame({"time": np.arange(n), "x": xs, "y": ys})
    table = CCM(
        dataFrame=frame,
        columns="x",
        target="y",
        libSizes=sizes,
        sample=sample,
        E=embedding_dim,
        tau=-tau,
        exclusionRadius=exclusion_radius,
        seed=seed,
        # In-process: no worker start-up, and bit-identical results for a given seed.
        parallel=False,
    )
    return pd.DataFrame(
        {
            "library_size": table["LibSize"].to_numpy(dtype=int),
            "x_xmap_y": table["x:y"].to_numpy(dtype=float),
            "y_xmap_x": table["y:x"].to_numpy(dtype=float),
        }
    )


def ccm_direction(table: pd.DataFrame, margin: float = 0.1) -> dict:
    """Summary of a `convergent_cross_mapping` table: which variable drives which.

    Returns a dict with x_drives_y (final y_xmap_x skill, at the largest library),
    y_drives_x (final x_xmap_y), x_drives_y_gain and y_drives_x_gain (final minus smallest-
    library skill; > 0 is the convergence CCM requires), and direction: "x->y" or "y->x" for
    the direction whose final skill is higher by >= `margin` and which converges, otherwise
    "undetermined".
    """
    missing = {"library_size", "x_xmap_y", "y_xmap_x"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    if len(table) == 0:
        raise ValueError("table has no rows")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    ordered = table.sort_values("library_size")
    first, last = ordered.iloc[0], ordered.iloc[-1]
    x_to_y, y_to_x = float(last["y_xmap_x"]), float(last["x_xmap_y"])
    x_gain = x_to_y - float(first["y_xmap_x"])
    y_gain = y_to_x - float(first["x_xmap_y"])
    direction = "undetermined"
    if x_to_y - y_to_x >= margin and x_gain > 0:
        direction = "x->y"
    elif y_to_x - x_to_y >= margin and y_gain > 0:
        direction = "y->x"
    return {
        "x_drives_y": x_to_y,
        "y_drives_x": y_to_x,
        "x_drives_y_gain": x_gain,
        "y_drives_x_gain": y_gain,
        "direction": direction,
    }


# --- autoregressive baseline -------------------------------------------------------------------


@dataclass(frozen=True)
class ARForecast:
    """A least-squares AR(order) fit and its iterated forecast.

    intercept: c; coefficients: (order,) a_1..a_p of x_t = c + sum_i a_i x_{t-i}; forecast:
    (N - n_train,) predictions of series[n_train:], each fed back as input (no peeking);
    rmse: of the forecast; naive_rmse: of repeating the last training value (units of the
    series).
    """

    intercept: float
    coefficients: np.ndarray
    forecast: np.ndarray
    rmse: float
    naive_rmse: float


def ar_forecast(series: np.ndarray, order: int, n_train: int) -> ARForecast:
    """Fit AR(order) with intercept on series[:n_train] (N,), forecast series[n_train:].

    Needs n_train >= 2 * order + 1 (at least order + 1 equations for order + 1 unknowns)
    and n_train < N.
    """
    x = _as_1d("series", series)
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if not 2 * order + 1 <= n_train < x.size:
        raise ValueError(
            f"n_train must be in {2 * order + 1}..{x.size - 1} (>= 2 * order + 1 to fit, < N "
            f"to leave something to forecast); got {n_train}"
        )
    train = x[:n_train]
    # Row t: [1, x_{t-1}, ..., x_{t-order}] for t = order..n_train-1.
    lags = np.column_stack([train[order - i : n_train - i] for i in range(1, order + 1)])
    design = np.column_stack([np.ones(n_train - order), lags])
    beta, *_ = np.linalg.lstsq(design, train[order:], rcond=None)
    intercept, coefficients = float(beta[0]), beta[1:]
    # The last `order` training values, then the forecast, each step fed back as input.
    path = np.concatenate([train[-order:], np.empty(x.size - n_train)])
    for t in range(x.size - n_train):
        path[order + t] = intercept + coefficients @ path[t : order + t][::-1]
    forecast = path[order:]
    target = x[n_train:]
    rmse = float(np.sqrt(np.mean((forecast - target) ** 2)))
    naive_rmse = float(np.sqrt(np.mean((train[-1] - target) ** 2)))
    return ARForecast(intercept, coefficients, forecast, rmse, naive_rmse)


# --- behavioural mapping: states of learning ---------------------------------------------------


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
