"""Closed loop (`simulate_trial` / `simulate_batch`) against hand-computed references."""

from __future__ import annotations

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.models import closed_loop, controller_from_hyperparams, loop_params  # noqa: E402
from ntdyn.tasks import Trial  # noqa: E402
from science_fixtures import euler_reference, hp  # noqa: E402

K = 20
N_BATCH = 300  # one batch size for every statistical test: one compilation

# Compiled once per shape; delay_buffer is static, so every single-trial test uses the same one.
DELAY_BUFFER = 8
_simulate_trial = eqx.filter_jit(closed_loop.simulate_trial)


def simulate_trial(controller, params, trial, key):
    return _simulate_trial(controller, params, trial, key, delay_buffer=DELAY_BUFFER)


simulate_batch = eqx.filter_jit(closed_loop.simulate_batch)
QUIET = dict(
    task__feedback__noise_std=0.0, task__motor__noise_std=0.0, task__motor__mult_noise_std=0.0
)


def _trial(start=(0.1, -0.2), goal=(0.4, 0.3), curl=0.0, force=(0.0, 0.0), sisu=0.0, offset=None):
    return Trial(
        start=jnp.asarray(start, jnp.float32),
        goal=jnp.asarray(goal, jnp.float32),
        curl=jnp.asarray(curl, jnp.float32),
        force=jnp.asarray(force, jnp.float32),
        sisu=jnp.full((K,), sisu, jnp.float32),
        feedback_offset=jnp.zeros((K, 4), jnp.float32) if offset is None else jnp.asarray(offset),
    )


def _batch(trial: Trial, n: int) -> Trial:
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), trial)


def _controller(seed=0, **overrides):
    return controller_from_hyperparams(hp(**overrides), jax.random.PRNGKey(seed))


def _with_readout(ctrl, weight_scale=0.0, bias=(0.0, 0.0)):
    w, b = ctrl.readout.weight, ctrl.readout.bias
    return eqx.tree_at(
        lambda c: (c.readout.weight, c.readout.bias),
        ctrl,
        replace=(w * weight_scale, jnp.asarray(bias, b.dtype)),
    )


def _seen_states(traj, start) -> np.ndarray:
    """x_0 = [start, 0, 0] followed by the K states after each step: (K + 1, 4)."""
    x0 = np.concatenate([np.asarray(start, np.float32), np.zeros(2, np.float32)])
    return np.vstack([x0, np.asarray(traj.state)])  # float32, as simulated


@pytest.mark.parametrize(
    ("curl", "force"), [(0.0, (2.0, -1.0)), (3.0, (1.5, 0.5)), (-4.0, (0.0, 2.0))]
)
def test_silent_controller_leaves_plant_under_field_alone(curl, force):
    row = hp(**QUIET, task__mass=1.3, task__damping=7.0)
    ctrl = _with_readout(_controller())
    trial = _trial(start=(0.2, -0.4), curl=curl, force=force)
    traj = simulate_trial(ctrl, loop_params(row), trial, jax.random.PRNGKey(1))

    def field(k, p, v):
        return np.asarray(force) + curl * np.array([v[1], -v[0]])

    want = euler_reference(
        (0.2, -0.4), (0.0, 0.0), field, mass=1.3, damping=7.0, dt=0.01, n_steps=K
    )
    np.testing.assert_allclose(np.asarray(traj.state), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(traj.control), 0.0)
    np.testing.assert_array_equal(np.asarray(traj.command), 0.0)
    # the field row k is the force during step k, from the velocity before the step
    v_before = _seen_states(traj, (0.2, -0.4))[:-1, 2:]
    want_field = np.asarray(force) + curl * np.stack([v_before[:, 1], -v_before[:, 0]], -1)
    np.testing.assert_allclose(np.asarray(traj.field), want_field, rtol=1e-4, atol=1e-6)


def test_states_follow_euler_of_recorded_control_plus_field_with_noise_on():
    row = hp(
        task__motor__noise_std=0.3, task__motor__mult_noise_std=0.2, task__feedback__noise_std=0.1
    )
    trial = _trial(curl=2.0, force=(0.5, 0.5))
    traj = simulate_trial(_controller(3), loop_params(row), trial, jax.random.PRNGKey(7))
    u, f = np.asarray(traj.control, float), np.asarray(traj.field, float)
    want = euler_reference(
        (0.1, -0.2),
        (0.0, 0.0),
        lambda k, p, v: u[k] + f[k],
        mass=1.0,
        damping=10.0,
        dt=0.01,
        n_steps=K,
    )
    np.testing.assert_allclose(np.asarray(traj.state), want, rtol=1e-4, atol=1e-5)


