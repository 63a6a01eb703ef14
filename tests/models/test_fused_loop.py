"""The closed loop as fused kernels (`ntdyn.models.fused_loop`, NTDYN_FUSED_LOOP=1), run here in
Pallas's interpreter: the same trajectories, and the same gradients of the controller's
weights, the trials, the noise and the loop's constants, as differentiating the plain scan
(the straightforward reference, `closed_loop._Loop.run`); delays (zero, within and at the
buffer's end), SISU input, trials that do not fill a tile, several tiles; models stacked
and jitted as training does; and the cases it does not cover go the plain way."""

from __future__ import annotations

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.models import closed_loop, controller_from_hyperparams, loop_params  # noqa: E402
from ntdyn.models.fused_loop import fused_loop_enabled, fused_tile, make_fused_loop  # noqa: E402
from ntdyn.models.stacking import stacked  # noqa: E402
from ntdyn.tasks import Trial  # noqa: E402
from science_fixtures import hp  # noqa: E402

BUFFER = 4


def _trials(key, n_trials, n_steps, n_hidden=None, interventions=False) -> Trial:
    k = jax.random.split(key, 7)
    extra = {}
    if interventions:
        extra = {"drive_profile": jax.random.normal(k[5], (n_trials, n_steps)),
                 "drive_weights": jax.random.normal(k[6], (n_trials, n_hidden))}  # fmt: skip
    return Trial(
        start=0.1 * jax.random.normal(k[0], (n_trials, 2)),
        goal=0.3 * jax.random.normal(k[1], (n_trials, 2)),
        curl=jax.random.normal(k[2], (n_trials,)),
        force=0.2 * jax.random.normal(k[4], (n_trials, 2)),
        sisu=jax.random.uniform(k[3], (n_trials, n_steps)),
        feedback_offset=0.01 * jax.random.normal(k[4], (n_trials, n_steps, 4)),
        **extra,
    )


def _setup(seed, delay, sisu, hidden, cell="gru"):
    h = hp(model__hidden_size=hidden, model__sisu_input=sisu, model__cell=cell,
           task__feedback__delay=delay, task__feedback__noise_std=0.05,
           task__motor__noise_std=0.1, task__motor__mult_noise_std=0.1)  # fmt: skip
    return controller_from_hyperparams(h, jax.random.PRNGKey(seed)), loop_params(h)


def _simulate(ctrl, params, trials, noise):
    """As training calls the loop: delays checked on the host (the fused loop's only case)."""
    return closed_loop.simulate_batch_with_noise(
        ctrl, params, trials, noise, delay_buffer=BUFFER, host_checked=True
    )


def _loss(ctrl, params, trials, noise):
    """Reads every output of the loop, so every cotangent the kernels take is non-zero."""
    traj = _simulate(ctrl, params, trials, noise)
    n_steps = trials.sisu.shape[1]
    target = jnp.linspace(-1.0, 1.0, n_steps)[:, None]
    return (jnp.mean((traj.state - target) ** 2) + 0.1 * jnp.mean(traj.hidden**2)
            + jnp.mean(traj.control**2) + jnp.mean(jnp.sin(traj.feedback))
            + jnp.mean(traj.command * traj.field))  # fmt: skip


def _both_ways(fn, monkeypatch):
    out = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("NTDYN_FUSED_LOOP", flag)
        out[flag] = fn()
    return out["1"], out["0"]


def _close(a, b, tol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        scale = max(1.0, float(jnp.max(jnp.abs(y))))
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=tol * scale)


def _everything(ctrl, params, trials, noise):
    """Trajectory, loss, and the gradients of the controller, the trials' floats, the noise
    and the loop's float constants."""
    traj = _simulate(ctrl, params, trials, noise)
    value, d_ctrl = eqx.filter_value_and_grad(_loss)(ctrl, params, trials, noise)
    floats = (trials.start, trials.goal, trials.curl, trials.force, trials.sisu,
              trials.feedback_offset, noise, params.plant, params.feedback_noise_std,
              params.motor_noise_std, params.motor_mult_noise_std)  # fmt: skip

    def of_floats(start, goal, curl, force, sisu, offset, noise, plant, s_fb, s_a, s_m):
        t = Trial(start=start, goal=goal, curl=curl, force=force, sisu=sisu,
                  feedback_offset=offset)  # fmt: skip
        p = params._replace(plant=plant, feedback_noise_std=s_fb, motor_noise_std=s_a,
                            motor_mult_noise_std=s_m)  # fmt: skip
        return _loss(ctrl, p, t, noise)

    d_floats = jax.grad(of_floats, argnums=tuple(range(len(floats))))(*floats)
    return traj, value, d_ctrl, d_floats


def _float_params(params):
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return params._replace(plant=jax.tree.map(f, params.plant),
                           feedback_noise_std=f(params.feedback_noise_std),
                           motor_noise_std=f(params.motor_noise_std),
                           motor_mult_noise_std=f(params.motor_mult_noise_std))  # fmt: skip


@pytest.mark.parametrize("delay,sisu,n_trials", [(0, False, 5), (2, True, 16), (3, True, 21)])
def test_trajectories_and_gradients_are_the_plain_loops(delay, sisu, n_trials, monkeypatch):
    ctrl, params = _setup(0, delay, sisu, hidden=12)
    params = _float_params(params)
    trials = _trials(jax.random.PRNGKey(1), n_trials, 9)
    noise = jax.random.normal(jax.random.PRNGKey(2), (n_trials, 9, closed_loop.N_NOISE))
    fused, plain = _both_ways(lambda: _everything(ctrl, params, trials, noise), monkeypatch)
    _close(fused, plain)
    assert float(jnp.abs(plain[2].cell.weight_hh).max()) > 0  # the comparison can fail
    read = [g for i, g in enumerate(plain[3]) if sisu or i != 4]  # no SISU input: not read
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(read))


