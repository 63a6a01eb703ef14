"""Kedro hooks: a short summary at the end of every `kedro run`.

The summary counts what the run recorded, from the record tables the nodes
return (every `*records` output has a `status` column: trained, reused, ...),
and says where to look next.
"""

from __future__ import annotations

import collections
import logging

import pandas as pd
from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)


class RunSummaryHooks:
    """Counts models trained / reused and figures recorded; logs them when the run ends."""

    def __init__(self):
        self._status: collections.Counter[str] = collections.Counter()
        self._figures = 0

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        self._status.clear()
        self._figures = 0

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id):
        for name, value in outputs.items():
            if isinstance(value, pd.DataFrame) and name.endswith("figure_records"):
                self._figures += len(value)
            elif isinstance(value, pd.DataFrame) and name.endswith("records"):
                if "status" in value:
                    self._status.update(value["status"].astype(str))
            elif isinstance(value, dict) and name.endswith("trace_record"):
                self._status.update([str(value.get("status"))])

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog):
        log.info(summary_text(self._status, self._figures))


def summary_text(status: collections.Counter, n_figures: int) -> str:
    """One paragraph: models trained and reused, figures recorded, where to look."""
    trained, reused = status.get("trained", 0), status.get("reused", 0)
    return (
        f"ntdyn run summary: {trained} model record(s) trained, {reused} reused from the "
        f"records; {n_figures} figure(s) recorded. Figures: data/08_reporting/<pipeline>/"
        f"figures/; tables: data/07_model_output, data/08_reporting; browse with `kedro viz "
        f"run` and `kedro mlflow ui` (records in mlruns/)."
    )
