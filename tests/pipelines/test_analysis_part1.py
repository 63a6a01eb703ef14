"""analysis_part1 end to end: real Kedro sessions, real MLflow (sqlite in a temp dir)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import TINY_PART1, make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.datasets import EvaluationDataset
from ntdyn.parameters import ParameterError  # noqa: E402
from ntdyn.store import AmbiguousQueryError, RecordStore  # noqa: E402

pytestmark = pytest.mark.pipeline


FIGURE_FILES = 1 + 2 + 2 + 7 + 2  # loss curves, center-out, profiles, 7 measures, feedback


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("part1"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        counts = run_pipeline(root)
    (root / "first_run_counts.json").write_text(json.dumps(counts))
    return root


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def test_models_are_recorded_with_flat_params_hash_history_and_file(first_run):
    store = _store(first_run)
    models = store.query_models()
    assert len(models) == 2
    rec = store.find_unique_model(train__pert__std=1.0)
    assert rec.params["train__pert__std"] == "1.0"
    assert rec.params["model__hidden_size"] == "6"
    records = pd.read_parquet(
        first_run / "data/07_model_output/analysis_part1/model_records.parquet"
    )
    assert set(records["status"]) == {"trained"}
    assert rec.hash in set(records["hash"])
    history = store.client.get_metric_history(rec.run_id, "total/mean")
    assert [m.step for m in history] == [0, 2, 4]  # metric_every = 2 of 6 batches
    assert store.download_model_file(rec).suffix == ".eqx"


def test_training_trace_is_recorded_with_the_model_when_asked(first_run):
    """training_options.record_every = 3 of 6 batches: weights and probe activity at 3 and 6."""
    from ntdyn.hyperparams.tables import validate_table
    from ntdyn.training.ensemble_io import load_trained

    store = _store(first_run)
    rec = store.find_unique_model(train__pert__std=1.0)
    folder = store.download_artifact(rec, "trace", first_run / "trace_check")
    weights = validate_table("trace_weights", pd.read_parquet(folder / "weights.parquet"))
    activity = validate_table("trace_activations", pd.read_parquet(folder / "activations.parquet"))
    scalars = validate_table("trace_controller_scalars",
                             pd.read_parquet(folder / "scalars.parquet"))  # fmt: skip
    layers = validate_table("trace_controller_layers", pd.read_parquet(folder / "layers.parquet"))
    assert sorted(weights["step"].unique()) == sorted(activity["step"].unique()) == [3, 6]
    assert sorted(scalars["step"].unique()) == [3, 6] and "total" in scalars
    assert (scalars["train_loss"] == scalars["total"]).all()
    assert (scalars["test_loss"] > 0).all() and (scalars["grad_norm"] > 0).all()
    assert (scalars["learning_rate"] == float(rec.params["train__learning_rate"])).all()
    # the global gradient norm is the norm of the per-layer norms
    per_layer = layers.groupby(["step", "replicate"])["grad_norm"].apply(
        lambda g: float((g**2).sum() ** 0.5))  # fmt: skip
    np.testing.assert_allclose(scalars.set_index(["step", "replicate"])["grad_norm"],
                               per_layer.loc[scalars.set_index(["step", "replicate"]).index],
                               rtol=1e-5)  # fmt: skip
    assert set(layers["layer"]) == set(weights["layer"])
    # the last snapshot is the trained model itself
    model = load_trained(store.download_model_file(rec, first_run / "trace_check")).model
    last = weights[(weights["step"] == 6) & (weights["layer"] == "readout.weight")
                   & (weights["replicate"] == 1)].sort_values(["unit", "input"])  # fmt: skip
    assert (last["value"].to_numpy() == model.readout.weight[1].ravel()).all()
    assert activity["unit"].nunique() == 6 and set(activity["layer"]) == {"hidden"}


def test_query_that_must_be_unique_lists_the_differing_parameter(first_run):
    with pytest.raises(AmbiguousQueryError, match="train__pert__std"):
        _store(first_run).find_unique_model(model__hidden_size=6)


def test_evaluations_record_their_models_and_measures_are_tabled(first_run):
    store = _store(first_run)
    model_hashes = {r.hash for r in store.query_models()}
    for analysis in ("plant_perts", "feedback_perts"):
        evals = store.query_evaluations(analysis=analysis)
        assert len(evals) == 1
        assert {r.hash for r in store.models_of_evaluation(evals[0])} == model_hashes
        pointer = first_run / f"data/07_model_output/analysis_part1/{analysis}/evaluation.json"
        measures = EvaluationDataset(path=str(pointer), part="measures").load()
        # 2 models x 2 replicates x trials; one selected replicate per model
        assert measures.groupby("hash")["replicate"].nunique().eq(2).all()
        assert measures[measures["selected"]].groupby("hash")["replicate"].nunique().eq(1).all()
        assert "train__pert__std" in measures.columns
    # the arrays are stored once, in the evaluation's record (zarr), read lazily
    pointer = first_run / "data/07_model_output/analysis_part1/plant_perts/evaluation.json"
    states = EvaluationDataset(path=str(pointer), part="arrays").load()
    assert sorted(states) == sorted(model_hashes)
    assert (first_run / "mlruns") in states.folder.parents
    assert states[next(iter(model_hashes))].lazy("trials", "hidden").metadata.dimension_names == (
        "replicate",
        "trial",
        "time",
        "unit",
    )
    assert not list((first_run / "data").rglob("*.npy"))


def test_figures_are_written_and_listed_by_hyperparameters(first_run):
    store = _store(first_run)
    figures = first_run / "data/08_reporting/analysis_part1/figures"
    assert (figures / "loss_curves" / "total.json").exists()
    assert len(list((figures / "center_out").glob("*.json"))) == 2
    found = store.query_figures(kind="center_out", train__pert__std=1.0)
    assert len(found) == 1
    plant_eval = store.query_evaluations(analysis="plant_perts")[0]
    assert found[0].tags["ntdyn.evaluation"] == plant_eval.hash
    kinds = {r.tags["ntdyn.figure_kind"] for r in store.query_figures()}
    assert kinds == {
        "loss_curves", "center_out", "aligned_profiles", "measure_distributions",
        "feedback_responses",
    }  # fmt: skip
    assert "train__pert__std" in store.varying_params(store.query_figures(kind="center_out"))


def test_the_summary_counts_what_the_first_run_recorded(first_run):
    counts = json.loads((first_run / "first_run_counts.json").read_text())
    store = _store(first_run)
    assert counts["model"] == {"trained": 2}
    assert counts["evaluation"] == {"recorded": 2}
    assert counts["analysis"] == {}
    assert counts["figure"] == {"created": FIGURE_FILES}
    assert len(store.query_figures()) == FIGURE_FILES


def _refuse_to_simulate(*args, **kwargs):
    raise AssertionError("a recorded evaluation was simulated again instead of read back")


def test_second_run_reuses_models_and_evaluations(first_run, caplog, monkeypatch):
    store = _store(first_run)
    n_runs_before = len(store.client.search_runs([store.experiment_id], max_results=1000))
    pointer = first_run / "data/07_model_output/analysis_part1/plant_perts/evaluation.json"
    states = EvaluationDataset(path=str(pointer), part="arrays").load()
    hidden_before = {h: states[h].trials("hidden") for h in states}
    monkeypatch.chdir(first_run)
    # the evaluations must come back from their records: simulating is refused
    monkeypatch.setattr("ntdyn.pipelines.evaluation.nodes.evaluate_model", _refuse_to_simulate)
    with caplog.at_level(logging.INFO, logger="ntdyn"):
        counts = run_pipeline(first_run)
    assert counts["model"] == {"reused": 2}
    assert counts["evaluation"] == {"reused": 2}
    assert counts["figure"] == {"found": FIGURE_FILES}
    assert caplog.text.count("reusing evaluation") == 2
    states = EvaluationDataset(path=str(pointer), part="arrays").load()
    for h, before in hidden_before.items():  # the states read back are the same
        np.testing.assert_array_equal(states[h].trials("hidden"), before)
    assert caplog.text.count("cache hit") == 2
    records = pd.read_parquet(
        first_run / "data/07_model_output/analysis_part1/model_records.parquet"
    )
    assert set(records["status"]) == {"reused"}
    assert len(store.query_models()) == 2
    assert len(store.query_evaluations()) == 2
    runs_after = store.client.search_runs([store.experiment_id], max_results=1000)
    # only the new kedro-mlflow parent run was added: no model, evaluation or figure record
    assert len(runs_after) == n_runs_before + 1


def test_a_changed_figure_option_records_only_that_figure_anew(first_run, monkeypatch):
    """Loss curves are drawn from the models; changing loss_smoothing records a new figure,
    and a rerun with nothing changed records nothing new."""
    store = _store(first_run)
    old = store.query_figures(kind="loss_curves")
    assert len(old) == 1
    assert old[0].params["fig__loss_smoothing"] == "10"
    assert set(old[0].tags["ntdyn.sources"].split(",")) == {r.hash for r in store.query_models()}
    params = {"analysis_part1": {**TINY_PART1["analysis_part1"],
                                 "figures": {"loss_smoothing": 3}}}  # fmt: skip
    (first_run / "conf/local/parameters_tiny.yml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(first_run)
    try:
        counts = run_pipeline(first_run)
        assert counts["figure"] == {"created": 1, "found": FIGURE_FILES - 1}
        new = store.query_figures(kind="loss_curves", fig__loss_smoothing=3)
        assert len(new) == 1 and new[0].hash != old[0].hash
        assert len(store.query_figures()) == FIGURE_FILES + 1
        again = run_pipeline(first_run)
        assert again["figure"] == {"found": FIGURE_FILES}
        assert again["model"] == {"reused": 2} and again["evaluation"] == {"reused": 2}
    finally:
        (first_run / "conf/local/parameters_tiny.yml").write_text(yaml.safe_dump(TINY_PART1))


def test_bad_hyperparameters_are_refused_before_training(tmp_path, monkeypatch):
    bad = {"analysis_part1": {**TINY_PART1["analysis_part1"]}}
    bad["analysis_part1"]["training"] = {"spread": {"train__pert__std": [0.0, -1.0]}}
    root = make_project(tmp_path / "bad", bad)
    monkeypatch.chdir(root)
    # refused by the parameter check, before the session's first hook writes anything
    with pytest.raises(ParameterError, match=r"train__pert__std\[1\] = -1\.0: must be a finite"):
        run_pipeline(root)
    assert _store(root).query_models() == []
    assert not (root / "data/06_models/analysis_part1").exists()
