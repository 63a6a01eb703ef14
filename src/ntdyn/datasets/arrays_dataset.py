"""Kedro dataset for labelled arrays: a folder per entry, one `.npy` per array, memory-mapped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from ntdyn.analysis.arrays import LabelledArrays


class LabelledArraysDataset(AbstractDataset[dict, dict]):
    """`{key: LabelledArrays}` stored as `<path>/<key>/<array>.npy` + `meta.json`.

    Loading memory-maps the arrays, so only what a node touches is read.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def save(self, data: dict[str, LabelledArrays]) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for key, entry in data.items():
            folder = tmp / key
            folder.mkdir(parents=True)
            for name, arr in entry.arrays.items():
                np.save(folder / f"{name}.npy", np.asarray(arr))
            meta = {"axes": {k: list(v) for k, v in entry.axes.items()}, "attrs": entry.attrs}
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        # Swap in whole: a failed save never leaves a half-written evaluation.
        shutil.rmtree(self._path, ignore_errors=True)
        tmp.rename(self._path)

    def load(self) -> dict[str, LabelledArrays]:
        out = {}
        for folder in sorted(p for p in self._path.iterdir() if p.is_dir()):
            meta = json.loads((folder / "meta.json").read_text())
            arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in meta["axes"]}
            axes = {k: tuple(v) for k, v in meta["axes"].items()}
            out[folder.name] = LabelledArrays(arrays, axes, meta["attrs"])
        return out

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
