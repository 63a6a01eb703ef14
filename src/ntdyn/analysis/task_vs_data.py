"""Comparing a data-trained model with the task-trained source it was fitted to (one pair).

Every metric is scored on held-out trials; every fitted map (affine maps between latents or
inputs, the cycle-consistency readout) is fitted on the training trials, as the
Computation-Through-Dynamics benchmark does. B trials, T bins, H source units, I task inputs,
G inferred latent units, U inferred inputs, N neurons of which `held_out` were never read by
the model's encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ntdyn.analysis.comparison import (
    affine_r2,
    co_bps,
    co_bps_ctdb,
    compare_fixed_points,
    cycle_consistency_r2,
    fit_affine,
    r2_variance_weighted,
    round_trip_r2,
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


@dataclass(frozen=True)
class PairTrials:
    """One split (training or held-out trials) of a source x data-trained model pair.

    true_latents (B, T, H), true_rates and spikes (B, T, N) (expected and observed counts per
    bin), true_inputs (B, T, I); what the model inferred from the held-in spikes:
    inferred_latents (B, T, G), inferred_log_rates (B, T, N), inferred_inputs (B, T, U)
    (U = 0: the model infers no inputs).
    """

    true_latents: np.ndarray
    true_rates: np.ndarray
    spikes: np.ndarray
    true_inputs: np.ndarray
    inferred_latents: np.ndarray
    inferred_log_rates: np.ndarray
    inferred_inputs: np.ndarray


def cut_to_lengths(trials: PairTrials, lengths: np.ndarray) -> PairTrials:
    """Every array of `trials` cut to each trial's first `lengths[b]` bins and the pieces
    concatenated into one trial (1, sum of lengths, D), as the benchmark scores MultiTask
    (every array cut to the trial's length before each metric), so the padding after a
    trial's end counts in no metric."""
    lengths = np.asarray(lengths)
    n_trials, n_steps = trials.true_latents.shape[:2]
    if lengths.shape != (n_trials,) or np.any(lengths < 1) or np.any(lengths > n_steps):
        raise ValueError(f"trial lengths {lengths!r}: must be one per trial ({n_trials}), "
                         f"each in [1, {n_steps}]")  # fmt: skip
    keep = np.arange(n_steps)[None, :] < lengths[:, None]

    def cut(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[keep][None]

    return PairTrials(
        **{name: cut(getattr(trials, name)) for name in PairTrials.__dataclass_fields__}
    )


@dataclass
class PairComparison:
    """metrics: one row of the comparison table; affine: (W (G, H), b (H,)) inferred -> true,
    fitted on the training trials; inferred_mapped: (B, T, H) held-out inferred latents in the
    source's space; model_points: the data-trained model's fixed points (in its own space)."""

    metrics: dict[str, float]
    affine: tuple[np.ndarray, np.ndarray]
    inferred_mapped: np.ndarray
    model_points: FixedPoints


def fitted_metrics(train: PairTrials, test: PairTrials) -> dict[str, float]:
    """The metrics that fit a map on `train` and score it on `test` (docs/science.md §6).

    state R^2 both ways and input R^2 both ways (`affine_r2`; input R^2 is NaN when the model
    infers no inputs; true -> inferred is the benchmark's direction), the benchmark's cycle
    consistency of the model's own latents and log-rates, and ntdyn's round trip
    inferred -> true -> inferred.
    """
    out = {
        "state_r2_true_to_inferred": affine_r2(
            train.true_latents, train.inferred_latents, test.true_latents, test.inferred_latents
        ),
        "state_r2_inferred_to_true": affine_r2(
            train.inferred_latents, train.true_latents, test.inferred_latents, test.true_latents
        ),
        "cycle_consistency_r2": cycle_consistency_r2(
            train.inferred_latents, train.inferred_log_rates, test.inferred_latents
        ),
        "round_trip_r2": round_trip_r2(
            train.inferred_latents, train.true_latents, test.inferred_latents
        ),
        "input_r2_true_to_inferred": np.nan, "input_r2_inferred_to_true": np.nan,
    }  # fmt: skip
    if test.inferred_inputs.shape[-1] > 0:
        out["input_r2_true_to_inferred"] = affine_r2(
            train.true_inputs, train.inferred_inputs, test.true_inputs, test.inferred_inputs
        )
        out["input_r2_inferred_to_true"] = affine_r2(
            train.inferred_inputs, train.true_inputs, test.inferred_inputs, test.true_inputs
        )
    return out


def compare_pair(
    *, train: PairTrials, test: PairTrials, held_out: np.ndarray, source_points: FixedPoints,
    model_step, model_rest_input: np.ndarray, n_candidates: int,
    fixed_point_config: FixedPointConfig, dsa_options: dict, seed: int,
    ctdb_co_bps: bool = False, lengths: tuple[np.ndarray, np.ndarray] | None = None,
) -> PairComparison:  # fmt: skip
    """Every metric of docs/science.md §6 for one source x data-trained model pair.

    Scored on `test` (held-out trials), maps fitted on `train`. Rate R^2 and co-bps need no
    map; ctdb_co_bps adds the benchmark's co-bps (`co_bps_ctdb`: the neurons from index I, the
    number of task inputs, to the last) as the metric `co_bps_ctdb`. Fixed points of the model
    are sought along its held-out inferred latents and mapped into the source space with the
    affine map inferred -> true fitted on the training trials, then matched to `source_points`.
    lengths: (train, test) trial lengths: the rate R^2, co-bps, state, cycle-consistency,
    round-trip and input metrics are then scored on the arrays cut to each trial's length
    (`cut_to_lengths`), as the benchmark scores MultiTask; the fixed points, DSA and the
    affine map of the figures still use whole trials.
    """
    held_out = np.asarray(held_out)
    W, b = fit_affine(train.inferred_latents, train.true_latents)
    mapped = test.inferred_latents @ W + b
    model_points = system_fixed_points(
        model_step, test.inferred_latents, model_rest_input, n_candidates, fixed_point_config,
        seed,
    )  # fmt: skip
    fps = compare_fixed_points(
        model_points.h, model_points.stable, source_points.h, source_points.stable, (W, b)
    )
    # Inferred coordinates are defined only up to an affine map; DSA compares dynamics up to an
    # orthogonal one and fits linear (not affine) DMD operators, so remove each offset first.
    sim = dsa(_centred(test.true_latents), _centred(test.inferred_latents), **dsa_options)
    scored_train, scored_test = train, test
    if lengths is not None:
        scored_train, scored_test = (
            cut_to_lengths(train, lengths[0]),
            cut_to_lengths(test, lengths[1]),
        )
    rates = np.exp(scored_test.inferred_log_rates)
    metrics = {
        "rate_r2": r2_variance_weighted(scored_test.true_rates, rates),
        "co_bps": co_bps(scored_test.spikes[..., held_out], rates[..., held_out]),
        **fitted_metrics(scored_train, scored_test),
        # a = model, b = source in compare_fixed_points
        "fp_n_source": fps["n_b"], "fp_n_model": fps["n_a"],
        "fp_n_stable_source": fps["n_stable_b"], "fp_n_stable_model": fps["n_stable_a"],
        "fp_n_matched": fps["n_matched"], "fp_mean_distance": fps["mean_distance"],
        "fp_max_distance": fps["max_distance"], "fp_same_stability": fps["same_stability"],
        "dsa_angular": sim["angular"], "dsa_wasserstein": sim["wasserstein"],
    }  # fmt: skip
    if ctdb_co_bps:
        metrics["co_bps_ctdb"] = co_bps_ctdb(scored_test.spikes, rates,
                                             scored_test.true_inputs.shape[-1])  # fmt: skip
    return PairComparison(metrics, (W, b), mapped, model_points)
