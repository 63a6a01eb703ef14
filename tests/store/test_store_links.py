"""Evaluation and figure records, and their links to models, on a real sqlite MLflow backend."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.store import Record, RecordStore, figure_hash


@pytest.fixture(scope="module")
def store(make_store) -> RecordStore:
    return make_store("links")


@pytest.fixture(scope="module")
def models(store: RecordStore, tmp_path_factory) -> list[Record]:
    folder = tmp_path_factory.mktemp("link_models")
    history = pd.DataFrame(
        {"step": [0, 1], "replicate": [0, 0], "term": ["total", "total"], "value": [2.0, 1.0]}
    )
    out = []
    for seed in range(3):
        file = folder / f"m{seed}.eqx"
        file.write_bytes(b"m")
        out.append(
            store.record_model(
                hash=f"model{seed}",
                params={"train__seed": seed},
                history=history,
                model_file=file,
            )
        )
    return out


@pytest.fixture(scope="module")
def evaluations(store: RecordStore, models, tmp_path_factory) -> dict[str, Record]:
    folder = tmp_path_factory.mktemp("eval_artifacts")
    table = folder / "table.csv"
    table.write_text("a,b\n1,2\n")
    sub = folder / "arrays"
    sub.mkdir()
    (sub / "x.txt").write_text("x")
    first = store.record_evaluation(
        hash="eval-a",
        analysis="fixed_points",
        params={"analysis__fp__n_inits": 64, "analysis__fp__tol": 1e-6},
        model_hashes=["model1", "model0"],
        metrics={"n_fixed_points": 3, "r^2 (test)": 0.9},
        artifacts=[table, sub],
    )
    second = store.record_evaluation(
        hash="eval-b",
        analysis="perturbation",
        params={"analysis__pert__std": 0.5},
        model_hashes=["model1"],
        metrics={"loss": 0.25},
    )
    return {"eval-a": first, "eval-b": second}


def test_evaluation_record(store, evaluations):
    ev = store.find_evaluation("eval-a")
    assert ev == evaluations["eval-a"]
    assert ev.kind == "evaluation"
    assert ev.tags["ntdyn.analysis"] == "fixed_points"
    assert ev.tags["ntdyn.models"] == "model0,model1"
    assert ev.tags["ntdyn.model.model0"] == ev.tags["ntdyn.model.model1"] == "1"
    assert ev.params == {"analysis__fp__n_inits": "64", "analysis__fp__tol": "1e-06"}
    metrics = store.client.get_run(ev.run_id).data.metrics
    assert metrics == {"n_fixed_points": 3.0, "r_2 _test_": 0.9}
    artifacts = {f.path for f in store.client.list_artifacts(ev.run_id)}
    assert artifacts == {"table.csv", "arrays"}
    assert store.find_evaluation("model0") is None  # kinds don't mix


def test_evaluation_links_both_ways(store, models, evaluations):
    assert [e.hash for e in store.evaluations_of_model("model1")] == ["eval-a", "eval-b"]
    assert [e.hash for e in store.evaluations_of_model("model0")] == ["eval-a"]
    assert store.evaluations_of_model("model2") == []
    assert [m.hash for m in store.models_of_evaluation(evaluations["eval-a"])] == [
        "model0",
        "model1",
    ]
    assert [m.hash for m in store.models_of_evaluation(evaluations["eval-b"])] == ["model1"]


def test_query_evaluations(store, evaluations):
    assert [e.hash for e in store.query_evaluations(analysis="perturbation")] == ["eval-b"]
    assert [e.hash for e in store.query_evaluations(analysis__fp__tol=0.000001)] == ["eval-a"]
    assert len(store.query_evaluations()) == 2


def tiny_figure(y) -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1, 2], y=y))


def test_figures(store, evaluations):
    loss_a = store.record_figure(
        kind="loss_curves",
        figure=tiny_figure([3, 2, 1]),
        params={"plot__log_y": True, "train__seed": 0},
        evaluation_hash="eval-a",
    )
    loss_b = store.record_figure(
        kind="loss_curves",
        figure=tiny_figure([3, 2, 2]),
        params={"plot__log_y": True, "train__seed": 1},
        evaluation_hash="eval-a",
    )
    traj = store.record_figure(
        kind="trajectories",
        figure=tiny_figure([0, 1, 0]),
        params={"plot__log_y": False},
        evaluation_hash=None,
    )
    assert loss_a.kind == "figure"
    assert loss_a.hash == figure_hash(
        "loss_curves", {"train__seed": 0.0, "plot__log_y": True}, "eval-a"
    )
    assert loss_a.tags["ntdyn.figure_kind"] == "loss_curves"
    assert loss_a.tags["ntdyn.evaluation"] == "eval-a"
    assert "ntdyn.evaluation" not in traj.tags
    files = {f.path for f in store.client.list_artifacts(loss_a.run_id, "figure")}
    assert files == {"figure/figure.json", "figure/figure.html"}

    assert [f.hash for f in store.query_figures("loss_curves")] == [loss_a.hash, loss_b.hash]
    assert [f.hash for f in store.query_figures(train__seed=1.0)] == [loss_b.hash]
    assert [f.hash for f in store.query_figures(plot__log_y=False)] == [traj.hash]
    assert len(store.query_figures()) == 3
    assert store.query_figures("loss_curves", plot__log_y=False) == []
    assert store.varying_params([loss_a, loss_b]) == {"train__seed": ["0", "1"]}

    # the same figure again: the existing record, unchanged (new figure content is ignored)
    again = store.record_figure(
        kind="loss_curves",
        figure=tiny_figure([9, 9, 9]),
        params={"train__seed": 0.0, "plot__log_y": True},
        evaluation_hash="eval-a",
    )
    assert again == loss_a
    assert len(store.query_figures("loss_curves")) == 2
    assert list(store.load_figure(loss_a).data[0].y) == [3, 2, 1]
