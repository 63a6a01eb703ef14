"""Dynamical Similarity Analysis on systems with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import ortho_group

from ntdyn.analysis.dsa import (
    angular_distance,
    delay_embed,
    dsa,
    havok_dmd,
    procrustes_similarity,
    wasserstein_eigenvalue_distance,
)


def rotation_decay(n_trials=8, n_steps=200, seed=0):
    """4-D x_{t+1} = M x_t: two damped rotations. Returns (M, trials (B, T, 4))."""
    rng = np.random.default_rng(seed)

    def block(r, th):
        return r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])

    # non-normal: conjugate by a random invertible map so the basis is not trivial
    t = rng.normal(size=(4, 4)) + 3 * np.eye(4)
    m = t @ np.block([[block(0.99, 0.2), np.zeros((2, 2))], [np.zeros((2, 2)), block(0.97, 0.5)]])
    m = m @ np.linalg.inv(t)
    x = np.empty((n_trials, n_steps, 4))
    x[:, 0] = rng.normal(size=(n_trials, 4))
    for k in range(1, n_steps):
        x[:, k] = x[:, k - 1] @ m.T
    return m, x


def flip_flop(n_trials=8, n_steps=200, dim=16, seed=1):
    """3-D sign tracking: x_{t+1} = 0.95 x_t + sparse pulses, read out to `dim` units."""
    rng = np.random.default_rng(seed)
    pulses = rng.choice([-1.0, 0.0, 1.0], p=[0.02, 0.96, 0.02], size=(n_trials, n_steps, 3))
    x = np.zeros((n_trials, n_steps, 3))
    for k in range(1, n_steps):
        x[:, k] = 0.95 * x[:, k - 1] + pulses[:, k]
    return np.tanh(x) @ rng.normal(size=(3, dim)) + 0.01 * rng.normal(size=(n_trials, n_steps, dim))


def limit_cycle(n_trials=8, n_steps=200, dim=16, seed=2):
    """2-D oscillator attracted to the unit circle (radius relaxes, phase advances)."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.2, 2.0, size=n_trials)
    phi = rng.uniform(0, 2 * np.pi, size=n_trials)
    z = np.empty((n_trials, n_steps, 2))
    for k in range(n_steps):
        z[:, k] = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)
        r, phi = r + 0.1 * r * (1 - r**2), phi + 0.3
    return z @ rng.normal(size=(2, dim)) + 0.01 * rng.normal(size=(n_trials, n_steps, dim))


def test_delay_embed_shape_and_rows():
    x = np.random.default_rng(0).normal(size=(3, 10, 2))
    emb = delay_embed(x, 4)
    assert emb.shape == (3, 7, 8)
    for b in range(3):
        for t in range(7):
            np.testing.assert_array_equal(emb[b, t], x[b, t : t + 4].reshape(-1))
    np.testing.assert_array_equal(delay_embed(x, 1), x)
    with pytest.raises(ValueError):
        delay_embed(x, 11)


@pytest.mark.parametrize("observed", ["direct", "mixed"])
def test_havok_dmd_recovers_linear_dynamics(observed):
    m, x = rotation_decay()
    if observed == "mixed":  # a random injective linear readout to 16 units
        x = x @ np.random.default_rng(3).normal(size=(4, 16))
    a = havok_dmd(x, n_delays=1, rank=4)
    assert a.shape == (4, 4)
    ev_a, ev_m = np.linalg.eigvals(a), np.linalg.eigvals(m)
    order = lambda ev: ev[np.lexsort((np.angle(ev), np.abs(ev)))]  # noqa: E731
    np.testing.assert_allclose(order(ev_a), order(ev_m), atol=1e-6)
    # delays of a linear system stay linear: the same spectrum with a larger embedding
    ev_d = np.linalg.eigvals(havok_dmd(x, n_delays=3, rank=4))
    np.testing.assert_allclose(order(ev_d), order(ev_m), atol=1e-6)


def test_havok_dmd_never_fits_across_trials():
    _, x = rotation_decay(n_trials=4, n_steps=50)
    # reordering trials must not change the spectrum (no cross-trial transitions)
    ev = np.sort_complex(np.linalg.eigvals(havok_dmd(x[::-1], n_delays=2, rank=4)))
    ev0 = np.sort_complex(np.linalg.eigvals(havok_dmd(x, n_delays=2, rank=4)))
    np.testing.assert_allclose(ev, ev0, atol=1e-8)
    # concatenating the trials into one long trial would create spurious jumps
    joined = x.reshape(1, -1, 4)
    ev_joined = np.sort_complex(np.linalg.eigvals(havok_dmd(joined, n_delays=2, rank=4)))
    assert np.max(np.abs(ev_joined - ev0)) > 1e-3