@settings(max_examples=2, deadline=None)  # each example traces both loops anew (~15 s)
@given(n_steps=st.integers(1, 7), n_hidden=st.integers(1, 20), delay=st.integers(0, BUFFER - 1),
       n_trials=st.integers(1, 18), seed=st.integers(0, 2**16))  # fmt: skip
def test_any_length_size_and_delay(n_steps, n_hidden, delay, n_trials, seed):
    ctrl, params = _setup(seed, delay, True, hidden=n_hidden)
    trials = _trials(jax.random.PRNGKey(seed + 1), n_trials, n_steps)
    noise = jax.random.normal(jax.random.PRNGKey(seed + 2), (n_trials, n_steps, 8))
    with pytest.MonkeyPatch.context() as mp:
        fused, plain = _both_ways(
            lambda: (_simulate(ctrl, params, trials, noise),
                     eqx.filter_grad(_loss)(ctrl, params, trials, noise)), mp)  # fmt: skip
    _close(fused, plain)


def test_models_stacked_and_jitted_as_training_does(monkeypatch):
    _, params = _setup(0, 1, True, hidden=12)
    ctrls = stacked(lambda k: _setup(0, 1, True, hidden=12)[0].__class__("gru", 12, True, key=k),
                    jax.random.split(jax.random.PRNGKey(3), 3))  # fmt: skip
    trials = _trials(jax.random.PRNGKey(4), 20, 8)
    noise = jax.random.normal(jax.random.PRNGKey(5), (20, 8, closed_loop.N_NOISE))

    def run():
        # a new jitted function each way: the choice is read when a program is traced
        @eqx.filter_jit
        def grads(models):
            return jax.vmap(lambda m: eqx.filter_value_and_grad(_loss)(m, params, trials, noise))(
                models
            )

        return grads(ctrls)

    _close(*_both_ways(run, monkeypatch))


def test_interventions_and_other_cells_go_the_plain_way(monkeypatch):
    calls = []
    real = closed_loop._simulate_fused
    monkeypatch.setattr(closed_loop, "_simulate_fused", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setenv("NTDYN_FUSED_LOOP", "1")
    ctrl, params = _setup(0, 1, False, hidden=6)
    noise = jnp.zeros((3, 5, closed_loop.N_NOISE))
    stimulated = _trials(jax.random.PRNGKey(0), 3, 5, 6, interventions=True)
    _simulate(ctrl, params, stimulated, noise)
    rnn, _ = _setup(0, 1, False, hidden=6, cell="rnn")
    _simulate(rnn, params, _trials(jax.random.PRNGKey(0), 3, 5), noise)
    assert not calls
    _simulate(ctrl, params, _trials(jax.random.PRNGKey(0), 3, 5), noise)
    assert calls  # the covered case does take it
    calls.clear()  # an analysis's call (delays not checked by the caller) keeps the scan
    closed_loop.simulate_batch_with_noise(ctrl, params, _trials(jax.random.PRNGKey(0), 3, 5),
                                          noise, delay_buffer=BUFFER)  # fmt: skip
    assert not calls


def test_bad_settings_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="tile = 24: must be a power of two >= 16"):
        make_fused_loop(4, True, tile=24)
    monkeypatch.setenv("NTDYN_FUSED_TILE", "8")
    with pytest.raises(ValueError, match="NTDYN_FUSED_TILE = '8': must be a power of two >= 16"):
        fused_tile()
    monkeypatch.setenv("NTDYN_FUSED_LOOP", "yes")
    with pytest.raises(ValueError, match="NTDYN_FUSED_LOOP = 'yes': must be 0 or 1"):
        fused_loop_enabled()
    monkeypatch.setenv("NTDYN_FUSED_LOOP", "1")
    ctrl, params = _setup(0, 5, False, hidden=6)  # delay 5 does not fit a buffer of 4
    with pytest.raises(ValueError, match="delay"):
        trials = _trials(jax.random.PRNGKey(0), 3, 5)
        _simulate(ctrl, params, trials, jnp.zeros((3, 5, 8)))


def test_the_kernels_lower_for_a_gpu_through_triton():
    """What a GPU compiles, checked on the CPU: the forward and reverse kernels, vmapped over
    models as training does, lower to Triton for CUDA (a lowering refused there, e.g. an
    integer remainder, fails here, before any device time is spent)."""
    n_h, n_trials, n_steps, n_models = 20, 40, 6, 2
    loop = make_fused_loop(8, True, tile=16, interpret=False)
    weights = (jnp.zeros((n_models, 3 * n_h, 7)), jnp.zeros((n_models, 3 * n_h, n_h)),
               jnp.zeros((n_models, 3 * n_h)), jnp.zeros((n_models, n_h)),
               jnp.zeros((n_models, 2, n_h)), jnp.zeros((n_models, 2)))  # fmt: skip
    data = (jnp.ones((n_models, 6)), jnp.full((n_models,), 2, jnp.int32),
            jnp.zeros((n_models, n_trials, 2)), jnp.zeros((n_models, n_trials, 2)),
            jnp.zeros((n_models, n_trials)), jnp.zeros((n_models, n_trials, 2)),
            jnp.zeros((n_models, n_trials, n_steps)), jnp.zeros((n_models, n_trials, n_steps, 4)),
            jnp.zeros((n_models, n_trials, n_steps, 8)))  # fmt: skip

    def loss(w, *d):
        return sum(jnp.sum(o) for o in loop(w, *d))

    step = jax.jit(jax.vmap(jax.value_and_grad(loss)))
    text = step.trace(weights, *data).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("triton") >= 2  # the forward and the reverse kernel
