"""training_dynamics end to end: real Kedro sessions, real MLflow (sqlite in a temp dir)."""

from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import TINY_TD, make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.hyperparams.tables import validate_table  # noqa: E402
from ntdyn.store import RecordStore  # noqa: E402

pytestmark = pytest.mark.pipeline

PIPELINE = "training_dynamics"
TRACE_DIR = Path("data/07_model_output/training_dynamics")
REPORT_DIR = Path("data/08_reporting/training_dynamics")
TRACE_TABLES = ("scalars", "layers", "weights", "activations")
# analysis name -> its tables (file stems under REPORT_DIR)
ANALYSIS_TABLES = {
    "pca": ("pca_scores", "pca_variance"),
    "psd": ("psd_spectra",),
    "tsne": ("tsne_units",),
    "correlation": ("correlation_pairs",),
    "ccm": ("ccm_skill",),
    "ar": ("ar_forecast",),
    "states": ("states_steps",),
}
FIGURE_KINDS = (
    "td_learning_curves", "td_pca", "td_psd", "td_tsne", "td_correlation", "td_ccm", "td_ar",
    "td_states",
)  # fmt: skip
N_RECORDS = 400 // 10
HIDDEN = (8, 6)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("td"), TINY_TD)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_pipeline(root, PIPELINE)
    return root


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def _trace_record(root: Path) -> dict:
    return json.loads((root / TRACE_DIR / "trace_record.json").read_text())


def _analysis_tables(root: Path) -> dict[str, pd.DataFrame]:
    return {
        stem: pd.read_parquet(root / REPORT_DIR / f"{stem}.parquet")
        for stems in ANALYSIS_TABLES.values()
        for stem in stems
    }


def test_trace_tables_are_written_and_valid(first_run):
    for name in TRACE_TABLES:
        path = first_run / TRACE_DIR / f"trace_{name}.parquet"
        assert path.is_file(), path
        validate_table(f"trace_{name}", pd.read_parquet(path))
    scalars = pd.read_parquet(first_run / TRACE_DIR / "trace_scalars.parquet")
    assert list(scalars["step"]) == list(range(10, 401, 10))
    weights = pd.read_parquet(first_run / TRACE_DIR / "trace_weights.parquet")
    n_params = (64 + 1) * 8 + (8 + 1) * 6 + (6 + 1) * 10
    assert len(weights) == N_RECORDS * n_params
    activations = pd.read_parquet(first_run / TRACE_DIR / "trace_activations.parquet")
    assert len(activations) == N_RECORDS * 8 * (8 + 6 + 10)
    assert set(activations["layer"]) == {"hidden_1", "hidden_2", "output"}
    assert _trace_record(first_run)["status"] == "trained"


def test_analysis_tables_are_named_after_their_analysis(first_run):
    for analysis, stems in ANALYSIS_TABLES.items():
        for stem in stems:
            assert stem.startswith(f"{analysis}_"), stem
            assert (first_run / REPORT_DIR / f"{stem}.parquet").is_file(), stem
    t = _analysis_tables(first_run)
    assert len(t["pca_variance"]) == 4
    assert t["pca_variance"]["explained_variance_ratio"].is_monotonic_decreasing
    assert 0 < t["pca_variance"]["explained_variance_ratio"].sum() <= 1 + 1e-9
    assert len(t["pca_scores"]) == N_RECORDS * 4
    assert t["psd_spectra"]["component"].nunique() == 3
    assert len(t["tsne_units"]) == sum(HIDDEN) + 10
    assert np.isfinite(t["tsne_units"][["x", "y"]].to_numpy()).all()
    corr = t["correlation_pairs"]
    assert set(corr["layer"]) == {"hidden_2", "output"}
    assert corr.groupby("layer")["strongest"].sum().max() <= 5
    assert corr["strongest"].sum() > 0
    assert t["ccm_skill"]["pair"].nunique() == 3  # the base file's pairs
    assert len(t["ar_forecast"]) == N_RECORDS
    assert len(t["states_steps"]) == N_RECORDS