@pytest.mark.parametrize("det", [1.0, -1.0])
def test_procrustes_recovers_orthogonal_conjugate(det):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(10, 10)) / np.sqrt(10)
    q = ortho_group.rvs(10, random_state=5)
    if np.sign(np.linalg.det(q)) != det:
        q[:, 0] *= -1
    angular, c = procrustes_similarity(a, q @ a @ q.T, iters=500)
    assert angular < 1e-3
    np.testing.assert_allclose(c @ c.T, np.eye(10), atol=1e-8)
    # a different matrix is far
    other, _ = procrustes_similarity(a, rng.normal(size=(10, 10)) / np.sqrt(10), iters=500)
    assert other > 0.3


def test_procrustes_optimiser_refines_a_noisy_start():
    # with noise the spectral start is only approximate; Adam must reach at least
    # as close as the true rotation does (the optimum is no worse than it)
    rng = np.random.default_rng(4)
    a = rng.normal(size=(10, 10)) / np.sqrt(10)
    q = ortho_group.rvs(10, random_state=5)
    b = q @ a @ q.T + 0.05 * rng.normal(size=(10, 10)) / np.sqrt(10)
    angular, c = procrustes_similarity(a, b, iters=500)
    assert angular <= angular_distance(q @ a @ q.T, b) + 1e-6
    assert angular == pytest.approx(angular_distance(c @ a @ c.T, b))


def test_wasserstein_eigenvalue_distance():
    a = np.diag([0.5, 0.9, -0.2])
    assert wasserstein_eigenvalue_distance(a, np.diag([-0.2, 0.5, 0.9])) < 1e-12
    # one eigenvalue moved by 0.3: sqrt(0.3^2 / 3)
    d = wasserstein_eigenvalue_distance(a, np.diag([0.5, 0.9, 0.1]))
    assert d == pytest.approx(0.3 / np.sqrt(3))


def test_rotating_the_units_leaves_the_havok_coordinates_unchanged_up_to_sign():
    # y = x Q only rotates the columns of the delay embedding H: H_y H_y^T = H_x H_x^T, so the
    # left singular (time) coordinates and hence the DMD operators agree up to the signs of
    # the singular vectors. This needs no Procrustes at all (a copy that mixes the DMD
    # coordinates is in test_dsa_scores_copies_under_a_change_of_basis_near_zero).
    x = flip_flop()
    q = ortho_group.rvs(16, random_state=6)
    kw = dict(n_delays=5, rank=10, iters=500)
    same = dsa(x, x @ q, **kw)
    assert same["dmd_x"].shape == same["dmd_y"].shape == (10, 10)
    a_x, a_y = same["dmd_x"], same["dmd_y"]
    flips = np.array(list(itertools.product([1.0, -1.0], repeat=10)))  # every D = diag(+-1)
    gaps = np.abs(flips[:, :, None] * a_x * flips[:, None, :] - a_y).max(axis=(1, 2))
    assert gaps.min() < 1e-8
    assert same["angular"] < 1e-6
    assert same["wasserstein"] < 1e-8
    diff = dsa(x, limit_cycle(), **kw)
    assert diff["angular"] > 0.1
    assert diff["wasserstein"] > 0.1


def rot2(r, th):
    return r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])


def non_normal(radii=(0.95, 0.8), angles=(0.3, 0.9), coupling=0.6, seed=0):
    """4-D M = V [[R1, K], [0, R2]] V^T, R_i = r_i rot(th_i), K = coupling * ones, V a random
    rotation: eigenvalues r_i exp(+-i th_i) whatever the coupling; non-normal unless it is 0."""
    v = ortho_group.rvs(4, random_state=seed)
    t = np.block([[rot2(radii[0], angles[0]), coupling * np.ones((2, 2))],
                  [np.zeros((2, 2)), rot2(radii[1], angles[1])]])  # fmt: skip
    return v @ t @ v.T


