"""Fitting data-trained models to spikes: replicates vmapped, one compiled program per epoch.

The data set (B trials, T bins, N = N_in + N_out neurons, I task inputs) is
split into training and validation trials. Encoders read only the held-in
neurons; the Poisson likelihood covers every neuron of the training trials, so
held-out neurons get a readout that is judged on validation trials (co-bps).

Training is epoch-based: each epoch walks minibatches of a per-replicate
permutation of the training trials, one compiled step for all replicates (one
`vmap`). The epochs run as the training core's chunks (`ntdyn.training.core.run_chunks`:
progress, divergence checks, resumable checkpoints of the whole training state); after an
epoch the replicates are snapshotted every `checkpoint_every` epochs and validated
(Poisson NLL, roll-out error vs horizon, roll-out stability) every `validate_every` epochs.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Float, PyTree

from ntdyn.analysis.chunks import in_chunks, over_blocks, plan_trials
from ntdyn.models.data_trained import (
    DATA_MODEL_KINDS,
    SAE_GENERATORS,
    LatentEvolution,
    SequentialAutoencoder,
    data_models_from_hyperparams,
)
from ntdyn.models.generators import generator_width
from ntdyn.models.stacking import unstack
from ntdyn.resources import ChunkPlan, ResourceBudget
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
from ntdyn.training.divergence import Divergence
from ntdyn.training.keys import KeyStreams
from ntdyn.training.selection import ReplicateSelection

Array = jax.Array

TRACE_COUNTS: collections.Counter[str] = collections.Counter()

ACQUISITION_MODES = ("all_time_points", "time_aligned", "staggered_random")
CONNECTOME_MODES = ("none", "unconnected_to_zero")
TRAIN_TERMS = ("total", "reconstruction", "kl", "connectome")
# Roll-out starts evaluated at once per trial (`rollout_error`): memory per trial is this many
# roll-outs of the longest horizon, not one per start of the trial.
ROLLOUT_STARTS = 8


# ----------------------------------------------------------------------------- data


@dataclass
class SpikeTrainingData:
    """spikes (B, T, N) counts, inputs (B, T, I), train / valid: trial indices; the first
    `n_held_in` neurons are held in."""

    spikes: np.ndarray
    inputs: np.ndarray
    n_held_in: int
    train: np.ndarray
    valid: np.ndarray

    def __post_init__(self):
        if self.spikes.ndim != 3 or self.inputs.shape[:2] != self.spikes.shape[:2]:
            raise ValueError(
                f"spikes must be (B, T, N) and inputs (B, T, I) with the same B, T; got "
                f"{self.spikes.shape} and {self.inputs.shape}"
            )
        if not 0 < self.n_held_in <= self.spikes.shape[-1]:
            raise ValueError(
                f"n_held_in = {self.n_held_in}: must be in [1, {self.spikes.shape[-1]}]"
            )


def acquisition_mask(mode: str, n_steps: int, n_neurons: int, time_units: int, seed: int):
    """(T, N) bool: which neuron is observed in which bin.

    all_time_points: every bin; time_aligned: every `time_units`-th bin, all neurons
    together; staggered_random: every `time_units`-th bin, each neuron at its own
    random phase.
    """
    if mode not in ACQUISITION_MODES:
        raise ValueError(f"train__acquisition = {mode!r}: must be one of {list(ACQUISITION_MODES)}")
    t = np.arange(n_steps)[:, None]
    if mode == "all_time_points":
        return np.ones((n_steps, n_neurons), bool)
    if mode == "time_aligned":
        return np.broadcast_to(t % time_units == 0, (n_steps, n_neurons)).copy()
    phase = np.random.default_rng(seed).integers(0, time_units, n_neurons)
    return (t + phase[None]) % time_units == 0


def held_observations(spikes_in: np.ndarray, mask_in: np.ndarray, smoothing: float) -> np.ndarray:
    """Causal estimate of each held-in neuron's activity (B, T, N_in) for the encoder.

    Exponential smoothing with time constant `smoothing` bins over the observed bins only;
    between observations a neuron's last estimate is held (sample and hold).
    """
    alpha = 1.0 if smoothing <= 1 else 1.0 / smoothing
    out = np.empty_like(spikes_in, dtype=np.float32)
    s = spikes_in[:, 0].astype(np.float32) * mask_in[0]
    for t in range(spikes_in.shape[1]):
        s = np.where(mask_in[t], (1 - alpha) * s + alpha * spikes_in[:, t], s)
        out[:, t] = s
    return out


def unconnected_pairs(connected: np.ndarray) -> np.ndarray:
    """(P, 2) (i, j) index pairs with connected[i, j] False: i any neuron, j a held-in neuron."""
    return np.argwhere(~np.asarray(connected, bool)).astype(np.int32)


# ----------------------------------------------------------------------------- options


class SAEOptions(NamedTuple):
    n_held_in: int
    coordinated_dropout: float
    kl_weight: float
    kl_ramp_epochs: int


class EvolutionOptions(NamedTuple):
    n_held_in: int
    time_units: int
    evolve_multiple_steps: int
    intermediate_loss_steps: bool
    warmup_epochs: int
    aligned_starts: bool  # time_aligned: starts only at observed bins
    connectome: bool
    num_neurons: int
    loss_coeff: float


def _options(hp: dict, n_held_in: int):
    kind = hp["model__kind"]
    if kind == "latent_evolution":
        return EvolutionOptions(
            n_held_in,
            int(hp["train__time_units"]),
            int(hp["train__evolve_multiple_steps"]),
            bool(hp["train__intermediate_loss_steps"]),
            int(hp["train__warmup_epochs"]),
            hp["train__acquisition"] == "time_aligned",
            hp["train__connectome__mode"] == "unconnected_to_zero",
            int(hp["train__connectome__num_neurons"]),
            float(hp["train__connectome__loss_coeff"]),
        )
    return SAEOptions(
        n_held_in,
        float(hp.get("train__coordinated_dropout", 0.0)),
        float(hp.get("train__kl_weight", 0.0)),
        int(hp.get("train__kl_ramp_epochs", 0)),
    )


def data_model_hyperparams(
    spec: dict, *, n_held_in: int, n_held_out: int, n_inputs: int, dataset_hash: str
) -> dict:
    """A data model's flat hyperparameters plus what it is fitted to (`data__*`)."""
    return dict(spec) | {
        "data__dataset_hash": dataset_hash, "data__n_held_in": int(n_held_in),
        "data__n_held_out": int(n_held_out), "data__n_inputs": int(n_inputs),
    }  # fmt: skip


