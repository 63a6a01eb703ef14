"""The parameters a run may receive: their declaration (`spec`), its building blocks
(`tree`), the check (`check`) and the Kedro hook that applies it before anything runs
(`hook`). Everything but the hook is pure Python."""

from ntdyn.parameters.check import (
    ParameterError,
    known_names,
    parameter_problems,
    validate_parameters,
)

__all__ = ["ParameterError", "known_names", "parameter_problems", "validate_parameters"]
