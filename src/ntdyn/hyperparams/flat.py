"""Flat, ``__``-joined views of nested hyperparameter mappings.

Nested YAML blocks (``train: {pert: {std: 1}}``) become one-level dicts
(``{"train__pert__std": 1}``) so that hyperparameters can be table columns,
MLflow params and sweep axes, and turned back into nested dicts exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SEP = "__"


def flatten(nested: Mapping) -> dict[str, Any]:
    """Flatten a nested mapping into one level with keys joined by ``SEP``.

    Lists, tuples (returned as lists), ``None`` and scalars are leaves; lists
    are not flattened. An empty mapping is kept as a ``{}`` leaf so that
    ``unflatten(flatten(x)) == x``. Keys that are already flat (``"a__b"``)
    are accepted at any level, which makes ``flatten`` idempotent.

    Raises ``ValueError`` for an invalid key segment (see ``split_key``) or
    when two entries land on the same flat key or one sits inside another
    (``a`` and ``a__b``).
    """
    if not isinstance(nested, Mapping):
        raise TypeError(f"hyperparameters must be a mapping, got {type(nested).__name__}")
    flat: dict[str, Any] = {}
    _flatten_into(flat, nested, prefix=())
    _refuse_nested_collisions(flat)
    return flat


def unflatten(flat: Mapping) -> dict[str, Any]:
    """Rebuild the nested dict from a flat (or partly flat) mapping.

    Inverse of ``flatten``: ``{"train__pert__std": 1}`` -> ``{"train": {"pert": {"std": 1}}}``.
    Input goes through ``flatten`` first, so keys are validated and colliding
    keys are refused in exactly the same way.
    """
    nested: dict[str, Any] = {}
    for key, value in flatten(flat).items():
        *parents, leaf = split_key(key)
        node = nested
        for segment in parents:
            node = node.setdefault(segment, {})
        node[leaf] = value
    return nested


def split_key(key: Any) -> tuple[str, ...]:
    """Split a (possibly flat) key into its segments, validating each one.

    A segment must be a non-empty string without ``SEP`` that neither starts
    nor ends with ``_``: otherwise ``"a_" + "__" + "b"`` and ``"a" + "__" + "_b"``
    would both join to ``"a___b"`` and the round trip would be ambiguous.
    """
    if not isinstance(key, str):
        raise ValueError(f"hyperparameter key {key!r} must be a string, not {type(key).__name__}")
    segments = tuple(key.split(SEP))
    for segment in segments:
        if not segment or segment.startswith("_") or segment.endswith("_"):
            raise ValueError(
                f"hyperparameter key {key!r} is invalid: each part between {SEP!r} separators "
                "must be non-empty and must not start or end with '_'"
            )
    return segments


def _flatten_into(flat: dict[str, Any], mapping: Mapping, prefix: tuple[str, ...]) -> None:
    for key, value in mapping.items():
        path = prefix + split_key(key)
        if isinstance(value, Mapping) and value:
            _flatten_into(flat, value, path)
            continue
        flat_key = SEP.join(path)
        if flat_key in flat:
            raise ValueError(f"hyperparameter key {flat_key!r} is given more than once")
        flat[flat_key] = _leaf(value)


def _leaf(value: Any) -> Any:
    """Copy a leaf value, turning tuples (and other sequences) into lists."""
    if isinstance(value, Mapping):
        return {}  # only empty mappings reach here
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_leaf(item) if _is_container(item) else item for item in value]
    return value


def _is_container(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _refuse_nested_collisions(flat: Mapping[str, Any]) -> None:
    """Refuse a flat key that is also the parent of another (``a`` and ``a__b``)."""
    keys = set(flat)
    for key in flat:
        segments = key.split(SEP)
        for end in range(1, len(segments)):
            parent = SEP.join(segments[:end])
            if parent in keys:
                raise ValueError(
                    f"hyperparameter keys collide: {parent!r} is a value but {key!r} "
                    f"treats it as a group"
                )
