"""The shapes a declaration of known parameters is made of, and how each checks a value.

- a `Rule` (``ntdyn.hyperparams.rules``): one leaf value;
- `Section`: a mapping with a fixed set of known keys (a plain dict in a declaration);
- `Hyperparams(kind)`: a nested (or ``__``-flat) block of a model kind's hyperparameters;
- `Spread(kind)`: sweep axes over them (lists, ``null`` to drop an axis, ``zip:`` groups);
- `Named(node)`: free names (``data_models: {sae_gru: ...}``), each one a `node`;
- `ByKind(field, variants)`: a section whose known keys depend on its `field`'s value;
- `Checked(problem)`: one leaf value of a form no `Rule` describes (``all``, a count or a
  list), checked by its consumer's own function.

Every node checks a value into a `Report` (problems as text, each naming the dotted
parameter) and lists the dotted names it knows (for "did you mean").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ntdyn.hyperparams.flat import SEP, flatten
from ntdyn.hyperparams.kinds import HYPERPARAMETERS
from ntdyn.hyperparams.names import UNKNOWN, closest, unknown_name
from ntdyn.hyperparams.rules import Rule
from ntdyn.hyperparams.spreads import ZIP

MAX_LEAVES = 5  # leaves of one unknown group reported one by one


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def dotted(flat_key: str) -> str:
    """`train__pert__std` -> `train.pert.std`."""
    return flat_key.replace(SEP, ".")


@dataclass
class Report:
    """Problems found so far; `known` are every dotted name of the whole declaration."""

    known: tuple[str, ...]
    problems: list[str] = field(default_factory=list)

    def value(self, name: str, value: Any, rule: Rule) -> None:
        problem = rule.problem(value)
        if problem is not None:
            self.problems.append(f"{name} = {value!r}: {problem}")

    def unknown(self, path: str, key: Any, value: Any, here: list[str]) -> None:
        """`key` under `path` is not among `here` (the known keys at that level)."""
        name = join(path, str(key))
        match = closest(str(key), here)
        if match is not None:
            self.problems.append(f"{name}: {UNKNOWN}; did you mean {join(path, match)}?")
            return
        leaves = _leaves(name, value)
        for leaf in leaves[:MAX_LEAVES]:
            self.problems.append(self._anywhere(leaf, path, here))
        if len(leaves) > MAX_LEAVES:
            self.problems.append(f"{name}: and {len(leaves) - MAX_LEAVES} more unknown parameters")

    def _anywhere(self, name: str, path: str, here: list[str]) -> str:
        """A name matching nothing at its level: a known name ending like it, or close to it
        in the whole declaration."""
        if name in self.known:
            return (f"{name}: {UNKNOWN} as one dotted key (Kedro does not nest it here); "
                    "give it as a nested mapping")  # fmt: skip
        tail = name.removeprefix(f"{path}.") if path else name
        ending = sorted(k for k in self.known if k.endswith(f".{tail}"))
        match = ending[0] if ending else closest(name, self.known)
        if match is not None:
            return f"{name}: {UNKNOWN}; did you mean {match}?"
        return unknown_name(name, [join(path, k) for k in here])


def _leaves(name: str, value: Any) -> list[str]:
    """Dotted names of the leaves of a (possibly nested) value under `name`."""
    if isinstance(value, Mapping) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(join(name, str(k)), v)]
    return [name]


def check(node: Any, value: Any, path: str, report: Report) -> None:
    """Check `value` against `node` (a Rule, a dict section or one of the node types)."""
    if isinstance(node, Rule):
        report.value(path, value, node)
    elif isinstance(node, Mapping):
        Section(node).check(value, path, report)
    else:
        node.check(value, path, report)


def names(node: Any, path: str) -> Iterator[str]:
    """Every dotted name `node` knows under `path`."""
    if isinstance(node, Rule):
        return iter(())
    if isinstance(node, Mapping):
        return Section(node).names(path)
    return node.names(path)


def _is_mapping(value: Any, path: str, report: Report, what: str) -> bool:
    if isinstance(value, Mapping):
        return True
    report.problems.append(f"{path} = {value!r}: must be a mapping of {what}")
    return False


@dataclass(frozen=True)
class Section:
    """A mapping whose keys are known: each key's node."""

    fields: Mapping[str, Any]

    def check(self, value: Any, path: str, report: Report) -> None:
        if not _is_mapping(value, path, report, ", ".join(self.fields) or "nothing"):
            return
        for key, item in value.items():
            if key in self.fields:
                check(self.fields[key], item, join(path, key), report)
            else:
                report.unknown(path, key, item, list(self.fields))

    def names(self, path: str) -> Iterator[str]:
        for key, node in self.fields.items():
            yield join(path, key)
            yield from names(node, join(path, key))


