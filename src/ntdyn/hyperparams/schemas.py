"""Validation of the flat hyperparameter table of a sweep (reaching controllers, flip-flop
sources, data-trained models, the recorded MLP).

One row per sweep member, one ``__``-flat column per hyperparameter; the columns and their
rules are those `ntdyn.hyperparams.kinds` declares for the kind. Every column is optional
(a sweep need not set every one), a column the kind does not declare is refused (strict),
and a column that is present must satisfy its rule in every row. Failures are reported per
cell, naming the column, the value and what is allowed, instead of as a pandera traceback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ntdyn.hyperparams.kinds import HYPERPARAMETERS
from ntdyn.hyperparams.names import unknown_name
from ntdyn.hyperparams.rules import Rule
from ntdyn.hyperparams.spreads import expand_spread

# pandera's own name for the null check; our checks carry readable error texts.
_PANDERA_TEXTS = {"not_nullable": "must not be missing"}
_UNKNOWN_COLUMN = "column_in_schema"


class HyperparameterError(ValueError):
    """Hyperparameters that break the sweep schema; ``problems`` holds one line per cell."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} invalid hyperparameter value(s):\n{lines}")


def _column(rule: Rule) -> pa.Column:
    # Cell by cell, so a wrong type fails its own cell instead of raising inside pandas.
    check = pa.Check(
        lambda series: series.map(lambda value: rule.problem(value) is None).astype(bool),
        error=rule.describe(),
    )
    return pa.Column(checks=[check], required=False, nullable=rule.nullable)


def _schema(kind: str) -> pa.DataFrameSchema:
    """Strict: a column that is not one of the kind's hyperparameters is refused."""
    columns = {name: _column(rule) for name, rule in HYPERPARAMETERS[kind].items()}
    return pa.DataFrameSchema(columns, strict=True, name=f"{kind} hyperparameters")


SCHEMAS = {kind: _schema(kind) for kind in HYPERPARAMETERS}


def validate_sweep_table(table: pd.DataFrame, kind: str = "reaching") -> pd.DataFrame:
    """Check every cell of a sweep's flat hyperparameter table and return the table.

    kind: which model the rows describe (`reaching`, `flipflop`, `data_model`, `recorded_mlp`).
    Raises ``HyperparameterError`` listing each failing cell as
    ``column = value (sweep member i): what is allowed``.
    """
    try:
        return SCHEMAS[kind].validate(table, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = _describe_failures(errors.failure_cases, table, HYPERPARAMETERS[kind])
        raise HyperparameterError(failures) from None


def sweep_table(base: Mapping, spread: Mapping | None, kind: str = "reaching") -> pd.DataFrame:
    """Validated table of the sweep's members: one row each, indexed 0..n-1.

    List-valued hyperparameters stay Python lists in object columns.
    """
    table = pd.DataFrame(expand_spread(base, spread))
    table.index = pd.RangeIndex(len(table))
    return validate_sweep_table(table, kind)


def _describe_failures(
    failure_cases: pd.DataFrame, table: pd.DataFrame, known: Mapping
) -> list[str]:
    """One line per failing cell, all its broken rules joined; one per unknown column."""
    rules: dict[tuple[str, Any], list[str]] = {}
    values: dict[tuple[str, Any], Any] = {}
    table_wide: list[str] = []
    for case in failure_cases.to_dict("records"):
        column, member, found = case["column"], case["index"], case["failure_case"]
        text = _PANDERA_TEXTS.get(case["check"], str(case["check"]))
        if case["check"] == _UNKNOWN_COLUMN:
            table_wide.append(unknown_name(str(found), known))
            continue
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