def test_command_is_the_linear_readout_of_the_recorded_hidden_state():
    ctrl = _controller(4)
    traj = simulate_trial(ctrl, loop_params(hp()), _trial(), jax.random.PRNGKey(0))
    w, b = np.asarray(ctrl.readout.weight), np.asarray(ctrl.readout.bias)
    np.testing.assert_allclose(
        np.asarray(traj.command), np.asarray(traj.hidden) @ w.T + b, rtol=1e-5, atol=1e-6
    )
    assert np.abs(np.asarray(traj.hidden)).max() > 0  # the hidden state did something


@pytest.mark.parametrize("delay", [0, 3, 5])
def test_feedback_is_the_state_delay_steps_earlier(delay):
    row = hp(**QUIET, task__feedback__delay=delay)
    ctrl = _with_readout(_controller(2), weight_scale=5.0)  # strong commands so the state moves
    trial = _trial(curl=1.0, force=(3.0, -2.0))
    traj = simulate_trial(ctrl, loop_params(row), trial, jax.random.PRNGKey(0))
    seen = _seen_states(traj, (0.1, -0.2))
    want = np.stack([seen[max(k - delay, 0)] for k in range(K)])
    # exactly (no feedback noise): y_k = x_{k - delay}, x_0 before the trial starts
    np.testing.assert_array_equal(np.asarray(traj.feedback), want)
    # the test distinguishes delays: every step changes the state
    assert np.abs(np.diff(seen, axis=0)).max(axis=1).min() > 1e-4


def test_feedback_delay_changes_behaviour():
    # Same controller and noise, two delays in one compiled program: behaviour changes.
    ctrl = _with_readout(_controller(2), weight_scale=5.0)
    trial = _trial(force=(1.0, 1.0))
    t2 = simulate_trial(
        ctrl,
        loop_params(hp(**QUIET, task__feedback__delay=2)),
        trial,
        jax.random.PRNGKey(0),
    )
    t0 = simulate_trial(
        ctrl,
        loop_params(hp(**QUIET, task__feedback__delay=0)),
        trial,
        jax.random.PRNGKey(0),
    )
    assert not np.allclose(np.asarray(t2.state), np.asarray(t0.state))  # delay changes behaviour


def test_feedback_noise_has_the_configured_std():
    sigma_s = 0.05
    row = hp(**{**QUIET, "task__feedback__noise_std": sigma_s})
    n = N_BATCH
    trial = _trial(force=(1.0, 0.0))
    traj = simulate_batch(_controller(), loop_params(row), _batch(trial, n), jax.random.PRNGKey(3))
    x0 = np.array([0.1, -0.2, 0.0, 0.0])
    state = np.asarray(traj.state, float)
    seen_before = np.concatenate([np.broadcast_to(x0, (n, 1, 4)), state[:, :-1]], axis=1)
    eps = np.asarray(traj.feedback, float) - seen_before  # (n, K, 4)
    assert abs(eps.mean()) < 4 * sigma_s / np.sqrt(eps.size)
    for ch in range(4):
        np.testing.assert_allclose(eps[..., ch].std(), sigma_s, rtol=0.05)
    corr = np.corrcoef(eps.reshape(-1, 4).T)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.05
    # fresh noise per trial and per step
    assert np.abs(np.corrcoef(eps[0, :, 0], eps[1, :, 0])[0, 1]) < 0.9
    assert not np.allclose(eps[0], eps[1])


def test_additive_motor_noise_has_the_configured_std():
    sigma_a = 0.2
    row = hp(**{**QUIET, "task__motor__noise_std": sigma_a})
    ctrl = _with_readout(_controller())  # o = 0, so u = xi
    n = N_BATCH
    traj = simulate_batch(ctrl, loop_params(row), _batch(_trial(), n), jax.random.PRNGKey(5))
    u = np.asarray(traj.control, float)
    np.testing.assert_array_equal(np.asarray(traj.command), 0.0)
    assert abs(u.mean()) < 4 * sigma_a / np.sqrt(u.size)
    np.testing.assert_allclose(u.reshape(-1, 2).std(0), sigma_a, rtol=0.05)
    assert abs(np.corrcoef(u.reshape(-1, 2).T)[0, 1]) < 0.05


def test_multiplicative_motor_noise_scales_the_command():
    sigma_m = 0.3
    row = hp(**{**QUIET, "task__motor__mult_noise_std": sigma_m})
    bias = np.array([1.5, -0.5])
    ctrl = _with_readout(_controller(), bias=bias)  # o = bias on every step
    n = N_BATCH
    traj = simulate_batch(ctrl, loop_params(row), _batch(_trial(), n), jax.random.PRNGKey(6))
    o, u = np.asarray(traj.command, float), np.asarray(traj.control, float)
    np.testing.assert_allclose(o, np.broadcast_to(bias, o.shape), rtol=1e-6)
    zeta = (u / o - 1.0).reshape(-1, 2)
    assert np.abs(zeta.mean(0)).max() < 4 * sigma_m / np.sqrt(zeta.shape[0])
    np.testing.assert_allclose(zeta.std(0), sigma_m, rtol=0.05)
    # u = (1 + zeta) o: the noise is proportional to the command (std of u is sigma_m |o|)
    np.testing.assert_allclose(u.reshape(-1, 2).std(0), sigma_m * np.abs(bias), rtol=0.05)


