"""Flip-flop task, spiking simulator and comparison metrics on cases with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntdyn.analysis.comparison import (
    co_bps,
    cycle_consistency_r2,
    r2_variance_weighted,
    state_r2,
)
from ntdyn.analysis.spiking import simulate_spikes
from ntdyn.tasks.flipflop import last_pulse_sign, sample_flipflop


def test_flipflop_target_is_the_sign_of_the_last_pulse():
    pulses = jnp.array([[0, 0], [1, 0], [0, -1], [0, 0], [-1, 0], [0, 1]], jnp.float32)
    expected = [[0, 0], [1, 0], [1, -1], [1, -1], [-1, -1], [-1, 1]]
    np.testing.assert_array_equal(last_pulse_sign(pulses), expected)


def test_flipflop_batches_have_the_configured_statistics():
    b = sample_flipflop(jax.random.PRNGKey(0), batch_size=64, n_steps=500, n_bits=3)
    assert b.inputs.shape == b.targets.shape == (64, 500, 3)
    rate = float(jnp.mean(b.pulses != 0))
    assert rate == pytest.approx(0.01, abs=0.002)
    noise = np.asarray(b.inputs - b.pulses)
    assert noise.std() == pytest.approx(0.15, rel=0.02)
    assert set(np.unique(np.asarray(b.targets))) <= {-1.0, 0.0, 1.0}


def _latents(seed=0, shape=(40, 100, 8)):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, shape[1])
    phase = rng.uniform(0, 2 * np.pi, (shape[0], 1, shape[2]))
    freq = rng.uniform(0.5, 2, (1, 1, shape[2]))
    return np.sin(freq * t[None, :, None] + phase)


def test_simulated_spikes_follow_the_permuted_standardised_readout():
    lat = _latents()
    data = simulate_spikes(lat, np.zeros((40, 100, 1)), n_held_in=6, n_held_out=2, seed=3)
    assert data.spikes.shape == data.rates.shape == (40, 100, 8)
    assert sorted(data.readout.tolist()) == list(range(8))  # a permutation when n <= L
    x = lat[..., data.readout]
    z = (x - x.mean((0, 1))) / x.std((0, 1))
    np.testing.assert_allclose(data.rates, np.exp(z / 2.0), rtol=1e-10)
    # Poisson: counts average to the rates
    assert data.spikes.mean() == pytest.approx(data.rates.mean(), rel=0.03)
    assert data.held_out.tolist() == [6, 7]


def test_co_bps_is_zero_for_the_mean_rate_model_and_positive_for_the_true_rates():
    data = simulate_spikes(_latents(1), np.zeros((40, 100, 1)), n_held_in=4, n_held_out=4)
    y = data.spikes[..., data.held_out]
    mean_rate = np.broadcast_to(y.reshape(-1, 4).mean(0), y.shape)
    assert co_bps(y, mean_rate) == pytest.approx(0.0, abs=1e-12)
    assert co_bps(y, data.rates[..., data.held_out]) > 0.05
    assert r2_variance_weighted(data.rates, data.rates) == 1.0


def test_co_bps_of_a_two_neuron_poisson_example_worked_by_hand():
    # 2 trials x 2 bins x 2 neurons: spike counts y and predicted rates r (counts per bin)
    y = np.array([[[0, 0], [1, 2]], [[2, 4], [1, 2]]], float)
    r = np.array([[[0.5, 1], [1, 2]], [[2, 4], [1, 1]]], float)
    # Per bin, log p(y | lam) = y ln(lam) - lam - ln(y!); the ln(y!) terms are the same for
    # the model and the null model and cancel in the difference.
    # neuron 0: y = 0, 1, 2, 1 (4 spikes), r = 0.5, 1, 2, 1, null = its mean rate 4/4 = 1
    #   model: (0 - 0.5) + (0 - 1) + (2 ln 2 - 2) + (0 - 1) = 2 ln 2 - 4.5
    #   null:  (0 - 1) * 4                                   = -4
    # neuron 1: y = 0, 2, 4, 2 (8 spikes), r = 1, 2, 4, 1, null = its mean rate 8/4 = 2
    #   model: (0 - 1) + (2 ln 2 - 2) + (4 ln 4 - 4) + (0 - 1) = 10 ln 2 - 8
    #   null:  8 ln 2 - 4 * 2                                 = 8 ln 2 - 8
    # gain = (2 ln 2 - 0.5) + 2 ln 2 = 4 ln 2 - 0.5 nats over 4 + 8 = 12 spikes, in bits:
    expected = (4 * np.log(2) - 0.5) / (12 * np.log(2))  # = 1/3 - 1/(24 ln 2) = 0.273221...
    assert expected == pytest.approx(0.273221, abs=1e-6)
    assert co_bps(y, r) == pytest.approx(expected, rel=1e-12)
    # the null model is each neuron's own mean: every neuron at its mean scores 0
    assert co_bps(y, np.broadcast_to([1.0, 2.0], y.shape)) == pytest.approx(0.0, abs=1e-12)


def test_rate_r2_of_known_perturbations():
    # true rates of 2 neurons over 2 trials x 2 bins: neuron 0 = 1, 2, 3, 4; neuron 1 = 2, 2, 6, 6
    true = np.array([[[1, 2], [2, 2]], [[3, 6], [4, 6]]], float)
    # SS_tot = (1.5^2 + 0.5^2 + 0.5^2 + 1.5^2) + 4 * 2^2 = 5 + 16 = 21; neuron 0 off by +-1 in
    # every bin: SS_res = 4, so R^2 = 1 - 4/21 = 17/21 (the mean of the per-neuron R^2,
    # ((1 - 4/5) + 1) / 2 = 0.6, would not weight the neurons by their variance)
    off = np.array([[[1, 0], [-1, 0]], [[1, 0], [-1, 0]]], float)
    assert r2_variance_weighted(true, true + off) == pytest.approx(17 / 21, rel=1e-12)
    # rates pulled halfway to each neuron's mean: residual = deviation / 2, R^2 = 1 - 1/4
    rng = np.random.default_rng(0)
    rates = np.exp(rng.normal(size=(5, 30, 4)) + rng.normal(size=4))
    mean = rates.reshape(-1, 4).mean(axis=0)
    assert r2_variance_weighted(rates, mean + 0.5 * (rates - mean)) == pytest.approx(0.75)
    # a constant offset d_j per neuron: R^2 = 1 - sum d_j^2 / sum var_j (population variances)
    d = np.array([0.3, -0.2, 0.0, 0.5])
    expected = 1 - np.sum(d**2) / np.sum(rates.reshape(-1, 4).var(axis=0))
    assert r2_variance_weighted(rates, rates + d) == pytest.approx(expected, rel=1e-10)


def test_state_r2_is_one_for_an_invertible_affine_copy_and_penalises_extra_dimensions():
    true = _latents(2)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    copy = true @ A + 0.5
    assert state_r2(true, copy) == pytest.approx(1.0, abs=1e-9)
    assert state_r2(copy, true) == pytest.approx(1.0, abs=1e-9)
    assert cycle_consistency_r2(copy, true) == pytest.approx(1.0, abs=1e-9)
    # an inferred system with extra dimensions the truth cannot explain
    noise = rng.normal(scale=copy.std(), size=true.shape[:2] + (4,))  # as much variance
    extra = np.concatenate([copy, noise], axis=-1)
    assert state_r2(extra, true) == pytest.approx(1.0, abs=1e-6)  # still recovers the truth
    # but true -> inferred penalises the extra dims: their share of the variance is lost
    lost = (noise**2).sum() / ((extra - extra.mean((0, 1))) ** 2).sum()
    assert state_r2(true, extra) == pytest.approx(1 - lost, abs=0.02)
    assert cycle_consistency_r2(extra, true) == pytest.approx(1 - lost, abs=0.02)


def test_bad_simulator_options_name_the_parameter():
    with pytest.raises(ValueError, match="rectifier"):
        simulate_spikes(_latents(), np.zeros((40, 100, 1)), rectifier="relu")
    with pytest.raises(ValueError, match="rate_scaling"):
        simulate_spikes(_latents(), np.zeros((40, 100, 1)), rate_scaling=0)


def test_fixed_points_of_an_affine_copy_match_exactly():
    from ntdyn.analysis.comparison import compare_fixed_points, fit_affine

    rng = np.random.default_rng(5)
    pts = rng.normal(size=(4, 3))
    stable = np.array([True, True, False, True])
    W, b = rng.normal(size=(3, 5)), rng.normal(size=5)
    order = [2, 0, 3, 1]  # the other system lists them in another order
    res = compare_fixed_points(pts, stable, (pts @ W + b)[order], stable[order], (W, b))
    assert res["n_matched"] == 4 and res["same_stability"] == 1.0
    assert res["max_distance"] == pytest.approx(0.0, abs=1e-12)
    # the alignment can be estimated from trajectories, as in the pipeline
    traj = rng.normal(size=(50, 3))
    W_fit, b_fit = fit_affine(traj, traj @ W + b)
    res = compare_fixed_points(pts, stable, pts @ W + b, stable, (W_fit, b_fit))
    assert res["mean_distance"] == pytest.approx(0.0, abs=1e-9)
    # a missing point and a flipped stability are counted
    res = compare_fixed_points(pts, stable, (pts @ W + b)[:3], ~stable[:3], (W, b))
    assert (res["n_a"], res["n_b"], res["n_matched"]) == (4, 3, 3)
    assert res["same_stability"] == 0.0