def check_data_model_hyperparams(hp: dict) -> None:
    """Clear errors for bad options, before any compute."""
    kind = hp.get("model__kind")
    if kind not in DATA_MODEL_KINDS:
        raise ValueError(f"model__kind = {kind!r}: must be one of {list(DATA_MODEL_KINDS)}")
    positive = [
        "train__n_epochs",
        "train__batch_size",
        "train__learning_rate",
        "train__n_replicates",
        "model__latent_size",
    ]
    if kind in SAE_GENERATORS:
        positive += ["model__encoder_size", "model__factor_size"]
    if SAE_GENERATORS.get(kind) == "node":
        positive += ["model__width", "model__depth", "model__dt"]
    if kind == "latent_evolution":
        positive += ["train__time_units", "train__evolve_multiple_steps"]
        if hp["train__acquisition"] not in ACQUISITION_MODES:
            raise ValueError(
                f"train__acquisition = {hp['train__acquisition']!r}: must be one of "
                f"{list(ACQUISITION_MODES)}"
            )
        if hp["train__connectome__mode"] not in CONNECTOME_MODES:
            raise ValueError(
                f"train__connectome__mode = {hp['train__connectome__mode']!r}: must "
                f"be one of {list(CONNECTOME_MODES)}"
            )
    missing = [name for name in positive if name not in hp]
    if missing:
        raise ValueError(f"model__kind = {kind!r} needs {missing}")
    for name in positive:
        if not float(hp[name]) > 0:
            raise ValueError(f"{name} = {hp[name]}: must be > 0")
    p = float(hp.get("train__coordinated_dropout", 0.0))
    if not 0 <= p < 1:
        raise ValueError(f"train__coordinated_dropout = {p}: must be in [0, 1)")