def test_motor_noise_variances_add():
    sigma_a, sigma_m = 0.1, 0.2
    row = hp(**{**QUIET, "task__motor__noise_std": sigma_a, "task__motor__mult_noise_std": sigma_m})
    bias = np.array([2.0, 0.0])
    ctrl = _with_readout(_controller(), bias=bias)
    traj = simulate_batch(ctrl, loop_params(row), _batch(_trial(), N_BATCH), jax.random.PRNGKey(8))
    u = np.asarray(traj.control, float).reshape(-1, 2)
    np.testing.assert_allclose(u.std(0), np.sqrt((sigma_m * bias) ** 2 + sigma_a**2), rtol=0.05)
    np.testing.assert_allclose(u.mean(0), bias, atol=0.02)


@pytest.mark.parametrize("delay", [0, 2])
def test_feedback_offset_is_added_exactly_in_its_window(delay):
    row = hp(**QUIET, task__feedback__delay=delay)
    offset = np.zeros((K, 4), np.float32)
    offset[5:9, 0] = 0.3
    offset[5:9, 1] = -0.1
    offset[12:14, 3] = 0.7
    ctrl = _with_readout(_controller(2), weight_scale=3.0)
    traj = simulate_trial(
        ctrl,
        loop_params(row),
        _trial(force=(1.0, 0.0), offset=offset),
        jax.random.PRNGKey(0),
    )
    seen = _seen_states(traj, (0.1, -0.2))
    delayed = np.stack([seen[max(k - delay, 0)] for k in range(K)])
    np.testing.assert_allclose(np.asarray(traj.feedback) - delayed, offset, atol=1e-6)
    # and the impulse changes what the network does afterwards, not before
    quiet = simulate_trial(ctrl, loop_params(row), _trial(force=(1.0, 0.0)), jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(traj.hidden)[:5], np.asarray(quiet.hidden)[:5], atol=1e-6)
    assert np.abs(np.asarray(traj.hidden)[5] - np.asarray(quiet.hidden)[5]).max() > 1e-4


def test_sisu_reaches_the_network_only_when_it_has_the_input():
    key = jax.random.PRNGKey(0)
    for sisu_input in (True, False):
        ctrl = _controller(1, model__sisu_input=sisu_input)
        a = simulate_trial(ctrl, loop_params(hp(**QUIET)), _trial(sisu=0.0), key)
        b = simulate_trial(ctrl, loop_params(hp(**QUIET)), _trial(sisu=2.0), key)
        differs = not np.allclose(np.asarray(a.hidden), np.asarray(b.hidden))
        assert differs == sisu_input


def test_goal_is_an_input():
    ctrl = _controller(1)
    key = jax.random.PRNGKey(0)
    a = simulate_trial(ctrl, loop_params(hp(**QUIET)), _trial(goal=(0.5, 0.5)), key)
    b = simulate_trial(ctrl, loop_params(hp(**QUIET)), _trial(goal=(-0.5, 0.5)), key)
    assert not np.allclose(np.asarray(a.hidden), np.asarray(b.hidden))


def test_batch_gives_fresh_noise_per_trial_and_is_reproducible():
    row = hp(task__motor__noise_std=0.1)
    trials = _batch(_trial(), N_BATCH)
    a = simulate_batch(_controller(), loop_params(row), trials, jax.random.PRNGKey(0))
    b = simulate_batch(_controller(), loop_params(row), trials, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(a.state), np.asarray(b.state))
    assert not np.allclose(np.asarray(a.control[0]), np.asarray(a.control[1]))


