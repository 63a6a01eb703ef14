"""A fresh sqlite store started on by several processes at once is created once, safely."""

from __future__ import annotations

import subprocess
import sys

from ntdyn.store import RecordStore
from ntdyn.store.initialise import initialise_store, sqlite_path

STARTER = """
import sys
from ntdyn.store.initialise import initialise_store
from ntdyn.store import RecordStore
created = initialise_store(sys.argv[1])
store = RecordStore(tracking_uri=sys.argv[1], experiment="ntdyn")
store.client.create_run(store.experiment_id, run_name=sys.argv[2])
print("created" if created else "found")
"""


def test_four_processes_starting_on_a_fresh_store_create_it_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    starts = [subprocess.Popen([sys.executable, "-c", STARTER, uri, f"run {i}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(4)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in starts]
    assert all(p.returncode == 0 for p in starts), [err[-2000:] for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["created", "found", "found", "found"]
    store = RecordStore(tracking_uri=uri, experiment="ntdyn")
    names = {r.info.run_name for r in store.client.search_runs([store.experiment_id])}
    assert names == {f"run {i}" for i in range(4)}


def test_other_backends_are_left_alone(tmp_path):
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert initialise_store("http://127.0.0.1:5000") is False
