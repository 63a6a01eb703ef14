"""What one parameter may hold: a type, a range, a set of choices, a list of such values.

A `Rule` is the vocabulary of every declaration of known parameters: the hyperparameters
of each model kind (`ntdyn.hyperparams.kinds`, from which the pandera schemas are built)
and the other sections of the run's parameters (`ntdyn.parameters.spec`). `problem(value)`
says in words what is wrong with a value (``None`` when it is allowed). Pure Python.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

KINDS = ("number", "integer", "flag", "text", "list")


def _is_number(value: Any) -> bool:
    """A finite real number; bools are flags, not numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except (TypeError, ValueError):
        return False


def _is_integer(value: Any) -> bool:
    """An integer, or a float with an integral value (pandas upcasts int columns to float)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return _is_number(value) and float(value).is_integer()


def _is_flag(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's bool


@dataclass(frozen=True)
class Rule:
    """One parameter's allowed values.

    kind: number (finite real), integer, flag (bool), text (str), list (of `item`s).
    gt / ge / le: bounds of a number or integer. choices: the allowed texts.
    nullable: ``null`` is allowed. item: the rule of a list's items; length: a list's exact
    length (None: any length); empty: an empty list is allowed (by default it is not).
    """

    kind: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    item: Rule | None = None
    length: int | None = None
    empty: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Rule.kind = {self.kind!r}: must be one of {list(KINDS)}")
        if (self.kind == "list") != (self.item is not None):
            raise ValueError("Rule: a list needs an item rule, and only a list has one")

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` ("must be ..."), or None when it is allowed."""
        if value is None:
            return None if self.nullable else f"must not be null; {self.describe()}"
        if self._fits(value):
            return None
        return self.describe()

    def _fits(self, value: Any) -> bool:
        if self.kind == "flag":
            return _is_flag(value)
        if self.kind == "text":
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if self.kind == "list":
            return self._fits_list(value)
        is_kind = _is_integer if self.kind == "integer" else _is_number
        if not is_kind(value):
            return False
        return (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.le is None or value <= self.le)
        )

    def _fits_list(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or not (value or self.empty):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return all(self.item.problem(v) is None for v in value)

    def describe(self) -> str:
        """What is allowed, in words: "must be a finite number > 0", ..."""
        return "must be " + self._noun() + (" or null" if self.nullable else "")

    def _noun(self) -> str:
        if self.kind == "flag":
            return "true or false"
        if self.kind == "text":
            if self.choices:
                return "one of " + ", ".join(repr(c) for c in sorted(self.choices))
            return "a text"
        if self.kind == "list":
            size = f"of {self.length} " if self.length is not None else ""
            each = self.item.describe().removeprefix("must be ")
            return f"{'a' if self.empty else 'a non-empty'} list {size}of items each {each}"
        noun = "an integer" if self.kind == "integer" else "a finite number"
        if self.ge is not None and self.le is not None:
            return f"{noun} in [{self.ge:g}, {self.le:g}]"
        bounds = [
            f"{sign} {bound:g}"
            for sign, bound in ((">", self.gt), (">=", self.ge), ("<=", self.le))
            if bound is not None
        ]
        return " ".join([noun, " and ".join(bounds)]) if bounds else noun


def number(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
           nullable: bool = False) -> Rule:  # fmt: skip
    return Rule("number", gt=gt, ge=ge, le=le, nullable=nullable)


def integer(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
            nullable: bool = False) -> Rule:  # fmt: skip
    return Rule("integer", gt=gt, ge=ge, le=le, nullable=nullable)


def positive() -> Rule:
    return number(gt=0)


def non_negative() -> Rule:
    return number(ge=0)


def fraction() -> Rule:
    return number(ge=0, le=1)


def count(*, nullable: bool = False) -> Rule:
    """An integer >= 1."""
    return integer(ge=1, nullable=nullable)


def index() -> Rule:
    """An integer >= 0 (a seed, a step, a delay)."""
    return integer(ge=0)


def flag() -> Rule:
    return Rule("flag")


def text(*choices: str, nullable: bool = False) -> Rule:
    return Rule("text", choices=tuple(choices), nullable=nullable)


def list_of(item: Rule, *, length: int | None = None, empty: bool = False) -> Rule:
    return Rule("list", item=item, length=length, empty=empty)
