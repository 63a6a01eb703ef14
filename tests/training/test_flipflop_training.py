"""Flip-flop GRUs (the task-trained source of task_vs_data) learn the task."""

from __future__ import annotations

import numpy as np
import pytest

from ntdyn.hyperparams import hyperparams_hash
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


def test_the_benchmarks_variant_masks_the_loss_and_trains():
    import jax
    import jax.numpy as jnp

    from ntdyn.models.flipflop import FlipFlopRNN
    from ntdyn.tasks.flipflop import FlipFlopVariant, flipflop_loss_mask, sample_flipflop
    from ntdyn.training.flipflop import FlipFlopData, flipflop_loss

    model = FlipFlopRNN(2, 6, key=jax.random.PRNGKey(0))
    data = FlipFlopData(jnp.asarray(0.0), jnp.asarray(0.01))
    variant = FlipFlopVariant("zero_one", 3, 4, 5)
    key = jax.random.PRNGKey(2)
    loss, terms = flipflop_loss(model, data, key, 5, 30, 2, 0.2, 0.1, None, variant)
    # the same batch by hand: masked squared error averaged over every entry
    k_task, k_noise = jax.random.split(key)
    batch = sample_flipflop(
        k_task, batch_size=5, n_steps=30, n_bits=2, p_pulse=0.2, input_noise_std=0.1,
        target_coding="zero_one", quiet_steps=3,
    )  # fmt: skip
    keys = jax.random.split(k_noise, 5)
    out = jax.vmap(lambda x, k: model(x, k, data.hidden_noise_std)[0])(batch.inputs, keys)
    mask = flipflop_loss_mask(batch.targets, 4, 5)
    expected = float(jnp.sum(mask * (out - batch.targets) ** 2) / mask.size)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(terms[0]) == float(loss)
    assert float(jnp.mean(mask)) < 1.0  # something was masked

    hp = HP | {"task__target_coding": "zero_one", "task__quiet_steps": 3,
               "task__transition_blind": 4, "task__ignore_first_steps": 5}  # fmt: skip
    trained = train_flipflop(hp, progress=False)
    total = trained.history.pivot_table(index="step", columns="replicate", values="value")
    assert total.iloc[-20:].mean().mean() < 0.5 * total.iloc[:10].mean().mean()
    assert set(np.unique(np.asarray(batch.targets))) == {0.0, 1.0}
    assert trained.hash == hyperparams_hash(hp) != hyperparams_hash(HP)
