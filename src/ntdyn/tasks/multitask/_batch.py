"""A batch of MultiTask trials: fixed shapes, every random choice from the key."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ntdyn.tasks.multitask._catalogue import TASKS
from ntdyn.tasks.multitask._config import MultiTaskConfig
from ntdyn.tasks.multitask._trials import draw_trial


class MultiTaskBatch(NamedTuple):
    """B trials of T steps (config.n_timesteps, bin_size_ms each).

    inputs: (B, T, 20) what the network sees: true_inputs plus Gaussian noise within the
    trial (exact zeros after it). true_inputs: (B, T, 20) the same without noise.
    targets: (B, T, 3) fixation, response cos, response sin. mask: (B, T) weight of each
    step in the loss (shared by the 3 outputs). task: (B,) position of the trial's task
    in config.tasks. epochs: (B, 7) boundaries in steps; epoch e of EPOCHS spans
    [epochs[:, e], epochs[:, e + 1]), the response ends the trial at epochs[:, 6].
    """

    inputs: Float[Array, "B T 20"]
    true_inputs: Float[Array, "B T 20"]
    targets: Float[Array, "B T 3"]
    mask: Float[Array, "B T"]
    task: Int[Array, " B"]
    epochs: Int[Array, "B 7"]


def loss_mask(epochs: Int[Array, "B 7"], config: MultiTaskConfig) -> Float[Array, "B T"]:
    """The benchmark's loss weights: 1, except 0 on the first `ignore_first_steps` steps,
    `response_weight` in the response, 0 on its first `grace_steps` (the network cannot
    know the exact go time) and 0 after the trial (padding)."""
    t = jnp.arange(config.n_timesteps)[None, :]
    go, end = epochs[:, 5:6], epochs[:, 6:7]
    mask = jnp.where(t < config.ignore_first_steps, 0.0, 1.0)
    mask = jnp.where((t >= go) & (t < end), config.response_weight, mask)
    mask = jnp.where((t >= go) & (t < go + config.grace_steps), 0.0, mask)
    return jnp.where(t >= end, 0.0, mask)


def sample_multitask(
    key: PRNGKeyArray,
    *,
    batch_size: int,
    config: MultiTaskConfig,
    task: int | Int[Array, ""] | None = None,
) -> MultiTaskBatch:
    """A batch of MultiTask trials (docs/science.md §1.3).

    task None: the tasks of config.tasks in turn from a random start, so every task has
    batch_size // n_tasks or one more trials (the benchmark's data set holds equal
    numbers per task). task = i (an int or a traced integer): every trial is
    config.tasks[i], as the benchmark's grouped sampler trains on one task per batch.
    Compiled once per (batch_size, config) and per whether `task` is given (its value is
    traced): run op by op, drawing a battery of trials dispatches thousands of small ops.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")
    n_tasks = config.n_tasks
    if isinstance(task, int | np.integer) and not 0 <= task < n_tasks:
        raise ValueError(f"task = {task}: must index config.tasks (0 .. {n_tasks - 1})")
    return _sample(key, batch_size=batch_size, config=config, task=task)


@functools.partial(jax.jit, static_argnames=("batch_size", "config"))
def _sample(
    key: PRNGKeyArray, *, batch_size: int, config: MultiTaskConfig, task: Int[Array, ""] | None
) -> MultiTaskBatch:
    """`sample_multitask`'s batch, its arguments checked."""
    n_tasks = config.n_tasks
    k_task, k_trials, k_noise = jax.random.split(key, 3)
    if task is None:
        start = jax.random.randint(k_task, (), 0, n_tasks)
        index = (start + jnp.arange(batch_size)) % n_tasks
    else:
        index = jnp.full((batch_size,), task, jnp.int32)
    codes = jnp.asarray([TASKS.index(name) for name in config.tasks], jnp.int32)[index]
    true_inputs, targets, epochs = jax.vmap(draw_trial, (0, 0, None))(
        jax.random.split(k_trials, batch_size), codes, config
    )
    in_trial = jnp.arange(config.n_timesteps)[None, :] < epochs[:, 6:7]
    noise = config.noise * jax.random.normal(k_noise, true_inputs.shape)
    inputs = true_inputs + noise * in_trial[..., None]
    return MultiTaskBatch(
        inputs=inputs,
        true_inputs=true_inputs,
        targets=targets,
        mask=loss_mask(epochs, config),
        task=index.astype(jnp.int32),
        epochs=epochs,
    )
