"""The fast training step (issue 16) against a straightforward reference written here.

The fast step draws a batch's trials and noise before the recurrence (`batch_inputs`), runs
the closed loop as a scan (unrolled or not) over trials vmapped together, and averages the
cost. The reference walks the trial step by step in a Python loop with the same pre-drawn
noise, keeps the state history as a Python list and writes the plant, the noise and the
cost out from docs/science.md §1: the losses and gradients agree to 1e-6 (float64) for the
same keys, with and without SISU input and feedback delay, rolled (the CPU's default) and
fully unrolled (the accelerators'). Training stays deterministic for a seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.models.controller import controller_from_hyperparams  # noqa: E402
from ntdyn.models.unroll import ScanUnroll  # noqa: E402
from ntdyn.tasks.reaching import COST_TERMS  # noqa: E402
from ntdyn.training import train_group  # noqa: E402
from ntdyn.training.loop import batch_inputs, model_data, reaching_loss  # noqa: E402
from science_fixtures import hp  # noqa: E402

BATCH, STEPS, HIDDEN = 3, 6, 5


def _hp(sisu: bool, delay: int) -> dict:
    return hp(
        model__hidden_size=HIDDEN, model__sisu_input=sisu, task__n_steps=STEPS,
        task__feedback__delay=delay, train__batch_size=BATCH, train__method="pai-asf",
        train__pert__std=2.0, task__feedback__noise_std=0.1, task__motor__noise_std=0.2,
        task__motor__mult_noise_std=0.3, cost__control=0.01, cost__hidden=0.01,
    )  # fmt: skip


def _f64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating)
                        else x, tree)  # fmt: skip


def reference_loss(model, data, trials, noise, delay: int):
    """Mean cost of the batch, one time step after another in Python (docs/science.md §1.1)."""
    lp, cost = data.loop, data.cost
    x = jnp.concatenate([trials.start, jnp.zeros((BATCH, 2))], -1)  # (B, 4): p, v
    past = [x]  # past[k]: the state after step k (past[0]: at rest at the start)
    h = jnp.zeros((BATCH, model.hidden_size))
    position = control = hidden = 0.0
    for k in range(STEPS):
        eps = noise[:, k]
        y = past[max(k - int(delay), 0)] + lp.feedback_noise_std * eps[:, :4]
        inputs = [trials.goal, y] + ([trials.sisu[:, k, None]] if model.sisu_input else [])
        h = jax.vmap(model.cell)(jnp.concatenate(inputs, -1), h)
        o = jax.vmap(model.readout)(h)
        u = (1 + lp.motor_mult_noise_std * eps[:, 4:6]) * o + lp.motor_noise_std * eps[:, 6:]
        p, v = x[:, :2], x[:, 2:]
        field = trials.curl[:, None] * jnp.stack([v[:, 1], -v[:, 0]], -1) + trials.force
        a = (u + field - lp.plant.damping * v) / lp.plant.mass
        x = jnp.concatenate([p + lp.plant.dt * v, v + lp.plant.dt * a], -1)
        past.append(x)
        ramp = ((k + 1) / STEPS) ** cost.position_exponent
        position = position + ramp * jnp.sum((x[:, :2] - trials.goal) ** 2, -1)
        control = control + jnp.sum(u**2, -1)
        hidden = hidden + jnp.sum(h**2, -1)
    terms = {
        "position": cost.position * position,
        "final_velocity": cost.final_velocity * jnp.sum(x[:, 2:] ** 2, -1),
        "control": cost.control * control,
        "hidden": cost.hidden * hidden,
    }
    terms = {name: t.mean() for name, t in terms.items()}
    terms["total"] = sum(terms.values())
    return terms["total"], jnp.stack([terms[t] for t in COST_TERMS])


@pytest.mark.parametrize("sisu, delay", [(False, 0), (True, 3)])  # neither, both
def test_fast_step_gives_the_reference_losses_and_gradients(sisu, delay):
    hp = _hp(sisu, delay)
    key = jax.random.PRNGKey(11)
    with jax.enable_x64(True):
        model = _f64(controller_from_hyperparams(hp, jax.random.PRNGKey(3)))
        data = _f64(model_data(hp))
        trials, noise = batch_inputs(data, key, batch_size=BATCH, n_steps=STEPS)
        assert noise.shape == (BATCH, STEPS, 8) and noise.dtype == jnp.float64

        def ref(m):
            return reference_loss(m, data, trials, noise, delay)

        (ref_total, ref_terms), ref_grads = eqx.filter_jit(
            eqx.filter_value_and_grad(ref, has_aux=True)
        )(model)
        assert float(ref_terms[COST_TERMS.index("control")]) > 0  # every term is exercised
        for unroll in (1, STEPS):  # the CPU's and the accelerators' (ScanUnroll auto)

            def fast(m, unroll=unroll):
                return reaching_loss(m, data, key, BATCH, STEPS, 1 + delay, unroll)

            (total, terms), grads = eqx.filter_jit(eqx.filter_value_and_grad(fast, has_aux=True))(
                model
            )
            np.testing.assert_allclose(total, ref_total, rtol=1e-6, atol=0)
            np.testing.assert_allclose(terms, ref_terms, rtol=1e-6, atol=1e-12)
            for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
                np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-10)


def test_the_noise_changes_the_loss_so_the_comparison_can_fail():
    hp_ = _hp(True, 1)
    key = jax.random.PRNGKey(11)
    model = controller_from_hyperparams(hp_, jax.random.PRNGKey(3))
    data = model_data(hp_)
    trials, noise = batch_inputs(data, key, batch_size=BATCH, n_steps=STEPS)
    loss = eqx.filter_jit(lambda n: reference_loss(model, data, trials, n, 1)[0])
    noisy, quiet = float(loss(noise)), float(loss(jnp.zeros_like(noise)))
    assert abs(noisy - quiet) > 1e-4 * abs(quiet)


def test_training_is_deterministic_for_a_seed_with_the_trial_unrolled():
    # the CPU's default (unroll 1) is covered by test_training_loop's determinism test
    rows = [dict(_hp(True, 1), train__n_batches=4, train__n_replicates=2)]

    def train():
        return jax.tree.leaves(train_group(rows, progress=False, unroll=ScanUnroll(STEPS))[0].model)

    for a, b in zip(train(), train(), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_unroll_option_is_checked_and_chosen_per_backend():
    assert ScanUnroll().for_scan(100, "gpu") == 100
    assert ScanUnroll().for_scan(100, "cpu") == 1
    assert ScanUnroll(8).for_scan(100, "cpu") == 8
    assert ScanUnroll(500).for_scan(100, "gpu") == 100
    for bad in (0, -1, 2.5, "full", True):
        with pytest.raises(ValueError, match="training_options.unroll"):
            ScanUnroll(bad)


def test_flipflop_loss_does_not_depend_on_the_unroll():
    from ntdyn.models.flipflop import FlipFlopRNN
    from ntdyn.training.flipflop import FlipFlopData, flipflop_loss

    model = FlipFlopRNN(2, 4, key=jax.random.PRNGKey(0))
    data = FlipFlopData(jnp.asarray(0.1), jnp.asarray(0.01))
    n_steps = 7

    def loss(unroll):
        return eqx.filter_jit(flipflop_loss)(model, data, jax.random.PRNGKey(1), 3, n_steps, 2,
                                             0.3, 0.1, unroll)[0]  # fmt: skip

    rolled = float(loss(1))
    assert rolled > 0
    np.testing.assert_allclose(float(loss(n_steps)), rolled, rtol=1e-6)
