"""Pandera schemas of the data tables passed between nodes (behaviour measures)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from ntdyn.hyperparams.kinds import DATA_MODEL_KINDS

_non_negative = [pa.Check.ge(0, error="must be >= 0")]
_finite = [
    pa.Check(lambda s: pd.Series(s, dtype=float).abs() < float("inf"), error="must be finite")
]

MEASURES_SCHEMA = pa.DataFrameSchema(
    {
        "hash": pa.Column(str),
        "label": pa.Column(str),
        "replicate": pa.Column(int, pa.Check.ge(0)),
        "trial": pa.Column(int, pa.Check.ge(0)),
        "selected": pa.Column(bool),
        "excluded": pa.Column(bool),
        "max_lateral_distance": pa.Column(float, _non_negative + _finite),
        "max_parallel_velocity": pa.Column(float, _finite),
        "max_net_force": pa.Column(float, _non_negative + _finite),
        "max_parallel_force": pa.Column(float, _finite),
        "end_position_error": pa.Column(float, _non_negative + _finite),
        "end_velocity_error": pa.Column(float, _non_negative + _finite),
        "sum_lateral_distance": pa.Column(float, _non_negative + _finite),
    },
    strict=False,
    coerce=True,
)


class TableError(ValueError):
    """A data table between nodes breaks its schema; the message names column, value and rule."""


def validate_measures_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, replicate, trial) with condition columns and the seven measures."""
    return validate_table("measures", table)


FIXED_POINTS_SCHEMA = pa.DataFrameSchema(
    {
        "hash": pa.Column(str),
        "q": pa.Column(float, _non_negative + _finite),
        "kind": pa.Column(str, pa.Check.isin(["fixed", "slow"], error="must be fixed or slow")),
        "stable": pa.Column(bool),
        "max_abs_eigenvalue": pa.Column(float, _non_negative + _finite),
        "n_unstable_modes": pa.Column(int, pa.Check.ge(0)),
    },
    strict=False,
    coerce=True,
)

TANGLING_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "step": pa.Column(int, pa.Check.ge(1)),
     "Q": pa.Column(float, _non_negative + _finite)},
    strict=False,
    coerce=True,
)  # fmt: skip

HESSIAN_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "mode": pa.Column(int, pa.Check.ge(0)),
     "eigenvalue": pa.Column(float, _finite),
     "negative_bound": pa.Column(float, _non_negative + _finite)},
    # Hessian of a sum of squares: positive semi-definite at an exact fixed point; at the
    # approximate one a search returns, no lower than the residual's curvature (Weyl)
    checks=pa.Check(lambda df: df["eigenvalue"] >= -df["negative_bound"],
                    error="eigenvalue must be >= -negative_bound (Weyl's inequality)"),
    strict=False, coerce=True,
)  # fmt: skip

EIGVEC_STIM_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "mode": pa.Column(int, pa.Check.ge(0)),
     "abs_eigenvalue": pa.Column(float, _non_negative + _finite),
     "decay": pa.Column(float, _non_negative + _finite),
     "peak_force": pa.Column(float, _non_negative + _finite)},
    strict=False, coerce=True,
)  # fmt: skip

CONTEXT_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "fp_shift": pa.Column(float, _non_negative + _finite),
     "max_abs_eigenvalue": pa.Column(float, _non_negative + _finite)},
    strict=False, coerce=True,
)  # fmt: skip

PCA_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "component": pa.Column(int, pa.Check.ge(0)),
     "explained_variance": pa.Column(float, _non_negative + _finite),
     "explained_variance_ratio": pa.Column(float, [pa.Check.in_range(0, 1 + 1e-9,
                                                                  error="must be in [0, 1]")])},
    strict=False, coerce=True,
)  # fmt: skip

EFFECTIVE_DIRECTIONS_SCHEMA = pa.DataFrameSchema(
    {"hash": pa.Column(str), "unit": pa.Column(int, pa.Check.ge(0)),
     "parallel": pa.Column(float, _finite), "lateral": pa.Column(float, _finite)},
    strict=False, coerce=True,
)  # fmt: skip

_r2 = [pa.Check.le(1 + 1e-9, error="must be <= 1")]
_fraction = [pa.Check.in_range(0, 1 + 1e-9, error="must be in [0, 1]")]

# Task-trained vs data-trained: one row per source x data-trained model (docs/science.md §6).
COMPARISON_SCHEMA = pa.DataFrameSchema(
    {"source": pa.Column(str), "source_hash": pa.Column(str), "model": pa.Column(str),
     "model_kind": pa.Column(str, pa.Check.isin(list(DATA_MODEL_KINDS))),
     "model_hash": pa.Column(str), "dataset_hash": pa.Column(str),
     "rate_r2": pa.Column(float, _r2), "co_bps": pa.Column(float, _finite),
     # the benchmark's co-bps, where comparison.co_bps_ctdb asks for it
     "co_bps_ctdb": pa.Column(float, _finite, required=False),
     "state_r2_true_to_inferred": pa.Column(float, _r2),
     "state_r2_inferred_to_true": pa.Column(float, _r2),
     "cycle_consistency_r2": pa.Column(float, _r2), "round_trip_r2": pa.Column(float, _r2),
     # NaN for models that infer no inputs
     "input_r2_true_to_inferred": pa.Column(float, _r2, nullable=True),
     "input_r2_inferred_to_true": pa.Column(float, _r2, nullable=True),
     "fp_n_source": pa.Column(int, pa.Check.ge(0)), "fp_n_model": pa.Column(int, pa.Check.ge(0)),
     "fp_n_stable_source": pa.Column(int, pa.Check.ge(0)),
     "fp_n_stable_model": pa.Column(int, pa.Check.ge(0)),
     "fp_n_matched": pa.Column(int, pa.Check.ge(0)),
     "fp_mean_distance": pa.Column(float, _non_negative, nullable=True),
     "fp_same_stability": pa.Column(float, _fraction, nullable=True),
     "dsa_angular": pa.Column(float, [pa.Check.in_range(0, 3.1416, error="must be in [0, pi]")]),
     "dsa_wasserstein": pa.Column(float, _non_negative + _finite),
     "rollout_steps_stable": pa.Column(float, _non_negative)},
    strict=False, coerce=True, unique=["source", "model"],
)  # fmt: skip

