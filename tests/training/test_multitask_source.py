"""The MultiTask source's training batches (`multitask_source_batch`): the tasks in turn by
default, one task per batch as the benchmark's grouped sampler when asked; the option's
default is the code's (the hash at the default: tests/pipelines/test_task_vs_data_multitask.py)."""

from __future__ import annotations

import jax
import numpy as np

from ntdyn.tasks.multitask import MultiTaskConfig, sample_multitask
from ntdyn.training.multitask import multitask_source_batch

CONFIG = MultiTaskConfig(tasks=("DelayPro", "DelayAnti", "MemoryPro"), n_timesteps=100,
                         bin_size_ms=100)  # fmt: skip


def test_the_default_batch_is_the_tasks_in_turn_as_before():
    key = jax.random.PRNGKey(3)
    got = multitask_source_batch(key, 9, CONFIG)
    want = sample_multitask(key, batch_size=9, config=CONFIG)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(np.unique(np.asarray(got.task))) == 3  # mixed


def test_one_task_per_batch_draws_every_trial_of_one_task_and_every_task_over_batches():
    drawn = []
    for seed in range(12):
        batch = multitask_source_batch(jax.random.PRNGKey(seed), 9, CONFIG, True)
        tasks = np.asarray(batch.task)
        assert (tasks == tasks[0]).all(), tasks
        drawn.append(int(tasks[0]))
    assert set(drawn) == {0, 1, 2}  # P(a task never drawn in 12) < 0.1: fixed keys, checked


def test_the_declared_default_is_the_codes():
    import inspect

    from ntdyn.hyperparams.kinds import DEFAULTS

    code = inspect.signature(multitask_source_batch).parameters["one_task_per_batch"].default
    assert dict(DEFAULTS["multitask"]) == {"task__one_task_per_batch": code}


def test_the_source_loss_does_not_depend_on_the_unroll():
    # training_options.unroll of task_vs_data reaches the MultiTask source's scan
    import equinox as eqx
    import jax.numpy as jnp

    from ntdyn.models.flipflop import multitask_ensemble_from_hyperparams
    from ntdyn.training.flipflop import FlipFlopData
    from ntdyn.training.multitask import multitask_source_loss

    hp = {"model__hidden_size": 4, "task__tasks": list(CONFIG.tasks),
          "task__n_timesteps": CONFIG.n_timesteps, "task__bin_size_ms": CONFIG.bin_size_ms,
          "task__noise": 0.3}  # fmt: skip
    stacked = multitask_ensemble_from_hyperparams(hp, jax.random.split(jax.random.PRNGKey(0), 1))
    model = jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, stacked)
    data = FlipFlopData(jnp.asarray(0.01), jnp.asarray(0.001))

    def loss(unroll):
        return float(eqx.filter_jit(multitask_source_loss)(
            model, data, jax.random.PRNGKey(1), 3, CONFIG, True, unroll)[0])  # fmt: skip

    rolled = loss(1)
    assert rolled > 0
    np.testing.assert_allclose(loss(CONFIG.n_timesteps), rolled, rtol=1e-6)
    np.testing.assert_allclose(loss(8), rolled, rtol=1e-6)
