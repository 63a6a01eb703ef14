"""Comparing a data-trained model with the task-trained source it was fitted to (one pair).

Everything is computed on held-out trials: B trials, T bins, H source units,
G inferred latent units, N neurons of which `held_out` were never read by the
model's encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ntdyn.analysis.comparison import (
    co_bps,
    compare_fixed_points,
    cycle_consistency_r2,
    fit_affine,
    r2_variance_weighted,
    state_r2,
)
from ntdyn.analysis.dsa import dsa
from ntdyn.analysis.fixed_points import FixedPointConfig, FixedPoints, find_fixed_points


def sample_states(latents: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n states (n, D) drawn without replacement from all bins of latents (B, T, D)."""
    flat = np.asarray(latents).reshape(-1, latents.shape[-1])
    idx = np.random.default_rng(seed).choice(len(flat), size=min(n, len(flat)), replace=False)
    return flat[idx]


def system_fixed_points(
    step, latents: np.ndarray, rest_input: np.ndarray, n_candidates: int,
    config: FixedPointConfig, seed: int,
) -> FixedPoints:  # fmt: skip
    """Fixed points (q < tol_q; slow points dropped) of h -> step(h, rest_input), searched
    from candidates sampled along `latents`."""
    candidates = sample_states(latents, n_candidates, seed)
    found = find_fixed_points(step, candidates, np.asarray(rest_input), config, seed=seed)
    keep = found.is_fixed
    return replace(found, **{name: getattr(found, name)[keep] for name in POINT_FIELDS})


# FixedPoints fields with one entry per point (the others describe the candidates).
POINT_FIELDS = ("h", "q", "is_fixed", "jacobian", "eigenvalues", "eigenvectors", "stable",
                "candidate")  # fmt: skip


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.reshape(-1, x.shape[-1]).mean(axis=0)


@dataclass
class PairComparison:
    """metrics: one row of the comparison table; affine: (W (G, H), b (H,)) inferred -> true;
    inferred_mapped: (B, T, H) inferred latents in the source's space; model_points: the
    data-trained model's fixed points (in its own space)."""

    metrics: dict[str, float]
    affine: tuple[np.ndarray, np.ndarray]
    inferred_mapped: np.ndarray
    model_points: FixedPoints


def compare_pair(
    *, true_latents: np.ndarray, true_rates: np.ndarray, spikes: np.ndarray,
    held_out: np.ndarray, inferred_latents: np.ndarray, inferred_rates: np.ndarray,
    source_points: FixedPoints, model_step, model_rest_input: np.ndarray, n_candidates: int,
    fixed_point_config: FixedPointConfig, dsa_options: dict, seed: int,
) -> PairComparison:  # fmt: skip
    """Every metric of docs/science.md §6 for one source x data-trained model pair.

    true_latents (B, T, H), true_rates / spikes / inferred_rates (B, T, N) (rates are
    expected counts per bin), inferred_latents (B, T, G). Fixed points of the model
    are sought along its inferred latents and mapped into the source space with the
    affine map fitted from inferred to true latents, then matched to `source_points`.
    """
    held_out = np.asarray(held_out)
    W, b = fit_affine(inferred_latents, true_latents)
    mapped = inferred_latents @ W + b
    model_points = system_fixed_points(
        model_step, inferred_latents, model_rest_input, n_candidates, fixed_point_config, seed
    )
    fps = compare_fixed_points(
        model_points.h, model_points.stable, source_points.h, source_points.stable, (W, b)
    )
    # Inferred coordinates are defined only up to an affine map; DSA compares dynamics up to an
    # orthogonal one and fits linear (not affine) DMD operators, so remove each offset first.
    sim = dsa(_centred(true_latents), _centred(inferred_latents), **dsa_options)
    metrics = {
        "rate_r2": r2_variance_weighted(true_rates, inferred_rates),
        "co_bps": co_bps(spikes[..., held_out], inferred_rates[..., held_out]),
        "state_r2_true_to_inferred": state_r2(true_latents, inferred_latents),
        "state_r2_inferred_to_true": state_r2(inferred_latents, true_latents),
        "cycle_consistency_r2": cycle_consistency_r2(inferred_latents, true_latents),
        # a = model, b = source in compare_fixed_points
        "fp_n_source": fps["n_b"], "fp_n_model": fps["n_a"],
        "fp_n_stable_source": fps["n_stable_b"], "fp_n_stable_model": fps["n_stable_a"],
        "fp_n_matched": fps["n_matched"], "fp_mean_distance": fps["mean_distance"],
        "fp_max_distance": fps["max_distance"], "fp_same_stability": fps["same_stability"],
        "dsa_angular": sim["angular"], "dsa_wasserstein": sim["wasserstein"],
    }  # fmt: skip
    return PairComparison(metrics, (W, b), mapped, model_points)
