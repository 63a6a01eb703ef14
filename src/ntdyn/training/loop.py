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
import optax
import pandas as pd
from tqdm.auto import tqdm

from ntdyn.hyperparams.hashing import hyperparams_hash
from ntdyn.models.closed_loop import (
    LoopParams,
    delay_buffer_for,
    loop_params,
    simulate_batch,
)
from ntdyn.models.controller import Controller, ensemble_from_hyperparams
from ntdyn.tasks.reaching import (
    COST_TERMS,
    CostWeights,
    PertParams,
    cost_weights,
    pert_params,
    reach_cost,
    sample_training_trials,
)
from ntdyn.training.selection import ReplicateSelection, select_replicate

# Counts traces of the compiled programs (a trace happens once per compilation).
TRACE_COUNTS: collections.Counter[str] = collections.Counter()

# Independent random streams under one training seed.
STREAM_INIT, STREAM_BATCHES, STREAM_VALIDATION = 0, 1, 2

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
    excluded replicates by validation loss.
    """

    hyperparams: dict
    hash: str
    model: Controller
    history: pd.DataFrame
    selection: ReplicateSelection
    trace: dict[str, pd.DataFrame] | None = None  # recorded weights and activity, if asked


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


def make_optimizer(learning_rate) -> optax.GradientTransformation:
    # The learning rate lives in the optimiser state, so it can differ per model under vmap.
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


def batch_loss(
    model: Controller,
    data: ModelData,
    key: jax.Array,
    *,
    batch_size: int,
    n_steps: int,
    delay_buffer: int,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean cost over a fresh batch of random reaches; returns (total, terms)."""
    k_trials, k_noise = jax.random.split(key)
    trials = sample_training_trials(
        k_trials, data.pert, batch_size=batch_size, n_steps=n_steps, workspace=data.workspace
    )
    traj = simulate_batch(model, data.loop, trials, k_noise, delay_buffer=delay_buffer)
    terms = jax.vmap(reach_cost, (0, 0, 0, 0, 0, None))(
        traj.state[..., :2], traj.state[..., 2:], traj.control, traj.hidden, trials.goal, data.cost
    )
    terms = {k: v.mean() for k, v in terms.items()}
    return terms["total"], terms


def reaching_loss(model: Controller, data: ModelData, key, batch_size, n_steps, delay_buffer):
    """`batch_loss` with its terms stacked in COST_TERMS order, for `train_chunk`."""
    total, terms = batch_loss(
        model, data, key, batch_size=batch_size, n_steps=n_steps, delay_buffer=delay_buffer
    )
    return total, jnp.stack([terms[t] for t in COST_TERMS])


@eqx.filter_jit
def train_chunk(
    params, static, opt_states, data, stream_keys: jax.Array, first_step: jax.Array,
    n_inner: int, loss, loss_options: tuple,
):  # fmt: skip
    """`n_inner` Adam steps of all M stacked models.

    loss(model, data, key, *loss_options) -> (total, terms (n_terms,)) is a module-level
    function and loss_options hashable (shapes), so one program serves every chunk.
    Returns (params, opt states, loss terms of shape (n_inner, M, n_terms), gradient
    norm per parameter leaf at the last step (M, n_leaves), in `jax.tree.leaves` order).
    """
    TRACE_COUNTS["train_chunk"] += 1

    def one_model(p, opt_state, d, key):
        model = eqx.combine(p, static)
        grads, terms = eqx.filter_grad(loss, has_aux=True)(model, d, key, *loss_options)
        updates, opt_state = make_optimizer(0.0).update(grads, opt_state, p)
        leaf_norms = jnp.stack([jnp.sqrt(jnp.sum(g**2)) for g in jax.tree.leaves(grads)])
        return eqx.apply_updates(p, updates), opt_state, terms, leaf_norms

    def body(carry, step):
        p, s, _ = carry
        keys = jax.vmap(jax.random.fold_in, (0, None))(stream_keys, step)
        p, s, terms, leaf_norms = jax.vmap(one_model)(p, s, data, keys)
        return (p, s, leaf_norms), terms

    steps = first_step + jnp.arange(n_inner)
    # the gradient norms ride in the carry: only the last step's are kept
    no_norms = jnp.zeros((stream_keys.shape[0], len(jax.tree.leaves(params))))
    (params, opt_states, grad_norms), terms = jax.lax.scan(
        body, (params, opt_states, no_norms), steps
    )
    return params, opt_states, terms, grad_norms


