"""Training MultiTask source GRUs (docs/science.md §1.3, §3.3): replicates in one compiled
program, through the training core as the flip-flop sources are."""

from __future__ import annotations

from dataclasses import dataclass

import jax

from ntdyn.models.flipflop import multitask_ensemble_from_hyperparams
from ntdyn.models.unroll import ScanUnroll
from ntdyn.sharding import Devices
from ntdyn.tasks.multitask import (
    MultiTaskBatch,
    MultiTaskConfig,
    multitask_loss,
    sample_multitask,
)
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.flipflop import FlipFlopData, TrainedFlipFlop, train_source_replicates

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


def multitask_source_batch(
    key, batch_size: int, config: MultiTaskConfig, one_task_per_batch: bool = False
) -> MultiTaskBatch:
    """A training batch: the tasks of config.tasks in turn (ntdyn's default), or, with
    `one_task_per_batch`, every trial of one task drawn uniformly from the key, as the
    benchmark's grouped sampler feeds its MultiTask GRU one task per batch."""
    task = None
    if one_task_per_batch:
        key, k_pick = jax.random.split(key)
        task = jax.random.randint(k_pick, (), 0, config.n_tasks)
    return sample_multitask(key, batch_size=batch_size, config=config, task=task)


def multitask_source_loss(model, data: FlipFlopData, key, batch_size: int,
                          config: MultiTaskConfig, one_task_per_batch: bool = False,
                          unroll: int | None = None):  # fmt: skip
    """The benchmark's masked squared error (`multitask_loss`) on a fresh batch of trials
    (`multitask_source_batch`), with the network's hidden noise (unroll: the model's scan
    unroll, None for its default)."""
    k_task, k_noise = jax.random.split(key)
    batch = multitask_source_batch(k_task, batch_size, config, one_task_per_batch)
    keys = jax.random.split(k_noise, batch_size)
    outputs, _ = jax.vmap(lambda x, k: model(x, k, data.hidden_noise_std, unroll))(
        batch.inputs, keys
    )
    loss = multitask_loss(outputs, batch)
    return loss, loss[None]


def train_multitask(
    hp: dict, *, progress: bool = True, checkpoint: CheckpointConfig | None = None,
    label: str = "", devices: Devices | None = None, unroll: ScanUnroll | None = None,
) -> TrainedMultiTask:  # fmt: skip
    """Train `train__n_replicates` MultiTask GRUs on flattened hyperparameters `hp`.

    Keys: model__hidden_size, model__hidden_noise_std, task__tasks, task__n_timesteps,
    task__bin_size_ms, task__noise (task__num_targets, task__response_weight,
    task__grace_steps, task__ignore_first_steps, task__one_task_per_batch: optional),
    train__batch_size, train__n_batches, train__learning_rate, train__n_replicates, train__seed
    (train__divergence_factor, train__n_std_exclude: optional). devices: the local devices
    the replicates are split across (default: all). unroll: the trials' scan unroll
    (`ntdyn.models.unroll`; None: the model's default, 8 on accelerators, 1 on the CPU).
    """
    config = multitask_config(hp)  # a bad option fails here, before any compute
    grouped = bool(hp.get("task__one_task_per_batch", False))
    return train_source_replicates(
        TrainedMultiTask, hp, multitask_ensemble_from_hyperparams, multitask_source_loss,
        (int(hp["train__batch_size"]), config, grouped,
         None if unroll is None else unroll.for_scan(config.n_timesteps)),
        MULTITASK_TERMS, "multitask",
        progress=progress, checkpoint=checkpoint, label=label, devices=devices,
    )  # fmt: skip
