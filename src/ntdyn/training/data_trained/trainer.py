"""Fitting a data model's replicates to spikes: one compiled step for all replicates (one
`vmap`), epochs as the training core's chunks, snapshots and validation between epochs."""

from __future__ import annotations

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Float, PyTree

from ntdyn.models.data_trained import data_models_from_hyperparams
from ntdyn.models.stacking import unstack
from ntdyn.resources import ResourceBudget
from ntdyn.training import divergence
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import (
    Member,
    TrainingRun,
    make_optimizer,
    optax_step,
    run_chunks,
    select_member,
)
from ntdyn.training.data_trained.data import (
    SpikeTrainingData,
    _mask,
    held_observations,
    unconnected_pairs,
)
from ntdyn.training.data_trained.losses import LOSSES
from ntdyn.training.data_trained.options import _options, check_data_model_hyperparams
from ntdyn.training.data_trained.trace_counts import TRACE_COUNTS
from ntdyn.training.data_trained.validation import validation_metrics, validation_terms
from ntdyn.training.divergence import Divergence
from ntdyn.training.keys import KeyStreams
from ntdyn.training.selection import ReplicateSelection

TRAIN_TERMS = ("total", "reconstruction", "kl", "connectome")


# ----------------------------------------------------------------------------- training


@eqx.filter_jit
def epoch_batches(keys, epoch, train_idx, batch_size: int):
    """Per-replicate minibatches of one epoch: trial indices (n_batches, R, batch_size) and
    step keys (n_batches, R, 2), from a permutation of the training trials."""
    n_batches = train_idx.shape[0] // batch_size

    def one(key):
        k_perm, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
        order = jax.random.permutation(k_perm, train_idx)[: n_batches * batch_size]
        return order.reshape(n_batches, batch_size), jax.random.split(k_steps, n_batches)

    idx, step_keys = jax.vmap(one)(keys)
    return jnp.swapaxes(idx, 0, 1), jnp.swapaxes(step_keys, 0, 1)


@eqx.filter_jit
def train_step(params, static, opt_states, div, arrays, aux, idx, keys, step, epoch, loss, opts):
    """One Adam step (number `step`) of every replicate on its own minibatch idx (R, batch_size).

    arrays: (spikes (B, T, N), inputs (B, T, I), held observations (B, T, N_in)),
    shared by the replicates. A replicate that diverges keeps its last finite state
    (`ntdyn.training.divergence`). Returns (params, opt states, divergence state, terms (R, 4)).
    One step per call, not a scan over the epoch: XLA compiles a while loop around
    the recurrent models' gradient several times more slowly than the step itself,
    and an epoch has few minibatches, so the Python loop costs little.
    """
    TRACE_COUNTS["train_step"] += 1

    def one_replicate(p, opt_state, dv, i, key):
        batch = tuple(a[i] for a in arrays)
        new_p, new_opt, dv, terms, _ = optax_step(p, static, opt_state, dv, step, loss, batch,
                                                  key, epoch, opts, aux)  # fmt: skip
        return new_p, new_opt, dv, terms

    return jax.vmap(one_replicate)(params, opt_states, div, idx, keys)


# ----------------------------------------------------------------------------- entry point


@dataclass
class TrainedDataModel:
    """Replicates of one data-trained configuration.

    model: stacked along R. history: long table (step, replicate, term, value) with
    the per-batch training terms and, at validation epochs, the validation metrics.
    checkpoints: epoch -> stacked model. selection: by validation NLL.
    """

    hyperparams: dict
    hash: str
    model: eqx.Module
    history: pd.DataFrame
    selection: ReplicateSelection
    checkpoints: dict[int, eqx.Module] = field(default_factory=dict)
    diverged: tuple[Divergence, ...] = ()

    def replicate(self, r: int | None = None) -> eqx.Module:
        """One replicate (the selected one by default), unstacked."""
        return unstack(self.model, self.selection.best if r is None else r)


