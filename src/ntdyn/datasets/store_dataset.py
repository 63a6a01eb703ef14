"""Kedro dataset whose load gives the MLflow-backed record store, so nodes receive it explicitly."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset

from ntdyn.store import RecordStore


class RecordStoreDataset(AbstractDataset[None, RecordStore]):
    """Read-only handle to the records (MLflow tracking URI set by kedro-mlflow by default)."""

    def __init__(
        self,
        experiment: str = "ntdyn",
        tracking_uri: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._experiment = experiment
        self._tracking_uri = tracking_uri
        self.metadata = metadata

    def load(self) -> RecordStore:
        return RecordStore(tracking_uri=self._tracking_uri, experiment=self._experiment)

    def save(self, data: None) -> None:
        raise NotImplementedError("the record store is written through its methods, not saved")

    def _describe(self) -> dict[str, Any]:
        return {"experiment": self._experiment, "tracking_uri": self._tracking_uri}
