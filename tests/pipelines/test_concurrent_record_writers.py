"""The training_dynamics and task_vs_data record writers compute each hash once, however many
runs need it at the same time (issue 14, point 5).

Two `kedro run --pipeline training_dynamics` start together on a fresh store: one trains and
records the MLP, its analyses and figures; the other waits for (or finds) them and reuses them;
no hash has two FINISHED records. task_vs_data's comparison writer is raced by processes
released together: one records, the others reuse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from kedro_project import TINY_TD, make_project, quick_compile_env, tracking_uri
from mlflow.entities import ViewType

from ntdyn.store import RecordStore
from ntdyn.store.claims import RECORDED, REUSED
from ntdyn.store.records import EVALUATION, MODEL

pytestmark = pytest.mark.pipeline

KEDRO = str(Path(sys.executable).with_name("kedro"))


def _finished_records(store: RecordStore) -> pd.DataFrame:
    runs = store.client.search_runs(
        [store.experiment_id], "attributes.status = 'FINISHED'",
        run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
    )  # fmt: skip
    return pd.DataFrame([{"record": r.data.tags["ntdyn.record"], "hash": r.data.tags["ntdyn.hash"]}
                         for r in runs if "ntdyn.record" in r.data.tags])  # fmt: skip


def _start_td(root: Path, i: int) -> subprocess.Popen:
    env = dict(os.environ, NTDYN_RUN_SUMMARY=str(root / f"summary_{i}.json"))
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [KEDRO, "run", "--pipeline", "training_dynamics"]
    return subprocess.Popen(command, cwd=root, env=quick_compile_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_two_simultaneous_training_dynamics_runs_record_each_hash_once(tmp_path):
    root = make_project(tmp_path / "project", TINY_TD)
    started = time.monotonic()
    runs = [_start_td(root, i) for i in range(2)]  # on a fresh store
    logs = [p.communicate(timeout=900)[0] for p in runs]
    elapsed = time.monotonic() - started
    assert all(p.returncode == 0 for p in runs), [log[-4000:] for log in logs]
    assert "Traceback" not in "".join(logs)

    store = RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")
    records = _finished_records(store)
    assert not records["hash"].duplicated().any(), records[records["hash"].duplicated(keep=False)]
    assert records["record"].value_counts().to_dict() == {
        "figure": 8,
        "asset": 1,
        MODEL: 1,
        EVALUATION: 1,  # the asset: plotly.js
    }
    assert not store.client.search_runs([store.experiment_id], "attributes.status = 'RUNNING'")

    # one run trained the MLP; the other waited for its record (or found it) and reused it
    summaries = [json.loads((root / f"summary_{i}.json").read_text()) for i in range(2)]
    models = sorted(json.dumps(s["records"]["model"]) for s in summaries)
    assert models == ['{"reused": 1}', '{"trained": 1}'], summaries
    reuser = next(i for i, s in enumerate(summaries) if s["records"]["model"] == {"reused": 1})
    assert "cache hit: recorded training" in logs[reuser]
    assert "cache hit: recorded training" not in logs[1 - reuser]
    waited = "waiting for model recorded training" in logs[reuser]
    print(f"two concurrent training_dynamics runs: {elapsed:.0f} s; the reuser waited: {waited}")


# Waits for the go file, then records the comparison (task_vs_data's writer) and says how.
COMPARER = """
import pathlib, sys, time
import pandas as pd
from ntdyn.pipelines.task_vs_data.nodes import record_comparison
from ntdyn.store import RecordStore
from ntdyn.store.claims import ClaimPolicy
store = RecordStore(tracking_uri=sys.argv[1], experiment="ntdyn",
                    claim_policy=ClaimPolicy(poll_s=0.2))
table, rollout = pd.read_parquet(sys.argv[2]), pd.read_parquet(sys.argv[3])
go = pathlib.Path(sys.argv[4])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
out = record_comparison(table, rollout, {"n_candidates": 16, "seed": 0}, store)
print(out["status"], out["run_id"], flush=True)
"""


def test_processes_racing_to_record_one_comparison_record_it_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = RecordStore(tracking_uri=uri, experiment="ntdyn")  # the store exists before the race
    table = pd.DataFrame({"source": ["flipflop"], "source_hash": ["a" * 16], "model": ["lfads"],
                          "model_hash": ["b" * 16], "rate_r2": [0.5]})  # fmt: skip
    rollout = pd.DataFrame({"source": ["flipflop"], "model": ["lfads"], "horizon": [1],
                            "error": [0.1]})  # fmt: skip
    table.to_parquet(tmp_path / "table.parquet")
    rollout.to_parquet(tmp_path / "rollout.parquet")
    go = tmp_path / "go"
    args = [uri, str(tmp_path / "table.parquet"), str(tmp_path / "rollout.parquet"), str(go)]
    racers = [subprocess.Popen([sys.executable, "-c", COMPARER, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(3)]  # fmt: skip
    for p in racers:  # all imported and waiting: released together
        assert p.stdout.readline().strip() == "ready", p.stderr.read()[-3000:]
    go.touch()
    results = [p.communicate(timeout=300) for p in racers]
    assert all(p.returncode == 0 for p in racers), [err[-3000:] for _, err in results]
    said = [out.split() for out, _ in results]
    assert sorted(status for status, _ in said) == [RECORDED, REUSED, REUSED]
    assert len({run_id for _, run_id in said}) == 1  # all name the one record
    records = _finished_records(store)
    assert records.to_dict("records") == [{"record": EVALUATION, "hash": records["hash"][0]}]
    assert not store.claims.live(EVALUATION)
