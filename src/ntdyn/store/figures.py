"""One figure-recording path for every pipeline: a set of figures of one kind, each recorded
once (found by its hash otherwise), as a table that says which were created and which found."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from .mlflow_store import RecordStore

log = logging.getLogger(__name__)

CREATED = "created"
FOUND = "found"
FIGURE_RECORD_COLUMNS = ("kind", "name", "figure_hash", "run_id", "evaluation_hash", "status")


def record_figure_set(
    store: RecordStore,
    kind: str,
    figures: Mapping[str, Any],
    *,
    params_of: Callable[[str], Mapping[str, Any]],
    evaluation_hash: str | None,
    sources: Sequence[str] = (),
    version: str | None = None,
) -> pd.DataFrame:
    """Record each figure (a `go.Figure` or a loader of one) of `kind`.

    params_of(name) gives a figure's parameters (what it shows, its options); the identity
    of each figure also covers `evaluation_hash`, `sources` and `version`. A figure already
    recorded is not drawn again (loaders are not called). Returns one row per figure with
    `status` "created" or "found".
    """
    rows = []
    for name, figure in figures.items():
        record, created = store.find_or_record_figure(
            kind=kind, figure=figure, params=params_of(name), evaluation_hash=evaluation_hash,
            sources=sources, version=version,
        )  # fmt: skip
        rows.append({"kind": kind, "name": name, "figure_hash": record.hash,
                     "run_id": record.run_id, "evaluation_hash": evaluation_hash,
                     "status": CREATED if created else FOUND})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(FIGURE_RECORD_COLUMNS))
    n_new = int((table["status"] == CREATED).sum())
    log.info("%s: %d figure(s) recorded, %d found in the records", kind, n_new, len(table) - n_new)
    return table