# ----------------------------------------------------------------------------- losses


def poisson_nll(log_rates: Array, counts: Array) -> Array:
    """exp(l) - y l per entry (nats, without the log y! constant)."""
    return jnp.exp(log_rates) - counts * log_rates


def sae_loss(model: SequentialAutoencoder, batch, key, epoch, opts: SAEOptions, aux):
    """Poisson NLL per entry (+ KL per entry for LFADS); coordinated dropout on held-in input."""
    y, u, _ = batch
    b, t, _ = y.shape
    n_in, p = opts.n_held_in, opts.coordinated_dropout
    k_cd, k_post = jax.random.split(key)
    keep = jax.random.bernoulli(k_cd, 1.0 - p, (b, t, n_in)).astype(y.dtype)
    x_in = y[..., :n_in] * keep / (1.0 - p)
    post_keys = jax.random.split(k_post, b) if model.variational else None
    out = jax.vmap(model)(x_in, u, post_keys) if model.variational else jax.vmap(model)(x_in, u)
    nll = poisson_nll(out.log_rates, y)
    # Coordinated dropout: held-in entries count only where the encoder did not see them.
    held_in_w = 1.0 - keep if p > 0 else jnp.ones_like(keep)
    w = jnp.concatenate([held_in_w, jnp.ones_like(nll[..., n_in:])], axis=-1)
    rec = jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
    ramp = jnp.minimum(1.0, (epoch + 1) / max(opts.kl_ramp_epochs, 1))
    kl = jnp.mean(out.kl) / (t * y.shape[-1])
    con = jnp.zeros(())
    total = rec + opts.kl_weight * ramp * kl
    return total, jnp.stack([total, rec, kl, con])


def _one_step_rates(model: LatentEvolution, x: Array, u: Array) -> Array:
    """Neuron-to-neuron one-step map: held-in activity (N_in,) -> next rates (N,)."""
    return jnp.exp(model.log_rates(model.step(model.encode(x), u)))


def connectome_penalty(model: LatentEvolution, x: Array, u: Array, pairs: Array) -> Array:
    """Mean of (d rate_i(t+1) / d x_j(t))^2 over `pairs` (K, 2) at states x (b, N_in), u (b, I)."""

    def one(x_b, u_b, pair):
        i, j = pair[0], pair[1]
        e_j = jnp.zeros_like(x_b).at[j].set(1.0)
        _, col = jax.jvp(lambda v: _one_step_rates(model, v, u_b), (x_b,), (e_j,))
        return col[i] ** 2

    per_state = jax.vmap(lambda xb, ub: jax.vmap(lambda pr: one(xb, ub, pr))(pairs))(x, u)
    return jnp.mean(per_state)


