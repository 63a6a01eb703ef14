"""A run's own folder: private paths, publishing in one rename, leftovers for `kedro ntdyn gc`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pandas as pd
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node

from ntdyn.run_folder import FAILED, MARKER, RunFolder, leftovers, private_path, publish
from ntdyn.run_folder_hooks import RunFolderHooks
from ntdyn.store import RecordStore
from ntdyn.store.gc import archive, describe, find_leftovers


def test_private_paths_keep_the_catalog_path_under_the_run_folder(tmp_path):
    project = tmp_path / "project"
    folder = project / "data/runs/r1"
    sweep = folder / "05_model_input/x/sweep.parquet"
    assert private_path("data/05_model_input/x/sweep.parquet", folder, project) == str(sweep)
    assert private_path(f"{project}/data/05_model_input/x/sweep.parquet", folder, project) == str(
        sweep
    )
    assert private_path("other/file.json", folder, project) == str(folder / "other/file.json")
    assert private_path("/abs/file.json", folder, project) == str(folder / "absolute/abs/file.json")
    assert private_path("s3://bucket/file.json", folder, project) is None


def test_publishing_replaces_files_and_folders_whole(tmp_path):
    usual, new = tmp_path / "usual", tmp_path / "new"
    (usual / "models").mkdir(parents=True)
    (usual / "models" / "old.eqx").write_text("old")
    (usual / "table.parquet").write_text("old")
    (new / "models").mkdir(parents=True)
    (new / "models" / "a.eqx").write_text("new")
    (new / "table.parquet").write_text("new")
    (new / "fresh").mkdir()
    # a reader polling the folder meanwhile sees the new set whole, or the old (which may
    # shrink under a reader that opened it just before the swap, as it is removed): no mix
    seen = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.append(frozenset(p.name for p in (usual / "models").iterdir()))
            except FileNotFoundError:
                seen.append(None)

    reader = threading.Thread(target=read)
    reader.start()
    while not seen:
        time.sleep(0.001)
    for name in ("models", "table.parquet", "fresh"):
        publish(new / name, usual / name)
    stop.set()
    reader.join()
    assert sorted(p.name for p in (usual / "models").iterdir()) == ["a.eqx"]
    assert (usual / "table.parquet").read_text() == "new" and (usual / "fresh").is_dir()
    assert None not in seen and frozenset({"old.eqx"}) in seen
    assert all(s <= {"old.eqx"} or s == {"a.eqx"} for s in seen)
    assert not list(new.iterdir())  # the old folder went, nothing is left beside it
    assert sorted(p.name for p in usual.iterdir()) == ["fresh", "models", "table.parquet"]


def test_the_hooks_redirect_the_outputs_and_publish_them_only_on_success(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    catalog = DataCatalog.from_config({
        "sweep": {"type": "pandas.CSVDataset", "filepath": "data/05/sweep.csv"},
        "raw": {"type": "json.JSONDataset", "filepath": "data/01/raw.json"},
    })  # fmt: skip
    (tmp_path / "data/01").mkdir(parents=True)
    (tmp_path / "data/01/raw.json").write_text("[1, 2]")
    pipeline = Pipeline([node(lambda raw: pd.DataFrame({"x": raw}), "raw", "sweep")])
    params = {"run_id": "2026-01-01T00.00.00.000Z", "pipeline_names": ["p"],
              "project_path": str(tmp_path)}  # fmt: skip
    hooks = RunFolderHooks()
    hooks.before_pipeline_run(params, pipeline, catalog)
    folder = hooks.folder.path
    private = tmp_path / catalog["sweep"]._describe()["filepath"]
    assert private == folder / "05" / "sweep.csv"
    assert tmp_path / catalog["raw"]._describe()["filepath"] == tmp_path / "data/01/raw.json"
    catalog.save("sweep", pd.DataFrame({"x": catalog.load("raw")}))
    assert private.is_file() and not (tmp_path / "data/05/sweep.csv").exists()  # not yet seen
    hooks.after_pipeline_run(params, {}, pipeline, catalog)
    assert pd.read_csv(tmp_path / "data/05/sweep.csv")["x"].tolist() == [1, 2]
    assert not folder.exists()

    failing = RunFolderHooks()
    failing.before_pipeline_run(params, pipeline, catalog)
    catalog.save("sweep", pd.DataFrame({"x": [3]}))
    failing.on_pipeline_error(RuntimeError("boom"), params, pipeline, catalog)
    [(left, why)] = leftovers(tmp_path / "data/runs")
    assert why == f"run {FAILED}" and "boom" in (left / MARKER).read_text()
    assert pd.read_csv(tmp_path / "data/05/sweep.csv")["x"].tolist() == [1, 2]  # unpublished


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from ntdyn.run_folder import RunFolder
folder = RunFolder.start(Path(sys.argv[1]), "killed", ["p"])
print(folder.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_gc_lists_and_archives_the_folders_of_dead_and_failed_runs_only(tmp_path):
    runs = tmp_path / "data" / "runs"
    live = RunFolder.start(runs, "live", ["p"])
    failed = RunFolder.start(runs, "failed", ["p"])
    failed.mark(FAILED)
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(runs)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == -9, done.stderr
    dead = runs / done.stdout.strip()
    unmarked = runs / "unmarked"
    unmarked.mkdir()
    os.utime(unmarked, (0, 0))  # made long ago, never marked
    store = RecordStore(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="gc")
    report = find_leftovers(store, runs_dir=runs)
    assert sorted(o.path.name for o in report.orphan_files) == sorted(
        [failed.name, dead.name, "unmarked"]
    )
    assert any("which is gone" in line and dead.name in line for line in describe(report))
    archive(store, report, tmp_path / "archive", tmp_path)
    assert sorted(p.name for p in runs.iterdir()) == [live.name]
    assert len(list((tmp_path / "archive").rglob(MARKER))) == 2  # moved there, not deleted
