"""Task-trained source systems for the task-vs-data comparison: their latents and their map.

A source is a trained network whose hidden states are the "true latents" the
spiking simulator reads. Each kind gives (for one selected replicate):
latents (B, T, H) and the network inputs (B, T, I) on fresh trials drawn with
an evaluation seed, and the noise-free one-step map h -> F(h, u) whose fixed
points are compared with the data-trained model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ntdyn.analysis.chunks import in_chunks, over_blocks, plan_trials
from ntdyn.models.closed_loop import delay_buffer_for, loop_params, simulate_trial
from ntdyn.models.stacking import unstack  # noqa: F401 (re-exported for sources' users)
from ntdyn.resources import ResourceBudget
from ntdyn.tasks.flipflop import FlipFlopVariant, sample_flipflop
from ntdyn.tasks.multitask import MultiTaskConfig, sample_multitask
from ntdyn.tasks.reaching import pert_params, sample_training_trials

SOURCE_KINDS = ("flipflop", "reaching", "multitask")


@dataclass
class SourceActivity:
    """latents (B, T, H) hidden states; inputs (B, T, I) what the network received;
    rest_input (I,) the input at which its fixed points are sought; trial_lengths (B,) the
    steps each trial lasts, where trials end before the array does (MultiTask), else None."""

    latents: np.ndarray
    inputs: np.ndarray
    rest_input: np.ndarray
    trial_lengths: np.ndarray | None = None


class CellStep(eqx.Module):
    """h -> cell(u, h): a source's noise-free one-step map (a JAX function of (h, u))."""

    cell: eqx.Module

    def __call__(self, h: jax.Array, u: jax.Array) -> jax.Array:
        return self.cell(u, h)


# Module-level compiled programs (the model is an argument): one compilation per shape.
@eqx.filter_jit
def _flipflop_chunk(model, inputs, keys, noise_std, block: int):
    def one_block(x, k):
        return eqx.filter_vmap(lambda xi, ki: model(xi, ki, noise_std)[1])(x, k)

    return over_blocks(one_block, block, inputs, keys)


@eqx.filter_jit
def _reaching_chunk(controller, params, trials, keys, delay_buffer: int, block: int):
    def one_block(block_trials, block_keys):
        traj = jax.vmap(
            lambda t, k: simulate_trial(controller, params, t, k, delay_buffer=delay_buffer)
        )(block_trials, block_keys)
        n, k_steps = traj.feedback.shape[:2]
        parts = [jnp.broadcast_to(block_trials.goal[:, None], (n, k_steps, 2)), traj.feedback]
        if controller.sisu_input:
            parts.append(block_trials.sisu[..., None])
        return traj.hidden, jnp.concatenate(parts, axis=-1)

    return over_blocks(one_block, block, trials, keys)


def flipflop_activity(
    model, hp: dict, n_trials: int, seed: int, budget: ResourceBudget | None = None
) -> SourceActivity:
    """Hidden states of one flip-flop GRU (`FlipFlopRNN`) on fresh NBFF trials, with its
    noise (trial i's key is the i-th of the split noise key), run in chunks sized from
    `budget` (default `ResourceBudget()`)."""
    k_task, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    n_steps, n_bits = int(hp["task__n_steps"]), int(hp["task__n_bits"])
    variant = FlipFlopVariant.from_hyperparams(hp)  # its trials are those it was trained on
    batch = sample_flipflop(
        k_task, batch_size=n_trials, n_steps=n_steps, n_bits=n_bits,
        p_pulse=float(hp["task__p_pulse"]), input_noise_std=float(hp["task__input_noise_std"]),
        target_coding=variant.target_coding, quiet_steps=variant.quiet_steps,
    )  # fmt: skip
    inputs = np.asarray(batch.inputs)
    keys = np.asarray(jax.random.split(k_noise, n_trials))
    noise_std = jnp.asarray(hp["model__hidden_noise_std"], jnp.float32)
    h = int(model.hidden_size)
    plan = plan_trials(n_trials, n_steps * (2 * n_bits + 5 * h) * 4, budget,
                       reserved_bytes=n_trials * n_steps * (h + n_bits) * 4,
                       host_bytes_per_trial=n_steps * (n_bits + h) * 4,
                       what="trials of the flip-flop source")  # fmt: skip
    hidden = in_chunks(
        lambda i: _flipflop_chunk(model, inputs[i], keys[i], noise_std, plan.block), plan
    )
    return SourceActivity(hidden, inputs, np.zeros(n_bits))


