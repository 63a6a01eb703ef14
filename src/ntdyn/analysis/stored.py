"""What an evaluation stores, and how: chunked, compressed zarr arrays with named dimensions.

Layout of one evaluation's folder (the record's artifact `evaluation/`, its only copy):

    conditions.parquet       one row per (model hash, trial): the condition columns, `trial`,
                             `repeat` and `condition` (the index of its condition mean)
    measures.parquet         behaviour measures, one row per (model, replicate, trial)
    summary.parquet          their mean and std per condition (selected replicates)
    arrays.zarr/<hash>/trials/<name>   (replicate, trial, time, <var>): the single trials kept
    arrays.zarr/<hash>/means/<name>    (replicate, condition, time, <var>): condition means
    arrays.zarr/<hash>/trial_index     (trial,): which trials `trials/` holds

Arrays are written chunk by chunk while they are computed and read lazily: indexing a
stored array reads only the zarr chunks it touches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec

ARRAYS = "arrays.zarr"
CONDITIONS = "conditions.parquet"
MEASURES_TABLE = "measures.parquet"  # one row per (model, replicate, trial)
SUMMARY_TABLE = "summary.parquet"  # per condition, over the selected replicates
# Trajectory arrays of an evaluation and their last dimension's name.
VARIABLES = {
    "state": "state_var",
    "hidden": "unit",
    "command": "force_dim",
    "control": "force_dim",
    "field": "force_dim",
    "feedback": "state_var",
}
NOT_CONDITION = ("trial", "repeat", "hash", "condition")
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
_CHUNK_BYTES = 4e6  # target size of one stored zarr chunk (uncompressed)


@dataclass(frozen=True)
class Keep:
    """What an evaluation stores of each model (per-trial measures are always kept).

    means: arrays whose condition means (over repeats) are stored, for every condition.
    trials: arrays whose single trials are stored for a bounded sample: the first `repeats`
    repeats of every condition (None: every trial), at most `max_trials` trials per model
    (evenly spaced over that selection; None: no cap). replicates: "selected" stores the
    model's best replicate, "all" every replicate.
    """

    means: tuple[str, ...] = tuple(VARIABLES)
    trials: tuple[str, ...] = tuple(VARIABLES)
    repeats: int | None = 1
    max_trials: int | None = 2048
    replicates: str = "selected"

    def __post_init__(self):
        for field in ("means", "trials"):
            unknown = sorted(set(getattr(self, field)) - set(VARIABLES))
            if unknown:
                raise ValueError(f"keep.{field} names {unknown}: allowed are {list(VARIABLES)}")
        for field in ("repeats", "max_trials"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"keep.{field} = {value!r}: must be an integer >= 1 or null")
        if self.replicates not in ("selected", "all"):
            raise ValueError(f"keep.replicates = {self.replicates!r}: must be selected or all")

    @classmethod
    def from_conf(cls, conf: Mapping | None, where: str = "keep") -> Keep:
        conf = dict(conf or {})
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(conf) - allowed)
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}: allowed are {sorted(allowed)}")
        for field in ("means", "trials"):
            if field in conf:
                conf[field] = tuple(conf[field] or ())
        try:
            return cls(**conf)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def trial_sample(self, conditions: pd.DataFrame) -> np.ndarray:
        """Sorted trial numbers of the single trials kept, from a table with `trial`, `repeat`."""
        rows = (
            conditions if self.repeats is None else conditions[conditions["repeat"] < self.repeats]
        )
        trials = np.sort(rows["trial"].to_numpy())
        if self.max_trials is not None and len(trials) > self.max_trials:
            pick = np.linspace(0, len(trials) - 1, self.max_trials).round().astype(int)
            trials = trials[np.unique(pick)]
        return trials


def with_condition_index(conditions: pd.DataFrame) -> pd.DataFrame:
    """`conditions` (one model, one row per trial) with `condition`: the index of its
    condition (trials sharing every column but trial/repeat), conditions in sorted order."""
    keys = [c for c in conditions.columns if c not in NOT_CONDITION]
    out = conditions.copy()
    out["condition"] = conditions.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
    return out


def _chunks(shape: Sequence[int]) -> tuple[int, ...]:
    # One replicate, whole time axis and variables, as many trials as make ~4 MB.
    per_trial = int(np.prod(shape[2:])) * 4
    n = max(1, min(shape[1], int(_CHUNK_BYTES // max(per_trial, 1))))
    return (1, n, *shape[2:])


class ModelWriter:
    """Creates one model's arrays in an evaluation's zarr store and writes them in pieces."""

    def __init__(self, group: zarr.Group, shapes: Mapping[str, tuple[int, ...]], kind: str):
        self.arrays = {}
        for name, shape in shapes.items():
            dims = (
                "replicate",
                "trial" if kind == "trials" else "condition",
                "time",
                VARIABLES[name],
            )
            self.arrays[name] = group.create_array(
                f"{kind}/{name}", shape=shape, chunks=_chunks(shape), dtype="float32",
                dimension_names=dims, compressors=_COMPRESSOR, fill_value=np.nan,
            )  # fmt: skip

    def write(self, name: str, rows: slice, values: np.ndarray) -> None:
        self.arrays[name][:, rows] = np.asarray(values, np.float32)


def open_for_writing(folder: str | Path) -> zarr.Group:
    """A new, empty evaluation store in `folder` (created)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return zarr.open_group(str(Path(folder) / ARRAYS), mode="w")


