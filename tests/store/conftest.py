"""Fixtures for the record store tests: one real sqlite MLflow backend per test session."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
if importlib.util.find_spec("ntdyn") is None and SRC.is_dir():  # project not installed
    sys.path.insert(0, str(SRC))


@pytest.fixture(scope="session")
def mlflow_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlruns")


@pytest.fixture(scope="session")
def tracking_uri(mlflow_root: Path) -> str:
    return f"sqlite:///{mlflow_root / 'mlflow.db'}"


@pytest.fixture(scope="session")
def make_store(tracking_uri: str, mlflow_root: Path):
    """Factory of stores on the shared database, each with its own fresh experiment."""
    from ntdyn.store import RecordStore

    def make(name: str = "test") -> RecordStore:
        experiment = f"{name}-{uuid.uuid4().hex[:8]}"
        artifacts = mlflow_root / "artifacts" / experiment
        return RecordStore(tracking_uri, experiment, artifact_location=artifacts.as_uri())

    return make
