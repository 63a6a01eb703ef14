"""Reuse a record by its hash, or compute, record and return: one path for every analysis.

Evaluations, population analyses and comparisons all follow it: the caller computes the
hash of every input (model hashes, the records it reads, its parameters and seeds); if a
FINISHED record has that hash, its artifacts are read back and nothing is computed;
otherwise the work runs, its artifacts are written to a temporary folder and recorded. While
one run computes a hash, another run that needs it waits for its record (see `claims`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pandas as pd

from .claims import RECORDED, REUSED, compute_once
from .mlflow_store import RecordStore
from .records import EVALUATION, Record

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What `reuse_or_compute` returns: the value, its record and whether it was made now."""

    value: T
    record: Record
    status: str  # RECORDED | REUSED

    def info(self, analysis: str, model_hashes: Sequence[str], kind: str = "evaluation") -> dict:
        """The `*_record` dict the pipelines pass on (and the run summary counts)."""
        return {"analysis": analysis, "hash": self.record.hash, "run_id": self.record.run_id,
                "status": self.status, "models": sorted(model_hashes), "kind": kind}  # fmt: skip


def reuse_or_compute(
    store: RecordStore,
    *,
    hash: str,
    analysis: str,
    compute: Callable[[], T],
    write: Callable[[T, Path], Sequence[Path]],
    read: Callable[[Callable[[str], Path]], T],
    params: Mapping[str, object],
    model_hashes: Sequence[str],
    metrics: Callable[[T], Mapping[str, float]] = lambda value: {},
    run_name: str | None = None,
) -> Outcome[T]:
    """The record with `hash` read back (`read(artifact)`), or `compute()` recorded.

    write(value, folder) -> the artifact paths it wrote into `folder`;
    read(artifact) -> the value, where artifact(name) is the local path of one artifact.
    """
    computed: list[T] = []

    def compute_and_record(hashes: list[str]) -> dict[str, Record]:
        computed.append(compute())
        with tempfile.TemporaryDirectory() as tmp:
            paths = write(computed[0], Path(tmp))
            record = store.record_evaluation(
                hash=hash, analysis=analysis, params=params, model_hashes=model_hashes,
                metrics=metrics(computed[0]), artifacts=paths, run_name=run_name,
            )  # fmt: skip
        return {hash: record}

    describe = lambda h: f"{analysis} {h}"  # noqa: E731
    [(record, status)] = compute_once(store, EVALUATION, [hash], store.find_evaluation,
                                      compute_and_record, describe).values()  # fmt: skip
    if status == RECORDED:
        return Outcome(computed[0], record, RECORDED)
    return Outcome(read(lambda name: store.download_artifact(record, name)), record, REUSED)


def write_parquet_tables(tables: Mapping[str, pd.DataFrame], folder: Path) -> list[Path]:
    """A `write` for `reuse_or_compute` whose value is named tables: `<folder>/<name>.parquet`."""
    for name, table in tables.items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    return [folder / f"{name}.parquet" for name in tables]


def model_of(
    store: RecordStore, outcome: tuple[Record, str], trained_now: Mapping, h: str, folder: str
) -> tuple[object, pd.DataFrame, str]:
    """(model, training history, status) of hash `h` after `compute_once`: the one this run
    trained ("trained") or the record's, downloaded into `folder` and loaded (its status)."""
    from ntdyn.training.ensemble_io import load_trained  # Equinox: loaded only when needed

    rec, status = outcome
    if status == RECORDED:
        return trained_now[h], trained_now[h].history, "trained"
    return load_trained(store.download_model_file(rec, folder)), store.download_history(rec), status
