"""Kedro dataset for labelled arrays: a folder per entry, one `.npy` per array, memory-mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from ntdyn.analysis.arrays import LabelledArrays, load_labelled, save_labelled


class LabelledArraysDataset(AbstractDataset[dict, dict]):
    """`{key: LabelledArrays}` stored as `<path>/<key>/<array>.npy` + `meta.json`.

    Loading memory-maps the arrays, so only what a node touches is read.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def save(self, data: dict[str, LabelledArrays]) -> None:
        save_labelled(self._path, data)

    def load(self) -> dict[str, LabelledArrays]:
        return load_labelled(self._path)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
