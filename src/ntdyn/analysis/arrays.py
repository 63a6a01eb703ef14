"""Arrays with named axes: what an evaluation stores (not pickles)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class LabelledArrays:
    """Named arrays with named axes and JSON-able attributes.

    arrays: name -> ndarray. axes: name -> axis names, one per dimension (e.g.
    ("replicate", "trial", "time", "var")). attrs: metadata such as the model hash.
    """

    arrays: dict[str, np.ndarray]
    axes: dict[str, tuple[str, ...]]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name, arr in self.arrays.items():
            dims = self.axes.get(name)
            if dims is None or len(dims) != np.ndim(arr):
                raise ValueError(
                    f"array {name!r} of shape {np.shape(arr)} needs one axis name per dimension, "
                    f"got {dims}"
                )

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def save_labelled(path: str | Path, data: dict[str, LabelledArrays]) -> None:
    """Write `{key: LabelledArrays}` as `<path>/<key>/<array>.npy` + `meta.json`, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key, entry in data.items():
        folder = tmp / key
        folder.mkdir()
        for name, arr in entry.arrays.items():
            np.save(folder / f"{name}.npy", np.asarray(arr))
        meta = {"axes": {k: list(v) for k, v in entry.axes.items()}, "attrs": entry.attrs}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    # Swap in whole: a failed save never leaves a half-written evaluation.
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def load_labelled(path: str | Path) -> dict[str, LabelledArrays]:
    """Read what `save_labelled` wrote; arrays are memory-mapped (read lazily)."""
    out = {}
    for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in meta["axes"]}
        axes = {k: tuple(v) for k, v in meta["axes"].items()}
        out[folder.name] = LabelledArrays(arrays, axes, meta["attrs"])
    return out


def condition_means(
    values: np.ndarray,
    conditions: pd.DataFrame,
    exclude: tuple[str, ...] = ("trial", "repeat", "hash"),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Average trials that share a condition (every column but `exclude`, e.g. repeats).

    values: (N, ...) one row per row of `conditions`. Returns ((C, ...) means, C-row table
    of the condition columns), conditions sorted.
    """
    keys = [c for c in conditions.columns if c not in exclude]
    groups = conditions.reset_index(drop=True).groupby(keys, sort=True).indices
    means = np.stack([np.asarray(values)[idx].mean(axis=0) for idx in groups.values()])
    return means, pd.DataFrame(list(groups.keys()), columns=keys)
