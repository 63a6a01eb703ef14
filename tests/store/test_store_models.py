"""Model records on a real sqlite MLflow backend."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ntdyn.store import AmbiguousQueryError, Record, RecordNotFoundError, RecordStore

N_STEPS, N_REPS = 4, 2


def make_history(offset: float = 0.0) -> pd.DataFrame:
    rows = [
        {"step": step, "replicate": rep, "term": term, "value": offset + 10 * rep + step + k}
        for step in range(N_STEPS)
        for rep in range(N_REPS)
        for k, term in enumerate(["total", "reg"])
    ]
    return pd.DataFrame(rows)


def model_params(std, seed) -> dict:
    return {
        "train__pert__std": std,
        "train__seed": seed,
        "model__hidden_size": 16,
        "model__nonlinearity": "tanh",
        "train__schedule": [100, 200],
        "train__pert__kind": None,
        "train__clip": True,
    }


@pytest.fixture(scope="module")
def store(make_store) -> RecordStore:
    return make_store("models")


@pytest.fixture(scope="module")
def models(store: RecordStore, tmp_path_factory) -> dict[str, Record]:
    """Three models with std 1.0 (seeds 0..2) and one with std 2 (an int)."""
    folder = tmp_path_factory.mktemp("model_files")
    out = {}
    for std, seed in [(1.0, 0), (1.0, 1), (1.0, 2), (2, 0)]:
        name = f"m-std{std}-seed{seed}"
        file = folder / f"{name}.eqx"
        file.write_bytes(f"dummy model {name}".encode() + bytes(range(256)))
        out[name] = store.record_model(
            hash=name,
            params=model_params(std, seed),
            history=make_history(offset=seed),
            model_file=file,
            tags={"ntdyn.label": f"std={std} seed={seed}"},
        )
    return out


def test_record_and_find_by_hash(store, models):
    rec = models["m-std1.0-seed1"]
    assert rec.kind == "model" and rec.hash == "m-std1.0-seed1"
    found = store.find_model("m-std1.0-seed1")
    assert found == rec
    assert found.tags["ntdyn.record"] == "model"
    assert found.tags["ntdyn.hash"] == "m-std1.0-seed1"
    assert found.run_name == "model std=1.0 seed=1"
    assert found.params["train__pert__std"] == "1.0"
    assert found.params["train__schedule"] == "[100, 200]"
    assert found.params["train__pert__kind"] == "None"
    assert found.params["train__clip"] == "True"
    assert store.client.get_run(found.run_id).info.status == "FINISHED"
    assert "mlflow.parentRunId" not in found.tags  # no active run -> a plain run
    assert store.find_model("no-such-hash") is None


def test_query_numbers_compare_numerically(store, models):
    by_float = {r.hash for r in store.query_models(train__pert__std=1.0)}
    by_int = {r.hash for r in store.query_models(train__pert__std=1)}
    by_str = {r.hash for r in store.query_models(train__pert__std="1")}
    assert by_float == by_int == by_str == {"m-std1.0-seed0", "m-std1.0-seed1", "m-std1.0-seed2"}
    # the model logged with the int 2 ("2") is found by 2.0
    assert [r.hash for r in store.query_models(train__pert__std=2.0)] == ["m-std2-seed0"]
    assert len(store.query_models()) == 4
    assert len(store.query_models(train__schedule=[100.0, 200], train__clip=True)) == 4
    assert len(store.query_models(train__pert__kind=None, train__seed=0)) == 2
    assert store.query_models(model__nonlinearity="relu") == []
    assert store.query_models(not_a_param=1) == []


def test_find_unique_model(store, models):
    rec = store.find_unique_model(train__pert__std=1, train__seed=2)
    assert rec.hash == "m-std1.0-seed2"


def test_ambiguous_query_lists_differing_params(store, models):
    with pytest.raises(AmbiguousQueryError) as info:
        store.find_unique_model(train__pert__std=1.0)
    msg = str(info.value)
    assert msg == (
        "3 models match {train__pert__std: 1.0}; they differ in: train__seed = 0 | 1 | 2. "
        "Add one of these to the query."
    )
    assert len(info.value.matches) == 3
    assert info.value.differing == {"train__seed": ["0", "1", "2"]}

    with pytest.raises(AmbiguousQueryError, match=r"train__pert__std = 1\.0 \| 2"):
        store.find_unique_model(train__seed=0)


def test_not_found_error_names_param_and_values(store, models):
    with pytest.raises(RecordNotFoundError) as info:
        store.find_unique_model(train__pert__std=3.0)
    msg = str(info.value)
    assert "train__pert__std = 3.0 not found" in msg
    assert "1.0 | 2" in msg
    with pytest.raises(RecordNotFoundError, match="did you mean: train__seed"):
        store.find_unique_model(train__sed=0)


def test_history_metrics(store, models):
    rec = models["m-std1.0-seed2"]
    total_0 = store.client.get_metric_history(rec.run_id, "total/replicate_0")
    assert sorted((m.step, m.value) for m in total_0) == [(s, 2.0 + s) for s in range(N_STEPS)]
    total_1 = store.client.get_metric_history(rec.run_id, "total/replicate_1")
    assert sorted((m.step, m.value) for m in total_1) == [(s, 12.0 + s) for s in range(N_STEPS)]
    mean = store.client.get_metric_history(rec.run_id, "total/mean")
    assert sorted((m.step, m.value) for m in mean) == [(s, 7.0 + s) for s in range(N_STEPS)]
    reg_mean = store.client.get_metric_history(rec.run_id, "reg/mean")
    assert [m.value for m in sorted(reg_mean, key=lambda m: m.step)] == [
        8.0 + s for s in range(N_STEPS)
    ]
    # the history table itself is an artifact
    local = mlflow.artifacts.download_artifacts(
        run_id=rec.run_id, artifact_path="history.parquet", tracking_uri=store.tracking_uri
    )
    pd.testing.assert_frame_equal(pd.read_parquet(local), make_history(offset=2))


def test_download_model_file(store, models, tmp_path):
    rec = models["m-std2-seed0"]
    expected = b"dummy model m-std2-seed0" + bytes(range(256))
    path = store.download_model_file(rec, tmp_path / "dl")
    assert path.name == "m-std2-seed0.eqx"
    assert path.is_relative_to(tmp_path / "dl")
    assert path.read_bytes() == expected
    assert store.download_model_file(rec).read_bytes() == expected


def test_varying_params(store, models):
    records = list(models.values())
    assert store.varying_params(records) == {
        "train__pert__std": ["1.0", "2"],
        "train__seed": ["0", "1", "2"],
    }
    assert store.varying_params(records[:1]) == {}


def test_failed_record_is_not_a_record(store, tmp_path):
    bad_history = pd.DataFrame({"step": [0], "replicate": [0], "term": ["total"], "value": ["x"]})
    file = tmp_path / "m.eqx"
    file.write_bytes(b"x")
    with pytest.raises(ValueError):
        store.record_model(hash="failed", params={"a": 1}, history=bad_history, model_file=file)
    assert store.find_model("failed") is None
    runs = store.client.search_runs([store.experiment_id], "tags.\"ntdyn.hash\" = 'failed'")
    assert [r.info.status for r in runs] == ["FAILED"]
    with pytest.raises(ValueError, match="lacks column"):
        store.record_model(
            hash="x", params={}, history=bad_history.drop(columns="term"), model_file=file
        )


@pytest.fixture
def fluent_tracking_uri(tracking_uri):
    """Point the fluent API at the test database; restore the global state afterwards."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    old_global = tracking_utils._tracking_uri
    old_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield tracking_uri
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(old_global)
        if old_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


