"""task_vs_data end to end: real Kedro sessions, real MLflow (sqlite in a temp dir)."""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import TINY_TVD, make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.hyperparams.tables import validate_table  # noqa: E402
from ntdyn.store import RecordStore  # noqa: E402

pytestmark = pytest.mark.pipeline

PIPELINE = "task_vs_data"
SOURCES = ("flipflop", "reaching")
DATA_MODELS = ("sae_gru", "lfads", "sae_node", "latent_evolution")
COMPARISON = "data/08_reporting/task_vs_data/comparison.parquet"
SOURCE_RECORDS = "data/07_model_output/task_vs_data/source_records.parquet"
DATA_MODEL_RECORDS = "data/07_model_output/task_vs_data/data_model_records.parquet"
SPIKING_RECORDS = "data/03_primary/task_vs_data/spiking_records.parquet"
ROLLOUT_ERROR = "data/08_reporting/task_vs_data/rollout_error.parquet"
FINITE_METRICS = (
    "rate_r2", "co_bps", "state_r2_true_to_inferred", "state_r2_inferred_to_true",
    "cycle_consistency_r2", "round_trip_r2", "dsa_angular", "dsa_wasserstein",
)  # fmt: skip
INPUT_METRICS = ("input_r2_true_to_inferred", "input_r2_inferred_to_true")
PAIR_FIGURE_KINDS = ("tvd_latents", "tvd_rasters", "tvd_fixed_points")
SUMMARY_FIGURE_KINDS = ("tvd_rollout_error", "tvd_metric_bars")
N_MODELS = len(SOURCES) + len(SOURCES) * len(DATA_MODELS)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("tvd"), TINY_TVD)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_pipeline(root, PIPELINE)
    return root


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def _hashes(root: Path, table: str) -> list[str]:
    return list(pd.read_parquet(root / table)["hash"])


def test_comparison_has_one_valid_row_per_source_and_data_model(first_run):
    table = pd.read_parquet(first_run / COMPARISON)
    assert len(table) == len(SOURCES) * len(DATA_MODELS)
    pairs = set(zip(table["source"], table["model"], strict=True))
    assert pairs == {(s, m) for s in SOURCES for m in DATA_MODELS}
    assert (table["model"] == table["model_kind"]).all()
    for metric in FINITE_METRICS:
        assert np.isfinite(table[metric].to_numpy(float)).all(), metric
    # input R^2 for the one model that infers inputs (LFADS's controller), NaN for the others
    infers_inputs = (table["model_kind"] == "lfads").to_numpy()
    for metric in INPUT_METRICS:
        values = table[metric].to_numpy(float)
        assert np.isfinite(values[infers_inputs]).all(), metric
        assert np.isnan(values[~infers_inputs]).all(), metric
    validate_table("comparison", table)
    # the tiny horizons fit the shortest source (reaching, 12 steps): no NaN roll-out error
    rollout = pd.read_parquet(first_run / ROLLOUT_ERROR)
    assert len(rollout) == len(table) * 3
    assert set(rollout["horizon"]) == {1, 2, 4}
    assert np.isfinite(rollout["error"].to_numpy(float)).all()