def run_chunks(
    params, static, opt_states, data, keys: jax.Array, *, n_batches: int, n_terms: int,
    loss, loss_options: tuple, progress: bool, desc: str, chunk_target: int = 25,
    on_chunk=None,
):  # fmt: skip
    """All batches in equal chunks of one compiled program, with a progress bar.

    on_chunk(steps_done, params, grad_norms), if given, is called after every chunk
    (recording; grad_norms (M, n_leaves) of the chunk's last step).
    Returns (params, opt states, history (n_batches, M, n_terms) of per-step loss terms).
    """
    n_inner = chunk_size(n_batches, chunk_target)
    history = np.empty((n_batches, keys.shape[0], n_terms), np.float32)
    with tqdm(total=n_batches, desc=desc, unit="batch", disable=not progress) as bar:
        for start in range(0, n_batches, n_inner):
            params, opt_states, terms, grad_norms = train_chunk(
                params, static, opt_states, data, keys, jnp.asarray(start), n_inner, loss,
                loss_options,
            )  # fmt: skip
            history[start : start + n_inner] = np.asarray(terms)
            if on_chunk is not None:
                on_chunk(start + n_inner, params, grad_norms)
            bar.update(n_inner)
            bar.set_postfix(loss=f"{float(np.median(history[start + n_inner - 1, :, 0])):.3g}")
    return params, opt_states, history


@eqx.filter_jit
def validation_losses(params, static, data: ModelData, key, batch_size, n_steps, delay_buffer):
    """Total loss of each stacked model on the same validation batch; (M,)."""
    TRACE_COUNTS["validation"] += 1

    def one(p, d):
        total, _ = batch_loss(
            eqx.combine(p, static),
            d,
            key,
            batch_size=batch_size,
            n_steps=n_steps,
            delay_buffer=delay_buffer,
        )
        return total

    return jax.vmap(one)(params, data)


