"""Pipeline tests: each Kedro session records into its own temporary MLflow store."""

import mlflow
import pytest

from servers import mlflow_auth_server, mlflow_server, postgres  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _private_tracking_uri(monkeypatch):
    # kedro-mlflow sets the global tracking URI; keep each test's store private.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    mlflow.set_tracking_uri("")
