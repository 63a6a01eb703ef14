"""Units: features and a t-SNE map.

`unit_features` describes every unit by its incoming weights (a fan-in free summary) and
its mean activation on the probe batch over training; `unit_tsne` maps them to 2-D
(docs/science.md §7). `_tsne` is shared with `states.learning_states`.
"""

from __future__ import annotations

import numpy as np

from ntdyn.analysis.learning._checks import _as_2d, _zscore_columns

# Quantile levels of the |incoming weight| distribution summarising a unit (fan-in free).
WEIGHT_QUANTILES = (np.arange(10) + 0.5) / 10


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
