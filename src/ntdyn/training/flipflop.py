"""Training flip-flop GRUs: replicates in one compiled program (the shared chunked loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ntdyn.hyperparams.hashing import hyperparams_hash
from ntdyn.models.flipflop import FlipFlopRNN, flipflop_ensemble_from_hyperparams
from ntdyn.tasks.flipflop import sample_flipflop
from ntdyn.training.loop import (
    STREAM_BATCHES,
    STREAM_INIT,
    STREAM_VALIDATION,
    history_table,
    make_optimizer,
    run_chunks,
)
from ntdyn.training.selection import ReplicateSelection, select_replicate

FLIPFLOP_TERMS = ("total",)


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


def flipflop_loss(model, data: FlipFlopData, key, batch_size, n_steps, n_bits, p_pulse, noise):
    """Mean squared error between the outputs and the remembered bits on a fresh batch."""
    k_task, k_noise = jax.random.split(key)
    batch = sample_flipflop(k_task, batch_size=batch_size, n_steps=n_steps, n_bits=n_bits,
                            p_pulse=p_pulse, input_noise_std=noise)  # fmt: skip
    keys = jax.random.split(k_noise, batch_size)
    outputs, _ = jax.vmap(lambda x, k: model(x, k, data.hidden_noise_std))(batch.inputs, keys)
    mse = jnp.mean((outputs - batch.targets) ** 2)
    return mse, mse[None]


def train_flipflop(hp: dict, *, progress: bool = True) -> TrainedFlipFlop:
    """Train `train__n_replicates` flip-flop GRUs on flattened hyperparameters `hp`.

    Keys: model__hidden_size, model__hidden_noise_std, task__n_bits, task__n_steps,
    task__p_pulse, task__input_noise_std, train__batch_size, train__n_batches,
    train__learning_rate, train__n_replicates, train__seed.
    """
    n_rep = int(hp["train__n_replicates"])
    root = jax.random.PRNGKey(int(hp["train__seed"]))
    reps = jnp.arange(n_rep)
    init_keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.fold_in(root, STREAM_INIT), reps)
    models = flipflop_ensemble_from_hyperparams(hp, init_keys)
    params, static = eqx.partition(models, eqx.is_array)
    data = FlipFlopData(
        jnp.full(n_rep, hp["model__hidden_noise_std"], jnp.float32),
        jnp.full(n_rep, hp["train__learning_rate"], jnp.float32),
    )
    opt_states = jax.vmap(lambda p, lr: make_optimizer(lr).init(p))(params, data.learning_rate)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.fold_in(root, STREAM_BATCHES), reps)
    options = (
        int(hp["train__batch_size"]), int(hp["task__n_steps"]), int(hp["task__n_bits"]),
        float(hp["task__p_pulse"]), float(hp["task__input_noise_std"]),
    )  # fmt: skip
    params, _, history = run_chunks(
        params, static, opt_states, data, keys, n_batches=int(hp["train__n_batches"]),
        n_terms=len(FLIPFLOP_TERMS), loss=flipflop_loss, loss_options=options,
        progress=progress, desc=f"flip-flop x {n_rep} replicates",
    )  # fmt: skip
    history = history_table(history, FLIPFLOP_TERMS)
    # Every replicate on the same validation batch, from its own stream.
    k_valid = jax.random.fold_in(root, STREAM_VALIDATION)
    valid = eqx.filter_jit(
        lambda p, d: jax.vmap(lambda pi, di: flipflop_loss(eqx.combine(pi, static), di, k_valid,
                                                           *options)[0])(p, d)
    )(params, data)  # fmt: skip
    selection = select_replicate(np.asarray(valid), float(hp.get("train__n_std_exclude", 2.0)))
    return TrainedFlipFlop(
        dict(hp), hyperparams_hash(hp), eqx.combine(params, static), history, selection
    )
