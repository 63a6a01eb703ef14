"""Kedro hooks: a short summary at the end of every `kedro run`.

The summary counts what the run recorded, from what the nodes return: every
`*records` table has a `status` column (trained, reused, ...), every evaluation's
`*record` a `status` (recorded or reused). It names the slowest nodes and says
where to look next.
"""

from __future__ import annotations

import collections
import logging
import time

import pandas as pd
from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)


class RunSummaryHooks:
    """Counts model and evaluation records made or reused, figures recorded and node times;
    logs them when the run ends."""

    def __init__(self):
        self._status: collections.Counter[str] = collections.Counter()
        self._evaluations: collections.Counter[str] = collections.Counter()
        self._figures = 0
        self._started: dict[str, float] = {}
        self._seconds: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        self._status.clear()
        self._evaluations.clear()
        self._figures = 0
        self._started.clear()
        self._seconds.clear()

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id):
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id):
        if node is not None and node.name in self._started:
            self._seconds[node.name] = time.perf_counter() - self._started.pop(node.name)
        for name, value in outputs.items():
            if isinstance(value, pd.DataFrame) and name.endswith("figure_records"):
                self._figures += len(value)
            elif isinstance(value, pd.DataFrame) and name.endswith("records"):
                if "status" in value:
                    self._status.update(value["status"].astype(str))
            elif isinstance(value, dict) and name.endswith("trace_record"):
                self._status.update([str(value.get("status"))])  # the recorded MLP: a model
            elif isinstance(value, dict) and name.endswith("record") and "status" in value:
                self._evaluations.update([str(value["status"])])

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog):
        log.info(summary_text(self._status, self._figures, self._evaluations, self._seconds))


def summary_text(status: collections.Counter, n_figures: int,
                 evaluations: collections.Counter | None = None,
                 seconds: dict[str, float] | None = None, n_slowest: int = 3) -> str:  # fmt: skip
    """One paragraph: records made and reused, figures recorded, the slowest nodes, where
    to look."""
    trained, reused = status.get("trained", 0), status.get("reused", 0)
    evaluations = evaluations or collections.Counter()
    slowest = sorted((seconds or {}).items(), key=lambda kv: -kv[1])[:n_slowest]
    slow = "; slowest nodes: " + ", ".join(f"{n} {s:.0f} s" for n, s in slowest) if slowest else ""
    return (
        f"ntdyn run summary: {trained} model record(s) trained, {reused} reused from the "
        f"records; {evaluations.get('recorded', 0)} evaluation(s) recorded, "
        f"{evaluations.get('reused', 0)} reused; {n_figures} figure(s) recorded{slow}. "
        f"Figures: data/08_reporting/<pipeline>/figures/; tables: data/07_model_output, "
        f"data/08_reporting; browse with `kedro viz run` and `kedro mlflow ui` (records in "
        f"mlruns/); `kedro ntdyn models --where k=v` queries them."
    )
