"""Pure helpers: parameter stringification, normalised matching, canonical json, messages.

MLflow stores every param as a string. Queries are given as Python values, so both sides are
reduced to a comparable *key*: numbers compare numerically (``1 == 1.0 == "1.0" == "1"``), bools
as bools (``"True"``), ``None`` as ``"None"``, lists and dicts through canonical json, and any
other string exactly.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

UNSET = "<unset>"

Key = tuple[Any, ...]


# ----------------------------------------------------------------------------- conversion


def _unwrap(value: Any) -> Any:
    """numpy / jax scalars and arrays -> plain Python values (without importing numpy)."""
    if hasattr(value, "dtype"):  # before isinstance: np.float64 subclasses float
        for attr in ("tolist", "item"):
            method = getattr(value, attr, None)
            if callable(method):
                return method()
    return value


def _jsonable(value: Any, *, floats: bool) -> Any:
    value = _unwrap(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value) if floats else value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, floats=floats) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v, floats=floats) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Deterministic json: sorted keys, no spaces, every number as a float (so 1 == 1.0)."""
    return json.dumps(_jsonable(value, floats=True), sort_keys=True, separators=(",", ":"))


def param_to_str(value: Any) -> str:
    """How a hyperparameter value is logged as an MLflow param."""
    value = _unwrap(value)
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return json.dumps(_jsonable(value, floats=False))
    return str(value)


def params_to_str(params: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): param_to_str(v) for k, v in params.items()}


def figure_hash(
    kind: str,
    params: Mapping[str, Any],
    evaluation_hash: str | None,
    *,
    sources: Iterable[str] = (),
    version: str | None = None,
) -> str:
    """Identity of a figure record: sha256 of everything that determines the figure.

    Its kind, its parameters (the member it shows and the figure options), the record it is
    drawn from (`evaluation_hash`), any further records it draws on (`sources`: model,
    evaluation or analysis hashes, order-free) and the version of the code that draws it.
    """
    payload = {"kind": kind, "params": dict(params), "evaluation": evaluation_hash}
    extra = sorted(set(sources) - {evaluation_hash})
    if extra:
        payload["sources"] = extra
    if version is not None:
        payload["version"] = str(version)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


_METRIC_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")


def sanitize_metric_name(name: str) -> str:
    """Map a name onto MLflow's allowed metric characters (alnum, ``_ - . space /``).

    Other characters become ``_``; empty, ``.`` and ``..`` path segments are removed or
    replaced, since MLflow rejects names that change under path normalisation.
    """
    cleaned = _METRIC_BAD_CHARS.sub("_", str(name))
    parts = []
    for part in cleaned.split("/"):
        if part in ("", "."):
            continue
        parts.append("__" if part == ".." else part)
    return "/".join(parts) or "_"


# ----------------------------------------------------------------------------- matching


def _num_key(x: float) -> Key:
    return ("nan",) if math.isnan(x) else ("num", x)


def str_key(text: str) -> Key:
    """Comparison key of a param as stored in MLflow (a string)."""
    t = text.strip()
    if t == "None":
        return ("none",)
    if t in ("True", "False", "true", "false"):
        return ("bool", t.lower() == "true")
    try:
        return _num_key(float(t))
    except ValueError:
        pass
    if t[:1] in ("[", "{", "("):
        for parse in (json.loads, ast.literal_eval):
            try:
                return ("json", canonical_json(parse(t)))
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                continue
    return ("str", text)


def value_key(value: Any) -> Key:
    """Comparison key of a query value (any Python value)."""
    value = _unwrap(value)
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return _num_key(float(value))
    if isinstance(value, str):
        return str_key(value)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return ("json", canonical_json(value))
    return str_key(str(value))


def param_matches(stored: str, value: Any) -> bool:
    return str_key(stored) == value_key(value)


def params_match(params: Mapping[str, str], where: Mapping[str, Any]) -> bool:
    """True when every ``where`` item is a param of ``params`` with an equal value."""
    return all(k in params and param_matches(params[k], v) for k, v in where.items())


def _distinct_sorted(values: Iterable[str]) -> list[str]:
    by_key: dict[Key, str] = {}
    for v in values:
        by_key.setdefault(str_key(v), v)
    return [by_key[k] for k in sorted(by_key)]


def varying_params(
    params_list: Sequence[Mapping[str, str]], *, include_unset: bool = False
) -> dict[str, list[str]]:
    """Params that take more than one (normalised) value among ``params_list``.

    Values are the sorted distinct values (numbers numerically). With ``include_unset``, a
    param missing from some of the records also counts as varying and ``UNSET`` is appended
    to its values.
    """
    names = sorted({k for p in params_list for k in p})
    out: dict[str, list[str]] = {}
    for name in names:
        present = [p[name] for p in params_list if name in p]
        values = _distinct_sorted(present)
        unset = len(present) < len(params_list)
        if include_unset and unset:
            out[name] = [*values, UNSET]
        elif len(values) > 1:
            out[name] = values
    return out


# ----------------------------------------------------------------------------- messages


def format_value(value: Any) -> str:
    value = _unwrap(value)
    return repr(value) if isinstance(value, str) else param_to_str(value)


def format_where(where: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in where.items()) + "}"


def format_choices(values: Sequence[str]) -> str:
    return " | ".join(values)


def ambiguous_message(
    kind: str,
    where: Mapping[str, Any],
    n: int,
    differing: Mapping[str, Sequence[str]],
    hashes: Sequence[str] = (),
) -> str:
    head = f"{n} {kind}s match {format_where(where)}"
    if not differing:
        return (
            f"{head} and have identical parameters (hashes: {', '.join(hashes)}); "
            "select one by hash."
        )
    diffs = "; ".join(f"{k} = {format_choices(v)}" for k, v in differing.items())
    return f"{head}; they differ in: {diffs}. Add one of these to the query."


def not_found_message(
    kind: str,
    where: Mapping[str, Any],
    params_list: Sequence[Mapping[str, str]],
    *,
    max_values: int = 20,
) -> str:
    """Explain an empty query: for each queried param, the values that do exist."""
    head = f"No {kind} matches {format_where(where)}"
    if not params_list:
        return f"{head}: there are no {kind} records."
    known = sorted({k for p in params_list for k in p})
    lines = []
    for name, value in where.items():
        if not any(name in p for p in params_list):
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            lines.append(f"  {name}: no {kind} has this parameter{hint}")
            continue
        others = {k: v for k, v in where.items() if k != name}
        pool = [p for p in params_list if params_match(p, others)]
        scope = f"among {kind}s matching the other terms" if others else f"among all {kind}s"
        if others and not pool:
            pool, scope = list(params_list), f"among all {kind}s"
        values = _distinct_sorted(p[name] for p in pool if name in p)
        shown = values[:max_values]
        more = f" (+{len(values) - len(shown)} more)" if len(values) > len(shown) else ""
        lines.append(
            f"  {name} = {format_value(value)} not found; "
            f"allowed values {scope}: {format_choices(shown) or '(none)'}{more}"
        )
    return head + ".\n" + "\n".join(lines)
