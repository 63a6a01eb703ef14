"""A real `kedro run` with a misspelt and an unknown parameter is refused before anything
is written: no record store, no MLflow run, nothing under data/."""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

from kedro_project import make_project  # noqa: E402

KEDRO = Path(sys.executable).with_name("kedro")


def test_a_typo_on_the_command_line_is_refused_before_any_record_or_file(tmp_path):
    root = make_project(tmp_path / "project")
    env = {**os.environ, "COLUMNS": "400"}  # one problem per line in the traceback's text
    params = "analysis_part1.training.hyperparams.train.lerning_rate=0.1,train.pert.std=-1.0"
    done = subprocess.run(
        [str(KEDRO), "run", "--pipeline", "analysis_part1", "--params", params],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        "analysis_part1.training.hyperparams.train.lerning_rate: unknown parameter; "
        "did you mean analysis_part1.training.hyperparams.train.learning_rate?"
    ) in done.stderr
    assert (
        "train.pert.std: unknown parameter; "
        "did you mean analysis_part1.training.hyperparams.train.pert.std?"
    ) in done.stderr
    assert list((root / "mlruns").iterdir()) == []  # not even the sqlite store was created
    assert not (root / "data").exists()
