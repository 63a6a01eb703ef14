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
