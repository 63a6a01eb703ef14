"""Kedro dataset for an evaluation: a pointer to its folder in the record store, read lazily.

An evaluation's arrays and tables live once, in its record (see `ntdyn.analysis.stored`);
the catalog stores only a small JSON pointer to that folder. `part` says what loading
gives: the arrays (model hash -> lazily read zarr arrays), the conditions or the measures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ntdyn.analysis.stored import (
    CONDITIONS,
    MEASURES_TABLE,
    EvaluationArrays,
    read_pointer,
    write_pointer,
)

PARTS = {"arrays", "conditions", "measures"}


class EvaluationDataset(AbstractDataset[dict, Any]):
    """Saves {folder, hash, run_id}; loads `part` of the evaluation in that folder."""

    def __init__(self, path: str, part: str, metadata: dict[str, Any] | None = None):
        if part not in PARTS:
            raise ValueError(f"EvaluationDataset part = {part!r}: must be one of {sorted(PARTS)}")
        self._path = Path(path)
        self._part = part
        self.metadata = metadata

    def save(self, data: dict) -> None:
        info = dict(data)
        write_pointer(self._path, info.pop("folder"), **info)

    def load(self) -> Any:
        folder = Path(read_pointer(self._path)["folder"])
        if not folder.is_dir():
            raise DatasetError(
                f"{self._path} points to {folder}, which is gone (its record was deleted or "
                "the store moved): run the evaluation again"
            )
        if self._part == "arrays":
            return EvaluationArrays(folder)
        return pd.read_parquet(
            folder / (CONDITIONS if self._part == "conditions" else MEASURES_TABLE)
        )

    def _exists(self) -> bool:
        return self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "part": self._part}
