"""Kedro dataset for a trained ensemble (any kind in `ensemble_io.KINDS`) in an `.eqx` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from ntdyn.training.ensemble_io import load_trained, save_trained


class EquinoxModelDataset(AbstractDataset):
    """One `.eqx` file: JSON hyperparameter header, then the leaves. Loading trains nothing."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self):
        return load_trained(self._filepath)

    def save(self, data) -> None:
        save_trained(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