def train_data_model(
    hp: dict,
    data: SpikeTrainingData,
    *,
    connected: np.ndarray | None = None,
    progress: bool = True,
    budget: ResourceBudget | None = None,
    label: str = "",
    checkpoint: CheckpointConfig | None = None,
) -> TrainedDataModel:
    """Fit `train__n_replicates` replicates of the data model `hp` to `data`.

    connected: (N, N_in) bool known connectivity, needed by the `unconnected_to_zero`
    connectome constraint (rate of neuron i at t+1 may depend on held-in neuron j at t).
    budget: the memory budget of the validation metrics (they run over the validation trials
    in chunks; default `ResourceBudget()`); the results do not depend on it. label: the
    model's name in errors. checkpoint: where the training state (parameters, optimiser and
    divergence state, history, validation metrics and snapshots so far) is saved after
    epochs and resumed from (`ntdyn.training.core.run_chunks`). Raises `DivergenceError`
    once every replicate has diverged (`train__divergence_factor`).
    """
    check_data_model_hyperparams(hp)
    kind = hp["model__kind"]
    _, t, n = data.spikes.shape
    n_in = data.n_held_in
    opts = _options(hp, n_in)
    if kind == "latent_evolution" and opts.time_units * opts.evolve_multiple_steps >= t:
        raise ValueError(
            f"train__time_units x train__evolve_multiple_steps = "
            f"{opts.time_units * opts.evolve_multiple_steps}: must be < n_steps = {t}"
        )
    batch_size = min(int(hp["train__batch_size"]), len(data.train))
    mask = _mask(hp, t, n)
    smoothing = float(hp.get("train__encoder_smoothing", 1.0))
    held = held_observations(data.spikes[..., :n_in], mask[:, :n_in], smoothing)
    if kind == "latent_evolution" and opts.connectome:
        if connected is None or np.shape(connected) != (n, n_in):
            got = None if connected is None else np.shape(connected)
            raise ValueError(
                f"train__connectome__mode = unconnected_to_zero needs the known connectivity as a "
                f"({n}, {n_in}) bool array; got {got}"
            )
        pairs = unconnected_pairs(connected)
        if len(pairs) == 0:
            raise ValueError("the known connectivity has no unconnected pairs to constrain")
    else:
        pairs = np.zeros((1, 2), np.int32)
    aux = {"mask": jnp.asarray(mask, jnp.float32), "pairs": jnp.asarray(pairs)}

    member = Member.from_hyperparams(hp, label)
    n_rep = member.n_replicates
    streams = KeyStreams(int(hp["train__seed"]))
    models = data_models_from_hyperparams(hp, streams.init(n_rep))
    params, static = eqx.partition(models, eqx.is_array)
    lr = jnp.full(n_rep, member.learning_rate, jnp.float32)
    keys = streams.batches(n_rep)
    arrays = tuple(jnp.asarray(a, jnp.float32) for a in (data.spikes, data.inputs, held))
    train_idx = jnp.asarray(data.train)

    n_epochs = int(hp["train__n_epochs"])
    n_batches = len(data.train) // batch_size
    plan = EpochPlan.from_hyperparams(hp, n_epochs)
    names = validation_terms(hp)
    state = DataTrainState(
        params, jax.vmap(lambda p, r: make_optimizer(r).init(p))(params, lr),
        divergence.initial_state(jnp.full(n_rep, member.divergence.factor)),
        np.zeros((n_rep, n_epochs * n_batches, len(TRAIN_TERMS)), np.float32),
        np.zeros((n_rep, len(plan.validated), len(names)), np.float64),
        jax.tree.map(lambda x: np.zeros((n_rep, len(plan.snapshots), *x.shape[1:]), x.dtype),
                     params),
    )  # fmt: skip

    def advance(state: DataTrainState, first: int) -> tuple[DataTrainState, float]:
        """One epoch: its minibatch steps, then its snapshot and validation when due."""
        epoch = first // n_batches
        batches, step_keys = epoch_batches(keys, jnp.asarray(epoch), train_idx, batch_size)
        p, o, div = state.params, state.opt_states, state.divergence
        for i in range(n_batches):
            p, o, div, terms = train_step(
                p, static, o, div, arrays, aux, batches[i], step_keys[i],
                jnp.asarray(first + i), jnp.asarray(epoch), LOSSES[kind], opts,
            )  # fmt: skip
            state.history[:, first + i] = np.asarray(terms)  # host arrays, filled in place
        done = epoch + 1
        if done in plan.snapshots:
            j = plan.snapshots.index(done)
            jax.tree.map(lambda s, x: s.__setitem__((slice(None), j), np.asarray(x)),
                         state.snapshots, p)  # fmt: skip
        if done in plan.validated:
            model = eqx.combine(p, static)
            for r in range(n_rep):
                metrics = validation_metrics(unstack(model, r), hp, data, held, budget)
                state.validation[r, plan.validated.index(done)] = [metrics[t] for t in names]
        state = DataTrainState(p, o, div, state.history, state.validation, state.snapshots)
        return state, float(np.nanmedian(state.history[:, first + n_batches - 1, 0]))

    run = TrainingRun(n_epochs * n_batches, progress=progress, checkpoint=checkpoint,
                      desc=f"{kind} x {n_rep} replicates")  # fmt: skip
    state, _ = run_chunks(state, [member], run, n_batches, advance, lambda s: s.divergence)
    history = _history_table(state, plan, names, n_batches)
    selection, diverged = select_member(
        state.validation[:, -1, 0], state.divergence, slice(0, n_rep),
        float(hp.get("train__n_std_exclude", 2.0)),
    )  # fmt: skip
    checkpoints = {
        epoch: eqx.combine(jax.tree.map(lambda x: jnp.asarray(x[:, j]), state.snapshots), static)  # noqa: B023
        for j, epoch in enumerate(plan.snapshots)
    }
    return TrainedDataModel(dict(hp), member.hash, eqx.combine(state.params, static), history,
                            selection, checkpoints, diverged)  # fmt: skip


