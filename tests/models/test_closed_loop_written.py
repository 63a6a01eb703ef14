"""The closed loop with a GRU controller's weight gradients gathered after the loop
(`closed_loop._Loop.written`, accelerators' default): the same trajectories and the same
gradients, for the controller and for everything else the loop reads, as differentiating
the plain scan (the straightforward reference), with delays, noise, SISU input and
interventions, under vmap over trials and models and under jit."""

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
from ntdyn.models.stacking import stacked  # noqa: E402
from ntdyn.tasks import Trial  # noqa: E402
from science_fixtures import hp  # noqa: E402

K, B, H = 12, 3, 6


def _trials(key, interventions: bool) -> Trial:
    k = jax.random.split(key, 6)
    extra = {}
    if interventions:
        mask = jnp.tile((jnp.arange(H) != 2).astype(jnp.float32), (B, 1))  # unit 2 silenced
        extra = {"drive_profile": jax.random.normal(k[4], (B, K)),
                 "drive_weights": jax.random.normal(k[5], (B, H)), "hidden_mask": mask}  # fmt: skip
    return Trial(
        start=0.1 * jax.random.normal(k[0], (B, 2)), goal=0.3 * jax.random.normal(k[1], (B, 2)),
        curl=jnp.full((B,), 2.0), force=jnp.zeros((B, 2)),
        sisu=jax.random.uniform(k[2], (B, K)),
        feedback_offset=0.01 * jax.random.normal(k[3], (B, K, 4)), **extra,
    )  # fmt: skip


def _setup(seed, delay, sisu, cell="gru"):
    h = hp(model__hidden_size=H, model__sisu_input=sisu, model__cell=cell,
           task__feedback__delay=delay, task__feedback__noise_std=0.05,
           task__motor__noise_std=0.1, task__motor__mult_noise_std=0.1)  # fmt: skip
    return controller_from_hyperparams(h, jax.random.PRNGKey(seed)), loop_params(h)


def _loss(ctrl, params, trials, noise):
    traj = closed_loop.simulate_batch_with_noise(ctrl, params, trials, noise, delay_buffer=4)
    target = jnp.linspace(-1.0, 1.0, K)[:, None]
    return (jnp.mean((traj.state[..., :2] - target) ** 2) + 0.1 * jnp.mean(traj.hidden**2)
            + jnp.mean(traj.control**2) + jnp.mean(jnp.sin(traj.feedback)))  # fmt: skip


def _both_ways(fn, monkeypatch):
    out = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("NTDYN_WRITTEN_GRADIENTS", flag)
        out[flag] = fn()
    return out["1"], out["0"]


def _close(a, b, tol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        scale = max(1.0, float(jnp.max(jnp.abs(y))))
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=tol * scale)


@pytest.mark.parametrize("delay,sisu,interventions", [(0, False, False), (2, True, True),
                                                      (3, True, False)])  # fmt: skip
def test_trajectories_and_gradients_are_the_plain_loops(delay, sisu, interventions,
                                                        monkeypatch):  # fmt: skip
    ctrl, params = _setup(0, delay, sisu)
    trials = _trials(jax.random.PRNGKey(1), interventions)
    noise = jax.random.normal(jax.random.PRNGKey(2), (B, K, closed_loop.N_NOISE))

    def run():
        traj = closed_loop.simulate_batch_with_noise(ctrl, params, trials, noise, delay_buffer=4)
        value, grads = eqx.filter_value_and_grad(_loss)(ctrl, params, trials, noise)
        # what the loop reads besides the controller: the goals, the SISU input, the noise
        others = jax.grad(lambda g, s, n: _loss(
            ctrl, params, eqx.tree_at(lambda t: (t.goal, t.sisu), trials, (g, s)), n),
            argnums=(0, 1, 2))(trials.goal, trials.sisu, noise)  # fmt: skip
        return traj, value, grads, others

    calls = []
    written = closed_loop._Loop.written
    monkeypatch.setattr(closed_loop._Loop, "written",
                        lambda *a: calls.append(1) or written(*a))  # fmt: skip
    fast, plain = _both_ways(run, monkeypatch)
    assert calls  # the accelerators' path ran under NTDYN_WRITTEN_GRADIENTS=1
    _close(fast, plain)
    assert float(jnp.abs(plain[2].cell.weight_hh).max()) > 0  # the comparison can fail


def test_models_stacked_and_jitted_as_training_does(monkeypatch):
    ctrls = stacked(lambda k: _setup(0, 1, True)[0].__class__(
        "gru", H, True, key=k), jax.random.split(jax.random.PRNGKey(3), 2))  # fmt: skip
    _, params = _setup(0, 1, True)
    trials = _trials(jax.random.PRNGKey(4), False)
    noise = jax.random.normal(jax.random.PRNGKey(5), (B, K, closed_loop.N_NOISE))

    def run():
        # a new jitted function each way: the choice is read when a program is traced (and
        # clearing JAX's caches would make other tests' programs trace again)
        @eqx.filter_jit
        def grads(models):
            return jax.vmap(lambda m: eqx.filter_grad(_loss)(m, params, trials, noise))(models)

        return grads(ctrls)

    _close(*_both_ways(run, monkeypatch))


def test_a_tanh_rnn_controller_keeps_the_plain_loop(monkeypatch):
    ctrl, params = _setup(0, 1, False, cell="rnn")
    trials = _trials(jax.random.PRNGKey(6), False)
    noise = jax.random.normal(jax.random.PRNGKey(7), (B, K, closed_loop.N_NOISE))
    fast, plain = _both_ways(
        lambda: eqx.filter_grad(_loss)(ctrl, params, trials, noise), monkeypatch
    )
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