def open_group_for_writing(folder: str | Path, name: str) -> zarr.Group:
    """A new group `name` (one model's arrays) in the evaluation store made by
    `open_for_writing(folder)`. Each model's group is its own folder of the store, so models
    evaluated at the same time by several processes never write the same file."""
    return zarr.open_group(str(Path(folder) / ARRAYS), mode="r+").create_group(name)


class ModelArrays:
    """One model's stored arrays of an evaluation, read lazily.

    trials(name) -> (trial, time, var) single trials of a stored replicate (default: the
    selected one), rows in the order of `trial_conditions`; means(name) -> (condition, time,
    var), rows in the order of `mean_conditions`. attrs: hash, analysis, dt, seed,
    replicates (the model replicates stored, in order), selected.
    """

    def __init__(self, group: zarr.Group, conditions: pd.DataFrame):
        self._group = group
        self.attrs: dict[str, Any] = dict(group.attrs)
        self.hash = self.attrs["hash"]
        cond = conditions[conditions["hash"] == self.hash].sort_values("trial")
        self.conditions = cond.reset_index(drop=True)
        index = np.asarray(group["trial_index"][:], dtype=np.int64)
        self.trial_conditions = (
            self.conditions.set_index("trial").loc[index].reset_index()[self.conditions.columns]
        )
        self.mean_conditions = (
            self.conditions.drop_duplicates("condition")
            .sort_values("condition")
            .drop(columns=["trial", "repeat"])
            .reset_index(drop=True)
        )

    def _row(self, replicate: int | None) -> int:
        stored = list(self.attrs["replicates"])
        replicate = self.attrs["selected"] if replicate is None else int(replicate)
        if replicate not in stored:
            raise KeyError(
                f"replicate {replicate} of model {self.hash} is not stored (stored: {stored}); "
                "evaluate with keep.replicates: all to store every replicate"
            )
        return stored.index(replicate)

    def _get(self, kind: str, name: str) -> zarr.Array:
        if f"{kind}/{name}" not in self._group:
            kept = sorted(self._group[kind].array_keys()) if kind in self._group else []
            raise KeyError(
                f"{self.attrs['analysis']} keeps no {kind} of {name!r} (keeps {kept}); add it "
                f"to the evaluation's keep.{kind}"
            )
        return self._group[f"{kind}/{name}"]

    def trials(self, name: str, replicate: int | None = None) -> np.ndarray:
        return np.asarray(self._get("trials", name)[self._row(replicate)])

    def means(self, name: str, replicate: int | None = None) -> np.ndarray:
        return np.asarray(self._get("means", name)[self._row(replicate)])

    def lazy(self, kind: str, name: str) -> zarr.Array:
        """The stored zarr array itself (replicate, trial | condition, time, var), unread."""
        return self._get(kind, name)


class EvaluationArrays(Mapping[str, ModelArrays]):
    """An evaluation's stored arrays: model hash -> `ModelArrays`, opened lazily."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._root = zarr.open_group(str(self.folder / ARRAYS), mode="r")
        self.conditions = pd.read_parquet(self.folder / CONDITIONS)
        self._keys = sorted(self._root.group_keys())

    def __getitem__(self, key: str) -> ModelArrays:
        if key not in self._keys:
            raise KeyError(key)
        return ModelArrays(self._root[key], self.conditions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def write_pointer(path: str | Path, folder: str | Path, **info) -> None:
    """A small JSON file naming where an evaluation's folder is (what the catalog stores)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"folder": str(Path(folder).resolve()), **info}, indent=1))


def read_pointer(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