def multitask_activity(
    model, config: MultiTaskConfig, hidden_noise_std: float, n_trials: int, seed: int,
    budget: ResourceBudget | None = None,
) -> SourceActivity:  # fmt: skip
    """Hidden states of one MultiTask GRU (`FlipFlopRNN` with 20 inputs, 3 outputs) on fresh
    trials of its tasks (in turn, from the seed), with its hidden noise, run in chunks sized
    from `budget`. inputs: the noisy inputs the network read (zero after each trial's end);
    rest_input: zeros (fixation off, no stimulus, no rule), where its fixed points are sought.
    """
    k_task, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    batch = sample_multitask(k_task, batch_size=n_trials, config=config)
    inputs = np.asarray(batch.inputs)
    keys = np.asarray(jax.random.split(k_noise, n_trials))
    noise_std = jnp.asarray(hidden_noise_std, jnp.float32)
    n_steps, n_in, h = config.n_timesteps, config.n_inputs, int(model.hidden_size)
    plan = plan_trials(n_trials, n_steps * (n_in + config.n_outputs + 5 * h) * 4, budget,
                       reserved_bytes=n_trials * n_steps * (h + n_in) * 4,
                       host_bytes_per_trial=n_steps * (n_in + h) * 4,
                       what="trials of the MultiTask source")  # fmt: skip
    # the flip-flop's program: the same network class, other input and output sizes
    hidden = in_chunks(
        lambda i: _flipflop_chunk(model, inputs[i], keys[i], noise_std, plan.block), plan
    )
    # the response ends the trial (epochs[:, 6]); the steps after it are padding
    return SourceActivity(hidden, inputs, np.zeros(n_in), np.asarray(batch.epochs[:, 6]))


def reaching_activity(
    controller, hp: dict, n_trials: int, seed: int, budget: ResourceBudget | None = None
) -> SourceActivity:
    """Hidden states of one reaching controller on random reaches (its training
    distribution), run in chunks sized from `budget` (trial i's noise key is the i-th of the
    split noise key).

    inputs: what the network read each step, [goal (2), delayed noisy feedback (4)] (+ SISU).
    """
    k_trials, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    n_steps = int(hp["task__n_steps"])
    trials = sample_training_trials(
        k_trials, pert_params(hp), batch_size=n_trials, n_steps=n_steps,
        workspace=jnp.asarray(hp["task__workspace"], jnp.float32),
    )  # fmt: skip
    trials = jax.tree.map(np.asarray, trials)
    keys = np.asarray(jax.random.split(k_noise, n_trials))
    buffer = delay_buffer_for([hp["task__feedback__delay"]])
    params = loop_params(hp)
    h, n_in = int(controller.hidden_size), 6 + int(controller.sisu_input)
    # per step: hidden (and its gates), state, command, control, field, feedback, the inputs,
    # the trial's per-step arrays (sisu, feedback offset) and the delayed-state buffer
    per_step = 5 * h + 4 + 2 + 2 + 2 + 4 + n_in + 5 + 4 * buffer / max(n_steps, 1)
    plan = plan_trials(n_trials, n_steps * per_step * 4, budget,
                       reserved_bytes=n_trials * n_steps * (h + n_in) * 4,
                       # the trial's per-step arrays in, hidden states and inputs out
                       host_bytes_per_trial=n_steps * (h + 2 * n_in + 5) * 4,
                       what="trials of the reaching source")  # fmt: skip
    hidden, inputs = in_chunks(
        lambda i: _reaching_chunk(
            controller, params, jax.tree.map(lambda x: x[i], trials), keys[i], buffer, plan.block
        ),
        plan,
    )  # fmt: skip
    return SourceActivity(hidden, inputs, np.zeros(inputs.shape[-1]))


def source_step(kind: str, model) -> CellStep:
    """The one-step map of an unstacked source model of `kind`."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"source kind = {kind!r}: must be one of {list(SOURCE_KINDS)}")
    return CellStep(model.cell)


def connectivity_from_jacobian(
    jacobian: np.ndarray, readout: np.ndarray, held_in: np.ndarray, density: float
) -> np.ndarray:
    """Known neuron-to-neuron connectivity (N, N_in) bool derived from a source's Jacobian.

    Neuron i reads latent readout[i]; i is said to receive from held-in neuron j when
    |dh_{readout[i]}(t+1) / dh_{readout[j]}(t)| is among the largest `density` share
    of the source Jacobian's entries (H, H). Pairs outside it are "unconnected".
    """
    if not 0 < density <= 1:
        raise ValueError(f"connectome density = {density}: must be in (0, 1]")
    mag = np.abs(np.asarray(jacobian))
    threshold = np.quantile(mag, 1.0 - density)
    links = mag >= threshold  # (H, H): row receives from column
    readout = np.asarray(readout)
    return links[np.ix_(readout, readout[np.asarray(held_in)])]


def source_connectivity(
    step, latents: np.ndarray, rest_input: np.ndarray, readout: np.ndarray, held_in: np.ndarray,
    density: float,
) -> np.ndarray:  # fmt: skip
    """Known (N, N_in) connectivity from the source's Jacobian at its mean state (rest input)."""
    h = np.asarray(latents).reshape(-1, latents.shape[-1]).mean(axis=0)
    jac = jax.jacfwd(step)(jnp.asarray(h, jnp.float32), jnp.asarray(rest_input, jnp.float32))
    return connectivity_from_jacobian(np.asarray(jac), readout, held_in, density)
