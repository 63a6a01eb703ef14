"""The hyperparams package stays light: no Kedro, MLflow or JAX behind it."""

import os
import subprocess
import sys

import ntdyn.hyperparams


def test_import_pulls_in_no_framework():
    # A fresh interpreter, since other tests may already have imported these.
    code = (
        "import sys, ntdyn.hyperparams\n"
        "heavy = {'kedro', 'mlflow', 'jax', 'pandera'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == ""


def test_public_api_is_exported():
    assert set(ntdyn.hyperparams.__all__) == {
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
    }
    assert all(hasattr(ntdyn.hyperparams, name) for name in ntdyn.hyperparams.__all__)
