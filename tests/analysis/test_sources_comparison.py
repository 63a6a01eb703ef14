"""Sources and the one-pair comparison on systems whose answers are known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ortho_group, poisson

from ntdyn.analysis.fixed_points import FixedPointConfig
from ntdyn.analysis.sources import (
    connectivity_from_jacobian,
    flipflop_activity,
    reaching_activity,
    unstack,
)
from ntdyn.analysis.task_vs_data import (
    PairTrials,
    compare_pair,
    sample_states,
    system_fixed_points,
)
from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.models.flipflop import flipflop_ensemble_from_hyperparams

CFG = FixedPointConfig(max_iters=300, adam_iters=100, newton_iters=20)


class Linear:
    """h -> A h + c: one fixed point h* = (I - A)^{-1} c, stable iff max |eig A| < 1."""

    def __init__(self, a, c):
        self.a, self.c = jnp.asarray(a), jnp.asarray(c)

    def __call__(self, h, u):
        return self.a @ h + self.c + 0.0 * u.sum()


def _linear_trajectories(a, c, b=6, t=40, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(b, a.shape[0]))
    out = np.empty((b, t, a.shape[0]))
    for k in range(t):
        out[:, k] = h
        h = h @ a.T + c + 0.05 * rng.normal(size=h.shape)
    return out


def test_linear_system_has_its_analytic_fixed_point_and_stability():
    a = np.diag([0.5, -0.3, 0.9])
    c = np.array([1.0, 2.0, -1.0])
    lat = _linear_trajectories(a, c)
    fp = system_fixed_points(Linear(a, c), lat, np.zeros(1), 16, CFG, seed=0)
    assert len(fp.h) == 1 and fp.stable.all()
    np.testing.assert_allclose(fp.h[0], np.linalg.solve(np.eye(3) - a, c), rtol=1e-5)  # f32 map
    np.testing.assert_allclose(sorted(np.abs(fp.eigenvalues[0])), [0.3, 0.5, 0.9], atol=1e-8)


def _trials(true, rates, spikes, inputs, inferred, inferred_rates, inferred_inputs, trials):
    return PairTrials(
        true_latents=true[trials], true_rates=rates[trials], spikes=spikes[trials],
        true_inputs=inputs[trials], inferred_latents=inferred[trials],
        inferred_log_rates=np.log(inferred_rates[trials]),
        inferred_inputs=inferred_inputs[trials],
    )  # fmt: skip


N_TRIALS = 20
TRAIN, TEST = np.arange(12), np.arange(12, N_TRIALS)  # 12 fit the maps, 8 score them


def test_a_rotated_copy_of_the_source_matches_it_on_every_metric():
    a = np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0], [0.0, 0.0, 0.5]])
    c = np.array([0.2, -0.1, 0.3])
    true = _linear_trajectories(a, c, b=N_TRIALS, t=60)
    q = ortho_group.rvs(3, random_state=1)
    shift = np.array([1.0, -2.0, 0.5])
    inferred = true @ q + shift  # invertible affine copy: z = h Q + s
    # the copy's own map in its coordinates: z' = Q^T A Q (z - s) + Q^T c + s
    a_z, c_z = q.T @ a @ q, q.T @ c + shift - q.T @ a @ q @ shift
    rng = np.random.default_rng(0)
    # the held-out trials' true latents find the source's fixed point, as in the pipeline
    source = system_fixed_points(Linear(a, c), true[TEST], np.zeros(1), 16, CFG, seed=0)
    rates = np.exp(0.3 * true[..., [0, 1, 2, 0, 1]])
    spikes = rng.poisson(rates).astype(float)
    inputs = rng.normal(size=(N_TRIALS, 60, 2))
    # inferred inputs: an invertible affine copy of the true ones
    inferred_inputs = inputs @ np.array([[2.0, 1.0], [-1.0, 0.5]]) + 0.3
    arrays = (true, rates, spikes, inputs, inferred, rates, inferred_inputs)
    out = compare_pair(
        train=_trials(*arrays, TRAIN), test=_trials(*arrays, TEST), held_out=np.array([3, 4]),
        source_points=source, model_step=Linear(a_z, c_z), model_rest_input=np.zeros(1),
        n_candidates=16, fixed_point_config=CFG, dsa_options=dict(n_delays=3, rank=6, iters=200),
        seed=0,
    )  # fmt: skip
    m = out.metrics
    assert m["rate_r2"] == 1.0
    assert m["co_bps"] > 0
    # (the rates read the true latents, an invertible copy of the inferred ones: the model's
    # log-rates are an affine function of its latents read with full rank)
    for key in ("state_r2_true_to_inferred", "state_r2_inferred_to_true",
                "cycle_consistency_r2", "round_trip_r2", "input_r2_true_to_inferred",
                "input_r2_inferred_to_true"):  # fmt: skip
        assert m[key] == pytest.approx(1.0, abs=1e-9), key
    assert (m["fp_n_source"], m["fp_n_model"], m["fp_n_matched"]) == (1, 1, 1)
    assert m["fp_mean_distance"] < 1e-6 and m["fp_same_stability"] == 1.0
    assert m["dsa_angular"] < 0.01 and m["dsa_wasserstein"] < 0.01
    np.testing.assert_allclose(out.inferred_mapped, true[TEST], atol=1e-8)


def test_compare_pair_scores_the_held_out_trials_and_fits_on_the_training_ones():
    # The latents are an exact copy; only the rates are off, by a known amount, so the rate
    # metrics must come from the held-out arrays the pair was given (not the true rates twice,
    # not the held-in neurons, not the training trials).
    a = np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0], [0.0, 0.0, 0.5]])
    c = np.array([0.2, -0.1, 0.3])
    true = _linear_trajectories(a, c, b=N_TRIALS, t=60)
    source = system_fixed_points(Linear(a, c), true[TEST], np.zeros(1), 16, CFG, seed=0)
    rng = np.random.default_rng(0)
    rates = np.exp(np.concatenate([0.6 * true, true[..., :2]], axis=-1))  # (20, 60, 5)
    spikes = rng.poisson(rates).astype(float)
    held_out = np.array([3, 4])
    # held-out inferred rates pulled halfway to each neuron's held-out mean: residual =
    # deviation / 2, so the variance-weighted R^2 is 1 - 1/4 whatever the rates; the training
    # trials' inferred rates are exact (a metric scored on them would read 1)
    mean = rates[TEST].reshape(-1, 5).mean(axis=0)
    inferred = rates.copy()
    inferred[TEST] = mean + 0.5 * (rates[TEST] - mean)
    none = np.zeros((N_TRIALS, 60, 0))  # a model that infers no inputs
    arrays = (true, rates, spikes, none, true, inferred, none)
    out = compare_pair(
        train=_trials(*arrays, TRAIN), test=_trials(*arrays, TEST), held_out=held_out,
        source_points=source, model_step=Linear(a, c), model_rest_input=np.zeros(1),
        n_candidates=16, fixed_point_config=CFG, dsa_options=dict(n_delays=3, rank=6, iters=200),
        seed=0,
    )  # fmt: skip
    assert out.metrics["rate_r2"] == pytest.approx(0.75, rel=1e-10)
    assert np.isnan(out.metrics["input_r2_true_to_inferred"])
    assert np.isnan(out.metrics["input_r2_inferred_to_true"])

    def bits_per_spike(neurons, predicted):
        """Independently: Poisson log pmf of the model minus that of each neuron's mean
        count over these trials, per spike, in bits."""
        y = spikes[TEST][..., neurons].reshape(-1, len(neurons))
        lam = predicted[TEST][..., neurons].reshape(-1, len(neurons))
        gain = poisson.logpmf(y, lam).sum() - poisson.logpmf(y, y.mean(axis=0)).sum()
        return gain / y.sum() / np.log(2)

    expected = bits_per_spike(held_out, inferred)
    assert out.metrics["co_bps"] == pytest.approx(expected, rel=1e-9)
    # the wrong arrays would give other numbers here
    wrong = [bits_per_spike(held_out, rates), bits_per_spike(np.arange(5), inferred),
             bits_per_spike(np.arange(3), inferred)]  # fmt: skip
    assert min(abs(expected - w) for w in wrong) > 0.02


def test_connectivity_from_the_jacobian_keeps_the_largest_share():
    jac = np.array([[5.0, 0.1, 0.0], [0.2, 4.0, 3.0], [0.0, 0.0, 1.0]])
    readout = np.array([2, 0, 1, 1])  # neuron -> latent
    held_in = np.array([0, 1])  # neurons 0 and 1 read latents 2 and 0
    conn = connectivity_from_jacobian(jac, readout, held_in, density=4 / 9)
    # connected latent pairs (row <- col): (0,0), (1,1), (1,2), (2,2)
    links = np.abs(jac) >= 1.0
    expected = links[np.ix_(readout, readout[held_in])]
    np.testing.assert_array_equal(conn, expected)
    assert conn.shape == (4, 2)
    with pytest.raises(ValueError, match="density = 0"):
        connectivity_from_jacobian(jac, readout, held_in, density=0)


def test_sample_states_draws_distinct_bins():
    lat = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    s = sample_states(lat, 4, seed=0)
    assert s.shape == (4, 3) and len({tuple(r) for r in s}) == 4
    assert sample_states(lat, 100, seed=0).shape == (10, 3)


def test_sources_give_latents_and_the_inputs_the_network_read():
    hp = dict(model__hidden_size=5, model__hidden_noise_std=0.0, task__n_bits=2, task__n_steps=15,
              task__p_pulse=0.2, task__input_noise_std=0.1)  # fmt: skip
    ff = unstack(
        flipflop_ensemble_from_hyperparams(hp, jax.random.split(jax.random.PRNGKey(0), 2)), 1
    )
    act = flipflop_activity(ff, hp, n_trials=3, seed=4)
    assert act.latents.shape == (3, 15, 5) and act.inputs.shape == (3, 15, 2)
    # noise-free: the latents are the GRU driven by exactly these inputs
    h, expected = jnp.zeros(5), []
    for x in act.inputs[0]:
        h = ff.cell(jnp.asarray(x), h)
        expected.append(h)
    np.testing.assert_allclose(act.latents[0], np.stack(expected), atol=1e-5)

    rhp = dict(model__cell="gru", model__hidden_size=4, model__sisu_input=False, task__mass=1.0,
               task__damping=10.0, task__dt=0.01, task__n_steps=10, task__workspace=1.0,
               task__feedback__delay=0, task__feedback__noise_std=0.0, task__motor__noise_std=0.0,
               task__motor__mult_noise_std=0.0, train__method="fixed", train__pert__type="curl",
               train__pert__std=0.0, train__pert__p_active=1.0)  # fmt: skip
    ctrl = unstack(ensemble_from_hyperparams(rhp, jax.random.split(jax.random.PRNGKey(1), 1)), 0)
    ract = reaching_activity(ctrl, rhp, n_trials=2, seed=0)
    assert ract.latents.shape == (2, 10, 4) and ract.inputs.shape == (2, 10, 6)
    assert (ract.inputs[:, :, :2] == ract.inputs[:, :1, :2]).all()  # the goal is held
