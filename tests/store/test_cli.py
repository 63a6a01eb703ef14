"""`kedro ntdyn …` record queries, on a real (temporary) MLflow store."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner

from ntdyn.cli import cli as commands
from ntdyn.store import RecordStore

HASHES = ("a" * 16, "b" * 16)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    s = RecordStore(tracking_uri=uri, experiment="cli")
    history = pd.DataFrame({"step": [0], "replicate": [0], "term": ["total"], "value": [1.0]})
    model_file = tmp_path / "m.eqx"
    model_file.write_bytes(b"x")
    for h, std in zip(HASHES, ("0.0", "1.0"), strict=True):
        s.record_model(hash=h, params={"train__pert__std": std, "model__hidden_size": 8},
                       history=history, model_file=model_file,
                       tags={"ntdyn.label": f"std={std}"})  # fmt: skip
    s.record_evaluation(hash="e" * 16, analysis="plant_perts", params={"seed": 1},
                        model_hashes=list(HASHES), metrics={"m": 1.0})  # fmt: skip
    for std in ("0.0", "1.0"):
        s.record_figure(kind="center_out", figure=go.Figure(), params={"train__pert__std": std},
                        evaluation_hash="e" * 16)  # fmt: skip
    return uri


def _run(uri, *args):
    result = CliRunner().invoke(commands, ["ntdyn", "--tracking-uri", uri,
                                           "--experiment", "cli", *args])  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_models_are_listed_by_hyperparameters(store):
    out = _run(store, "models", "--where", "train__pert__std=1.0")
    assert out.startswith("1 record(s)") and HASHES[1] in out and HASHES[0] not in out
    assert "train__pert__std=1.0" in out
    assert _run(store, "models").startswith("2 record(s)")


def test_evaluations_figures_varying_and_the_model_link(store):
    assert "e" * 16 in _run(store, "evaluations", "--analysis", "plant_perts")
    assert _run(store, "evaluations", "--analysis", "tms_tdcs").startswith("0 record(s)")
    out = _run(store, "figures", "--kind", "center_out", "--where", "train__pert__std=0.0")
    assert out.startswith("1 record(s)")
    assert _run(store, "varying", "--kind", "center_out").strip() == "train__pert__std: 0.0, 1.0"
    out = _run(store, "models-of", "e" * 16)
    assert out.startswith("2 record(s)") and all(h in out for h in HASHES)


def test_bad_where_and_unknown_evaluation_are_clear_errors(store):
    bad = CliRunner().invoke(commands, ["ntdyn", "--tracking-uri", store, "--experiment", "cli",
                                        "models", "--where", "train__pert__std"])  # fmt: skip
    assert bad.exit_code != 0 and "expected key=value" in bad.output
    missing = CliRunner().invoke(commands, ["ntdyn", "--tracking-uri", store, "--experiment",
                                            "cli", "models-of", "f" * 16])  # fmt: skip
    assert missing.exit_code != 0 and "no evaluation record" in missing.output
