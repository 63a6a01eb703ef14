"""Training reaching controllers: every replicate and spread member of one shape in one program.

Models whose static shapes agree (cell, hidden size, SISU input, steps, batch
size, number of batches) are stacked along one model axis M = members x
replicates; everything else (field std and type, method, noise levels, cost
weights, learning rate, feedback delay) is data on that axis. One `filter_jit`
compiles a scan over `chunk` Adam steps of all M models; the Python loop only
advances the progress bar between chunks.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from ntdyn.models.closed_loop import (
    LoopParams,
    batch_noise,
    delay_buffer_for,
    loop_params,
    simulate_batch_with_noise,
)
from ntdyn.models.controller import Controller, ensemble_from_hyperparams
from ntdyn.models.unroll import AUTO, ScanUnroll
from ntdyn.sharding import Devices
from ntdyn.tasks.reaching import (
    COST_TERMS,
    CostWeights,
    PertParams,
    Trial,
    cost_weights,
    pert_params,
    reach_cost,
    sample_training_trials,
)
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import (
    Member,
    TrainingRun,
    history_table,
    member_slices,
    run_training,
    select_member,
    validation_losses,
)
from ntdyn.training.divergence import Divergence
from ntdyn.training.keys import KeyStreams
from ntdyn.training.selection import ReplicateSelection

STATIC_KEYS = (
    "model__cell",
    "model__hidden_size",
    "model__sisu_input",
    "task__n_steps",
    "train__batch_size",
    "train__n_batches",
)


class ModelData(NamedTuple):
    """Everything about one model that is data, not shape (a leading model axis when stacked)."""

    loop: LoopParams
    pert: PertParams
    cost: CostWeights
    workspace: jax.Array
    learning_rate: jax.Array


@dataclass
class TrainedEnsemble:
    """One spread member: its replicates trained together.

    model: Controller with a leading replicate axis R. history: long table
    (step, replicate, term, value) of per-step batch losses. selection: best and
    excluded replicates by validation loss. diverged: replicates whose training diverged
    (excluded from the selection). resumed_at: the batch training resumed from (0: fresh).
    """

    hyperparams: dict
    hash: str
    model: Controller
    history: pd.DataFrame
    selection: ReplicateSelection
    trace: dict[str, pd.DataFrame] | None = None  # recorded weights and activity, if asked
    diverged: tuple[Divergence, ...] = ()
    resumed_at: int = 0


def model_data(hp: dict) -> ModelData:
    return ModelData(
        loop=loop_params(hp),
        pert=pert_params(hp),
        cost=cost_weights(hp),
        workspace=jnp.asarray(hp["task__workspace"], jnp.float32),
        learning_rate=jnp.asarray(hp["train__learning_rate"], jnp.float32),
    )


def static_signature(hp: dict) -> tuple:
    """The hyperparameters that fix array shapes; models sharing them train together."""
    return tuple(hp[k] for k in STATIC_KEYS)


def batch_inputs(
    data: ModelData, key: jax.Array, *, batch_size: int, n_steps: int
) -> tuple[Trial, Float[Array, "B K 8"]]:
    """A training batch from one step's key: random reaches and their standard-normal noise
    (`closed_loop.batch_noise`), all drawn before the recurrence."""
    k_trials, k_noise = jax.random.split(key)
    trials = sample_training_trials(
        k_trials, data.pert, batch_size=batch_size, n_steps=n_steps, workspace=data.workspace
    )
    return trials, batch_noise(k_noise, batch_size, n_steps)


def loss_on_batch(
    model: Controller, data: ModelData, trials: Trial, noise: Float[Array, "B K 8"], *,
    delay_buffer: int, unroll: int = 1,
) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:  # fmt: skip
    """Mean cost over a drawn batch (`batch_inputs`); returns (total, terms). Delays are
    refused on the host before training (`delay_buffer_for`), so the compiled step holds
    no traced check."""
    traj = simulate_batch_with_noise(model, data.loop, trials, noise, delay_buffer=delay_buffer,
                                     unroll=unroll, host_checked=True)  # fmt: skip
    terms = jax.vmap(reach_cost, (0, 0, 0, 0, 0, None))(
        traj.state[..., :2], traj.state[..., 2:], traj.control, traj.hidden, trials.goal, data.cost
    )
    terms = {k: v.mean() for k, v in terms.items()}
    return terms["total"], terms


def batch_loss(
    model: Controller,
    data: ModelData,
    key: jax.Array,
    *,
    batch_size: int,
    n_steps: int,
    delay_buffer: int,
    unroll: int = 1,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean cost over a fresh batch of random reaches (`batch_inputs` from `key`); returns
    (total, terms). unroll: time steps per loop iteration (`ntdyn.models.unroll`)."""
    trials, noise = batch_inputs(data, key, batch_size=batch_size, n_steps=n_steps)
    return loss_on_batch(model, data, trials, noise, delay_buffer=delay_buffer, unroll=unroll)


