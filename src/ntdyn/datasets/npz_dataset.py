"""Kedro dataset for a dict of NumPy arrays in one `.npz` file (e.g. a simulated spiking set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset


class NpzDataset(AbstractDataset[dict, dict]):
    """`{name: array}` <-> one uncompressed `.npz` file (arrays load eagerly, no pickles)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        with np.load(self._filepath, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def save(self, data: dict[str, np.ndarray]) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        with self._filepath.open("wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in data.items()})

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
