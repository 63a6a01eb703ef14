"""Dynamical Similarity Analysis on systems with known answers."""

from __future__ import annotations

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


def test_dsa_rotated_copy_is_similar_and_different_systems_are_not():
    x = flip_flop()
    q = ortho_group.rvs(16, random_state=6)
    kw = dict(n_delays=5, rank=10, iters=500)
    same = dsa(x, x @ q, **kw)
    assert same["dmd_x"].shape == same["dmd_y"].shape == (10, 10)
    assert same["angular"] < 0.005
    assert same["wasserstein"] < 1e-3
    diff = dsa(x, limit_cycle(), **kw)
    assert diff["angular"] > 0.1
    assert diff["wasserstein"] > 0.1
