"""Hyperparameters: flat views, content hashes, sweep expansion and validation.

Pure Python + pandas + pandera, so it can be used from pipelines, notebooks
and tests alike without importing Kedro, MLflow or JAX.
"""

from ntdyn.hyperparams.flat import SEP, flatten, unflatten
from ntdyn.hyperparams.hashing import canonical, hash_of, hyperparams_hash
from ntdyn.hyperparams.schemas import HyperparameterError, sweep_table, validate_sweep_table
from ntdyn.hyperparams.tables import TableError, validate_measures_table
from ntdyn.hyperparams.spreads import SpreadError, expand_spread, spread_axes, varying_columns

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
    "sweep_table",
    "unflatten",
    "validate_measures_table",
    "validate_sweep_table",
    "varying_columns",
]
