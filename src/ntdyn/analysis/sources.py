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

from ntdyn.models.closed_loop import delay_buffer_for, loop_params, simulate_batch
from ntdyn.models.stacking import unstack  # noqa: F401 (re-exported for sources' users)
from ntdyn.tasks.flipflop import sample_flipflop
from ntdyn.tasks.reaching import pert_params, sample_training_trials

SOURCE_KINDS = ("flipflop", "reaching")


@dataclass
class SourceActivity:
    """latents (B, T, H) hidden states; inputs (B, T, I) what the network received;
    rest_input (I,) the input at which its fixed points are sought."""

    latents: np.ndarray
    inputs: np.ndarray
    rest_input: np.ndarray


class CellStep(eqx.Module):
    """h -> cell(u, h): a source's noise-free one-step map (a JAX function of (h, u))."""

    cell: eqx.Module

    def __call__(self, h: jax.Array, u: jax.Array) -> jax.Array:
        return self.cell(u, h)


# Module-level compiled programs (the model is an argument): one compilation per shape.
@eqx.filter_jit
def _run_flipflop(model, inputs, keys, noise_std):
    return eqx.filter_vmap(lambda x, k: model(x, k, noise_std))(inputs, keys)


_simulate_batch = eqx.filter_jit(simulate_batch)


def flipflop_activity(model, hp: dict, n_trials: int, seed: int) -> SourceActivity:
    """Hidden states of one flip-flop GRU (`FlipFlopRNN`) on fresh NBFF trials, with its noise."""
    k_task, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    batch = sample_flipflop(
        k_task,
        batch_size=n_trials,
        n_steps=int(hp["task__n_steps"]),
        n_bits=int(hp["task__n_bits"]),
        p_pulse=float(hp["task__p_pulse"]),
        input_noise_std=float(hp["task__input_noise_std"]),
    )
    keys = jax.random.split(k_noise, n_trials)
    noise_std = jnp.asarray(hp["model__hidden_noise_std"], jnp.float32)
    _, hidden = _run_flipflop(model, batch.inputs, keys, noise_std)
    return SourceActivity(
        np.asarray(hidden), np.asarray(batch.inputs), np.zeros(batch.inputs.shape[-1])
    )


def reaching_activity(controller, hp: dict, n_trials: int, seed: int) -> SourceActivity:
    """Hidden states of one reaching controller on random reaches (its training distribution).

    inputs: what the network read each step, [goal (2), delayed noisy feedback (4)] (+ SISU).
    """
    k_trials, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    n_steps = int(hp["task__n_steps"])
    trials = sample_training_trials(
        k_trials,
        pert_params(hp),
        batch_size=n_trials,
        n_steps=n_steps,
        workspace=jnp.asarray(hp["task__workspace"], jnp.float32),
    )
    buffer = delay_buffer_for([hp["task__feedback__delay"]])
    traj = _simulate_batch(controller, loop_params(hp), trials, k_noise, delay_buffer=buffer)
    goal = jnp.broadcast_to(trials.goal[:, None], (n_trials, n_steps, 2))
    parts = [goal, traj.feedback] + ([trials.sisu[..., None]] if controller.sisu_input else [])
    inputs = np.asarray(jnp.concatenate(parts, axis=-1))
    return SourceActivity(np.asarray(traj.hidden), inputs, np.zeros(inputs.shape[-1]))


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