def chunk_size(n_batches: int, target: int = 25) -> int:
    """Largest divisor of n_batches not above `target`: every chunk has one shape."""
    return max(d for d in range(1, min(target, n_batches) + 1) if n_batches % d == 0)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def train_group(
    rows: list[dict], *, progress: bool = True, chunk_target: int = 25, record_every: int = 0
) -> list[TrainedEnsemble]:
    """Train models sharing one static signature in one compiled program.

    rows: flattened hyperparameters, one dict per spread member. record_every = k > 0
    keeps every k steps all weights (a host copy at the end of each k-step chunk) and
    each unit's activity on fixed probe reaches (`ntdyn.training.recording`'s tables).
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
    n_reps = [int(r["train__n_replicates"]) for r in rows]

    models, datas, stream_keys = [], [], []
    for hp, n_rep in zip(rows, n_reps, strict=True):
        root = jax.random.PRNGKey(int(hp["train__seed"]))
        reps = jnp.arange(n_rep)
        init_keys = jax.vmap(jax.random.fold_in, (None, 0))(
            jax.random.fold_in(root, STREAM_INIT), reps
        )
        models.append(ensemble_from_hyperparams(hp, init_keys))
        datas.append(_stack([model_data(hp)] * n_rep))
        stream_keys.append(
            jax.vmap(jax.random.fold_in, (None, 0))(jax.random.fold_in(root, STREAM_BATCHES), reps)
        )
    concat = lambda trees: jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)  # noqa: E731
    params, static = eqx.partition(concat(models), eqx.is_array)
    data = concat(datas)
    keys = jnp.concatenate(stream_keys)
    opt_states = jax.vmap(lambda p, lr: make_optimizer(lr).init(p))(params, data.learning_rate)

    snapshots: list[tuple[int, object, np.ndarray]] = []  # (step, params, grad norms)
    if record_every:
        if n_batches % record_every:
            raise ValueError(
                f"training_options.record_every = {record_every}: must divide "
                f"train__n_batches = {n_batches}"
            )
        chunk_target = record_every  # chunks of exactly k steps: one snapshot per chunk

    params, opt_states, history = run_chunks(
        params, static, opt_states, data, keys, n_batches=n_batches, n_terms=len(COST_TERMS),
        loss=reaching_loss, loss_options=(batch_size, n_steps, delay_buffer), progress=progress,
        desc=f"train {len(rows)} member(s) x replicates = {keys.shape[0]} models",
        chunk_target=chunk_target,
        on_chunk=(lambda step, p, g: snapshots.append((step, *jax.device_get((p, g)))))
        if record_every else None,
    )  # fmt: skip

    # Validation trials come from their own stream, shared by all replicates of a member.
    results, offset = [], 0
    trained = eqx.combine(params, static)
    for hp, n_rep in zip(rows, n_reps, strict=True):
        sl = slice(offset, offset + n_rep)
        member = jax.tree.map(lambda x: x[sl], trained)  # noqa: B023
        member_params = jax.tree.map(lambda x: x[sl], params)  # noqa: B023
        val_key = jax.random.fold_in(jax.random.PRNGKey(int(hp["train__seed"])), STREAM_VALIDATION)
        val = validation_losses(
            member_params, static, jax.tree.map(lambda x: x[sl], data), val_key,  # noqa: B023
            batch_size, n_steps, delay_buffer,
        )  # fmt: skip
        selection = select_replicate(np.asarray(val), float(hp["train__n_std_exclude"]))
        trace = None
        if snapshots:
            from ntdyn.training.recording import controller_trace  # no cycle at import time

            trace = controller_trace(
                [(step, jax.tree.map(lambda x: x[sl], p), g[sl])  # noqa: B023
                 for step, p, g in snapshots],
                static, hp, history[:, sl],
            )  # fmt: skip
        results.append(
            TrainedEnsemble(
                hyperparams=dict(hp),
                hash=hyperparams_hash(hp),
                model=member,
                history=history_table(history[:, sl]),
                selection=selection,
                trace=trace,
            )
        )
        offset += n_rep
    return results


def history_table(history: np.ndarray, terms: tuple[str, ...] = COST_TERMS) -> pd.DataFrame:
    """Long table (step, replicate, term, value) from a (steps, R, terms) array."""
    n_steps, n_rep, n_terms = history.shape
    step, rep, term = np.meshgrid(
        np.arange(n_steps), np.arange(n_rep), np.arange(n_terms), indexing="ij"
    )
    return pd.DataFrame(
        {
            "step": step.ravel(),
            "replicate": rep.ravel(),
            "term": np.asarray(terms)[term.ravel()],
            "value": history.ravel().astype(float),
        }
    )


def train_sweep(
    rows: list[dict], *, progress: bool = True, record_every: int = 0
) -> list[TrainedEnsemble]:
    """Train every member of a sweep, one compiled program per static signature.

    Returns the ensembles in the order of `rows` (with a training trace when
    record_every > 0, see `train_group`).
    """
    groups: dict[tuple, list[int]] = collections.defaultdict(list)
    for i, hp in enumerate(rows):
        groups[static_signature(hp)].append(i)
    out: list[TrainedEnsemble | None] = [None] * len(rows)
    for idx in groups.values():
        for i, result in zip(
            idx,
            train_group([rows[i] for i in idx], progress=progress, record_every=record_every),
            strict=True,
        ):
            out[i] = result
    return out  # type: ignore[return-value]


def projected_seconds(batches_per_second: float, n_batches: int = 10_000) -> float:
    """Wall time for `n_batches` at a measured rate (for benchmarks)."""
    return math.inf if batches_per_second <= 0 else n_batches / batches_per_second
