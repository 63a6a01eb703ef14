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

import math
import numbers
from collections.abc import Iterable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.controller import Controller
from ntdyn.models.fused_loop import applies, fused_loop_enabled, fused_tile, make_fused_loop
from ntdyn.models.plant import PlantParams, curl_force, euler_step
from ntdyn.models.scans import gru_update, written_gradients
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


DELAY_PARAM = "task__feedback__delay"


def _is_whole(value) -> bool:
    """An integer, or a float with an integral value (not a bool)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def _delay_values(delays) -> list:
    """The delays as a flat list of host scalars (hyperparameter values or a stacked array)."""
    if isinstance(delays, Iterable) and not isinstance(delays, str | np.ndarray | jax.Array):
        return [v for d in delays for v in _delay_values(d)]
    return [v.item() if isinstance(v, np.generic) else v for v in np.ravel(np.asarray(delays))]


def _check_buffer(delay_buffer) -> None:
    if not _is_whole(delay_buffer) or delay_buffer < 1:
        raise ValueError(f"delay_buffer = {delay_buffer!r}: must be an integer >= 1")


def check_feedback_delays(delays, delay_buffer: int) -> None:
    """Refuse, before any compute, a feedback delay that the state history cannot serve.

    delays: hyperparameter values (one per model) or a stacked `LoopParams.feedback_delay`.
    History row d is the state d steps back (row 0 the current one), so a buffer of
    length B serves the whole-step delays 0 .. B - 1. Raises ValueError naming
    `task__feedback__delay`, the value and the allowed range.
    """
    _check_buffer(delay_buffer)
    values = _delay_values(delays)
    for i, d in enumerate(values):
        if not (_is_whole(d) and 0 <= d < delay_buffer):
            where = f" (model {i} of {len(values)})" if len(values) > 1 else ""
            raise ValueError(
                f"{DELAY_PARAM} = {d!r}{where}: must be a whole number of steps in "
                f"[0, {int(delay_buffer) - 1}] (delay_buffer = {int(delay_buffer)} keeps the "
                f"current state and the {int(delay_buffer) - 1} before it)"
            )


def delay_buffer_for(delays) -> int:
    """The state-history length serving every delay in `delays`: 1 + the largest.

    The one buffer of a group of models trained or evaluated together (delays are
    data, so delay 0 and delay 5 share the program). Refuses (ValueError, see
    `check_feedback_delays`) a negative or fractional delay.
    """
    values = _delay_values(delays)
    finite = [d for d in values if isinstance(d, numbers.Real) and np.isfinite(d)]
    buffer = 1 + max([0, *(math.ceil(d) for d in finite)])
    check_feedback_delays(values, buffer)
    return buffer


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


N_NOISE = 8  # per step: feedback eps (4), multiplicative motor zeta (2), additive motor xi (2)


def trial_noise(key: PRNGKeyArray, n_steps: int) -> Float[Array, "K 8"]:
    """One trial's standard-normal noise, (K, 8): columns 0-3 feedback, 4-5 multiplicative
    motor, 6-7 additive motor (scaled by the model's noise levels in the loop)."""
    return jax.random.normal(key, (n_steps, N_NOISE))


def batch_noise(key: PRNGKeyArray, n_trials: int, n_steps: int) -> Float[Array, "B K 8"]:
    """A batch's noise, drawn at once before any recurrence: trial i's rows are
    `trial_noise(split(key, n_trials)[i])`, so `simulate_batch` and a loop over
    `simulate_trial` with the split keys see the same numbers."""
    keys = jax.random.split(key, n_trials)
    return jax.vmap(trial_noise, (0, None))(keys, n_steps)


def simulate_trial(
    controller: Controller,
    params: LoopParams,
    trial: Trial,
    key: PRNGKeyArray,
    *,
    delay_buffer: int = 1,
    unroll: int | bool = 1,
) -> Trajectory:
    """Run one trial of K = trial.sisu.shape[0] steps, its noise drawn from `key`
    (`trial_noise`): `simulate_with_noise` with that noise."""
    noise = trial_noise(key, trial.sisu.shape[0])
    return simulate_with_noise(controller, params, trial, noise, delay_buffer=delay_buffer,
                               unroll=unroll)  # fmt: skip


def simulate_with_noise(
    controller: Controller,
    params: LoopParams,
    trial: Trial,
    noise: Float[Array, "K 8"],
    *,
    delay_buffer: int = 1,
    unroll: int | bool = 1,
    host_checked: bool = False,
) -> Trajectory:
    """Run one trial of K = trial.sisu.shape[0] steps with standard-normal `noise` (K, 8)
    (`trial_noise`'s columns); the time scan itself draws no random numbers.

    `delay_buffer` (static) is the length of the state history kept for delayed
    feedback; it must exceed every feedback delay used (delays are data, so
    models with different delays share one compiled program; `delay_buffer_for`
    sizes it). A delay outside [0, delay_buffer - 1] is refused, never clamped: a
    ValueError for a concrete delay, an `eqx.error_if` runtime error under jit
    (callers validate on the host first, so that check never fires in normal use).
    unroll (static): time steps per iteration of the scan's loop (`ntdyn.models.unroll`);
    it changes how the program is compiled, not what it computes. host_checked (static):
    the caller has refused bad delays on the host (`delay_buffer_for`), so the traced check
    is left out: an `eqx.error_if` is a conditional with a host callback, and on a GPU a
    conditional copies its predicate to the host (a round trip at every call).
    """
    _check_buffer(delay_buffer)
    delay = params.feedback_delay
    if isinstance(delay, jax.core.Tracer) and not host_checked:
        last = int(delay_buffer) - 1
        delay = eqx.error_if(
            delay,
            (delay < 0) | (delay > last),
            f"{DELAY_PARAM} must be in [0, {last}] for delay_buffer = {delay_buffer}: a longer "
            "delay needs a longer buffer (closed_loop.delay_buffer_for sizes it)",
        )
    elif not isinstance(delay, jax.core.Tracer):
        check_feedback_delays(delay, delay_buffer)
    n_steps = trial.sisu.shape[0]
    if noise.shape != (n_steps, N_NOISE):
        raise ValueError(f"noise has shape {noise.shape}: must be ({n_steps}, {N_NOISE})")
    loop = _Loop(controller.hidden_size, controller.sisu_input, int(delay_buffer), unroll)
    data = (params._replace(feedback_delay=delay), trial, noise)  # the delay as checked
    # Not yet timed on a GPU (benchmarks/training_throughput.py both ways): only when asked,
    # NTDYN_WRITTEN_GRADIENTS=1, until it is.
    if written_gradients(on_accelerators=False) and isinstance(controller.cell, eqx.nn.GRUCell):
        return loop.written(_gru_weights(controller), data)
    cell, readout = controller.cell, controller.readout
    return loop.run(lambda x, h, _: cell(x, h), lambda h, _: readout(h), None, data)[0]


def _gru_weights(controller: Controller) -> tuple[Array, ...]:
    """(W_ih, W_hh, b, b_n, W_out, b_out) of a GRU controller (zeros for absent biases)."""
    cell, readout = controller.cell, controller.readout
    zeros = jnp.zeros(3 * controller.hidden_size)
    bias = cell.bias if cell.use_bias else zeros
    bias_n = cell.bias_n if cell.use_bias else zeros[: controller.hidden_size]
    b_out = readout.bias if readout.use_bias else jnp.zeros(readout.out_features)
    return cell.weight_ih, cell.weight_hh, bias, bias_n, readout.weight, b_out


class _Loop(NamedTuple):
    """The closed loop's scan over one trial (static: hidden size, SISU input, delay buffer,
    unroll), with the controller's step and readout given as functions."""

    hidden_size: int
    sisu_input: bool
    delay_buffer: int
    unroll: int | bool

    def run(self, cell_fn, readout_fn, probes, data) -> tuple[Trajectory, Array]:
        """(trajectory, the controller's inputs (K, n_in)) for data = (LoopParams, Trial,
        noise). cell_fn(x, h, probe_k) -> h', readout_fn(h, probe_k) -> o; probes: per-step
        arrays given to both (None: none)."""
        params, trial, noise = data
        delay = params.feedback_delay
        x0 = jnp.concatenate([trial.start, jnp.zeros(2)])
        history0 = jnp.broadcast_to(x0, (self.delay_buffer, 4))  # at rest before the trial
        h0 = jnp.zeros(self.hidden_size)
        drive = trial.drive_profile if trial.drive_weights is not None else None

        def step(carry, inputs):
            x, h, history = carry
            eps, sisu, offset, drive_k, probe = inputs
            y = history[delay] + params.feedback_noise_std * eps[:4] + offset
            net_in = jnp.concatenate([trial.goal, y] + ([sisu[None]] if self.sisu_input else []))
            h = cell_fn(net_in, h, probe)
            if drive_k is not None:  # static: absent interventions cost nothing
                h = h + drive_k * trial.drive_weights
            if trial.hidden_mask is not None:
                h = h * trial.hidden_mask
            o = readout_fn(h, probe)
            u = ((1.0 + params.motor_mult_noise_std * eps[4:6]) * o
                 + params.motor_noise_std * eps[6:])  # fmt: skip
            f_field = curl_force(x[2:], trial.curl) + trial.force
            x = euler_step(params.plant, x, u + f_field)
            history = jnp.concatenate([x[None], history[:-1]])
            return (x, h, history), (Trajectory(x, h, o, u, f_field, y), net_in)

        xs = (noise, trial.sisu, trial.feedback_offset, drive, probes)
        return jax.lax.scan(step, (x0, h0, history0), xs, unroll=self.unroll)[1]

    def written(self, weights: tuple[Array, ...], data) -> Trajectory:
        """`run` with a GRU controller whose weights' gradient is gathered after the loop.

        Differentiating the scan accumulates dW_ih, dW_hh, dW_out and the biases' gradients
        inside the reverse loop, a few more kernels at every step. Here the loop runs with the
        weights held constant and a zero "probe" added to each product's output (W_ih x_k,
        W_hh h_k, W_out h_k); the reverse loop gives each probe's gradient per step, and each
        weight's gradient is then one product over all steps (dW_ih = sum_k dA_k x_k^T, ...).
        The same numbers as differentiating `run` (tests/models/test_closed_loop_written.py).
        """
        n_h, n_steps = self.hidden_size, data[2].shape[0]

        def probed(w, probes, data):
            w_ih, w_hh, bias, bias_n, w_out, b_out = w

            def cell_fn(x, h, p):
                return gru_update(w_ih @ x + p[0] + bias, w_hh @ h + p[1], bias_n, h)

            return self.run(cell_fn, lambda h, p: w_out @ h + p[2] + b_out, probes, data)

        zeros = (jnp.zeros((n_steps, 3 * n_h)), jnp.zeros((n_steps, 3 * n_h)),
                 jnp.zeros((n_steps, weights[4].shape[0])))  # fmt: skip

        @jax.custom_vjp
        def loop(w, data):
            return probed(w, zeros, data)[0]

        def loop_fwd(w, data):
            (traj, inputs), pullback = jax.vjp(lambda p, d: probed(w, p, d), zeros, data)
            return traj, (pullback, inputs, traj.hidden)

        def loop_bwd(residuals, d_traj):
            pullback, inputs, hidden = residuals
            (d_a, d_b, d_o), d_data = pullback((d_traj, jnp.zeros_like(inputs)))
            h_prev = jnp.concatenate([jnp.zeros((1, n_h)), hidden[:-1]])  # h0 = 0
            d_w = (d_a.T @ inputs, d_b.T @ h_prev, d_a.sum(0), d_b[:, 2 * n_h :].sum(0),
                   d_o.T @ hidden, d_o.sum(0))  # fmt: skip
            return d_w, d_data

        loop.defvjp(loop_fwd, loop_bwd)
        return loop(weights, data)


def simulate_batch(
    controller: Controller,
    params: LoopParams,
    trials: Trial,
    key: PRNGKeyArray,
    *,
    delay_buffer: int = 1,
    unroll: int | bool = 1,
) -> Trajectory:
    """vmap of `simulate_trial` over a leading trial axis; fresh noise per trial, the whole
    batch's drawn before the recurrence (`batch_noise`)."""
    noise = batch_noise(key, trials.start.shape[0], trials.sisu.shape[1])
    return simulate_batch_with_noise(controller, params, trials, noise,
                                     delay_buffer=delay_buffer, unroll=unroll)  # fmt: skip


def simulate_batch_with_noise(
    controller: Controller,
    params: LoopParams,
    trials: Trial,
    noise: Float[Array, "B K 8"],
    *,
    delay_buffer: int = 1,
    unroll: int | bool = 1,
    host_checked: bool = False,
) -> Trajectory:
    """vmap of `simulate_with_noise` over a leading trial axis (B trials, noise (B, K, 8)).
    With NTDYN_FUSED_LOOP=1, training's calls (host_checked) with a GRU controller and no
    interventions run as the fused kernels instead (`ntdyn.models.fused_loop`: the same
    numbers; reverse-mode derivatives only, so analyses, which may take forward-mode ones,
    keep the scan)."""
    if fused_loop_enabled() and host_checked and applies(controller, trials):
        return _simulate_fused(controller, params, trials, noise, delay_buffer)
    return jax.vmap(
        lambda t, n: simulate_with_noise(
            controller,
            params,
            t,
            n,
            delay_buffer=delay_buffer,
            unroll=unroll,
            host_checked=host_checked,
        )  # fmt: skip
    )(trials, noise)


def _simulate_fused(controller, params, trials, noise, delay_buffer) -> Trajectory:
    """`simulate_batch_with_noise` through `fused_loop.make_fused_loop` (delays checked on
    the host: concrete here, or by the caller)."""
    _check_buffer(delay_buffer)
    delay = params.feedback_delay
    if not isinstance(delay, jax.core.Tracer):
        check_feedback_delays(delay, delay_buffer)
    n_trials, n_steps = trials.sisu.shape
    if noise.shape != (n_trials, n_steps, N_NOISE):
        raise ValueError(
            f"noise has shape {noise.shape}: must be ({n_trials}, {n_steps}, {N_NOISE})"
        )
    plant = params.plant
    consts = jnp.stack([plant.mass, plant.damping, plant.dt, params.feedback_noise_std,
                        params.motor_noise_std, params.motor_mult_noise_std])  # fmt: skip
    consts = consts.astype(jnp.float32)
    loop = make_fused_loop(int(delay_buffer), controller.sisu_input, tile=fused_tile())
    state, hidden, command, control, field, feedback = loop(
        _gru_weights(controller), consts, jnp.asarray(delay, jnp.int32), trials.start,
        trials.goal, trials.curl, trials.force, trials.sisu, trials.feedback_offset, noise,
    )  # fmt: skip
    return Trajectory(state, hidden, command, control, field, feedback)