@dataclass(frozen=True)
class EpochPlan:
    """The epochs (1-based, counted when done) after which the replicates are snapshotted
    (every `train__checkpoint_every`) and validated (every `train__validate_every`, and
    after the last)."""

    snapshots: tuple[int, ...]
    validated: tuple[int, ...]

    @classmethod
    def from_hyperparams(cls, hp: dict, n_epochs: int) -> EpochPlan:
        every_snap = int(hp.get("train__checkpoint_every", 0))
        every_valid = int(hp.get("train__validate_every", n_epochs))
        done = range(1, n_epochs + 1)
        return cls(tuple(e for e in done if every_snap and e % every_snap == 0),
                   tuple(e for e in done if e % every_valid == 0 or e == n_epochs))  # fmt: skip


class DataTrainState(eqx.Module):
    """What the next epoch and the result depend on, replicates first: params, optimiser and
    divergence state; history: per-step terms (R, steps, TRAIN_TERMS); validation: metrics
    (R, validated epochs, validation_terms) (float64, as computed); snapshots: parameters
    (R, snapshot epochs, ...). The history arrays live on the host, filled epoch by epoch."""

    params: PyTree
    opt_states: PyTree
    divergence: divergence.DivergenceState
    history: Float[np.ndarray, "R steps terms"]
    validation: Float[np.ndarray, "R validated metrics"]
    snapshots: PyTree


def _history_table(state: DataTrainState, plan: EpochPlan, metric_names: list[str],
                   n_batches: int) -> pd.DataFrame:  # fmt: skip
    """Long table (step, replicate, term, value): per epoch the training terms of its steps,
    then, after a validated epoch, the validation metrics at its last step."""
    n_rep, n_steps, _ = state.history.shape
    rows = []
    for step0 in range(0, n_steps, n_batches):
        for i, term in enumerate(TRAIN_TERMS):
            for r in range(n_rep):
                values = state.history[r, step0 : step0 + n_batches, i]
                steps = step0 + np.arange(n_batches)
                rows.append(pd.DataFrame({"step": steps, "replicate": r, "term": term,
                                          "value": values}))  # fmt: skip
        if (done := step0 // n_batches + 1) in plan.validated:
            j = plan.validated.index(done)
            for r in range(n_rep):
                rows.append(pd.DataFrame({"step": step0 + n_batches - 1, "replicate": r,
                                          "term": metric_names,
                                          "value": list(state.validation[r, j])}))  # fmt: skip
    history = pd.concat(rows, ignore_index=True)
    history["value"] = history["value"].astype(float)
    return history