def test_child_run_of_active_fluent_run(make_store, fluent_tracking_uri, tmp_path):
    store = make_store("parent")
    file = tmp_path / "m.eqx"
    file.write_bytes(b"model")
    with mlflow.start_run(experiment_id=store.experiment_id) as parent:
        rec = store.record_model(
            hash="child", params={"a": 1}, history=make_history(), model_file=file
        )
        assert mlflow.active_run().info.run_id == parent.info.run_id  # untouched
    assert rec.tags["mlflow.parentRunId"] == parent.info.run_id
    assert rec.parent_run_id == parent.info.run_id
    assert rec.run_name == "model child"
    assert store.find_model("child") == rec
    # the parent run itself is not a record
    assert [r.hash for r in store.query_models()] == ["child"]
    # without a tracking URI the store follows mlflow's current one
    default = RecordStore(experiment=store.experiment)
    assert default.tracking_uri == fluent_tracking_uri
    assert default.experiment_id == store.experiment_id


def test_default_artifact_location_beside_db(tracking_uri, mlflow_root):
    store = RecordStore(tracking_uri, experiment="default location")
    location = store.client.get_experiment(store.experiment_id).artifact_location
    assert location == (mlflow_root / "default_location").as_uri()
    assert Path(mlflow_root / "mlflow.db").exists()
    # opening an existing experiment reuses it
    assert RecordStore(tracking_uri, experiment="default location").experiment_id == (
        store.experiment_id
    )
