"""Training MultiTask source GRUs (docs/science.md §1.3, §3.3): replicates in one compiled
program, through the training core as the flip-flop sources are."""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from ntdyn.models.flipflop import multitask_ensemble_from_hyperparams
from ntdyn.tasks.multitask import MultiTaskConfig, multitask_loss, sample_multitask
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import (
    Member,
    TrainingRun,
    history_table,
    run_training,
    select_member,
    validation_losses,
)
from ntdyn.training.flipflop import FlipFlopData, TrainedFlipFlop
from ntdyn.training.keys import KeyStreams

MULTITASK_TERMS = ("total",)


@dataclass
class TrainedMultiTask(TrainedFlipFlop):
    """Replicates of one MultiTask source configuration (the fields of `TrainedFlipFlop`;
    its own class so that its file records its own model kind)."""


def multitask_config(hp: dict) -> MultiTaskConfig:
    """The task's options from flat hyperparameters (`task__*`; absent ones: the benchmark's)."""
    options = {
        "tasks": tuple(hp["task__tasks"]), "n_timesteps": int(hp["task__n_timesteps"]),
        "bin_size_ms": int(hp["task__bin_size_ms"]), "noise": float(hp["task__noise"]),
    }  # fmt: skip
    for name in ("num_targets", "grace_steps", "ignore_first_steps"):
        if f"task__{name}" in hp:
            options[name] = int(hp[f"task__{name}"])
    if "task__response_weight" in hp:
        options["response_weight"] = float(hp["task__response_weight"])
    return MultiTaskConfig(**options)


def multitask_source_loss(model, data: FlipFlopData, key, batch_size: int,
                          config: MultiTaskConfig):  # fmt: skip
    """The benchmark's masked squared error (`multitask_loss`) on a fresh batch of trials
    (the tasks in turn), with the network's hidden noise."""
    k_task, k_noise = jax.random.split(key)
    batch = sample_multitask(k_task, batch_size=batch_size, config=config)
    keys = jax.random.split(k_noise, batch_size)
    outputs, _ = jax.vmap(lambda x, k: model(x, k, data.hidden_noise_std))(batch.inputs, keys)
    loss = multitask_loss(outputs, batch)
    return loss, loss[None]


def train_multitask(
    hp: dict, *, progress: bool = True, checkpoint: CheckpointConfig | None = None,
    label: str = "",
) -> TrainedMultiTask:  # fmt: skip
    """Train `train__n_replicates` MultiTask GRUs on flattened hyperparameters `hp`.

    Keys: model__hidden_size, model__hidden_noise_std, task__tasks, task__n_timesteps,
    task__bin_size_ms, task__noise (task__num_targets, task__response_weight,
    task__grace_steps, task__ignore_first_steps: optional), train__batch_size,
    train__n_batches, train__learning_rate, train__n_replicates, train__seed
    (train__divergence_factor, train__n_std_exclude: optional).
    """
    config = multitask_config(hp)  # a bad option fails here, before any compute
    member = Member.from_hyperparams(hp, label)
    n_rep = member.n_replicates
    streams = KeyStreams(int(hp["train__seed"]))
    params, static = eqx.partition(multitask_ensemble_from_hyperparams(hp, streams.init(n_rep)),
                                   eqx.is_array)  # fmt: skip
    data = FlipFlopData(
        jnp.full(n_rep, hp["model__hidden_noise_std"], jnp.float32),
        jnp.full(n_rep, hp["train__learning_rate"], jnp.float32),
    )
    options = (int(hp["train__batch_size"]), config)
    run = TrainingRun(int(hp["train__n_batches"]), progress=progress, checkpoint=checkpoint,
                      desc=f"multitask x {n_rep} replicates")  # fmt: skip
    result = run_training(params, static, data, streams.batches(n_rep), [member], run,
                          n_terms=len(MULTITASK_TERMS), loss=multitask_source_loss,
                          loss_options=options, learning_rates=data.learning_rate)  # fmt: skip
    valid = validation_losses(result.params, static, data, streams.validation(),
                              multitask_source_loss, options)  # fmt: skip
    selection, diverged = select_member(valid, result.divergence, slice(0, n_rep),
                                        float(hp.get("train__n_std_exclude", 2.0)))  # fmt: skip
    return TrainedMultiTask(
        dict(hp), member.hash, eqx.combine(result.params, static),
        history_table(result.history, MULTITASK_TERMS), selection, diverged, result.resumed_at,
    )  # fmt: skip
