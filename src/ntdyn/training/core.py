"""The training core shared by every model family: compiled chunks of optax steps over a
stacked model axis, with divergence checks, history, progress and checkpoints.

A family supplies its loss, its per-model data and its (stacked) model; the core does the
rest. Models are stacked along one axis M (spread members x replicates); one
`filter_jit` program runs a scan over `n_inner` steps of all M models, and the Python
loop between chunks only records the history, advances the progress bar, checks for
divergence and writes checkpoints. Step k of model m uses the key `fold_in(keys[m], k)`,
so the numbers depend on the step index, not on where a run started: a run resumed
from a checkpoint computes exactly what the uninterrupted run computes.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jaxtyping import Array, Float, Int, Key, PyTree
from tqdm.auto import tqdm

from ntdyn.hyperparams.hashing import hyperparams_hash
from ntdyn.sharding import Devices
from ntdyn.training import divergence
from ntdyn.training.checkpoint import CheckpointConfig, Checkpointer
from ntdyn.training.divergence import DivergenceConfig, DivergenceError, DivergenceState
from ntdyn.training.keys import step_keys
from ntdyn.training.selection import ReplicateSelection, select_replicate

log = logging.getLogger(__name__)

# Models per device at least when the model axis is split across several (see run_training).
MIN_MODELS_PER_DEVICE = 2

# Counts traces of the compiled programs (a trace happens once per compilation).
TRACE_COUNTS: collections.Counter[str] = collections.Counter()


def make_optimizer(learning_rate) -> optax.GradientTransformation:
    # The learning rate lives in the optimiser state, so it can differ per model under vmap.
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


def chunk_size(n_batches: int, target: int = 25) -> int:
    """Largest divisor of n_batches not above `target`: every chunk has one shape."""
    return max(d for d in range(1, min(target, n_batches) + 1) if n_batches % d == 0)


@dataclass(frozen=True)
class Member:
    """One spread member in the stacked model axis: its replicates are models
    start .. start + n_replicates - 1. hash keys its checkpoint; label and learning_rate
    name it in errors."""

    hash: str
    label: str
    n_replicates: int
    learning_rate: float
    divergence: DivergenceConfig = DivergenceConfig()

    @classmethod
    def from_hyperparams(cls, hp: dict, label: str = "") -> Member:
        """From flattened hyperparameters (`train__divergence_factor` is 1000 when absent,
        as in records made before it existed)."""
        return cls(
            hash=hyperparams_hash(hp),
            label=label,
            n_replicates=int(hp["train__n_replicates"]),
            learning_rate=float(hp["train__learning_rate"]),
            divergence=DivergenceConfig(float(hp.get("train__divergence_factor", 1000.0))),
        )

    @property
    def name(self) -> str:
        return f"model {self.hash} ({self.label})" if self.label else f"model {self.hash}"


@dataclass(frozen=True)
class TrainingRun:
    """How the chunks run (not what they compute): n_batches steps in chunks of about
    chunk_target steps; progress bar; checkpoints (None: none written or resumed)."""

    n_batches: int
    chunk_target: int = 25
    progress: bool = True
    desc: str = "train"
    checkpoint: CheckpointConfig | None = None

    def __post_init__(self):
        if not self.n_batches >= 1 or not self.chunk_target >= 1:
            raise ValueError(f"n_batches = {self.n_batches} and chunk_target = "
                             f"{self.chunk_target}: both must be >= 1")  # fmt: skip


class TrainState(eqx.Module):
    """What chunk k + 1 needs from chunk k, every leaf with the model axis M first.

    history: per-step loss terms (M, n_batches, n_terms), filled up to the step reached;
    keys: the batch stream keys (M, 2), checkpointed with the rest.
    """

    params: PyTree
    opt_states: PyTree
    divergence: DivergenceState
    keys: Key[Array, " M"]
    history: Float[np.ndarray, "M n_batches n_terms"]  # host: filled chunk by chunk


@dataclass
class TrainResult:
    """params / opt_states: stacked (M, ...); history: (n_batches, M, n_terms) per-step loss
    terms; divergence: per model; resumed_at: the step training resumed from (0: fresh)."""

    params: PyTree
    opt_states: PyTree
    history: np.ndarray
    divergence: DivergenceState
    resumed_at: int


def optax_step(
    p: PyTree, static: PyTree, opt_state: PyTree, dv: DivergenceState, step: Int[Array, ""],
    loss: Callable, *loss_args, optimizer: optax.GradientTransformation | None = None,
):  # fmt: skip
    """One optax step of one model (inside jit): loss(model, *loss_args) -> (total, terms),
    its gradient, the divergence check (`ntdyn.training.divergence`) and the update by
    `optimizer` (default `make_optimizer`'s, its learning rate in the state). A model that
    has diverged keeps its last finite parameters and optimiser state, so no NaN flows into
    later steps. Returns (params, opt state, divergence state, terms, gradients)."""
    model = eqx.combine(p, static)
    (total, terms), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, *loss_args)
    dv = divergence.check(dv, step, total, optax.tree.norm(grads))
    optimizer = make_optimizer(0.0) if optimizer is None else optimizer
    updates, new_opt = optimizer.update(grads, opt_state, p)
    new_p = eqx.apply_updates(p, updates)
    new_p, new_opt = divergence.keep_if_alive(dv.alive, (new_p, new_opt), (p, opt_state))
    return new_p, new_opt, dv, terms, grads


@eqx.filter_jit
def train_chunk(
    params: PyTree, static: PyTree, opt_states: PyTree, div: DivergenceState, data: PyTree,
    stream_keys: Key[Array, " M"], first_step: Int[Array, ""], n_inner: int, loss: Callable,
    loss_options: tuple, leaf_norms: bool = True,
):  # fmt: skip
    """`n_inner` optax steps of all M stacked models, from step `first_step`.

    loss(model, data, key, *loss_options) -> (total, terms (n_terms,)) is a module-level
    function and loss_options hashable (shapes), so one program serves every chunk, fresh
    or resumed. A model that diverges (`ntdyn.training.divergence`) keeps its last finite
    parameters. Returns (params, opt states, divergence state, loss terms
    (n_inner, M, n_terms), gradient norm per parameter leaf at the last step (M, n_leaves)
    in `jax.tree.leaves` order; (M, 0) unless `leaf_norms`).

    leaf_norms (static): compute the per-leaf gradient norms, which only a recording needs;
    otherwise a step computes no gradient norm but the divergence check's total.
    """
    TRACE_COUNTS["train_chunk"] += 1
    n_leaves = len(jax.tree.leaves(params)) if leaf_norms else 0

    def one_model(p, opt_state, d, key, dv, step):
        new_p, new_opt, dv, terms, grads = optax_step(p, static, opt_state, dv, step, loss,
                                                      d, key, *loss_options)  # fmt: skip
        norms = [optax.tree.norm(g) for g in jax.tree.leaves(grads)] if leaf_norms else []
        return new_p, new_opt, dv, terms, jnp.stack(norms) if norms else jnp.zeros(0)

    def body(carry, step):
        p, s, dv, _ = carry
        p, s, dv, terms, norms = jax.vmap(one_model, (0, 0, 0, 0, 0, None))(
            p, s, data, step_keys(stream_keys, step), dv, step
        )
        return (p, s, dv, norms), terms

    steps = first_step + jnp.arange(n_inner)
    # the gradient norms ride in the carry: only the last step's are kept
    no_norms = jnp.zeros((stream_keys.shape[0], n_leaves))
    (params, opt_states, div, grad_norms), terms = jax.lax.scan(
        body, (params, opt_states, div, no_norms), steps
    )
    return params, opt_states, div, terms, grad_norms


def member_slices(members: list[Member]) -> list[slice]:
    starts = np.cumsum([0] + [m.n_replicates for m in members])
    return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def check_divergence(div: DivergenceState, members: list[Member]) -> None:
    """Raise `DivergenceError` for the first member whose replicates have all diverged."""
    alive = np.asarray(div.alive)
    for member, sl in zip(members, member_slices(members), strict=True):
        if not alive[sl].any():
            raise DivergenceError(member.name,
                                  divergence.divergences(div, sl.start, member.n_replicates),
                                  member.learning_rate)  # fmt: skip


def run_chunks(
    state: PyTree, members: list[Member], run: TrainingRun, n_inner: int,
    advance: Callable[[PyTree, int], tuple[PyTree, float]],
    divergence_of: Callable[[PyTree], DivergenceState], *, resumable: bool = True,
    stacked: bool = True,
) -> tuple[PyTree, int]:  # fmt: skip
    """The loop every trainer shares: chunks of `n_inner` steps up to run.n_batches, with
    resume, divergence checks, checkpoints and progress. Returns (final state, step resumed
    from (0: fresh)).

    state: everything the next chunk and the result depend on (parameters, optimiser and
    divergence state, history so far, ...), a pytree of arrays with the model axis first
    when `stacked` (members occupy its slices in order), else one member's unstacked state.
    advance(state, first) runs steps first .. first + n_inner - 1 and returns (state, loss
    shown on the progress bar); divergence_of(state) is the divergence state checked after
    every chunk (`DivergenceError` once a member has no replicate left). When
    run.checkpoint is set and `resumable`, the state is resumed from the members'
    checkpoints (logging `resumed <hash> at batch k`; restored leaves are writable host
    arrays) and written after a chunk when due and at the end.
    """
    if run.n_batches % n_inner:
        raise ValueError(f"chunks of {n_inner} steps do not divide {run.n_batches} steps")
    ckpt = None
    if run.checkpoint is not None and resumable:
        slices = member_slices(members) if stacked else [slice(None)] * len(members)
        ckpt = Checkpointer(run.checkpoint, [m.hash for m in members], slices, n_inner)
    start = 0
    if ckpt is not None and (found := ckpt.load(state)) is not None:
        start, restored = found
        state = jax.tree.map(np.array, restored)
        for m in members:
            log.info("resumed %s at batch %d", m.hash, start)
    with tqdm(total=run.n_batches, initial=start, desc=run.desc, unit="batch",
              disable=not run.progress) as bar:  # fmt: skip
        for first in range(start, run.n_batches, n_inner):
            state, shown = advance(state, first)
            done = first + n_inner
            check_divergence(divergence_of(state), members)
            if ckpt is not None and (done == run.n_batches or ckpt.due()):
                ckpt.save(done, state)
            bar.update(n_inner)
            bar.set_postfix(loss=f"{shown:.3g}")
    return state, start


def run_training(
    params: PyTree, static: PyTree, data: PyTree, keys: Key[Array, " M"], members: list[Member],
    run: TrainingRun, *, n_terms: int, loss: Callable, loss_options: tuple,
    learning_rates: Float[Array, " M"], on_chunk: Callable | None = None,
    devices: Devices | None = None,
) -> TrainResult:  # fmt: skip
    """Train the stacked models `eqx.combine(params, static)` for run.n_batches steps.

    data: per-model data with a leading axis M (the loss's second argument); keys: each
    model's batch stream key (M, 2); members: who occupies the model axis, in order.
    Resumes from the members' checkpoints when run.checkpoint has them (logging
    `resumed <hash> at batch k`); writes checkpoints as configured. on_chunk(steps_done,
    params, grad_norms), if given, is called after every chunk (recording a trace; the
    per-leaf gradient norms are computed only then); a trace cannot be resumed, so
    checkpoints are then neither read nor written.
    Raises `DivergenceError` as soon as every replicate of a member has diverged.
    devices: the local devices the model axis is split across (default: all), padded to a
    multiple of their count with copies of the last model (dropped from the result), two
    models at least on each; every device trains its models with the one-device program,
    so the numbers are those of one device, bitwise (tests/test_sharding.py).
    """
    n_inner = chunk_size(run.n_batches, run.chunk_target)
    factors = jnp.concatenate([jnp.full(m.n_replicates, m.divergence.factor) for m in members])
    if factors.shape[0] != keys.shape[0]:
        raise ValueError(f"members hold {factors.shape[0]} models, keys {keys.shape[0]}")
    # The model axis split across the devices (ntdyn.sharding); each device runs train_chunk
    # on its models (`DevicePlan.on_each_device`). Checkpoints hold the real models only. Two
    # models at least per device: XLA drops a model axis of one, and its CPU dot kernels then
    # round the last bit differently from the stacked program's (measured: 1 ulp at step 0).
    plan, n_models = (devices or Devices()).plan(), keys.shape[0]
    n_padded = plan.padded(n_models, MIN_MODELS_PER_DEVICE)
    params, data, keys, learning_rates, factors = plan.place(
        plan.pad((params, data, keys, learning_rates, factors), n_models, MIN_MODELS_PER_DEVICE)
    )
    # placed too: leaves made from constants (Adam's step counts) are on one device else
    opt_states, div = plan.place((
        jax.vmap(lambda p, lr: make_optimizer(lr).init(p))(params, learning_rates),
        divergence.initial_state(factors),
    ))  # fmt: skip
    state = TrainState(params, opt_states, div, keys,
                       np.zeros((n_padded, run.n_batches, n_terms), np.float32))  # fmt: skip

    def placed(state: TrainState) -> TrainState:
        """A state resumed from checkpoints (the real models, host arrays) padded and placed
        as the initial one."""
        if not plan.active or not isinstance(state.keys, np.ndarray):
            return state
        state = plan.pad(state, n_models, MIN_MODELS_PER_DEVICE)
        return eqx.tree_at(lambda s: (s.params, s.opt_states, s.divergence, s.keys), state,
                           plan.place((state.params, state.opt_states, state.divergence,
                                       state.keys)))  # fmt: skip

    def advance(state: TrainState, first: int) -> tuple[TrainState, float]:
        args = (state.params, static, state.opt_states, state.divergence, data, state.keys,
                jnp.asarray(first), n_inner, loss, loss_options, on_chunk is not None)  # fmt: skip
        if plan.active:  # every device runs the one-device program on its models
            parts = plan.on_each_device(train_chunk, *args)
            params, opt_states, div, grad_norms = plan.joined(
                [(p, s, d, g) for p, s, d, _, g in parts]
            )
            terms = np.concatenate([np.asarray(part[3]) for part in parts], axis=1)
        else:
            params, opt_states, div, terms, grad_norms = train_chunk(*args)
        done = first + n_inner
        state.history[:, first:done] = np.swapaxes(np.asarray(terms), 0, 1)  # host, in place
        if on_chunk is not None:
            on_chunk(done, params, grad_norms)
        state = TrainState(params, opt_states, div, state.keys, state.history)
        return state, float(np.nanmedian(state.history[:, done - 1, 0]))

    if on_chunk is not None and plan.active:
        given = on_chunk
        on_chunk = lambda done, p, g: given(done, *plan.unpad((p, g), n_models))  # noqa: E731
    state, start = run_chunks(state, members, run, n_inner,
                              lambda state, first: advance(placed(state), first),
                              lambda s: s.divergence, resumable=on_chunk is None)  # fmt: skip
    state = plan.unpad(state, n_models)
    history = np.swapaxes(state.history, 0, 1)  # (n_batches, M, n_terms)
    return TrainResult(state.params, state.opt_states, history, state.divergence, start)


def history_table(history: np.ndarray, terms: tuple[str, ...]) -> pd.DataFrame:
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


@eqx.filter_jit
def validation_losses(
    params: PyTree, static: PyTree, data: PyTree, key: Key[Array, ""], loss: Callable,
    loss_options: tuple,
) -> Float[Array, " M"]:  # fmt: skip
    """Total loss of each stacked model on the same validation batch (`key`), (M,)."""
    TRACE_COUNTS["validation"] += 1
    return jax.vmap(lambda p, d: loss(eqx.combine(p, static), d, key, *loss_options)[0])(
        params, data
    )


def select_member(
    validation_loss: np.ndarray, div: DivergenceState, sl: slice, n_std_exclude: float
) -> tuple[ReplicateSelection, tuple[divergence.Divergence, ...]]:
    """Replicate selection of the member at `sl` of the model axis, its diverged replicates
    excluded (and returned, to be recorded with the model)."""
    diverged = divergence.divergences(div, sl.start, sl.stop - sl.start)
    selection = select_replicate(np.asarray(validation_loss), n_std_exclude,
                                 diverged=tuple(d.replicate for d in diverged))  # fmt: skip
    return selection, diverged
