"""`kedro ntdyn gc`: files without records and records without files, on a real sqlite store."""

from __future__ import annotations

import shutil

import pandas as pd
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner

from ntdyn.cli import cli as commands
from ntdyn.store import RecordStore
from ntdyn.store.gc import TAG_ARCHIVED, find_leftovers, local_path

HISTORY = pd.DataFrame({"step": [0], "replicate": [0], "term": ["total"], "value": [1.0]})
KEPT, DELETED, FILELESS = "a" * 16, "b" * 16, "c" * 16


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A store with: two sound models, one deleted in MLflow (its files stay), one whose files
    were removed by hand, a failed half-written record, a stray run folder, a sound figure
    and one without its JSON, an evaluation missing a listed table, and local model files."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    store = RecordStore(tracking_uri=uri, experiment="gc")
    model_file = tmp_path / "m.eqx"
    model_file.write_bytes(b"x")
    rec = {h: store.record_model(hash=h, params={"h": h}, history=HISTORY, model_file=model_file)
           for h in (KEPT, DELETED, FILELESS, "d" * 16)}  # fmt: skip
    store.client.delete_run(rec[DELETED].run_id)
    shutil.rmtree(local_path(rec[FILELESS].artifact_uri))
    with pytest.raises(RuntimeError):
        with store._new_run("model", "e" * 16, "half-written", {}, {}) as run_id:
            store.client.log_artifact(run_id, str(model_file), artifact_path="model")
            raise RuntimeError("training crashed")
    root = local_path(store.client.get_experiment(store.experiment_id).artifact_location)
    (root / ("f" * 32) / "artifacts").mkdir(parents=True)
    (root / ("f" * 32) / "artifacts" / "x.txt").write_text("stray")
    figures = [store.record_figure(kind="k", figure=go.Figure(), params={"i": i},
                                   evaluation_hash=None) for i in range(2)]  # fmt: skip
    (local_path(figures[1].artifact_uri) / "figure" / "figure.json").unlink()
    table = tmp_path / "summary.parquet"
    HISTORY.to_parquet(table)
    evaluation = store.record_evaluation(hash="1" * 16, analysis="a", params={},
                                         model_hashes=[KEPT], metrics={"m": 1.0},
                                         artifacts=[table])  # fmt: skip
    (local_path(evaluation.artifact_uri) / "summary.parquet").unlink()
    models = tmp_path / "data" / "06_models" / "exp"
    models.mkdir(parents=True)
    for name in (KEPT, DELETED, "flipflop"):
        (models / f"{name}.eqx").write_bytes(b"x")
    return store, rec, run_id, figures, evaluation, root, models, uri


def test_leftovers_are_found_and_nothing_else(setup):
    store, rec, failed_id, figures, evaluation, root, models, _ = setup
    report = find_leftovers(store, models.parent)
    orphans = {o.path.name: o.reason for o in report.orphan_files}
    assert orphans == {
        rec[DELETED].run_id: "run deleted",
        failed_id: "run FAILED",
        "f" * 32: "run not in the store",
        f"{DELETED}.eqx": "no model record with this hash",  # named by role: not checked
    }
    missing = {m.record.run_id: m.missing for m in report.records_without_files}
    assert missing == {
        rec[FILELESS].run_id: ("model", "history.parquet"),
        figures[1].run_id: ("figure/figure.json",),
        evaluation.run_id: ("summary.parquet",),
    }


def test_dry_run_changes_nothing_and_apply_archives_without_losing(setup):
    store, rec, failed_id, figures, evaluation, root, models, uri = setup
    args = ["ntdyn", "--tracking-uri", uri, "--experiment", "gc", "gc",
            "--models-dir", str(models.parent)]  # fmt: skip
    dry = CliRunner().invoke(commands, args)
    assert dry.exit_code == 0, dry.output
    assert "0 run(s) left RUNNING by a dead process, 4 file(s) without record, " in dry.output
    assert "3 record(s) without file; dry run" in dry.output
    assert (root / rec[DELETED].run_id).is_dir() and (models / f"{DELETED}.eqx").is_file()
    assert store.find_model(FILELESS) is not None

    done = CliRunner().invoke(commands, [*args, "--apply", "--archive-dir", "archive"])
    assert done.exit_code == 0, done.output
    assert "archived 4 file(s)" in done.output and "3 record(s)" in done.output
    # files moved, not deleted: under archive/<time>/ with their project-relative path
    (stamp,) = (root.parent.parent / "archive").iterdir()
    assert (stamp / "mlruns" / root.name / rec[DELETED].run_id).is_dir()
    assert (stamp / "data" / "06_models" / "exp" / f"{DELETED}.eqx").is_file()
    assert (stamp / "mlruns" / root.name / figures[1].run_id / "artifacts" / "figure").is_dir()
    assert not (root / failed_id).exists() and not (models / f"{DELETED}.eqx").exists()
    assert (models / f"{KEPT}.eqx").is_file() and (models / "flipflop.eqx").is_file()
    # records soft-deleted with the reason, restorable; queries no longer return them
    assert store.find_model(FILELESS) is None and store.find_figure(figures[1].hash) is None
    run = store.client.get_run(rec[FILELESS].run_id)
    assert run.info.lifecycle_stage == "deleted"
    assert run.data.tags[TAG_ARCHIVED] == "gc: missing model, history.parquet"
    store.client.restore_run(rec[FILELESS].run_id)
    assert store.find_model(FILELESS) is not None
    # the sound records are untouched
    assert store.find_model(KEPT) is not None and store.find_figure(figures[0].hash) is not None
    assert store.find_model("d" * 16) is not None
    # and the restored record is the only leftover the next gc sees
    again = find_leftovers(store, models.parent)
    assert again.orphan_files == []
    assert [m.record.hash for m in again.records_without_files] == [FILELESS]


def test_a_killed_evaluations_staged_arrays_are_leftovers_but_live_ones_are_not(tmp_path):
    import os
    import subprocess
    import sys

    store = RecordStore(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="gc")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    killed = store.staging_dir() / f"{'a' * 16}-{dead}-0001" / "evaluation"
    live = store.staging_dir() / f"{'b' * 16}-{os.getpid()}-0002" / "evaluation"
    for folder in (killed, live):
        folder.mkdir(parents=True)
        (folder / "conditions.parquet").write_bytes(b"x")
    orphans = {o.path: o.reason for o in find_leftovers(store).orphan_files}
    assert orphans == {killed.parent: f"staged by process {dead}, which is gone (no record)"}
