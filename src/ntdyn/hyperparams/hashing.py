"""Stable content hashes of hyperparameters and other JSON-able structures.

Hashes must not depend on how a value happened to be written: key order,
``1`` versus ``1.0``, a tuple versus a list or a numpy scalar versus a Python
one all hash the same. ``True`` and ``1`` stay different, since a flag and a
count are different hyperparameters.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ntdyn.hyperparams.flat import flatten

# Tagged so a non-finite float cannot be mistaken for an ordinary string value.
_NON_FINITE = {"nan": "float:nan", "inf": "float:inf", "-inf": "float:-inf"}


def canonical(value: Any) -> Any:
    """Return a JSON-able canonical form of ``value``.

    Numbers (Python or numpy, but not bools) become floats so ``1 == 1.0``
    hash equal; integers too large for an exact float stay integers, so no two
    different numbers share a form. NaN and infinities become tagged strings,
    ``-0.0`` becomes ``0.0``, tuples and arrays become lists and mapping keys
    are sorted. Raises ``TypeError`` for anything else.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return _canonical_integer(int(value))
    if isinstance(value, numbers.Real):
        return _canonical_float(float(value))
    if isinstance(value, Mapping):
        items = {_canonical_key(key): canonical(item) for key, item in value.items()}
        return dict(sorted(items.items()))
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [canonical(item) for item in value]
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: {value!r}")


def hyperparams_hash(params: Mapping, length: int = 16) -> str:
    """Hash a nested or flat hyperparameter mapping; first ``length`` hex chars of sha256.

    Nested and flat spellings of the same hyperparameters hash the same.
    """
    return _sha256(canonical(flatten(params)), length)


def hash_of(*parts: Any, length: int = 16) -> str:
    """Hash any JSON-able structure canonically, e.g. model hashes plus evaluation params."""
    return _sha256(canonical(list(parts)), length)


def _sha256(canonical_value: Any, length: int) -> str:
    if not 1 <= length <= 64:
        raise ValueError(f"hash length must be between 1 and 64 hex characters, got {length}")
    text = json.dumps(canonical_value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _canonical_integer(value: int) -> int | float:
    try:
        as_float = float(value)
    except OverflowError:
        return value
    return as_float + 0.0 if as_float == value else value


def _canonical_float(value: float) -> float | str:
    if math.isnan(value):
        return _NON_FINITE["nan"]
    if math.isinf(value):
        return _NON_FINITE["inf" if value > 0 else "-inf"]
    return value + 0.0  # turns -0.0 into 0.0, which compares equal to it


def _canonical_key(key: Any) -> str:
    # JSON object keys are strings; coercing 1 to "1" would silently merge keys.
    if not isinstance(key, str):
        raise TypeError(f"cannot hash a mapping with non-string key {key!r}")
    return key
