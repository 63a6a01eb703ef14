"""Runs left RUNNING by a process that died are found, listed and ended as KILLED."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "pipelines"))
from kedro_project import make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.store import RecordStore  # noqa: E402
from ntdyn.store.gc import archive, describe, find_leftovers  # noqa: E402
from ntdyn.store.processes import TAG_ABANDONED, TAG_PROCESS, this_process  # noqa: E402

# A process that starts writing a model record and is killed (SIGKILL) half-way.
KILLED_WRITER = """
import os, signal, sys
from ntdyn.store import RecordStore
store = RecordStore(tracking_uri=sys.argv[1], experiment="ntdyn")
with store._new_run("model", "a" * 16, "killed half-way", {"x": 1}, {}) as run_id:
    print(run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run(uri: str) -> str:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, uri], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == -9, done.stderr
    return done.stdout.split()[0]


def test_a_dead_process_s_running_run_is_listed_and_ended_but_a_live_one_is_not(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dead = _killed_run(uri)
    store = RecordStore(tracking_uri=uri, experiment="ntdyn")
    assert store.client.get_run(dead).info.status == "RUNNING"
    live = store.client.create_run(store.experiment_id, tags={TAG_PROCESS: this_process()})
    report = find_leftovers(store)
    assert [r.info.run_id for r in report.abandoned_runs] == [dead]
    assert any(dead in line and "RUNNING" in line for line in describe(report))
    assert store.find_model("a" * 16) is None  # half-written work is never a record
    archive(store, report, tmp_path / "archive", tmp_path)
    run = store.client.get_run(dead)
    assert run.info.status == "KILLED" and "is gone" in run.data.tags[TAG_ABANDONED]
    assert store.client.get_run(live.info.run_id).info.status == "RUNNING"
    assert not find_leftovers(store).abandoned_runs


@pytest.mark.pipeline
def test_the_next_kedro_run_ends_what_a_killed_run_left_running(tmp_path, monkeypatch):
    root = make_project(tmp_path / "project")
    monkeypatch.chdir(root)
    dead = _killed_run(tracking_uri(root))
    run_pipeline(root)
    store = RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")
    assert store.client.get_run(dead).info.status == "KILLED"
    # this run's own runs carry its process, so a later run could tell if it had died
    runs = store.client.search_runs([store.experiment_id], max_results=1000)
    mine = [r for r in runs if r.info.run_id != dead]
    assert mine and all(r.data.tags.get(TAG_PROCESS) == this_process() for r in mine)