def simulate(m, seed, n_trials=32, n_steps=500, noise=0.3):
    """(B, T, D) of x_{t+1} = M x_t + noise * e_t, x_0 and e_t standard normal (seeded)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_trials, n_steps, m.shape[0]))
    h = rng.normal(size=(n_trials, m.shape[0]))
    for k in range(n_steps):
        x[:, k] = h
        h = h @ m.T + noise * rng.normal(size=h.shape)
    return x


def best_signed_permutation_angle(a, b):
    """min over signed permutations P of angular_distance(P A P^T, B), by brute force."""
    n = a.shape[0]
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=n)))  # (2^n, n)
    best = np.inf
    for perm in itertools.permutations(range(n)):
        pa = a[np.ix_(perm, perm)] * signs[:, :, None] * signs[:, None, :]  # (2^n, n, n)
        cos = np.sum(pa * b, axis=(1, 2)) / (np.linalg.norm(a) * np.linalg.norm(b))
        best = min(best, float(np.arccos(np.clip(cos.max(), -1.0, 1.0))))
    return best


def test_procrustes_undoes_a_mixing_rotation_of_a_non_normal_matrix():
    rng = np.random.default_rng(8)
    # non-normal: an upper-triangular Schur form with distinct eigenvalues in a random basis
    t = np.diag([0.9, 0.6, 0.3, -0.2, -0.5, -0.8]) + np.triu(rng.normal(size=(6, 6)), 1)
    v = ortho_group.rvs(6, random_state=9)
    a = v @ t @ v.T
    assert np.linalg.norm(a @ a.T - a.T @ a) > 1.0
    q = ortho_group.rvs(6, random_state=10)
    assert np.abs(q).max() < 0.9  # every coordinate is mixed: far from a signed permutation
    b = q @ a @ q.T
    angular, c = procrustes_similarity(a, b, iters=300)
    assert angular < 1e-6
    np.testing.assert_allclose(c @ c.T, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(c @ a @ c.T, b, atol=1e-6)
    # only +-Q commute A into B: an orthogonal S with S A S^T = A must be +-I when A is
    # non-normal with distinct real eigenvalues (its eigenspaces are not orthogonal)
    assert min(np.abs(c - q).max(), np.abs(c + q).max()) < 1e-5
    # no signed permutation comes near: an optimiser that only flips signs or reorders
    # coordinates cannot pass this test
    assert best_signed_permutation_angle(a, b) > 0.3


def test_dsa_scores_copies_under_a_change_of_basis_near_zero():
    m = non_normal()
    x = simulate(m, seed=1)
    kw = dict(n_delays=1, rank=4, iters=500)
    c = np.random.default_rng(3).normal(size=(4, 4)) + 2 * np.eye(4)  # general, invertible

    # 1. The same trajectories in a general basis, y = x C^T. The HAVOK coordinates U are
    # an orthonormal basis of the columns of the embedding, which C does not change, so
    # U_y = U_x R with R orthogonal and A_y = R^T A_x R exactly, but R mixes coordinates.
    exact = dsa(x, x @ c.T, **kw)
    assert exact["angular"] < 1e-6
    assert exact["wasserstein"] < 1e-10
    assert best_signed_permutation_angle(exact["dmd_x"], exact["dmd_y"]) > 0.15

    # 2. Copies from other initial states and noise: the answer is 0 up to sampling error.
    # Q M Q^T with isotropic x_0 and noise has the statistics of Q x, so its HAVOK
    # coordinates are (in the limit) those of x up to a signed permutation; the general
    # copy y = C x' (x' other trajectories of M, i.e. C M C^-1 driven by C e_t from C x'_0)
    # has coordinates that only a mixing rotation aligns.
    q = ortho_group.rvs(4, random_state=7)
    rotated = dsa(x, simulate(q @ m @ q.T, seed=2), **kw)
    general = dsa(x, simulate(m, seed=2) @ c.T, **kw)
    for copy in (rotated, general):
        assert copy["angular"] < 0.012  # sampling error ~0.006; exact data give 0 (above)
        assert copy["wasserstein"] < 0.02
    assert best_signed_permutation_angle(general["dmd_x"], general["dmd_y"]) > 0.1


def test_dsa_separates_systems_that_differ_in_eigenvalues_or_non_normality():
    m = non_normal()
    x = simulate(m, seed=1)
    kw = dict(n_delays=1, rank=4, iters=500)
    other = dsa(x, simulate(non_normal(radii=(0.8, 0.95)), seed=2), **kw)  # decay rates swapped
    assert other["angular"] > 0.12
    assert other["wasserstein"] > 0.1
    # the same eigenvalues without the coupling: only the angular score sees the difference
    normal = dsa(x, simulate(non_normal(coupling=0.0), seed=2), **kw)
    assert normal["angular"] > 0.05
    assert normal["wasserstein"] < 0.02
    # Procrustes is orthogonal: C M C^-1 driven by its own isotropic noise has other state
    # statistics than C x, and after whitening the operators no longer match (same spectrum)
    c = np.random.default_rng(3).normal(size=(4, 4)) + 2 * np.eye(4)
    similar = dsa(x, simulate(c @ m @ np.linalg.inv(c), seed=2), **kw)
    assert similar["angular"] > 0.04
    assert similar["wasserstein"] < 0.02
