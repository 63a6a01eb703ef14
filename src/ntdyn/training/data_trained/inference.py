"""What a data model infers from held-in spikes (rates, latents, inferred inputs), over trials
in chunks planned from the memory budget."""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ntdyn.analysis.chunks import in_chunks, over_blocks, plan_trials
from ntdyn.models.data_trained import SAE_GENERATORS, LatentEvolution
from ntdyn.models.generators import generator_width
from ntdyn.resources import ChunkPlan, ResourceBudget
from ntdyn.training.data_trained.data import _mask, held_observations
from ntdyn.training.data_trained.trace_counts import TRACE_COUNTS


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
