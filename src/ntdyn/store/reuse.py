"""Reuse a record by its hash, or compute, record and return: one path for every analysis.

Evaluations, population analyses and comparisons all follow it: the caller computes the
hash of every input (model hashes, the records it reads, its parameters and seeds); if a
FINISHED record has that hash, its artifacts are read back and nothing is computed;
otherwise the work runs, its artifacts are written to a temporary folder and recorded.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from .mlflow_store import RecordStore
from .records import Record

log = logging.getLogger(__name__)

T = TypeVar("T")
RECORDED = "recorded"
REUSED = "reused"


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
    record = store.find_evaluation(hash)
    if record is not None:
        log.info("reusing %s %s from record %s", analysis, hash, record.run_id)
        return Outcome(read(lambda name: store.download_artifact(record, name)), record, REUSED)
    value = compute()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(value, Path(tmp))
        record = store.record_evaluation(
            hash=hash, analysis=analysis, params=params, model_hashes=model_hashes,
            metrics=metrics(value), artifacts=paths, run_name=run_name,
        )  # fmt: skip
    return Outcome(value, record, RECORDED)
