"""Kedro hooks: a short summary at the end of every `kedro run`.

The summary counts what the run recorded, from what the nodes return:

- `*figure_records` tables: one row per figure, `status` created or found;
- other `*records` tables with a `status`: one row per record, of the kind named in a
  `record` column (the spiking data sets: evaluations) or else models (trained / reused);
- `*record` dicts with a `status`: their `kind` (evaluation, analysis), or a model for the
  recorded MLP's `trace_record`; evaluations by default.

It also counts XLA compilations, names the slowest nodes and says where to look next.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from pathlib import Path

import pandas as pd
from kedro.framework.hooks import hook_impl

from ntdyn.compilations import CompilationCounter
from ntdyn.resources import ResourceBudget, configure_compilation_cache, configure_jax_memory
from ntdyn.store.initialise import ensure_experiment, initialise_store, sqlite_path
from ntdyn.store.processes import TAG_PROCESS, abandoned_runs, mark_abandoned, this_process

log = logging.getLogger(__name__)

KINDS = ("model", "evaluation", "analysis", "figure")
SUMMARY_FILE_ENV = "NTDYN_RUN_SUMMARY"  # a path: the run summary is also written there as JSON


def record_statuses(name: str, value) -> list[tuple[str, str]]:
    """(record kind, status) for every record a node output `name` reports."""
    if isinstance(value, pd.DataFrame) and "status" in value:
        if name.endswith("figure_records"):
            return [("figure", str(s)) for s in value["status"]]
        if name.endswith("records"):
            kinds = value["record"] if "record" in value else ["model"] * len(value)
            return [(str(k), str(s)) for k, s in zip(kinds, value["status"], strict=True)]
    if isinstance(value, dict) and name.endswith("record") and "status" in value:
        default = "model" if name.endswith("trace_record") else "evaluation"
        return [(str(value.get("kind", default)), str(value["status"]))]
    return []


class RunSummaryHooks:
    """Counts records made or reused per kind, XLA compilations and node times; logs them
    when the run ends."""

    def __init__(self):
        self.counts: dict[str, collections.Counter[str]] = {}
        self._compilations = CompilationCounter()
        self._started: dict[str, float] = {}
        self._seconds: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        self.counts = {k: collections.Counter() for k in KINDS}
        self._started.clear()
        self._seconds.clear()
        self._compilations.start()

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id):
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id):
        if node is not None and node.name in self._started:
            self._seconds[node.name] = time.perf_counter() - self._started.pop(node.name)
        for name, value in outputs.items():
            for kind, status in record_statuses(name, value):
                self.counts.setdefault(kind, collections.Counter())[status] += 1

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog):
        self._compilations.stop()
        compilations = (self._compilations.count, self._compilations.seconds)
        log.info(summary_text(self.counts, self._seconds, compilations))
        self._write({})

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog):
        self._compilations.stop()
        # a failed run still says how far it got and what each finished node took
        self._write({"error": f"{type(error).__name__}: {error}"[:2000],
                     "running": sorted(self._started)})  # fmt: skip

    def _write(self, extra: dict) -> None:
        path = os.environ.get(SUMMARY_FILE_ENV)
        if path:  # for benchmarks: the same summary, machine-readable
            Path(path).write_text(json.dumps({
                "node_seconds": {k: round(v, 2) for k, v in self._seconds.items()},
                "records": {k: dict(v) for k, v in self.counts.items()},
                "compilations": self._compilations.count,
                "compilation_seconds": round(self._compilations.seconds, 1), **extra,
            }, indent=1))  # fmt: skip


def summary_text(
    counts: dict[str, collections.Counter],
    seconds: dict[str, float] | None = None,
    compilations: tuple[int, float] | None = None,
    n_slowest: int = 3,
) -> str:
    """One paragraph: records made and reused per kind, compilations, the slowest nodes, where
    to look."""

    def n(kind: str, status: str) -> int:
        return counts.get(kind, collections.Counter()).get(status, 0)

    slowest = sorted((seconds or {}).items(), key=lambda kv: -kv[1])[:n_slowest]
    slow = "; slowest nodes: " + ", ".join(f"{k} {s:.0f} s" for k, s in slowest) if slowest else ""
    compiled = ""
    if compilations is not None:
        compiled = f"; {compilations[0]} XLA compilation(s), {compilations[1]:.0f} s"
    return (
        f"ntdyn run summary: {n('model', 'trained')} model record(s) trained, "
        f"{n('model', 'reused')} reused from the records; "
        f"{n('evaluation', 'recorded')} evaluation(s) recorded, {n('evaluation', 'reused')} "
        f"reused; {n('analysis', 'recorded')} population analysis record(s) recorded, "
        f"{n('analysis', 'reused')} reused; {n('figure', 'created')} figure(s) recorded, "
        f"{n('figure', 'found')} found in the records{compiled}{slow}. "
        f"Figures: data/08_reporting/<pipeline>/figures/; tables: data/07_model_output, "
        f"data/08_reporting; browse with `kedro viz run` and `kedro mlflow ui` (records in "
        f"mlruns/); `kedro ntdyn models --where k=v` queries them."
    )


class ResourceHooks:
    """Applies the `resources` budget of conf before anything starts JAX's backend: its GPU
    allocator is capped at `resources.gpu_memory_gb`, without preallocation; compiled
    programs are kept in `resources.compilation_cache`."""

    @hook_impl
    def after_context_created(self, context):
        budget = ResourceBudget.from_conf(context.params.get("resources"))
        applied = configure_jax_memory(budget)
        if applied:
            log.info("JAX memory from resources.gpu_memory_gb = %s: %s", budget.gpu_memory_gb,
                     applied)  # fmt: skip
        folder = configure_compilation_cache(budget, context.project_path)
        if folder:
            log.info("compiled XLA programs are kept in %s (resources.compilation_cache)", folder)


class RunLifecycleHooks:
    """A fresh sqlite store is created once, under a file lock, however many runs start
    together. Runs never stay RUNNING for ever: when a `kedro run` starts, the runs a dead
    process left RUNNING are ended as KILLED and listed; the run itself is tagged with its
    process, so that the next run (or `kedro ntdyn gc`) can tell if it dies."""

    def __init__(self):
        self._tagged: set[str] = set()

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook opens the store
    def after_context_created(self, context):
        try:
            uri = context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"]
        except (KeyError, TypeError):
            return
        if initialise_store(uri):
            log.info("created the record store %s", uri)
        # kedro-mlflow's next hook creates the experiment when it is missing, without
        # guarding against another process doing the same: on a fresh tracking server two
        # runs starting together crashed there. Create it here, as it would, race-safely.
        experiment = (context.config_loader["mlflow"].get("tracking") or {}).get("experiment")
        if experiment and sqlite_path(uri) is None:
            ensure_experiment(uri, experiment.get("name") or "Default",
                              **(experiment.get("create_experiment_kwargs") or {}))  # fmt: skip

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        if "model_store" not in pipeline.datasets():
            return
        store = catalog.load("model_store")
        runs = abandoned_runs(store.client, store.experiment_id)
        mark_abandoned(store.client, runs)
        for run in runs:
            log.warning(
                "run %s (%s) was left RUNNING by %s, which is gone: ended as KILLED",
                run.info.run_id, run.info.run_name, run.data.tags.get(TAG_PROCESS),
            )  # fmt: skip

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id):
        import mlflow

        active = mlflow.active_run()  # kedro-mlflow's run of this `kedro run`
        if active is not None and active.info.run_id not in self._tagged:
            mlflow.MlflowClient().set_tag(active.info.run_id, TAG_PROCESS, this_process())
            self._tagged.add(active.info.run_id)
