"""Create a fresh sqlite store once, however many processes start on it at the same time.

MLflow creates and migrates a sqlite database on first use; two processes doing that at once
crash (`table _alembic_tmp_params already exists`). `initialise_store` does it under an
exclusive file lock beside the database, so the first process creates it and the others,
waiting on the lock, find it ready. Other backends (a tracking server) are left alone.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from urllib.parse import unquote

SQLITE = "sqlite:///"


def sqlite_path(uri: str | None) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other URIs and in-memory ones."""
    if not uri or not uri.startswith(SQLITE):
        return None
    path = unquote(uri[len(SQLITE) :])
    return None if path in ("", ":memory:") else Path(path)


def initialise_store(uri: str | None) -> bool:
    """Create and migrate the sqlite store at `uri` if needed, holding a file lock.

    Returns True if this call found the store missing (it then exists).
    """
    import mlflow

    db = sqlite_path(uri)
    if db is None:
        return False
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        missing = not db.exists() or db.stat().st_size == 0
        # the first query creates the schema and runs its migrations
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return missing


def ensure_experiment(uri: str, name: str, artifact_location: str | None = None,
                      tags: dict | None = None) -> str:  # fmt: skip
    """The id of experiment `name` at `uri`, created if missing; another process creating it
    at the same moment is not an error (the server refuses the second create)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=tags)
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