# Training-dynamics trace (docs/science.md §7): long tables indexed by (step, layer, unit).
_step = pa.Column(int, pa.Check.ge(0))
TRACE_SCALARS_SCHEMA = pa.DataFrameSchema(
    {"step": _step, "train_loss": pa.Column(float, _non_negative + _finite),
     "test_loss": pa.Column(float, _non_negative + _finite),
     "train_accuracy": pa.Column(float, _fraction), "test_accuracy": pa.Column(float, _fraction),
     "learning_rate": pa.Column(float, _non_negative + _finite),
     "grad_norm": pa.Column(float, _non_negative + _finite),
     "weight_density": pa.Column(float, _fraction)},
    strict=False, coerce=True, unique=["step"],
)  # fmt: skip
TRACE_LAYERS_SCHEMA = pa.DataFrameSchema(
    {"step": _step, "layer": pa.Column(str), "grad_norm": pa.Column(float, _non_negative),
     "weight_norm": pa.Column(float, _non_negative), "weight_density": pa.Column(float, _fraction)},
    strict=False, coerce=True, unique=["step", "layer"],
)  # fmt: skip
# The reaching controllers' trace: the same columns per (step, replicate), no accuracy.
TRACE_CONTROLLER_SCALARS_SCHEMA = pa.DataFrameSchema(
    {"step": _step, "replicate": pa.Column(int, pa.Check.ge(0)),
     "train_loss": pa.Column(float, _non_negative + _finite),
     "test_loss": pa.Column(float, _non_negative + _finite),
     "learning_rate": pa.Column(float, _non_negative + _finite),
     "grad_norm": pa.Column(float, _non_negative + _finite),
     "weight_density": pa.Column(float, _fraction)},
    strict=False, coerce=True, unique=["step", "replicate"],
)  # fmt: skip
TRACE_CONTROLLER_LAYERS_SCHEMA = pa.DataFrameSchema(
    {"step": _step, "replicate": pa.Column(int, pa.Check.ge(0)), "layer": pa.Column(str),
     "grad_norm": pa.Column(float, _non_negative), "weight_norm": pa.Column(float, _non_negative),
     "weight_density": pa.Column(float, _fraction)},
    strict=False, coerce=True, unique=["step", "replicate", "layer"],
)  # fmt: skip
TRACE_WEIGHTS_SCHEMA = pa.DataFrameSchema(
    {"step": pa.Column("int32", pa.Check.ge(0)), "layer": pa.Column("category"),
     "unit": pa.Column("int32", pa.Check.ge(0)), "input": pa.Column("int32", pa.Check.ge(-1)),
     "value": pa.Column("float32", _finite)},
    strict=False,
)  # fmt: skip
TRACE_ACTIVATIONS_SCHEMA = pa.DataFrameSchema(
    {"step": pa.Column("int32", pa.Check.ge(0)), "layer": pa.Column("category"),
     "unit": pa.Column("int32", pa.Check.ge(0)), "probe": pa.Column("int32", pa.Check.ge(0)),
     "value": pa.Column("float32", _finite)},
    strict=False,
)  # fmt: skip

TABLE_SCHEMAS = {
    "trace_scalars": TRACE_SCALARS_SCHEMA,
    "trace_layers": TRACE_LAYERS_SCHEMA,
    "trace_controller_scalars": TRACE_CONTROLLER_SCALARS_SCHEMA,
    "trace_controller_layers": TRACE_CONTROLLER_LAYERS_SCHEMA,
    "trace_weights": TRACE_WEIGHTS_SCHEMA,
    "trace_activations": TRACE_ACTIVATIONS_SCHEMA,
    "comparison": COMPARISON_SCHEMA,
    "pca": PCA_SCHEMA,
    "effective_directions": EFFECTIVE_DIRECTIONS_SCHEMA,
    "hessian": HESSIAN_SCHEMA,
    "eigvec_stim": EIGVEC_STIM_SCHEMA,
    "context": CONTEXT_SCHEMA,
    "measures": MEASURES_SCHEMA,
    "fixed_points": FIXED_POINTS_SCHEMA,
    "tangling": TANGLING_SCHEMA,
}


def validate_table(kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """Validate a table between nodes by its kind (`measures`, `fixed_points`, `tangling`)."""
    try:
        return TABLE_SCHEMAS[kind].validate(table, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.head(20)
        lines = [
            f"{row.column} = {row.failure_case!r} (row {row.index}): {row.check}"
            for row in cases.itertuples()
        ]
        raise TableError(f"{kind} table is invalid:\n  " + "\n  ".join(lines)) from err
