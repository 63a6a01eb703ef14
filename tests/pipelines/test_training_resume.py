"""Training failures a real `kedro run` must survive or report: a diverging learning rate
(the run fails, nothing is recorded) and a SIGKILL mid-training (the next run resumes from
the checkpoint and ends with the same bits as an uninterrupted run, on CPU)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from kedro_project import (
    TINY_GLOBALS,
    make_project,
    quick_compile_env,
    run_pipeline,
    tracking_uri,
)
from mlflow.tracking import MlflowClient

from ntdyn.store import RecordStore
from ntdyn.store.gc import find_leftovers
from ntdyn.store.mlflow_store import CHECKPOINTS
from ntdyn.training.divergence import DivergenceError
from ntdyn.training.ensemble_io import load_trained

pytestmark = pytest.mark.pipeline

# One member, enough batches that training takes a few seconds; a checkpoint after every
# chunk of 25 batches (min_interval_s 0, and writing may take all the time: max_overhead 1).
RESUME_PARAMS = {
    "analysis_part1": {
        "training": {"spread": {"train__pert__std": [1.0]}},
        "training_options": {"progress": False, "metric_every": 50, "record_every": 0,
                             "checkpoint": {"min_interval_s": 0.0, "max_overhead": 1.0}},
    }
}  # fmt: skip
RESUME_GLOBALS = {
    "reaching": {
        **TINY_GLOBALS["reaching"],
        "train": {"n_batches": 600, "batch_size": 8, "n_replicates": 2},
    }
}
KEDRO = [sys.executable, "-c", "from kedro.framework.cli import main; main()", "run",
         "--pipeline", "analysis_part1", "--to-nodes", "analysis_part1.train_models"]  # fmt: skip


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def _kedro(root: Path, log: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "JAX_PLATFORMS": "cpu"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # every run of the comparison (reference, killed, resumed) compiles alike: -O0 is quicker
    env = quick_compile_env(env)
    with open(log, "ab") as out:
        return subprocess.Popen(KEDRO, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)


def _the_model(root: Path):
    store = _store(root)
    (record,) = store.query_models()
    return record, load_trained(store.download_model_file(record, root / "downloaded"))


def _leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _start_training(root: Path, log: Path) -> subprocess.Popen:
    """Start `kedro run`; return once its training node has started."""
    started = log.read_text().count("Running node: train_models") if log.exists() else 0
    proc = _kedro(root, log)
    deadline = time.monotonic() + 300
    while log.read_text().count("Running node: train_models") == started:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    return proc


def _checkpoint_step(root: Path) -> int:
    """The step of the project's checkpoint (-1: none)."""
    for path in (root / "mlruns").rglob(f"{CHECKPOINTS}/*.eqx"):
        with open(path, "rb") as f:
            return int(json.loads(f.readline())["step"])
    return -1


def test_a_run_killed_at_random_points_resumes_to_the_same_bits(tmp_path):
    # the uninterrupted reference runs in its own project meanwhile (the 2nd core), waited for
    # before the comparison
    reference = make_project(tmp_path / "reference", RESUME_PARAMS, RESUME_GLOBALS)
    uninterrupted = _kedro(reference, tmp_path / "reference.log")

    try:
        root = make_project(tmp_path / "killed", RESUME_PARAMS, RESUME_GLOBALS)
        log = tmp_path / "killed.log"
        rng = random.Random(14)
        # Three kills at random steps, each at a random moment inside a chunk (the timing of a
        # loaded 2-core machine is too noisy for kills at random seconds to land in training).
        for target in sorted(rng.sample(range(50, 550), 3)):
            proc = _start_training(root, log)
            while _checkpoint_step(root) < target and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL
        assert _store(root).query_models() == [], "a run finished before it was killed"
        assert _kedro(root, log).wait() == 0, log.read_text()[-3000:]

        text = log.read_text()
        assert "resumed" in text and " at batch " in text, text[-3000:]
    except BaseException:
        uninterrupted.kill()
        raise
    assert uninterrupted.wait() == 0, (tmp_path / "reference.log").read_text()[-3000:]
    rec_ref, ref = _the_model(reference)
    rec, got = _the_model(root)
    assert rec.hash == rec_ref.hash
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(ref.model), _leaves(got.model),
                                                    strict=True))  # fmt: skip
    assert ref.selection == got.selection
    # the record holds the model: its checkpoint is gone, and gc finds nothing left over
    assert not list((root / "mlruns").rglob(f"{CHECKPOINTS}/*.eqx"))
    leftovers = find_leftovers(_store(root))
    # a kill during a write leaves only its temporary file, which gc lists as a dead writer's
    left = [o for o in leftovers.orphan_files if CHECKPOINTS in str(o.path)]
    assert all(".eqx.tmp-" in o.path.name and "which is gone" in o.reason for o in left), left


def test_gc_lists_the_checkpoint_of_a_recorded_model(tmp_path):
    root = make_project(tmp_path / "p", RESUME_PARAMS, {"reaching": {
        **TINY_GLOBALS["reaching"], "train": {"n_batches": 50, "batch_size": 8,
                                              "n_replicates": 2}}})  # fmt: skip
    run_pipeline(root, "training", namespaces=["analysis_part1"])  # a model and its record
    record, _ = _the_model(root)
    folder = _store(root).checkpoint_dir()
    stale = folder / f"{record.hash}.eqx"
    stale.write_bytes(b"left by a run killed after recording")
    unfinished = folder / "0123456789abcdef.eqx"
    unfinished.write_bytes(b"a model still to finish: kept for resume")
    orphans = {o.path: o.reason for o in find_leftovers(_store(root)).orphan_files}
    assert stale in orphans and "recorded" in orphans[stale]
    assert unfinished not in orphans


def test_a_diverging_learning_rate_fails_the_run_and_records_nothing(tmp_path):
    diverging = {"reaching": {**TINY_GLOBALS["reaching"],
                              "train": {"n_batches": 50, "batch_size": 8, "n_replicates": 2,
                                        "learning_rate": 1.0e12}}}  # fmt: skip
    root = make_project(tmp_path / "p", RESUME_PARAMS, diverging)
    with pytest.raises(DivergenceError) as err:
        run_pipeline(root, "analysis_part1")
    message = str(err.value)
    assert "every replicate of model" in message
    assert "train__learning_rate = 1e+12" in message and "at step" in message
    client = MlflowClient(tracking_uri(root))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(r.info.status == "FAILED" for r in runs), [r.info for r in runs]
    assert _store(root).query_models() == []
