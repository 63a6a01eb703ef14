"""The end-of-run summary counts what the nodes' record tables say."""

from __future__ import annotations

import logging

import pandas as pd

from ntdyn.hooks import RunSummaryHooks


def test_summary_counts_trained_and_reused_models_and_figures(caplog):
    hooks = RunSummaryHooks()
    hooks.before_pipeline_run(None, None, None)
    outputs = {
        "analysis_part1.model_records": pd.DataFrame({"status": ["trained", "reused", "reused"]}),
        "task_vs_data.data_model_records": pd.DataFrame({"status": ["trained"]}),
        "task_vs_data.spiking_records": pd.DataFrame({"n_trials": [3]}),  # no status: ignored
        "analysis_part1.center_out_figure_records": pd.DataFrame({"name": ["a", "b"]}),
        "training_dynamics.trace_record": {"hash": "x", "status": "reused"},
        "analysis_part1.plant_perts_record": {"hash": "e", "status": "recorded"},
        "analysis_part2.fps_reach_record": {"hash": "f", "status": "reused"},
        "task_vs_data.comparison_record": {"hash": "g", "status": "recorded"},
    }

    class Node:
        name = "train_models"

    hooks.before_node_run(Node, None, {}, False, "run")
    hooks.after_node_run(Node, None, {}, outputs, False, "run")
    with caplog.at_level(logging.INFO, logger="ntdyn.hooks"):
        hooks.after_pipeline_run(None, None, None, None)
    text = caplog.text
    assert "2 model record(s) trained, 3 reused" in text
    assert "2 evaluation(s) recorded, 1 reused" in text
    assert "slowest nodes: train_models 0 s" in text
    assert "2 figure(s) recorded" in text and "kedro mlflow ui" in text
    hooks.before_pipeline_run(None, None, None)  # a new run starts from zero
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ntdyn.hooks"):
        hooks.after_pipeline_run(None, None, None, None)
    assert "0 model record(s) trained, 0 reused" in caplog.text
