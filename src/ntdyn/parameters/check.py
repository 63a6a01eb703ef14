"""Check a run's parameters against the declaration of every known parameter.

`parameter_problems(params)` lists each problem, naming the dotted parameter:

- ``<key>: unknown parameter; did you mean <closest>?``
- ``<key> = <value>: must be ...`` (wrong type, out of range, NaN or infinity, empty list).

`validate_parameters(params)` raises `ParameterError` with all of them. Pure Python: no
Kedro, no MLflow (the hook in ntdyn.parameters.hook calls it before a run starts).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from ntdyn.parameters.spec import PARAMETERS
from ntdyn.parameters.tree import Report, check, names


class ParameterError(ValueError):
    """Parameters the project does not know or does not allow; `problems`: one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} invalid parameter(s), nothing was run:\n{lines}")


@cache
def known_names() -> tuple[str, ...]:
    """Every dotted name the declaration knows (groups and leaves)."""
    return tuple(names(PARAMETERS, ""))


def parameter_problems(params: Mapping[str, Any], spec: Mapping = PARAMETERS) -> list[str]:
    """One line per problem of `params` (the merged parameters of a run); [] when valid."""
    report = Report(known_names() if spec is PARAMETERS else tuple(names(spec, "")))
    check(spec, params, "", report)
    return report.problems


def validate_parameters(params: Mapping[str, Any]) -> None:
    """Raise ParameterError listing every problem of `params`."""
    problems = parameter_problems(params)
    if problems:
        raise ParameterError(problems)
