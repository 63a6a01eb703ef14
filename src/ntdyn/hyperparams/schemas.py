"""Validation of the flat hyperparameter table of a reaching-controller sweep.

One row per sweep member, one ``__``-flat column per hyperparameter. Every
rule is optional (a sweep need not set every column) and extra columns are
allowed; a column that is present must satisfy its rules in every row.
Failures are reported per cell, naming the column, the value and what is
allowed, instead of as a pandera traceback.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ntdyn.hyperparams.spreads import expand_spread

# pandera's own name for the null check; our checks carry readable error texts.
_PANDERA_TEXTS = {"not_nullable": "must not be missing"}


class HyperparameterError(ValueError):
    """Hyperparameters that break the sweep schema; ``problems`` holds one line per cell."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} invalid hyperparameter value(s):\n{lines}")


def _is_number(value: Any) -> bool:
    """A finite real number; bools are flags, not numbers."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value)


def _is_integer(value: Any) -> bool:
    """An integer, or a float with an integral value (pandas upcasts int columns to float)."""
    if isinstance(value, numbers.Integral):
        return not isinstance(value, bool | np.bool_)
    return _is_number(value) and float(value).is_integer()


def _cellwise(predicate: Callable[[Any], bool], error: str) -> pa.Check:
    # Cell by cell, so a wrong type fails its own cell instead of raising inside pandas.
    return pa.Check(lambda series: series.map(predicate).astype(bool), error=error)


def _number() -> pa.Check:
    return _cellwise(_is_number, "must be a finite number")


def _integer() -> pa.Check:
    return _cellwise(_is_integer, "must be an integer")


# Range checks pass non-numbers: those are already reported by _number/_integer.
def _greater_than(bound: float) -> pa.Check:
    return _cellwise(lambda v: not _is_number(v) or v > bound, f"must be > {bound}")


def _at_least(bound: float) -> pa.Check:
    return _cellwise(lambda v: not _is_number(v) or v >= bound, f"must be >= {bound}")


def _between(low: float, high: float) -> pa.Check:
    return _cellwise(lambda v: not _is_number(v) or low <= v <= high, f"must be in [{low}, {high}]")


def _one_of(*allowed: str) -> pa.Check:
    listed = ", ".join(repr(value) for value in sorted(allowed))
    return _cellwise(lambda v: isinstance(v, str) and v in allowed, f"must be one of {listed}")


def _column(*checks: pa.Check, regex: bool = False) -> pa.Column:
    return pa.Column(checks=list(checks), required=False, nullable=False, regex=regex)


def _positive_integer() -> pa.Column:
    return _column(_integer(), _greater_than(0))


def _positive() -> pa.Column:
    return _column(_number(), _greater_than(0))


def _non_negative() -> pa.Column:
    return _column(_number(), _at_least(0))


SWEEP_SCHEMA = pa.DataFrameSchema(
    {
        "model__cell": _column(_one_of("gru", "rnn")),
        "model__hidden_size": _positive_integer(),
        "task__n_steps": _positive_integer(),
        "task__dt": _positive(),
        "task__mass": _positive(),
        "task__damping": _non_negative(),
        "task__workspace": _positive(),
        "task__feedback__delay": _column(_integer(), _at_least(0)),
        "task__feedback__noise_std": _non_negative(),
        "task__motor__noise_std": _non_negative(),
        "task__motor__mult_noise_std": _non_negative(),
        "train__method": _column(_one_of("fixed", "bcs", "dai", "pai-asf")),
        "train__pert__type": _column(_one_of("curl", "constant")),
        "train__pert__std": _non_negative(),
        "train__pert__p_active": _column(_number(), _between(0, 1)),
        "train__n_batches": _positive_integer(),
        "train__batch_size": _positive_integer(),
        "train__n_replicates": _positive_integer(),
        "train__learning_rate": _positive(),
        "train__seed": _column(_integer(), _at_least(0)),
        "train__n_std_exclude": _positive(),
        "train__divergence_factor": _column(_number(), _greater_than(1)),
        r"^cost__": _column(_number(), _at_least(0), regex=True),
    },
    strict=False,
    name="reaching sweep hyperparameters",
)


FLIPFLOP_SCHEMA = pa.DataFrameSchema(
    {
        "model__hidden_size": _positive_integer(),
        "model__hidden_noise_std": _non_negative(),
        "task__n_bits": _positive_integer(),
        "task__n_steps": _positive_integer(),
        "task__p_pulse": _column(_number(), _between(0, 1)),
        "task__input_noise_std": _non_negative(),
        "train__n_batches": _positive_integer(),
        "train__batch_size": _positive_integer(),
        "train__n_replicates": _positive_integer(),
        "train__learning_rate": _positive(),
        "train__seed": _column(_integer(), _at_least(0)),
        "train__divergence_factor": _column(_number(), _greater_than(1)),
    },
    strict=False,
    name="flip-flop source hyperparameters",
)


DATA_MODEL_SCHEMA = pa.DataFrameSchema(
    {
        "model__kind": _column(_one_of("sae_gru", "lfads", "latent_evolution")),
        "model__latent_size": _positive_integer(),
        "model__encoder_size": _positive_integer(),
        "model__factor_size": _positive_integer(),
        "model__controller_size": _positive_integer(),
        "model__n_inferred_inputs": _column(_integer(), _at_least(0)),
        "model__width": _positive_integer(),
        "model__depth": _positive_integer(),
        "train__n_epochs": _positive_integer(),
        "train__batch_size": _positive_integer(),
        "train__n_replicates": _positive_integer(),
        "train__learning_rate": _positive(),
        "train__seed": _column(_integer(), _at_least(0)),
        "train__kl_weight": _non_negative(),
        "train__coordinated_dropout": _column(_number(), _between(0, 0.99)),
        "train__time_units": _positive_integer(),
        "train__evolve_multiple_steps": _positive_integer(),
        "train__warmup_epochs": _column(_integer(), _at_least(0)),
        "train__acquisition": _column(
            _one_of("all_time_points", "time_aligned", "staggered_random")
        ),
        "train__connectome__mode": _column(_one_of("none", "unconnected_to_zero")),
        "train__connectome__num_neurons": _positive_integer(),
        "train__connectome__loss_coeff": _non_negative(),
        "train__connectome__density": _column(_number(), _between(0, 1)),
        "train__checkpoint_every": _column(_integer(), _at_least(0)),
        "train__validate_every": _positive_integer(),
        "train__divergence_factor": _column(_number(), _greater_than(1)),
        "train__rollout_divergence_factor": _positive(),
    },
    strict=False,
    name="data-trained model hyperparameters",
)

SCHEMAS = {"reaching": SWEEP_SCHEMA, "flipflop": FLIPFLOP_SCHEMA, "data_model": DATA_MODEL_SCHEMA}


def validate_sweep_table(table: pd.DataFrame, kind: str = "reaching") -> pd.DataFrame:
    """Check every cell of a sweep's flat hyperparameter table and return the table.

    kind: which model the rows describe (`reaching`, `flipflop`, `data_model`).
    Raises ``HyperparameterError`` listing each failing cell as
    ``column = value (sweep member i): what is allowed``.
    """
    try:
        return SCHEMAS[kind].validate(table, lazy=True)
    except pa.errors.SchemaErrors as errors:
        raise HyperparameterError(_describe_failures(errors.failure_cases, table)) from None


def sweep_table(base: Mapping, spread: Mapping | None, kind: str = "reaching") -> pd.DataFrame:
    """Validated table of the sweep's members: one row each, indexed 0..n-1.

    List-valued hyperparameters stay Python lists in object columns.
    """
    table = pd.DataFrame(expand_spread(base, spread))
    table.index = pd.RangeIndex(len(table))
    return validate_sweep_table(table, kind)


def _describe_failures(failure_cases: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """One line per failing cell, all its broken rules joined."""
    rules: dict[tuple[str, Any], list[str]] = {}
    values: dict[tuple[str, Any], Any] = {}
    table_wide: list[str] = []
    for case in failure_cases.to_dict("records"):
        column, member, found = case["column"], case["index"], case["failure_case"]
        text = _PANDERA_TEXTS.get(case["check"], str(case["check"]))
        if not _is_cell(member):
            table_wide.append(f"{column}: {text} (failure case: {found!r})")
            continue
        cell = (column, member)
        if text not in rules.setdefault(cell, []):
            rules[cell].append(text)
        values[cell] = _cell_value(table, column, member, found)
    # Table order (column by column, member by member) reads better than check order.
    columns, members = list(table.columns), list(table.index)
    ordered = sorted(
        rules, key=lambda cell: (_position(columns, cell[0]), _position(members, cell[1]))
    )
    cells = [
        f"{column} = {values[column, member]!r} (sweep member {member}): "
        + "; ".join(rules[column, member])
        for column, member in ordered
    ]
    return cells + table_wide


def _position(labels: list[Any], label: Any) -> int:
    return labels.index(label) if label in labels else len(labels)


def _is_cell(index: Any) -> bool:
    return index is not None and not (isinstance(index, float) and math.isnan(index))


def _cell_value(table: pd.DataFrame, column: str, member: Any, fallback: Any) -> Any:
    """The original cell (pandera may have altered its copy), as a plain Python value."""
    unique = table.index.is_unique and table.columns.is_unique
    if unique and column in table.columns and member in table.index:
        value = table.at[member, column]
    else:
        value = fallback
    return value.item() if isinstance(value, np.generic) else value
