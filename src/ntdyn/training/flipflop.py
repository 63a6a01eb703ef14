"""Training flip-flop GRUs: replicates in one compiled program (the shared chunked loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import pandas as pd

from ntdyn.models.flipflop import FlipFlopRNN, flipflop_ensemble_from_hyperparams
from ntdyn.models.unroll import ScanUnroll
from ntdyn.sharding import Devices
from ntdyn.tasks.flipflop import FlipFlopVariant, flipflop_loss_mask, sample_flipflop
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import (
    Member,
    TrainingRun,
    history_table,
    run_training,
    select_member,
    validation_losses,
)
from ntdyn.training.divergence import Divergence
from ntdyn.training.keys import KeyStreams
from ntdyn.training.selection import ReplicateSelection

FLIPFLOP_TERMS = ("total",)
PLAIN_NBFF = FlipFlopVariant()  # ntdyn's own task: sign targets, no quiet steps, no loss mask


class FlipFlopData(NamedTuple):
    """Per-model numbers that are data, not shape (a leading model axis when stacked)."""

    hidden_noise_std: jax.Array
    learning_rate: jax.Array


@dataclass
class TrainedFlipFlop:
    """Replicates of one flip-flop configuration: model (R stacked), history (step, replicate, term,
    value)."""

    hyperparams: dict
    hash: str
    model: FlipFlopRNN
    history: pd.DataFrame
    selection: ReplicateSelection
    diverged: tuple[Divergence, ...] = ()
    resumed_at: int = 0


def flipflop_loss(
    model, data: FlipFlopData, key, batch_size, n_steps, n_bits, p_pulse, noise, unroll=None,
    variant: FlipFlopVariant = PLAIN_NBFF,
):  # fmt: skip
    """Mean squared error between the outputs and the remembered bits on a fresh batch
    (unroll: the model's scan unroll, None for its default; variant: the benchmark's target
    coding, quiet steps and loss mask, `FlipFlopVariant`; with a mask, the masked squared error
    averaged over every entry, as the benchmark's NBFFLoss)."""
    k_task, k_noise = jax.random.split(key)
    batch = sample_flipflop(k_task, batch_size=batch_size, n_steps=n_steps, n_bits=n_bits,
                            p_pulse=p_pulse, input_noise_std=noise,
                            target_coding=variant.target_coding,
                            quiet_steps=variant.quiet_steps)  # fmt: skip
    keys = jax.random.split(k_noise, batch_size)
    outputs, _ = jax.vmap(lambda x, k: model(x, k, data.hidden_noise_std, unroll))(
        batch.inputs, keys
    )
    squared = (outputs - batch.targets) ** 2
    if variant.masked:
        squared = squared * flipflop_loss_mask(
            batch.targets, variant.transition_blind, variant.ignore_first_steps
        )
    mse = jnp.mean(squared)
    return mse, mse[None]


def train_flipflop(
    hp: dict, *, progress: bool = True, checkpoint: CheckpointConfig | None = None,
    label: str = "", devices: Devices | None = None, unroll: ScanUnroll | None = None,
) -> TrainedFlipFlop:  # fmt: skip
    """Train `train__n_replicates` flip-flop GRUs on flattened hyperparameters `hp`.

    Keys: model__hidden_size, model__hidden_noise_std, task__n_bits, task__n_steps,
    task__p_pulse, task__input_noise_std, train__batch_size, train__n_batches,
    train__learning_rate, train__n_replicates, train__seed (train__divergence_factor,
    train__n_std_exclude, and the benchmark's task variant task__target_coding,
    task__quiet_steps, task__transition_blind, task__ignore_first_steps: optional).
    checkpoint: where training state is saved and resumed
    from; label: the source's name in errors; devices: the local devices the replicates are
    split across (default: all; the numbers are those of one device). unroll: the trials'
    scan unroll (`ntdyn.models.unroll`; None: the model's default, 8 on accelerators, 1 on the
    CPU).
    """
    options = (
        int(hp["train__batch_size"]), int(hp["task__n_steps"]), int(hp["task__n_bits"]),
        float(hp["task__p_pulse"]), float(hp["task__input_noise_std"]),
        None if unroll is None else unroll.for_scan(int(hp["task__n_steps"])),
        FlipFlopVariant.from_hyperparams(hp),
    )  # fmt: skip
    return train_source_replicates(
        TrainedFlipFlop, hp, flipflop_ensemble_from_hyperparams, flipflop_loss, options,
        FLIPFLOP_TERMS, "flip-flop", progress=progress, checkpoint=checkpoint, label=label,
        devices=devices,
    )  # fmt: skip


def train_source_replicates(
    trained_class: type[TrainedFlipFlop], hp: dict, ensemble_from_hyperparams, loss,
    loss_options: tuple, terms: tuple[str, ...], what: str, *, progress: bool,
    checkpoint: CheckpointConfig | None, label: str, devices: Devices | None,
) -> TrainedFlipFlop:  # fmt: skip
    """The replicates of one task-trained source GRU (flip-flop, MultiTask) through the
    training core: built from `hp` by `ensemble_from_hyperparams(hp, keys)`, trained on
    loss(model, data, key, *loss_options), every replicate then scored on the same
    validation batch (from its own stream) and the best selected; a `trained_class`."""
    member = Member.from_hyperparams(hp, label)
    n_rep = member.n_replicates
    streams = KeyStreams(int(hp["train__seed"]))
    params, static = eqx.partition(ensemble_from_hyperparams(hp, streams.init(n_rep)),
                                   eqx.is_array)  # fmt: skip
    data = FlipFlopData(
        jnp.full(n_rep, hp["model__hidden_noise_std"], jnp.float32),
        jnp.full(n_rep, hp["train__learning_rate"], jnp.float32),
    )
    run = TrainingRun(int(hp["train__n_batches"]), progress=progress, checkpoint=checkpoint,
                      desc=f"{what} x {n_rep} replicates")  # fmt: skip
    result = run_training(params, static, data, streams.batches(n_rep), [member], run,
                          n_terms=len(terms), loss=loss, loss_options=loss_options,
                          learning_rates=data.learning_rate, devices=devices)  # fmt: skip
    valid = validation_losses(result.params, static, data, streams.validation(), loss,
                              loss_options)  # fmt: skip
    selection, diverged = select_member(valid, result.divergence, slice(0, n_rep),
                                        float(hp.get("train__n_std_exclude", 2.0)))  # fmt: skip
    return trained_class(
        dict(hp), member.hash, eqx.combine(result.params, static),
        history_table(result.history, terms), selection, diverged, result.resumed_at,
    )  # fmt: skip