def test_delays_are_data_on_a_stacked_model_axis_with_one_buffer():
    """Delay 0 and delay 5 in one vmapped program (buffer 6): each sees its own lag exactly."""
    ctrl = _with_readout(_controller(2), weight_scale=5.0)
    trial = _trial(curl=1.0, force=(3.0, -2.0))
    delays = [0, 5]
    buffer = closed_loop.delay_buffer_for(delays)
    assert buffer == 6
    stacked = jax.tree.map(
        lambda *xs: jnp.stack(xs),
        *[loop_params(hp(**QUIET, task__feedback__delay=d)) for d in delays],
    )
    run = eqx.filter_jit(
        eqx.filter_vmap(
            lambda p: closed_loop.simulate_trial(
                ctrl, p, trial, jax.random.PRNGKey(0), delay_buffer=buffer
            )
        )
    )
    traj = run(stacked)
    for m, delay in enumerate(delays):
        seen = _seen_states(jax.tree.map(lambda x: x[m], traj), (0.1, -0.2))  # noqa: B023
        want = np.stack([seen[max(k - delay, 0)] for k in range(K)])
        np.testing.assert_array_equal(np.asarray(traj.feedback[m]), want)
    # the delayed member's first 6 observations are the start at rest; then it lags 5 steps
    np.testing.assert_array_equal(
        np.asarray(traj.feedback[1, :6]), np.tile([0.1, -0.2, 0, 0], (6, 1)).astype(np.float32)
    )
    assert not np.allclose(np.asarray(traj.state[0]), np.asarray(traj.state[1]))
    # a longer buffer does not change the delay-0 model
    alone = simulate_trial(ctrl, loop_params(hp(**QUIET)), trial, jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(traj.state[0]), np.asarray(alone.state), rtol=1e-6)


@pytest.mark.parametrize(
    ("delays", "message"),
    [
        ([-1], r"task__feedback__delay = -1: must be a whole number of steps in \[0, 0\]"),
        ([0, -2, 5], r"task__feedback__delay = -2 \(model 1 of 3\): .* in \[0, 5\]"),
        ([2.5], r"task__feedback__delay = 2\.5: must be a whole number of steps in \[0, 3\]"),
    ],
)
def test_delay_buffer_refuses_negative_and_fractional_delays(delays, message):
    with pytest.raises(ValueError, match=message):
        closed_loop.delay_buffer_for(delays)


def test_delay_buffer_covers_the_longest_delay_of_the_group():
    assert closed_loop.delay_buffer_for([0]) == 1
    assert closed_loop.delay_buffer_for([0, 5, 3]) == 6
    assert closed_loop.delay_buffer_for(jnp.asarray([5, 0], jnp.int32)) == 6
    assert closed_loop.delay_buffer_for([np.int64(5), 5.0]) == 6


def test_a_delay_longer_than_the_buffer_is_refused_not_clamped():
    """Before any compute on the host; with eqx.error_if inside jit (never a silent clamp)."""
    ctrl = _controller(2)
    row = hp(**QUIET, task__feedback__delay=DELAY_BUFFER)  # one more than the buffer serves
    allowed = rf"\[0, {DELAY_BUFFER - 1}\]"
    with pytest.raises(
        ValueError, match=rf"task__feedback__delay = {DELAY_BUFFER}: must be .* in {allowed}"
    ):
        closed_loop.simulate_trial(
            ctrl, loop_params(row), _trial(), jax.random.PRNGKey(0), delay_buffer=DELAY_BUFFER
        )
    with pytest.raises(
        ValueError, match=r"task__feedback__delay = 6 \(model 1 of 3\): .* \[0, 5\]"
    ):
        closed_loop.check_feedback_delays(jnp.asarray([0, 6, 5], jnp.int32), 6)
    with pytest.raises(ValueError, match=r"delay_buffer = 0: must be an integer >= 1"):
        closed_loop.check_feedback_delays([0], 0)
    # inside jit the delay is data: the compiled program refuses it when it runs
    in_jit = rf"task__feedback__delay must be in {allowed} for delay_buffer = {DELAY_BUFFER}"
    for bad in (DELAY_BUFFER, -1):
        with pytest.raises(eqx.EquinoxRuntimeError, match=in_jit):
            row = hp(**QUIET, task__feedback__delay=bad)
            jax.block_until_ready(
                simulate_trial(ctrl, loop_params(row), _trial(), jax.random.PRNGKey(0))
            )


def test_evaluation_and_training_refuse_a_bad_delay_before_compute():
    from ntdyn.analysis import simulate_ensemble
    from ntdyn.models import ensemble_from_hyperparams
    from ntdyn.training import TRACE_COUNTS, train_sweep

    row = hp(task__feedback__delay=5)
    ensemble = ensemble_from_hyperparams(row, jax.random.split(jax.random.PRNGKey(0), 2))
    trials = _batch(_trial(), 2)
    with pytest.raises(ValueError, match=r"task__feedback__delay = 5: .* in \[0, 2\]"):
        simulate_ensemble(ensemble, row, trials, seed=0, delay_buffer=3)
    with pytest.raises(ValueError, match=r"task__feedback__delay = -1: .* in \[0, 0\]"):
        simulate_ensemble(ensemble, hp(task__feedback__delay=-1), trials, seed=0)
    before = dict(TRACE_COUNTS)
    with pytest.raises(ValueError, match=r"task__feedback__delay = -3 \(model 1 of 2\)"):
        train_sweep([hp(), hp(task__feedback__delay=-3)], progress=False)
    assert dict(TRACE_COUNTS) == before  # refused before anything was compiled
