"""The end-of-run summary counts what the nodes' record outputs say.

The pipeline tests check the counts of real runs (first and second); this checks the
classification of each output shape the nodes return and the paragraph's wording.
"""

from __future__ import annotations

import logging

import pandas as pd

from ntdyn.hooks import RunSummaryHooks, record_statuses
from ntdyn.store.figures import FIGURE_RECORD_COLUMNS


def _figure_rows(statuses):
    return pd.DataFrame(
        [{"kind": "center_out", "name": str(i), "figure_hash": "h", "run_id": "r",
          "evaluation_hash": "e", "status": s} for i, s in enumerate(statuses)],
        columns=list(FIGURE_RECORD_COLUMNS),
    )  # fmt: skip


def test_each_output_shape_is_counted_as_its_record_kind():
    assert record_statuses(
        "analysis_part1.model_records",
        pd.DataFrame({"hash": ["a", "b"], "status": ["trained", "reused"]}),
    ) == [("model", "trained"), ("model", "reused")]
    spiking = pd.DataFrame({"source": ["flipflop"], "record": ["evaluation"], "status": ["reused"]})
    assert record_statuses("task_vs_data.spiking_records", spiking) == [("evaluation", "reused")]
    figures = _figure_rows(["created", "found", "found"])
    assert record_statuses("analysis_part1.center_out_figure_records", figures) == [
        ("figure", "created"),
        ("figure", "found"),
        ("figure", "found"),
    ]
    assert record_statuses(
        "analysis_part2.fps_reach_record", {"hash": "f", "status": "reused", "kind": "analysis"}
    ) == [("analysis", "reused")]
    assert record_statuses(
        "analysis_part1.plant_perts_record", {"hash": "e", "status": "recorded"}
    ) == [("evaluation", "recorded")]
    assert record_statuses(
        "training_dynamics.trace_record", {"hash": "x", "status": "trained"}
    ) == [("model", "trained")]
    # outputs that are no records
    assert record_statuses("analysis_part1.sweep", pd.DataFrame({"hash": ["a"]})) == []
    assert record_statuses("task_vs_data.comparison", pd.DataFrame({"rate_r2": [0.5]})) == []


def test_summary_paragraph_counts_per_kind_and_starts_from_zero(caplog):
    hooks = RunSummaryHooks()
    hooks.before_pipeline_run(None, None, None)

    class Node:
        name = "train_models"

    outputs = {
        "analysis_part1.model_records": pd.DataFrame({"status": ["trained", "reused", "reused"]}),
        "analysis_part1.center_out_figure_records": _figure_rows(["created", "found"]),
        "analysis_part1.plant_perts_record": {"hash": "e", "status": "recorded"},
        "analysis_part2.fps_reach_record": {"hash": "f", "status": "reused", "kind": "analysis"},
    }
    hooks.before_node_run(Node, None, {}, False, "run")
    hooks.after_node_run(Node, None, {}, outputs, False, "run")
    with caplog.at_level(logging.INFO, logger="ntdyn.hooks"):
        hooks.after_pipeline_run(None, None, None, None)
    text = caplog.text
    assert "1 model record(s) trained, 2 reused" in text
    assert "1 evaluation(s) recorded, 0 reused" in text
    assert "0 population analysis record(s) recorded, 1 reused" in text
    assert "1 figure(s) recorded, 1 found in the records" in text
    assert "XLA compilation(s)" in text
    assert "slowest nodes: train_models 0 s" in text and "kedro mlflow ui" in text
    hooks.before_pipeline_run(None, None, None)  # a new run starts from zero
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ntdyn.hooks"):
        hooks.after_pipeline_run(None, None, None, None)
    assert "0 model record(s) trained, 0 reused" in caplog.text
    assert "0 figure(s) recorded, 0 found" in caplog.text


def test_a_failed_run_still_writes_its_node_times_and_the_error(tmp_path, monkeypatch):
    import json

    from ntdyn.hooks import SUMMARY_FILE_ENV

    path = tmp_path / "summary.json"
    monkeypatch.setenv(SUMMARY_FILE_ENV, str(path))
    hooks = RunSummaryHooks()
    hooks.before_pipeline_run(None, None, None)

    class Node:
        def __init__(self, name):
            self.name = name

    hooks.before_node_run(Node("done"), None, {}, False, "r")
    hooks.after_node_run(Node("done"), None, {}, {}, False, "r")
    hooks.before_node_run(Node("failing"), None, {}, False, "r")
    hooks.on_pipeline_error(ValueError("hessian table is invalid"), None, None, None)
    summary = json.loads(path.read_text())
    assert list(summary["node_seconds"]) == ["done"]
    assert summary["running"] == ["failing"]
    assert summary["error"] == "ValueError: hessian table is invalid"