@dataclass(frozen=True)
class Hyperparams:
    """A block of hyperparameters of `kind` (nested as in conf, or flat), reported dotted."""

    kind: str

    @property
    def rules(self) -> Mapping[str, Rule]:
        return HYPERPARAMETERS[self.kind]

    def check(self, value: Any, path: str, report: Report) -> None:
        if value is None or not _is_mapping(value, path, report, f"{self.kind} hyperparameters"):
            return
        try:
            flat = flatten(value)
        except ValueError as err:
            report.problems.append(f"{path}: {err}")
            return
        here = [dotted(k) for k in self.rules]
        for key, item in flat.items():
            if key in self.rules:
                report.value(join(path, dotted(key)), item, self.rules[key])
            else:
                report.unknown(path, dotted(key), item, here)

    def names(self, path: str) -> Iterator[str]:
        for key in self.rules:
            parts = key.split(SEP)
            for end in range(1, len(parts) + 1):
                yield join(path, ".".join(parts[:end]))


@dataclass(frozen=True)
class Spread:
    """Sweep axes over `kind`'s hyperparameters: `flat_name: [values]` (`null` drops an
    axis), and `zip: [{name: [values], ...}, ...]` of equal-length lists."""

    kind: str

    @property
    def rules(self) -> Mapping[str, Rule]:
        return HYPERPARAMETERS[self.kind]

    def check(self, value: Any, path: str, report: Report) -> None:
        if value is None or not _is_mapping(value, path, report, "hyperparameters to lists"):
            return
        for key, item in value.items():
            if key == ZIP:
                self._zip(item, join(path, ZIP), report)
            else:
                self._axes({key: item}, path, report, drop=True)

    def _axes(self, axes: Mapping, path: str, report: Report, drop: bool) -> dict[str, int]:
        """Check each axis; return the length of each well-formed one."""
        try:
            flat = flatten(axes)
        except ValueError as err:
            report.problems.append(f"{path}: {err}")
            return {}
        lengths = {}
        for key, values in flat.items():
            name = join(path, key)
            if key not in self.rules:
                report.unknown(path, key, values, list(self.rules))
            elif values is None and drop:
                continue
            elif not isinstance(values, list) or not values:
                report.problems.append(
                    f"{name} = {values!r}: a sweep axis must be a non-empty list of values, "
                    f"each {self.rules[key].describe().removeprefix('must be ')}"
                )
            else:
                for number, item in enumerate(values):
                    report.value(f"{name}[{number}]", item, self.rules[key])
                lengths[key] = len(values)
        return lengths

    def _zip(self, groups: Any, path: str, report: Report) -> None:
        if not isinstance(groups, list) or not groups:
            report.problems.append(
                f"{path} = {groups!r}: must be a non-empty list of groups, each a mapping of "
                "hyperparameters to equal-length lists"
            )
            return
        for number, group in enumerate(groups):
            where = f"{path}[{number}]"
            if not isinstance(group, Mapping) or not group:
                report.problems.append(f"{where} = {group!r}: must be a non-empty mapping of "
                                       "hyperparameters to equal-length lists")  # fmt: skip
                continue
            lengths = self._axes(group, where, report, drop=False)
            if len(set(lengths.values())) > 1:
                report.problems.append(f"{where}: lists that vary together must have equal "
                                       f"lengths, got {lengths}")  # fmt: skip

    def names(self, path: str) -> Iterator[str]:
        for key in self.rules:
            yield join(path, key)


@dataclass(frozen=True)
class Named:
    """Free names (e.g. the data models), each one a `node`."""

    node: Any

    def check(self, value: Any, path: str, report: Report) -> None:
        if not _is_mapping(value, path, report, "names to their settings"):
            return
        for key, item in value.items():
            check(self.node, item, join(path, str(key)), report)

    def names(self, path: str) -> Iterator[str]:
        return names(self.node, join(path, "<name>"))


@dataclass(frozen=True)
class ByKind:
    """A section whose known keys are those of the variant its `field` names."""

    field: str
    variants: Mapping[str, Mapping[str, Any]]

    def check(self, value: Any, path: str, report: Report) -> None:
        if not _is_mapping(value, path, report, f"{self.field} and its settings"):
            return
        kind = value.get(self.field)
        if not isinstance(kind, str) or kind not in self.variants:  # a list is no kind either
            allowed = ", ".join(repr(k) for k in self.variants)
            report.problems.append(f"{join(path, self.field)} = {kind!r}: must be one of {allowed}")
            known = {key for variant in self.variants.values() for key in variant}
            for key, item in value.items():
                if key not in known:
                    report.unknown(path, key, item, sorted(known))
            return
        check(self.variants[kind], value, path, report)

    def names(self, path: str) -> Iterator[str]:
        seen = set()
        for variant in self.variants.values():
            for name in names(variant, path):
                if name not in seen:
                    seen.add(name)
                    yield name


@dataclass(frozen=True)
class OrNull:
    """A `node` that may also be null (e.g. `checkpoint: null` turns checkpoints off)."""

    node: Any

    def check(self, value: Any, path: str, report: Report) -> None:
        if value is not None:
            check(self.node, value, path, report)

    def names(self, path: str) -> Iterator[str]:
        return names(self.node, path)


@dataclass(frozen=True)
class Checked:
    """A leaf checked by `problem(value)`: what is wrong ("must be ...") or None."""

    problem: Callable[[Any], str | None]

    def check(self, value: Any, path: str, report: Report) -> None:
        problem = self.problem(value)
        if problem is not None:
            report.problems.append(f"{path} = {value!r}: {problem}")

    def names(self, path: str) -> Iterator[str]:
        return iter(())