def test_sources_data_models_data_sets_comparison_and_figures_are_records(first_run):
    store = _store(first_run)
    source_hashes = _hashes(first_run, SOURCE_RECORDS)
    model_records = pd.read_parquet(first_run / DATA_MODEL_RECORDS)
    assert len(source_hashes) == len(SOURCES)
    assert len(model_records) == len(SOURCES) * len(DATA_MODELS)
    for h in source_hashes:
        assert store.find_model(h) is not None, h
    for row in model_records.itertuples():
        rec = store.find_model(row.hash)
        assert rec is not None, row.pair
        assert rec.params["data__dataset_hash"] == row.dataset_hash
        top = {a.path: a.is_dir for a in store.client.list_artifacts(rec.run_id)}
        assert top.get("checkpoints") is True, (row.pair, top)
        # checkpoint_every 2 of 4 epochs
        assert len(store.client.list_artifacts(rec.run_id, "checkpoints")) >= 2
    assert len(store.query_models()) == N_MODELS

    # each spiking data set is an evaluation linked to its source model
    spiking = pd.read_parquet(first_run / SPIKING_RECORDS)
    datasets = {r.hash for r in store.query_evaluations(analysis="spiking_dataset")}
    assert datasets == set(spiking["dataset_hash"])
    assert set(model_records["dataset_hash"]) == datasets
    for row in spiking.itertuples():
        linked = {r.hash for r in store.evaluations_of_model(row.source_hash)}
        assert row.dataset_hash in linked & datasets

    (comparison,) = store.query_evaluations(analysis="task_vs_data")
    linked = {r.hash for r in store.models_of_evaluation(comparison)}
    assert linked == set(source_hashes) | set(model_records["hash"])
    assert len(linked) == N_MODELS

    for kind in PAIR_FIGURE_KINDS:
        for model in DATA_MODELS:
            found = store.query_figures(kind=kind, model=model)
            assert len(found) == len(SOURCES), (kind, model)
            assert {f.tags["ntdyn.evaluation"] for f in found} == {comparison.hash}
        assert len(store.query_figures(kind=kind)) == len(model_records)
    lfads_flipflop = model_records.set_index("pair").loc["flipflop__lfads", "hash"]
    (fig,) = store.query_figures(kind="tvd_latents", source="flipflop", model="lfads")
    assert fig.params["model_hash"] == lfads_flipflop
    for kind in SUMMARY_FIGURE_KINDS:
        assert len(store.query_figures(kind=kind)) == 1, kind
    kinds = {r.tags["ntdyn.figure_kind"] for r in store.query_figures()}
    assert kinds == set(PAIR_FIGURE_KINDS) | set(SUMMARY_FIGURE_KINDS)


def test_second_run_reuses_every_model_and_reproduces_the_comparison(
    first_run, caplog, monkeypatch
):
    store = _store(first_run)
    table_before = pd.read_parquet(first_run / COMPARISON)
    n_models_before = len(store.query_models())
    n_runs_before = len(store.client.search_runs([store.experiment_id], max_results=1000))
    monkeypatch.chdir(first_run)
    with caplog.at_level(logging.INFO, logger="ntdyn"):
        run_pipeline(first_run, PIPELINE)
    assert caplog.text.count("cache hit: source") == len(SOURCES)
    assert caplog.text.count("cache hit: data model") == len(SOURCES) * len(DATA_MODELS)
    assert set(pd.read_parquet(first_run / SOURCE_RECORDS)["status"]) == {"reused"}
    assert set(pd.read_parquet(first_run / DATA_MODEL_RECORDS)["status"]) == {"reused"}
    assert len(store.query_models()) == n_models_before == N_MODELS
    runs_after = store.client.search_runs([store.experiment_id], max_results=1000)
    # only the new kedro-mlflow parent run: no model, data set, comparison or figure record
    assert len(runs_after) == n_runs_before + 1
    pd.testing.assert_frame_equal(pd.read_parquet(first_run / COMPARISON), table_before)


def _with(params: dict, model: str, block: str, key: str, value) -> dict:
    bad = copy.deepcopy(params)
    bad["task_vs_data"]["data_models"][model][block][key] = value
    return bad


@pytest.mark.parametrize(
    ("model", "block", "key", "value", "match"),
    [
        # refused by the parameter check, before the session does anything
        ("sae_gru", "model", "kind", "lstm", r"data_models\.sae_gru\.model\.kind = 'lstm'"),
        ("latent_evolution", "train", "acquisition", "sometimes",
         r"data_models\.latent_evolution\.train\.acquisition = 'sometimes'"),
    ],
)  # fmt: skip
def test_bad_data_model_options_are_refused_before_any_compute(
    tmp_path, monkeypatch, model, block, key, value, match
):
    root = make_project(tmp_path / "bad", _with(TINY_TVD, model, block, key, value))
    monkeypatch.chdir(root)
    with pytest.raises(ValueError, match=match):
        run_pipeline(root, PIPELINE)
    store = _store(root)
    assert store.query_models() == []
    assert store.query_evaluations() == []
    assert not (root / "data/06_models/task_vs_data").exists()
