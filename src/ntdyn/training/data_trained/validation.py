"""Validation metrics of a data model on held-out trials: Poisson NLL, roll-out error vs
horizon, roll-out stability; over trials in chunks planned from the memory budget."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ntdyn.analysis.chunks import in_chunks, over_blocks, plan_trials
from ntdyn.resources import ResourceBudget
from ntdyn.training.data_trained.data import SpikeTrainingData, _mask, held_observations
from ntdyn.training.data_trained.inference import infer
from ntdyn.training.data_trained.losses import poisson_nll
from ntdyn.training.data_trained.trace_counts import TRACE_COUNTS

# Roll-out starts evaluated at once per trial (`rollout_error`): memory per trial is this many
# roll-outs of the longest horizon, not one per start of the trial.
ROLLOUT_STARTS = 8


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
