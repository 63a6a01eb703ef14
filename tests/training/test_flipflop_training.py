"""Flip-flop GRUs (the task-trained source of task_vs_data) learn the task."""

from __future__ import annotations

import numpy as np

from ntdyn.training.flipflop import train_flipflop

HP = {
    "model__hidden_size": 16, "model__hidden_noise_std": 0.01, "task__n_bits": 2,
    "task__n_steps": 40, "task__p_pulse": 0.08, "task__input_noise_std": 0.15,
    "train__batch_size": 32, "train__n_batches": 200, "train__learning_rate": 0.01,
    "train__n_replicates": 2, "train__seed": 0,
}  # fmt: skip


def test_flipflop_loss_falls_and_training_is_deterministic():
    a = train_flipflop(HP, progress=False)
    total = a.history.pivot_table(index="step", columns="replicate", values="value")
    first, last = total.iloc[:10].mean().mean(), total.iloc[-20:].mean().mean()
    assert last < 0.5 * first
    assert set(a.history["term"]) == {"total"}
    b = train_flipflop(HP, progress=False)
    np.testing.assert_array_equal(a.history["value"], b.history["value"])
    assert a.hash == b.hash
    assert a.model.readout.weight.shape == (2, 2, 16)  # replicates stacked
