"""Expansion of a ``spread`` block into the members of a hyperparameter sweep.

A spread maps hyperparameters (nested or ``__``-flat keys) to lists of values;
each list is one sweep axis. The reserved top-level key ``zip`` holds groups
of equal-length lists that vary together as a single axis. Members are the
cartesian product of the axes in order of appearance, first axis slowest::

    base:   {"train": {"pert": {"std": 0.0}, "seed": 0, "batch_size": 64}}
    spread: {"train": {"pert": {"std": [0.0, 0.5]}},
             "zip": [{"train__seed": [1, 2], "train__batch_size": [32, 64]}]}
    -> 4 members: std 0.0 with (seed 1, batch 32), std 0.0 with (seed 2, batch 64),
                  std 0.5 with (seed 1, batch 32), std 0.5 with (seed 2, batch 64)
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ntdyn.hyperparams.flat import SEP, flatten
from ntdyn.hyperparams.hashing import canonical

ZIP = "zip"


class SpreadError(ValueError):
    """A spread block that cannot be expanded into sweep members."""


@dataclass(frozen=True)
class _Axis:
    """One independent sweep axis: the keys it sets and their values per step."""

    keys: tuple[str, ...]
    steps: tuple[tuple[Any, ...], ...]
    label: str


def expand_spread(base: Mapping, spread: Mapping | None) -> list[dict[str, Any]]:
    """Return one flat hyperparameter dict per sweep member.

    Each member is ``flatten(base)`` with the member's spread values
    substituted. An empty or ``None`` spread gives ``[flatten(base)]``; an axis
    whose value is ``None`` is dropped (how a config environment removes an axis).
    Raises ``SpreadError`` for a malformed spread or a key missing from ``base``.
    """
    flat_base = _flatten_or_fail(base, "base hyperparameters")
    axes = _parse_spread(spread)
    _refuse_unknown_keys(axes, flat_base)

    members = []
    for choice in itertools.product(*(axis.steps for axis in axes)):
        # Deep copies so that mutating one member's list cannot change another's.
        member = copy.deepcopy(flat_base)
        for axis, values in zip(axes, choice, strict=True):
            member.update(copy.deepcopy(dict(zip(axis.keys, values, strict=True))))
        members.append(member)
    return members


def spread_axes(spread: Mapping | None) -> list[str]:
    """Flat names of the hyperparameters a spread sets, in axis order (zip groups included)."""
    return [key for axis in _parse_spread(spread) for key in axis.keys]


def varying_columns(table: pd.DataFrame) -> list[str]:
    """Columns of ``table`` holding more than one distinct value.

    Cells are compared through their canonical form, so list-valued cells work
    and ``1`` and ``1.0`` count as the same value.
    """
    return [
        column
        for column in table.columns
        if len({_comparable(value) for value in table[column]}) > 1
    ]


def sweep_rows(table: pd.DataFrame, exclude: tuple[str, ...] = ("hash", "label")) -> list[dict]:
    """Flattened hyperparameters per row of a sweep table, as plain Python values."""
    columns = [c for c in table.columns if c not in exclude]
    return [{c: _python_value(row[c]) for c in columns} for _, row in table.iterrows()]


def _python_value(value: Any) -> Any:
    # Parquet round trips turn lists into arrays and numbers into numpy scalars.
    if isinstance(value, np.ndarray):
        return [_python_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _parse_spread(spread: Mapping | None) -> list[_Axis]:
    if not spread:
        return []
    if not isinstance(spread, Mapping):
        raise SpreadError(f"a spread must be a mapping of hyperparameters to lists, got {spread!r}")
    axes: list[_Axis] = []
    for key, value in spread.items():
        if key == ZIP:
            axes.extend(_zip_axes(value))
            continue
        for flat_key, values in _flatten_or_fail({key: value}, "spread").items():
            if values is None:
                continue  # `null` drops an axis, e.g. one an environment inherits from base
            steps = tuple((item,) for item in _axis_values(flat_key, values))
            axes.append(_Axis((flat_key,), steps, f"axis {flat_key!r}"))
    _refuse_repeated_keys(axes)
    return axes


def _zip_axes(groups: Any) -> list[_Axis]:
    if not isinstance(groups, list | tuple):
        raise SpreadError(
            f"spread key {ZIP!r} = {groups!r}: must be a list of groups, each a mapping of "
            "hyperparameters to equal-length lists"
        )
    axes = []
    for number, group in enumerate(groups):
        label = f"zip group {number}"
        if not isinstance(group, Mapping) or not group:
            raise SpreadError(
                f"{label} = {group!r}: must be a non-empty mapping of hyperparameters "
                "to equal-length lists"
            )
        flat_group = _flatten_or_fail(group, label)
        columns = {key: _axis_values(key, values) for key, values in flat_group.items()}
        lengths = {key: len(values) for key, values in columns.items()}
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{key} ({length})" for key, length in lengths.items())
            raise SpreadError(
                f"{label}: lists that vary together must have equal lengths, got {described}"
            )
        steps = tuple(zip(*columns.values(), strict=True))
        axes.append(_Axis(tuple(columns), steps, label))
    return axes


def _axis_values(key: str, values: Any) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise SpreadError(
            f"spread key {key!r} = {values!r}: a sweep axis must be a non-empty list of "
            "values, e.g. [0.0, 0.5]"
        )
    return values


def _refuse_repeated_keys(axes: list[_Axis]) -> None:
    owner: dict[str, str] = {}
    for axis in axes:
        for key in axis.keys:
            if key in owner:
                raise SpreadError(
                    f"spread key {key!r} appears in two sweep axes ({owner[key]} and "
                    f"{axis.label}); a hyperparameter may vary along one axis only"
                )
            owner[key] = axis.label


def _refuse_unknown_keys(axes: list[_Axis], flat_base: Mapping[str, Any]) -> None:
    for axis in axes:
        for key in axis.keys:
            if key not in flat_base:
                raise SpreadError(
                    f"spread key {key!r} is not one of the base hyperparameters; "
                    + _nearby_keys(key, flat_base)
                )


def _nearby_keys(key: str, flat_base: Mapping[str, Any]) -> str:
    """Describe the base keys a misspelt spread key was probably meant to be."""
    first = key.split(SEP)[0]
    siblings = [name for name in flat_base if name.split(SEP)[0] == first]
    if siblings:
        return f"available keys under {first!r}: {', '.join(siblings)}"
    groups = list(dict.fromkeys(name.split(SEP)[0] for name in flat_base))
    return f"no base hyperparameter starts with {first!r}; top-level names: {', '.join(groups)}"


def _flatten_or_fail(mapping: Any, what: str) -> dict[str, Any]:
    if not isinstance(mapping, Mapping):
        raise SpreadError(f"{what} must be a mapping, got {mapping!r}")
    try:
        return flatten(mapping)
    except ValueError as error:
        raise SpreadError(f"{what}: {error}") from error


def _comparable(value: Any) -> str:
    try:
        return json.dumps(canonical(value), sort_keys=True)
    except TypeError:
        return repr(value)  # e.g. pd.NA: still comparable, just not canonical
