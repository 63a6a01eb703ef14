"""Hyperparameters: flat views, content hashes, sweep expansion and validation.

Pure Python + pandas (+ pandera for the schemas), so it can be used from
pipelines, notebooks and tests alike without importing Kedro, MLflow or JAX.
The pandera schemas load on first use: the science library needs only the
hashing and flattening, and must run where pandera is not installed (a GPU box).
"""

from importlib import import_module

from ntdyn.hyperparams.flat import SEP, flatten, unflatten
from ntdyn.hyperparams.hashing import canonical, hash_of, hyperparams_hash
from ntdyn.hyperparams.spreads import (
    SpreadError,
    expand_spread,
    spread_axes,
    sweep_rows,
    varying_columns,
)

_LAZY = {
    "HyperparameterError": "ntdyn.hyperparams.schemas",
    "sweep_table": "ntdyn.hyperparams.schemas",
    "validate_sweep_table": "ntdyn.hyperparams.schemas",
    "TableError": "ntdyn.hyperparams.tables",
    "validate_measures_table": "ntdyn.hyperparams.tables",
    "validate_table": "ntdyn.hyperparams.tables",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ntdyn.hyperparams' has no attribute {name!r}")


__all__ = [
    "SEP",
    "HyperparameterError",
    "SpreadError",
    "TableError",
    "canonical",
    "expand_spread",
    "flatten",
    "hash_of",
    "hyperparams_hash",
    "spread_axes",
    "sweep_rows",
    "sweep_table",
    "unflatten",
    "validate_measures_table",
    "validate_sweep_table",
    "validate_table",
    "varying_columns",
]
