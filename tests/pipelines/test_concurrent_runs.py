"""Simultaneous `kedro run`s in one project and one store stay apart (issue 14, point 5).

Three `kedro run --pipeline training` with different seeds start together on a fresh store,
then a fourth with the first one's parameters: each record carries its own run's seed (its
weights differ), no hash has two FINISHED records, the fourth trains nothing, nothing crashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pandas as pd
import pytest
from kedro_project import TINY_PART1, make_project, quick_compile_env, tracking_uri

from ntdyn.store import RecordStore
from ntdyn.training.ensemble_io import load_trained

pytestmark = pytest.mark.pipeline

KEDRO = str(Path(sys.executable).with_name("kedro"))
SPREAD = [0.0, 1.0]
PARAMS = {
    "analysis_part1": {
        **TINY_PART1["analysis_part1"],
        "training_options": {"progress": False, "metric_every": 2, "record_every": 0},
    }
}


def _start(root: Path, seed: int) -> subprocess.Popen:
    env = dict(os.environ, NTDYN_RUN_SUMMARY=str(root / f"summary_{seed}_{time.time_ns()}.json"))
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [KEDRO, "run", "--pipeline", "training", "--namespaces", "analysis_part1",
               "--params", f"analysis_part1.training.hyperparams.train.seed={seed}"]  # fmt: skip
    return subprocess.Popen(command, cwd=root, env=quick_compile_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _finish(runs: list[subprocess.Popen]) -> list[str]:
    logs = [p.communicate(timeout=900)[0] for p in runs]
    # a failed run's first traceback and its end: what failed, not only the teardown
    failed = [(log[log.find("Traceback") :][:6000], log[-3000:])
              for p, log in zip(runs, logs, strict=True) if p.returncode != 0]  # fmt: skip
    assert not failed, failed
    return logs


def _model_runs(store: RecordStore) -> pd.DataFrame:
    runs = store.client.search_runs([store.experiment_id], "tags.\"ntdyn.record\" = 'model'",
                                    max_results=1000)  # fmt: skip
    return pd.DataFrame([{"hash": r.data.tags["ntdyn.hash"], "status": r.info.status,
                          "seed": r.data.params["train__seed"],
                          "std": r.data.params["train__pert__std"], "run_id": r.info.run_id}
                         for r in runs])  # fmt: skip


def _weights(store: RecordStore, run_id: str) -> list[np.ndarray]:
    model = load_trained(store.download_model_file(store.get_record(run_id))).model
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def test_three_simultaneous_runs_then_a_fourth_stay_apart(tmp_path):
    root = make_project(tmp_path / "project", local_params=PARAMS)
    started = time.monotonic()
    logs = _finish([_start(root, seed) for seed in (1, 2, 3)])  # on a fresh store
    concurrent_s = time.monotonic() - started

    store = RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")
    models = _model_runs(store)
    assert (models["status"] == "FINISHED").all() and not models["hash"].duplicated().any()
    assert sorted(models["seed"]) == ["1", "1", "2", "2", "3", "3"]  # each run its own seed
    for std, group in models.groupby("std"):  # same std, three seeds: three different models
        weights = [_weights(store, run_id) for run_id in group["run_id"]]
        for a, b in [(0, 1), (0, 2), (1, 2)]:
            pairs = zip(weights[a], weights[b], strict=True)
            assert not all(np.array_equal(x, y) for x, y in pairs), std
    summaries = [json.loads(p.read_text()) for p in sorted(root.glob("summary_*.json"))]
    assert [s["records"]["model"] for s in summaries] == [{"trained": 2}] * 3

    # what is published is one run's outputs, whole: the sweep and the records agree
    sweep = pd.read_parquet(root / "data/05_model_input/analysis_part1/sweep.parquet")
    records = pd.read_parquet(root / "data/07_model_output/analysis_part1/model_records.parquet")
    assert sweep["train__seed"].nunique() == 1 and set(sweep["hash"]) == set(records["hash"])
    published = {p.stem for p in (root / "data/06_models/analysis_part1").glob("*.eqx")}
    assert published == set(sweep["hash"])
    assert [p.name for p in (root / "data/runs").iterdir()] == [".publish.lock"]

    started = time.monotonic()
    [log] = _finish([_start(root, 1)])  # the first run's parameters again
    fourth_s = time.monotonic() - started
    assert json.loads(max(root.glob("summary_1_*.json")).read_text())["records"]["model"] == {
        "reused": 2
    }
    after = _model_runs(store)
    assert len(after) == 6 and set(after["run_id"]) == set(models["run_id"])
    assert not store.client.search_runs([store.experiment_id], "attributes.status = 'RUNNING'")
    assert "Traceback" not in "".join(logs) + log
    print(f"three concurrent runs: {concurrent_s:.0f} s; the fourth: {fourth_s:.0f} s")
