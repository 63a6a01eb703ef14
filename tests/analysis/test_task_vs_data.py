"""Flip-flop task, spiking simulator and comparison metrics on cases with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntdyn.analysis.comparison import (
    affine_r2,
    affine_r2_in_sample,
    co_bps,
    cycle_consistency_r2,
    principal_axes,
    r2_variance_weighted,
    round_trip_r2,
    truncated_pinv,
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


# 40 trials of 8 latents: the first 30 fit every map, the last 10 score it
TRAIN, TEST = slice(0, 30), slice(30, 40)


def _held_out_share(z: np.ndarray, part: np.ndarray, train_mean: np.ndarray) -> float:
    """Share of the held-out variance of z (B, T, D) lying in `part` (its component in some
    subspace, the same shape), measured about the training mean (what a map with no offset
    of its own cannot reconstruct)."""
    z_flat = z.reshape(-1, z.shape[-1])
    lost = ((part.reshape(-1, z.shape[-1]) - train_mean) ** 2).sum()
    return lost / ((z_flat - z_flat.mean(axis=0)) ** 2).sum()


def test_state_r2_is_one_for_an_invertible_affine_copy_and_penalises_extra_dimensions():
    true = _latents(2)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    copy = true @ A + 0.5
    for src, dst in ((true, copy), (copy, true)):
        assert affine_r2(src[TRAIN], dst[TRAIN], src[TEST], dst[TEST]) == pytest.approx(1, abs=1e-9)
    assert round_trip_r2(copy[TRAIN], true[TRAIN], copy[TEST]) == pytest.approx(1.0, abs=1e-9)
    # an inferred system with extra dimensions the truth cannot explain
    noise = rng.normal(scale=copy.std(), size=true.shape[:2] + (4,))  # as much variance
    extra = np.concatenate([copy, noise], axis=-1)
    # inferred -> true still recovers the truth (the noise dims earn ~0 weight; 3000 samples)
    assert affine_r2(extra[TRAIN], true[TRAIN], extra[TEST], true[TEST]) == pytest.approx(
        1.0, abs=2e-3
    )
    # but true -> inferred loses the held-out variance of the extra dims (about their training
    # mean, which is what the fitted offset predicts for them)
    lost = _held_out_share(
        extra[TEST], np.concatenate([0 * copy[TEST], noise[TEST]], -1),
        np.r_[np.zeros(8), noise[TRAIN].reshape(-1, 4).mean(0)],
    )  # fmt: skip
    # each noise dim has the copy's overall variance per dim: 4 of 12 dims, about a third
    assert lost == pytest.approx(1 / 3, abs=0.05)
    got = affine_r2(true[TRAIN], extra[TRAIN], true[TEST], extra[TEST])
    assert got == pytest.approx(1 - lost, abs=2e-3)
    assert round_trip_r2(extra[TRAIN], true[TRAIN], extra[TEST]) == pytest.approx(
        1 - lost, abs=2e-3
    )


def test_cross_validated_state_r2_of_a_model_that_overfits_is_lower_than_in_sample():
    # 4 training trials x 30 bins = 120 samples, 40 inferred dims of pure noise. With an
    # offset and p independent Gaussian regressors, the in-sample fit projects the centred
    # target onto a uniformly random p-dim subspace of n - 1 dims: E[R^2] = p / (n - 1) for
    # every target dim, whatever the target. On held-out trials the same map predicts nothing
    # and adds its estimation error: R^2 < 0.
    true = _latents(3, shape=(8, 30, 8))
    rng = np.random.default_rng(1)
    n, p = 4 * 30, 40
    noise = rng.normal(size=(8, 30, p))
    fit, held = slice(0, 4), slice(4, 8)
    in_sample = affine_r2_in_sample(noise[fit], true[fit])
    assert in_sample == pytest.approx(p / (n - 1), abs=0.06)
    cross_validated = affine_r2(noise[fit], true[fit], noise[held], true[held])
    assert cross_validated < 0 < in_sample
    # a model that carries the truth (a noisy copy) plus the same 40 spare dims: the spare dims
    # inflate the in-sample score only
    A = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    model = np.concatenate([true @ A + rng.normal(scale=1.0, size=true.shape), noise], -1)
    honest = affine_r2(model[fit], true[fit], model[held], true[held])
    assert honest < affine_r2_in_sample(model[fit], true[fit]) - 0.1
    assert honest > 0.4  # the signal is still there, held out
    # without the spare dims the in-sample score is close to the cross-validated one
    copy_only = model[..., :8]
    gap = affine_r2_in_sample(copy_only[fit], true[fit]) - affine_r2(
        copy_only[fit], true[fit], copy_only[held], true[held]
    )
    assert gap < affine_r2_in_sample(model[fit], true[fit]) - honest


def test_cycle_consistency_is_one_for_an_invertible_affine_readout():
    z = _latents(4)[..., :4]
    q = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))[0]
    readout = np.diag([3.0, 2.0, 1.5, 1.0]) @ q  # squared singular values 9 : 4 : 2.25 : 1
    log_rates = z @ readout - 1.0
    assert cycle_consistency_r2(z[TRAIN], log_rates[TRAIN], z[TEST]) == pytest.approx(1, abs=1e-9)
    # more neurons than latents, same rank: still 1
    wide = z @ np.random.default_rng(3).normal(size=(4, 12)) + 0.2
    assert cycle_consistency_r2(z[TRAIN], wide[TRAIN], z[TEST]) == pytest.approx(1, abs=1e-9)


def test_cycle_consistency_loses_extra_latent_dimensions_the_rates_do_not_read():
    z = _latents(5)[..., :6]
    readout = np.zeros((6, 10))
    readout[:4] = np.random.default_rng(4).normal(size=(4, 10))  # dims 4, 5 read by no neuron
    log_rates = z @ readout + 0.1
    got = cycle_consistency_r2(z[TRAIN], log_rates[TRAIN], z[TEST])
    train_mean = z[TRAIN].reshape(-1, 6).mean(0)
    unread = z[TEST].copy()
    unread[..., :4] = train_mean[:4]  # the component the readout cannot see
    expected = 1 - _held_out_share(z[TEST], unread, train_mean)
    assert 0.5 < expected < 0.8
    assert got == pytest.approx(expected, abs=1e-9)
    # ntdyn's round trip does not see this: it maps through the true latents, not the rates
    assert round_trip_r2(z[TRAIN], z[TRAIN], z[TEST]) == pytest.approx(1.0, abs=1e-9)


def test_cycle_consistency_of_a_rank_deficient_readout_keeps_its_column_space():
    z = _latents(6)[..., :4]
    rng = np.random.default_rng(5)
    B = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, -0.8], [0.3, 0.2]])
    readout = B @ rng.normal(size=(2, 10))  # rank 2: two latent directions reach the rates
    log_rates = z @ readout
    got = cycle_consistency_r2(z[TRAIN], log_rates[TRAIN], z[TEST])
    # the readout sees the latents through the column space of B (in latent space)
    s = np.linalg.svd(readout, compute_uv=False)
    assert s[1] ** 2 / (s**2).sum() > 0.01  # both directions are above the 1 % cut
    P = np.linalg.qr(B)[0] @ np.linalg.qr(B)[0].T
    train_mean = z[TRAIN].reshape(-1, 4).mean(0)
    unseen = (z[TEST] - train_mean) @ (np.eye(4) - P) + train_mean
    expected = 1 - _held_out_share(z[TEST], unseen, train_mean)
    assert 0.2 < expected < 0.9
    assert got == pytest.approx(expected, abs=1e-9)


def test_cycle_consistency_truncates_the_readout_at_one_percent_of_its_power():
    z = _latents(7)[..., :2]
    q = np.array([[0.6, 0.8], [-0.8, 0.6]])  # latent directions read by the two singular values
    train_mean = z[TRAIN].reshape(-1, 2).mean(0)
    weak = q[:, 1:] @ q[:, 1:].T  # projector on the weakly read direction
    lost = _held_out_share(z[TEST], (z[TEST] - train_mean) @ weak + train_mean, train_mean)
    assert lost > 0.2
    for s_weak, expected in ((2.0, 1.0), (0.5, 1 - lost)):
        # squared singular values 100 : 4 (3.8 % kept) and 100 : 0.25 (0.25 %, dropped)
        readout = q @ np.diag([10.0, s_weak]) @ np.eye(2, 5)
        got = cycle_consistency_r2(z[TRAIN], (z @ readout)[TRAIN], z[TEST])
        assert got == pytest.approx(expected, abs=1e-9), s_weak
    # the threshold is the benchmark's 1 % by default and can be set
    readout = q @ np.diag([10.0, 0.5]) @ np.eye(2, 5)
    log_rates = z @ readout
    loose = cycle_consistency_r2(z[TRAIN], log_rates[TRAIN], z[TEST], variance_threshold=0.001)
    assert loose == pytest.approx(1.0, abs=1e-9)


def test_truncated_pseudo_inverse_of_known_maps():
    W = np.diag([4.0, 2.0, 0.1]) @ np.eye(3, 5)  # (3, 5): squared singular values 16 : 4 : 0.01
    np.testing.assert_allclose(truncated_pinv(W, 0.01), np.linalg.pinv(W) * [1, 1, 0], atol=1e-14)
    np.testing.assert_allclose(truncated_pinv(W, 0.0), np.linalg.pinv(W), atol=1e-12)
    np.testing.assert_allclose(truncated_pinv(W, 0.5), np.linalg.pinv(W) * [1, 0, 0], atol=1e-14)
    assert truncated_pinv(np.zeros((3, 2)), 0.01).shape == (2, 3)


def test_principal_axes_rotate_and_centre_without_dropping_any():
    x = _latents(8)[..., :3] @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.1]])
    mean, axes = principal_axes(x)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)
    pcs = (x.reshape(-1, 3) - mean) @ axes
    cov = np.cov(pcs.T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-12)
    assert np.all(np.diff(np.diag(cov)) <= 0)  # largest variance first


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