def reaching_loss(
    model: Controller, data: ModelData, key, batch_size, n_steps, delay_buffer, unroll=1
):  # fmt: skip
    """`batch_loss` with its terms stacked in COST_TERMS order, for `train_chunk`."""
    total, terms = batch_loss(model, data, key, batch_size=batch_size, n_steps=n_steps,
                              delay_buffer=delay_buffer, unroll=unroll)  # fmt: skip
    return total, jnp.stack([terms[t] for t in COST_TERMS])


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def train_group(
    rows: list[dict], *, progress: bool = True, chunk_target: int = 25, record_every: int = 0,
    checkpoint: CheckpointConfig | None = None, labels: list[str] | None = None,
    devices: Devices | None = None,
    unroll: ScanUnroll = AUTO,
) -> list[TrainedEnsemble]:  # fmt: skip
    """Train models sharing one static signature in one compiled program.

    rows: flattened hyperparameters, one dict per spread member (labels: their names in
    errors). record_every = k > 0 keeps every k steps all weights (a host copy at the end of
    each k-step chunk) and each unit's activity on fixed probe reaches
    (`ntdyn.training.recording`'s tables). checkpoint: where training state is saved and
    resumed from (`ntdyn.training.core.run_training`). devices: the local devices the
    stacked models are split across (default: all; the numbers are those of one device).
    unroll: time steps per loop iteration of the trials' scan (`ntdyn.models.unroll`; auto:
    the whole trial on GPU/TPU, 1 on CPU).
    """
    sigs = {static_signature(r) for r in rows}
    if len(sigs) != 1:
        raise ValueError(f"train_group needs one static signature, got {sorted(map(str, sigs))}")
    first = rows[0]
    n_batches, batch_size = int(first["train__n_batches"]), int(first["train__batch_size"])
    n_steps = int(first["task__n_steps"])
    # One state history for the whole group, long enough for its longest delay; a negative
    # or fractional delay is refused here, before anything is built or compiled.
    delay_buffer = delay_buffer_for([r["task__feedback__delay"] for r in rows])
    labels = labels or [""] * len(rows)
    members = [Member.from_hyperparams(hp, lb) for hp, lb in zip(rows, labels, strict=True)]

    models, datas, stream_keys = [], [], []
    for hp, m in zip(rows, members, strict=True):
        streams = KeyStreams(int(hp["train__seed"]))
        models.append(ensemble_from_hyperparams(hp, streams.init(m.n_replicates)))
        datas.append(_stack([model_data(hp)] * m.n_replicates))
        stream_keys.append(streams.batches(m.n_replicates))
    concat = lambda trees: jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)  # noqa: E731
    params, static = eqx.partition(concat(models), eqx.is_array)
    data = concat(datas)
    keys = jnp.concatenate(stream_keys)

    snapshots: list[tuple[int, object, np.ndarray]] = []  # (step, params, grad norms)
    if record_every:
        if n_batches % record_every:
            raise ValueError(
                f"training_options.record_every = {record_every}: must divide "
                f"train__n_batches = {n_batches}"
            )
        chunk_target = record_every  # chunks of exactly k steps: one snapshot per chunk

    options = (batch_size, n_steps, delay_buffer, unroll.for_scan(n_steps))
    run = TrainingRun(
        n_batches,
        chunk_target,
        progress,
        checkpoint=checkpoint,
        desc=f"train {len(rows)} member(s) x replicates = {keys.shape[0]} models",
    )
    result = run_training(
        params, static, data, keys, members, run, n_terms=len(COST_TERMS), loss=reaching_loss,
        loss_options=options, learning_rates=data.learning_rate,
        on_chunk=(lambda step, p, g: snapshots.append((step, *jax.device_get((p, g)))))
        if record_every else None, devices=devices,
    )  # fmt: skip
    params, history = result.params, result.history

    # Validation trials come from their own stream, shared by all replicates of a member.
    results = []
    trained = eqx.combine(params, static)
    for hp, m, sl in zip(rows, members, member_slices(members), strict=True):
        cut = lambda tree: jax.tree.map(lambda x: x[sl], tree)  # noqa: B023, E731
        val = validation_losses(cut(params), static, cut(data),
                                KeyStreams(int(hp["train__seed"])).validation(), reaching_loss,
                                options)  # fmt: skip
        selection, diverged = select_member(val, result.divergence, sl,
                                            float(hp["train__n_std_exclude"]))  # fmt: skip
        trace = None
        if snapshots:
            from ntdyn.training.recording import controller_trace  # no cycle at import time

            trace = controller_trace([(step, cut(p), g[sl]) for step, p, g in snapshots],
                                     static, hp, history[:, sl])  # fmt: skip
        results.append(
            TrainedEnsemble(
                hyperparams=dict(hp),
                hash=m.hash,
                model=cut(trained),
                history=history_table(history[:, sl], COST_TERMS),
                selection=selection,
                trace=trace,
                diverged=diverged,
                resumed_at=result.resumed_at,
            )
        )
    return results


def train_sweep(
    rows: list[dict], *, progress: bool = True, record_every: int = 0,
    checkpoint: CheckpointConfig | None = None, labels: list[str] | None = None,
    devices: Devices | None = None,
    unroll: ScanUnroll = AUTO,
) -> list[TrainedEnsemble]:  # fmt: skip
    """Train every member of a sweep, one compiled program per static signature.

    Returns the ensembles in the order of `rows` (with a training trace when
    record_every > 0, see `train_group`). devices: as for `train_group`.
    """
    labels = labels or [""] * len(rows)
    groups: dict[tuple, list[int]] = collections.defaultdict(list)
    for i, hp in enumerate(rows):
        groups[static_signature(hp)].append(i)
    out: list[TrainedEnsemble | None] = [None] * len(rows)
    for idx in groups.values():
        trained = train_group([rows[i] for i in idx], progress=progress,
                              record_every=record_every, checkpoint=checkpoint,
                              labels=[labels[i] for i in idx], devices=devices,
                              unroll=unroll)  # fmt: skip
        for i, result in zip(idx, trained, strict=True):
            out[i] = result
    return out  # type: ignore[return-value]


def projected_seconds(batches_per_second: float, n_batches: int = 10_000) -> float:
    """Wall time for `n_batches` at a measured rate (for benchmarks)."""
    return math.inf if batches_per_second <= 0 else n_batches / batches_per_second
