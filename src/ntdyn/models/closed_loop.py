"""Closed loop: controller -> noisy muscles -> point mass under a field -> delayed noisy feedback.

Per step k (0-based), with x_k the plant state the controller can see:
    y_k = x_{k - delay} + eps + offset_k           eps ~ N(0, sigma_s^2)
    h_{k+1} = mask * (cell([goal, y_k, sisu_k], h_k) + drive_k)    (interventions optional)
    o_k = W h_{k+1} + b
    u_k = (1 + zeta) o_k + xi                       zeta ~ N(0, sigma_m^2), xi ~ N(0, sigma_a^2)
    x_{k+1} = Euler(x_k, u_k + f_pert(x_k))
Row k of every output is step k+1: the state after the step, the hidden state that
commanded it, the control force applied during it.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.controller import Controller
from ntdyn.models.plant import PlantParams, curl_force, euler_step
from ntdyn.tasks.reaching import Trial


class LoopParams(NamedTuple):
    """Per-model constants of the loop (scalars; a leading model axis under vmap)."""

    plant: PlantParams
    feedback_delay: Array  # int, steps
    feedback_noise_std: Array  # sigma_s
    motor_noise_std: Array  # sigma_a, N
    motor_mult_noise_std: Array  # sigma_m


def loop_params(hp: dict) -> LoopParams:
    """LoopParams from flattened hyperparameters (`task__*`)."""
    f32 = jnp.float32
    return LoopParams(
        plant=PlantParams(
            mass=jnp.asarray(hp["task__mass"], f32),
            damping=jnp.asarray(hp["task__damping"], f32),
            dt=jnp.asarray(hp["task__dt"], f32),
        ),
        feedback_delay=jnp.asarray(hp["task__feedback__delay"], jnp.int32),
        feedback_noise_std=jnp.asarray(hp["task__feedback__noise_std"], f32),
        motor_noise_std=jnp.asarray(hp["task__motor__noise_std"], f32),
        motor_mult_noise_std=jnp.asarray(hp["task__motor__mult_noise_std"], f32),
    )


class Trajectory(eqx.Module):
    """Outputs of one trial; K steps, H hidden units.

    state: (K, 4) [p, v] after each step. hidden: (K, H). command: (K, 2) network
    output o. control: (K, 2) noisy control force u (N). field: (K, 2) field force
    (N). feedback: (K, 4) what the controller observed.
    """

    state: Float[Array, "K 4"]
    hidden: Float[Array, "K H"]
    command: Float[Array, "K 2"]
    control: Float[Array, "K 2"]
    field: Float[Array, "K 2"]
    feedback: Float[Array, "K 4"]


def simulate_trial(
    controller: Controller,
    params: LoopParams,
    trial: Trial,
    key: PRNGKeyArray,
    *,
    delay_buffer: int = 1,
) -> Trajectory:
    """Run one trial of K = trial.sisu.shape[0] steps.

    `delay_buffer` (static) is the length of the state history kept for delayed
    feedback; it must exceed every feedback delay used (delays are data, so
    models with different delays share one compiled program).
    """
    n_steps = trial.sisu.shape[0]
    x0 = jnp.concatenate([trial.start, jnp.zeros(2)])
    history0 = jnp.broadcast_to(x0, (delay_buffer, 4))  # at rest before the trial
    h0 = jnp.zeros(controller.hidden_size)
    noise = jax.random.normal(key, (n_steps, 8))
    delay = jnp.minimum(params.feedback_delay, delay_buffer - 1)

    drive = trial.drive_profile if trial.drive_weights is not None else None

    def step(carry, inputs):
        x, h, history = carry
        eps, sisu, offset, drive_k = inputs
        y = history[delay] + params.feedback_noise_std * eps[:4] + offset
        net_in = [trial.goal, y] + ([sisu[None]] if controller.sisu_input else [])
        h = controller.cell(jnp.concatenate(net_in), h)
        if drive_k is not None:  # static: absent interventions cost nothing
            h = h + drive_k * trial.drive_weights
        if trial.hidden_mask is not None:
            h = h * trial.hidden_mask
        o = controller.readout(h)
        u = (1.0 + params.motor_mult_noise_std * eps[4:6]) * o + params.motor_noise_std * eps[6:]
        f_field = curl_force(x[2:], trial.curl) + trial.force
        x = euler_step(params.plant, x, u + f_field)
        history = jnp.concatenate([x[None], history[:-1]])
        return (x, h, history), Trajectory(x, h, o, u, f_field, y)

    xs = (noise, trial.sisu, trial.feedback_offset, drive)
    _, traj = jax.lax.scan(step, (x0, h0, history0), xs)
    return traj


def simulate_batch(
    controller: Controller,
    params: LoopParams,
    trials: Trial,
    key: PRNGKeyArray,
    *,
    delay_buffer: int = 1,
) -> Trajectory:
    """vmap of `simulate_trial` over a leading trial axis; fresh noise per trial."""
    keys = jax.random.split(key, trials.start.shape[0])
    return jax.vmap(
        lambda t, k: simulate_trial(controller, params, t, k, delay_buffer=delay_buffer)
    )(trials, keys)
