"""The data-trained models and the recorded MLP resume through the training core: a run
interrupted after a few chunks, then run again, ends bitwise equal (on CPU) to an
uninterrupted one, trace and history included, and the log says where it resumed.

The interruption is an exception raised when the trainer asks for the chunk after the
k-th (its own chunk function, wrapped); the checkpoints are written after every chunk."""

from __future__ import annotations

import json
import logging

import equinox as eqx
import jax
import numpy as np
import pandas as pd
import pytest
from test_data_trained import BASE, EVO, LFADS, _data
from test_recording import HP

from ntdyn.tasks.digits import load_digits
from ntdyn.training import recording
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.data_trained import EpochPlan, train_data_model, trainer
from ntdyn.training.recording import train_recorded


class Interrupted(Exception):
    """Stands for the SIGKILL: the run stops between two chunks."""


def _interrupt_after(monkeypatch, module, name: str, n_calls: int) -> None:
    """Let `module.name` (a trainer's per-chunk function) run n_calls times, then raise."""
    real, calls = getattr(module, name), []

    def counted(*args, **kwargs):
        if len(calls) == n_calls:
            raise Interrupted
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def _leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _assert_same_model(a, b) -> None:
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _checkpoint_step(config: CheckpointConfig, hash: str) -> int:
    with open(config.path(hash), "rb") as f:
        return json.loads(f.readline())["step"]


@pytest.mark.parametrize("extra", [LFADS, EVO], ids=["lfads", "latent_evolution"])
def test_an_interrupted_data_model_resumes_to_the_uninterrupted_result(
    extra, tmp_path, monkeypatch, caplog
):
    data, _ = _data()
    hp = BASE | extra  # 6 epochs of 3 minibatches, snapshots every 2, validation every 3
    whole = train_data_model(hp, data, progress=False)

    config = CheckpointConfig(tmp_path, min_interval_s=0.0, max_overhead=1.0)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, trainer, "epoch_batches", 4)  # epochs 1-4 run
        with pytest.raises(Interrupted):
            train_data_model(hp, data, progress=False, checkpoint=config)
    k = _checkpoint_step(config, whole.hash)
    assert 0 < k < 18 and k % 3 == 0  # at an epoch boundary, before the end
    with caplog.at_level(logging.INFO, logger="ntdyn.training.core"):
        resumed = train_data_model(hp, data, progress=False, checkpoint=config)
    assert f"resumed {whole.hash} at batch {k}" in caplog.text

    _assert_same_model(whole.model, resumed.model)
    pd.testing.assert_frame_equal(whole.history, resumed.history, check_exact=True)
    assert sorted(resumed.checkpoints) == [2, 4, 6]  # snapshots before the interruption kept
    for epoch, model in whole.checkpoints.items():
        _assert_same_model(model, resumed.checkpoints[epoch])
    assert resumed.selection.as_dict() == whole.selection.as_dict()
    # the history holds validation metrics of epochs 3 (before the interruption) and 6
    valid = resumed.history[resumed.history["term"] == "valid_nll"]
    assert sorted(valid["step"].unique()) == [8, 17]
    assert EpochPlan.from_hyperparams(hp, 6) == EpochPlan((2, 4, 6), (3, 6))


def test_an_interrupted_recording_resumes_to_the_uninterrupted_trace(tmp_path, monkeypatch, caplog):
    digits = load_digits(0.25, 0)
    hp = HP | {"train__n_steps": 80}  # 8 records of 10 steps, in blocks of 2 records
    whole = train_recorded(hp, digits, progress=False, block_target=2)

    config = CheckpointConfig(tmp_path, min_interval_s=0.0, max_overhead=1.0)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, recording, "record_block", 3)  # blocks 1-3 run
        with pytest.raises(Interrupted):
            train_recorded(hp, digits, progress=False, block_target=2, checkpoint=config)
    k = _checkpoint_step(config, whole.hash)
    assert 0 < k < 80 and k % 20 == 0
    with caplog.at_level(logging.INFO, logger="ntdyn.training.core"):
        resumed = train_recorded(hp, digits, progress=False, block_target=2, checkpoint=config)
    assert f"resumed {whole.hash} at batch {k}" in caplog.text

    _assert_same_model(whole.model, resumed.model)
    for name in ("scalars", "layers", "weights", "activations"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(resumed, name),
                                      check_exact=True)  # fmt: skip
    assert len(resumed.scalars) == 8


def test_the_recorded_mlp_stops_with_a_divergence_error_naming_it():
    digits = load_digits(0.25, 0)
    hp = HP | {"train__learning_rate": 1e9, "train__schedule": "constant",
               "train__divergence_factor": 2.0}  # fmt: skip
    with pytest.raises(recording.divergence.DivergenceError) as err:
        train_recorded(hp, digits, progress=False)
    assert "(MLP)" in err.value.member and err.value.step >= 1