def evolution_loss(model: LatentEvolution, batch, key, epoch, opts: EvolutionOptions, aux):
    """Reconstruction at t0 plus (after warm-up) roll-out losses at tau, 2 tau, ..., m tau."""
    y, u, s = batch
    mask, pairs = aux["mask"], aux["pairs"]
    b, t, _ = y.shape
    tau, m = opts.time_units, opts.evolve_multiple_steps
    horizon = tau * m
    k_t0, k_pairs = jax.random.split(key)
    if opts.aligned_starts:
        t0 = tau * jax.random.randint(k_t0, (b,), 0, (t - 1 - horizon) // tau + 1)
    else:
        t0 = jax.random.randint(k_t0, (b,), 0, t - horizon)
    k = jnp.arange(1, horizon + 1)
    on_multiple = (k % tau == 0).astype(y.dtype)
    step_w = jnp.ones_like(on_multiple) if opts.intermediate_loss_steps else on_multiple

    def one(y_b, u_b, s_b, t0_b):
        z0 = model.encode(s_b[t0_b])
        rec = poisson_nll(model.log_rates(z0), y_b[t0_b])
        u_win = jax.lax.dynamic_slice_in_dim(u_b, t0_b, horizon)
        y_win = jax.lax.dynamic_slice_in_dim(y_b, t0_b + 1, horizon)
        m_win = jax.lax.dynamic_slice_in_dim(mask, t0_b + 1, horizon)
        zs = model.rollout(z0, u_win)
        nll = poisson_nll(jax.vmap(model.log_rates)(zs), y_win)
        w = m_win * step_w[:, None]
        return (jnp.sum(rec * mask[t0_b]), jnp.sum(mask[t0_b]), jnp.sum(nll * w), jnp.sum(w))

    rec_sum, rec_n, evo_sum, evo_n = jax.vmap(one)(y, u, s, t0)
    rec = rec_sum.sum() / jnp.maximum(rec_n.sum(), 1.0)
    evo = evo_sum.sum() / jnp.maximum(evo_n.sum(), 1.0)
    warm = (epoch >= opts.warmup_epochs).astype(y.dtype)
    con = jnp.zeros(())
    if opts.connectome:
        idx = jax.random.randint(k_pairs, (opts.num_neurons,), 0, pairs.shape[0])
        states = jax.vmap(lambda s_b, t0_b: s_b[t0_b])(s, t0)
        inputs = jax.vmap(lambda u_b, t0_b: u_b[t0_b])(u, t0)
        n_states = min(b, 8)  # a few states per step keep the Jacobian samples cheap
        con = connectome_penalty(model, states[:n_states], inputs[:n_states], pairs[idx])
    total = rec + warm * evo + opts.loss_coeff * con
    return total, jnp.stack([total, rec + warm * evo, jnp.zeros(()), con])


LOSSES = {kind: sae_loss for kind in SAE_GENERATORS} | {"latent_evolution": evolution_loss}


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


@dataclass
class DataModelInference:
    """log_rates (B, T, N); latents (B, T, G); inferred_inputs (B, T, U), the LFADS controller's
    (U = 0 for models without one): what the model infers from held-in spikes."""

    log_rates: np.ndarray
    latents: np.ndarray
    inferred_inputs: np.ndarray


# ----------------------------------------------------------------------------- trials in chunks
#
# Work over trials runs in chunks planned from the memory budget (`ntdyn.resources`): a chunk
# is a whole number of blocks of `block` trials, and one compiled program per chunk shape runs
# a `lax.map` over its blocks (`over_blocks`), so a trial's numbers depend on the block (from
# conf), never on how many blocks a chunk holds (bitwise, on CPU). The last chunk is padded
# with its last real trial (those outputs are dropped), so every chunk has the same shape:
# one compilation (`in_chunks`). Sums over trials are taken once every trial's are in.


def _infer_width(hp: dict, n_neurons: int, n_inputs: int) -> int:
    """float32 values per trial and time bin that inference holds (inputs, the model's states
    and gates, outputs)."""
    n_in, g = int(hp["data__n_held_in"]), int(hp["model__latent_size"])
    width = n_in + n_inputs + g + n_neurons  # read, task inputs, latents, log-rates
    if hp["model__kind"] == "latent_evolution":
        return width + n_in + g + int(hp["model__width"]) * int(hp["model__depth"])
    e, f = int(hp["model__encoder_size"]), int(hp["model__factor_size"])
    c = int(hp.get("model__controller_size", 0)) + 2 * int(hp.get("model__n_inferred_inputs", 0))
    gen = generator_width(SAE_GENERATORS[hp["model__kind"]], g, int(hp.get("model__width", 0)),
                          int(hp.get("model__depth", 0)))  # fmt: skip
    # GRU states and their 3 gates: encoder (both ways), controller; the generator's own
    return width + 4 * 2 * e + 4 * c + gen + 2 * f


def _sae_block(model, spikes_in, inputs):
    out = jax.vmap(model)(spikes_in, inputs)
    return out.log_rates, out.latents, out.inferred_inputs


@eqx.filter_jit
def _infer_sae_chunk(model, spikes_in, inputs, block: int):
    TRACE_COUNTS["infer_chunk"] += 1
    return over_blocks(lambda x, u: _sae_block(model, x, u), block, spikes_in, inputs)


def _evolution_block(model: LatentEvolution, held, inputs, tau: int):
    """Multiple shooting: re-encode every tau bins, evolve in between."""
    b, t, _ = held.shape
    n_seg = -(-t // tau)
    pad = n_seg * tau - t
    inputs = jnp.pad(inputs, ((0, 0), (0, pad), (0, 0)))

    def trial(h_b, u_b):
        def segment(k):
            z0 = model.encode(h_b[k * tau])
            u_seg = jax.lax.dynamic_slice_in_dim(u_b, k * tau, tau - 1) if tau > 1 else None
            if u_seg is None:
                return z0[None]
            return jnp.concatenate([z0[None], model.rollout(z0, u_seg)])

        return jax.vmap(segment)(jnp.arange(n_seg)).reshape(n_seg * tau, -1)[:t]

    z = jax.vmap(trial)(held, inputs)
    return jax.vmap(jax.vmap(model.log_rates))(z), z


@eqx.filter_jit
def _infer_evolution_chunk(model: LatentEvolution, held, inputs, tau: int, block: int):
    TRACE_COUNTS["infer_chunk"] += 1
    return over_blocks(lambda h, u: _evolution_block(model, h, u, tau), block, held, inputs)


def infer_plan(
    hp: dict, n_trials: int, n_steps: int, n_neurons: int, n_inputs: int,
    budget: ResourceBudget | None = None,
) -> ChunkPlan:  # fmt: skip
    """How `infer` cuts `n_trials` trials into chunks under `budget` (the outputs of every
    trial, log-rates and latents, are held for the whole call)."""
    per_bin = _infer_width(hp, n_neurons, n_inputs)
    g, n_inferred = int(hp["model__latent_size"]), int(hp.get("model__n_inferred_inputs", 0))
    outputs = n_trials * n_steps * (n_neurons + g) * 4
    # to the host: the held-in spikes and task inputs in; log-rates, latents, inferred inputs out
    crossing = int(hp["data__n_held_in"]) + n_inputs + n_neurons + g + n_inferred
    return plan_trials(n_trials, n_steps * per_bin * 4, budget, reserved_bytes=outputs,
                       host_bytes_per_trial=n_steps * crossing * 4,
                       what=f"trials of {hp['model__kind']} inference")  # fmt: skip


def infer(
    model, hp: dict, spikes: np.ndarray, inputs: np.ndarray, held: np.ndarray | None = None,
    *, budget: ResourceBudget | None = None,
) -> DataModelInference:  # fmt: skip
    """Rates and latents of one (unstacked) model on trials; deterministic (posterior means).

    spikes (B, T, N) of which the first data__n_held_in are read; held: the held
    observations for latent evolution (from `held_observations`, computed per chunk if None).
    Trials run in chunks sized from `budget` (default: `ResourceBudget()`); the results do
    not depend on the budget, only on its trial block.
    """
    b, t, n = spikes.shape
    n_in = int(hp["data__n_held_in"])
    plan = infer_plan(hp, b, t, n, inputs.shape[-1], budget)
    f32 = jnp.float32
    if hp["model__kind"] == "latent_evolution":
        tau = int(hp["train__time_units"])
        mask_in = _mask(hp, t, n)[:, :n_in]
        smoothing = float(hp["train__encoder_smoothing"])

        def compute(index):
            h = (
                held_observations(np.asarray(spikes[index][..., :n_in]), mask_in, smoothing)
                if held is None else held[index]
            )  # fmt: skip
            lr, z = _infer_evolution_chunk(
                model, jnp.asarray(h, f32), jnp.asarray(inputs[index], f32), tau, plan.block
            )
            return lr, z, jnp.zeros((*z.shape[:2], 0), z.dtype)  # infers no inputs
    else:

        def compute(index):
            x_in = jnp.asarray(spikes[index][..., :n_in], f32)
            return _infer_sae_chunk(model, x_in, jnp.asarray(inputs[index], f32), plan.block)

    return DataModelInference(*in_chunks(compute, plan))


def _mask(hp: dict, n_steps: int, n_neurons: int) -> np.ndarray:
    if hp["model__kind"] != "latent_evolution":
        return np.ones((n_steps, n_neurons), bool)
    return acquisition_mask(
        hp["train__acquisition"],
        n_steps,
        n_neurons,
        int(hp["train__time_units"]),
        int(hp["train__seed"]),
    )


# ----------------------------------------------------------------------------- validation


@eqx.filter_jit
def _nll_chunk(log_rates, spikes, block: int):
    """Poisson NLL summed over neurons, per trial and bin (chunk, T)."""
    TRACE_COUNTS["nll_chunk"] += 1
    return over_blocks(lambda lr, y: poisson_nll(lr, y).sum(-1), block, log_rates, spikes)


def nll_per_bin(
    log_rates: np.ndarray, spikes: np.ndarray, budget: ResourceBudget | None = None
) -> np.ndarray:
    """Poisson NLL (nats) summed over neurons, per trial and bin (B, T), in chunks."""
    b, t, n = spikes.shape
    plan = plan_trials(b, t * (2 * n + 1) * 4, budget, reserved_bytes=b * t * 4,
                       what="trials of the Poisson NLL")  # fmt: skip
    f32 = jnp.float32
    return in_chunks(
        lambda i: _nll_chunk(jnp.asarray(log_rates[i], f32), jnp.asarray(spikes[i], f32),
                             plan.block),
        plan,
    )  # fmt: skip


def rollout_error(
    model, hp: dict, spikes, inputs, held, horizons, log_rates: np.ndarray | None = None,
    *, budget: ResourceBudget | None = None, nll_bins: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Poisson NLL per observed entry at each horizon (len(horizons),) on these trials.

    Latent evolution: encoded at every tau-th bin that leaves room for the longest
    horizon, then evolved freely. Sequential autoencoders: the generator runs from
    its inferred initial state, so the horizon is the time since the trial start
    (nll_bins: `nll_per_bin` of these trials, if already computed). Trials run in chunks
    sized from `budget`; per-trial sums are added up once all are in, so the result does
    not depend on the budget.
    """
    horizons = np.asarray(horizons, int)
    b, t, n = spikes.shape
    if hp["model__kind"] != "latent_evolution":
        if nll_bins is None:
            if log_rates is None:  # the generator's roll-out is its inference
                log_rates = infer(model, hp, spikes, inputs, budget=budget).log_rates
            nll_bins = nll_per_bin(log_rates, spikes, budget)
        per_t = nll_bins.astype(np.float64).sum(0) / (b * n)
        return np.array([per_t[h] if h < t else np.nan for h in horizons])
    h_max, tau = int(horizons.max()), int(hp["train__time_units"])
    starts = np.arange(0, t - h_max, tau)
    if len(starts) == 0:
        return np.full(len(horizons), np.nan)
    if held is None:
        n_in = int(hp["data__n_held_in"])
        held = held_observations(np.asarray(spikes[..., :n_in]), _mask(hp, t, n)[:, :n_in],
                                 float(hp["train__encoder_smoothing"]))  # fmt: skip
    mask = jnp.asarray(_mask(hp, t, n), jnp.float32)
    g = int(hp["model__latent_size"])
    # the starts are rolled out ROLLOUT_STARTS at a time (lax.map), so a trial's memory does
    # not grow with its length
    per_start = h_max * (g + 4 * n)
    per_trial = min(len(starts), ROLLOUT_STARTS) * per_start + t * (2 * n + inputs.shape[-1])
    plan = plan_trials(b, per_trial * 4, budget, reserved_bytes=2 * b * h_max * 4,
                       host_bytes_per_trial=t * (2 * n + inputs.shape[-1]) * 4,
                       what="trials of the roll-out error")  # fmt: skip
    f32 = jnp.float32
    sums, counts = in_chunks(
        lambda i: _evolution_rollout_chunk(
            model, jnp.asarray(held[i], f32), jnp.asarray(inputs[i], f32),
            jnp.asarray(spikes[i], f32), mask, jnp.asarray(starts), h_max, plan.block,
        ),
        plan,
    )  # fmt: skip
    per_h = sums.astype(np.float64).sum(0) / np.maximum(counts.astype(np.float64).sum(0), 1.0)
    return per_h[horizons - 1]


@eqx.filter_jit
def _evolution_rollout_chunk(model, held, inputs, y, mask, starts, h_max: int, block: int):
    """Per trial (chunk, h_max): NLL summed over starts and observed neurons, and the count
    of observed entries, at each horizon 1..h_max."""
    TRACE_COUNTS["rollout_chunk"] += 1

    def one(h_b, u_b, y_b, t0):
        zs = model.rollout(model.encode(h_b[t0]), jax.lax.dynamic_slice_in_dim(u_b, t0, h_max))
        nll = poisson_nll(
            jax.vmap(model.log_rates)(zs), jax.lax.dynamic_slice_in_dim(y_b, t0 + 1, h_max)
        )
        m = jax.lax.dynamic_slice_in_dim(mask, t0 + 1, h_max)
        return jnp.sum(nll * m, -1), jnp.sum(m, -1)

    def trial(h_b, u_b, y_b):
        # ROLLOUT_STARTS roll-outs at once: bounded memory whatever the trial's length
        sums, counts = jax.lax.map(lambda t0: one(h_b, u_b, y_b, t0), starts,
                                   batch_size=ROLLOUT_STARTS)  # fmt: skip
        return sums.sum(0), counts.sum(0)

    return over_blocks(jax.vmap(trial), block, held, inputs, y)


def rollout_stability(
    model, hp, spikes, inputs, held, max_steps: int, factor: float,
    latents: np.ndarray | None = None, *, budget: ResourceBudget | None = None,
) -> float:  # fmt: skip
    """Median number of autonomous steps (zero input) before the state leaves a ball of
    `factor` x the largest inferred-state norm, or is non-finite (max_steps if never).
    Only the initial states (B, G) go through the roll-out, so it holds no trajectories."""
    if latents is None:  # the inferred latents of these trials
        latents = infer(model, hp, spikes, inputs, held, budget=budget).latents
    radius = factor * float(np.max(np.linalg.norm(latents, axis=-1)))
    n_inputs = inputs.shape[-1]
    steps = _steps_before_divergence(
        model, jnp.asarray(latents[:, 0]), n_inputs, max_steps, jnp.asarray(radius, jnp.float32)
    )
    return float(np.median(np.asarray(steps)))


@eqx.filter_jit
def _steps_before_divergence(model, z0, n_inputs: int, max_steps: int, radius):
    u0 = jnp.zeros(n_inputs)

    def one(z):
        def body(carry, _):
            z, alive, n = carry
            z = model.step(z, u0)
            ok = jnp.all(jnp.isfinite(z)) & (jnp.linalg.norm(z) < radius)
            alive = alive & ok
            return (z, alive, n + alive.astype(jnp.int32)), None

        (_, _, n), _ = jax.lax.scan(
            body, (z, jnp.array(True), jnp.array(0)), None, length=max_steps
        )
        return n

    return jax.vmap(one)(z0)


def validation_terms(hp: dict) -> list[str]:
    """Names of the validation metrics, in the order `validation_metrics` returns them."""
    horizons = [int(h) for h in hp["train__rollout_horizons"]]
    return ["valid_nll", "rollout_steps_stable", *(f"rollout_error_h{h}" for h in horizons)]


def validation_metrics(
    model, hp, data: SpikeTrainingData, held: np.ndarray, budget: ResourceBudget | None = None
) -> dict[str, float]:
    """NLL per entry on validation trials (all neurons, posterior means), roll-out error at each
    horizon, roll-out stability. Trials run in chunks sized from `budget`."""
    v = data.valid
    spikes, inputs, held_v = data.spikes[v], data.inputs[v], held[v]
    inf = infer(model, hp, spikes, inputs, held_v, budget=budget)
    nll_bins = nll_per_bin(inf.log_rates, spikes, budget)
    nll = float(nll_bins.astype(np.float64).sum() / spikes.size)
    horizons = [int(h) for h in hp["train__rollout_horizons"]]
    errors = rollout_error(model, hp, spikes, inputs, held_v, horizons, budget=budget,
                           nll_bins=nll_bins)  # fmt: skip
    stable = rollout_stability(
        model,
        hp,
        spikes,
        inputs,
        held_v,
        int(hp["train__rollout_max_steps"]),
        float(hp["train__rollout_divergence_factor"]),
        latents=inf.latents,
    )
    return {"valid_nll": nll, "rollout_steps_stable": stable} | {
        f"rollout_error_h{h}": float(e) for h, e in zip(horizons, errors, strict=True)
    }


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