def test_model_record_has_step_metrics_and_the_trace_artifact(first_run):
    from mlflow.tracking import MlflowClient

    store = _store(first_run)
    trace = _trace_record(first_run)
    rec = store.find_model(trace["hash"])
    assert rec is not None
    assert rec.run_id == trace["run_id"]
    assert rec.params["train__n_steps"] == "400"
    assert rec.params["data__n_features"] == "64"
    client = MlflowClient(tracking_uri(first_run))
    scalars = pd.read_parquet(first_run / TRACE_DIR / "trace_scalars.parquet")
    for term in ("test_accuracy", "train_loss", "weight_density"):
        history = client.get_metric_history(rec.run_id, f"{term}/replicate_0")
        assert sorted(m.step for m in history) == list(range(10, 401, 10)), term
        by_step = {m.step: m.value for m in history}
        expected = dict(zip(scalars["step"], scalars[term], strict=True))
        assert by_step == pytest.approx(expected), term
    top = {a.path: a.is_dir for a in client.list_artifacts(rec.run_id)}
    assert top.get("trace") is True, top
    files = {Path(a.path).name for a in client.list_artifacts(rec.run_id, "trace")}
    assert files == {f"{name}.parquet" for name in TRACE_TABLES}
    assert len(store.query_models()) == 1


def test_analyses_record_links_the_model_and_figures_are_queryable(first_run):
    store = _store(first_run)
    model_hash = _trace_record(first_run)["hash"]
    (evaluation,) = store.query_evaluations(analysis="training_dynamics")
    assert [r.hash for r in store.evaluations_of_model(model_hash)] == [evaluation.hash]
    assert [r.hash for r in store.models_of_evaluation(evaluation)] == [model_hash]
    metrics = store.client.get_run(evaluation.run_id).data.metrics
    for key in ("pca.evr_pc1", "pca.evr_pc4", "ar.rmse", "ar.naive_rmse", "states.n_states"):
        assert key in metrics, (key, sorted(metrics))
    assert 0 < metrics["pca.evr_pc1"] <= 1
    assert not any(k.startswith("pca.evr_pc5") for k in metrics)  # 4 components
    assert any(k.startswith("ccm.") for k in metrics)
    recorded = json.loads((first_run / REPORT_DIR / "analyses_record.json").read_text())
    assert recorded["hash"] == evaluation.hash
    for kind in FIGURE_KINDS:
        analysis = kind.removeprefix("td_")
        found = store.query_figures(kind=kind, analysis=analysis)
        assert len(found) == 1, kind
        assert found[0].tags["ntdyn.evaluation"] == evaluation.hash
        assert len(store.query_figures(kind=kind)) == 1, kind
    assert store.query_figures(kind="td_ccm", analysis="pca") == []
    kinds = {r.tags["ntdyn.figure_kind"] for r in store.query_figures()}
    assert kinds == set(FIGURE_KINDS)


def test_second_run_reuses_the_trace_and_reproduces_the_analyses(first_run, caplog, monkeypatch):
    store = _store(first_run)
    tables_before = _analysis_tables(first_run)
    record_before = _trace_record(first_run)
    n_runs_before = len(store.client.search_runs([store.experiment_id], max_results=1000))
    monkeypatch.chdir(first_run)
    with caplog.at_level(logging.INFO, logger="ntdyn"):
        run_pipeline(first_run, PIPELINE)
    assert caplog.text.count("cache hit: recorded training") == 1
    record_after = _trace_record(first_run)
    assert record_after["status"] == "reused"
    assert (record_after["hash"], record_after["run_id"]) == (
        record_before["hash"], record_before["run_id"],
    )  # fmt: skip
    assert len(store.query_models()) == 1
    assert len(store.query_evaluations()) == 1
    assert len(store.query_figures()) == len(FIGURE_KINDS)
    runs_after = store.client.search_runs([store.experiment_id], max_results=1000)
    # only the new kedro-mlflow parent run: no model, evaluation or figure record
    assert len(runs_after) == n_runs_before + 1
    for stem, table in _analysis_tables(first_run).items():
        pd.testing.assert_frame_equal(table, tables_before[stem], obj=stem)


def _with(block: str, key: str, value) -> dict:
    bad = copy.deepcopy(TINY_TD)
    bad["training_dynamics"]["hyperparams"].setdefault(block, {})[key] = value
    return bad


@pytest.mark.parametrize(
    ("block", "key", "value", "match"),
    [
        ("train", "record_every", 7,
         r"train__n_steps = 400: must be a multiple of train__record_every = 7"),
        # refused by the parameter check, before the session does anything
        ("data", "name", "cifar", r"training_dynamics\.hyperparams\.data\.name = 'cifar'"),
        ("train", "schedule", "linear",
         r"training_dynamics\.hyperparams\.train\.schedule = 'linear'"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_before_any_record(tmp_path, monkeypatch, block, key, value, match):
    root = make_project(tmp_path / "bad", _with(block, key, value))
    monkeypatch.chdir(root)
    with pytest.raises(ValueError, match=match):
        run_pipeline(root, PIPELINE)
    store = _store(root)
    assert store.query_models() == []
    assert store.query_evaluations() == []
    assert store.query_figures() == []
    assert not (root / TRACE_DIR).exists()
