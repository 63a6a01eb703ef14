"""The science library runs without Kedro, MLflow or pandera (e.g. on a GPU box with JAX only)."""

import subprocess
import sys

import pytest

FORBIDDEN = {"kedro", "kedro_datasets", "kedro_mlflow", "mlflow", "pandera"}


@pytest.mark.parametrize(
    "package", ["tasks", "tasks.multitask", "models", "training", "analysis", "plots"]
)
def test_science_package_imports_no_framework(package):
    code = (
        f"import sys, ntdyn.{package}\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
