"""PCA and tangling on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ntdyn.analysis.pca import PCA, fit_pca, project, time_window
from ntdyn.analysis.tangling import tangling

# --- PCA ---------------------------------------------------------------------------------------


def _rotation(seed: int, n: int = 3) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


@pytest.fixture(scope="module")
def gaussian():
    """(40, 500, 3) samples with variances 9, 4, 1 along the columns of a random rotation."""
    rot = _rotation(0)
    z = np.random.default_rng(1).normal(size=(20_000, 3)) * np.array([3.0, 2.0, 1.0])
    offset = np.array([5.0, -2.0, 1.0])
    return (z @ rot.T + offset).reshape(40, 500, 3), rot, offset


def test_pca_recovers_variances_and_axes(gaussian):
    states, rot, offset = gaussian
    pca = fit_pca(states, 3)
    assert isinstance(pca, PCA) and pca.n_components == 3
    np.testing.assert_allclose(pca.mean, offset, atol=0.05)
    np.testing.assert_allclose(pca.explained_variance, [9, 4, 1], rtol=0.05)
    np.testing.assert_allclose(pca.explained_variance_ratio, np.array([9, 4, 1]) / 14, atol=0.01)
    np.testing.assert_allclose(pca.explained_variance_ratio.sum(), 1.0)
    np.testing.assert_allclose(pca.total_variance, states.reshape(-1, 3).var(0, ddof=1).sum())
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-12)
    # axes up to sign: |cos| between fitted and true axes ~ 1
    np.testing.assert_allclose(np.abs(np.sum(pca.components * rot.T, 1)), 1.0, atol=1e-3)
    # sign convention: largest-magnitude loading positive
    assert np.all(pca.components[np.arange(3), np.abs(pca.components).argmax(1)] > 0)


def test_projection_of_mean_is_zero_and_shapes(gaussian):
    states, _, _ = gaussian
    pca = fit_pca(states, 2)
    assert pca.components.shape == (2, 3) and pca.explained_variance.shape == (2,)
    np.testing.assert_allclose(project(pca, pca.mean), [0.0, 0.0], atol=1e-12)
    proj = project(pca, states)
    assert proj.shape == (40, 500, 2)
    # projected coordinates are centred, uncorrelated, with the explained variances
    flat = proj.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.cov(flat.T), np.diag(pca.explained_variance), atol=1e-8)
    with pytest.raises(ValueError, match="dims"):
        project(pca, states[..., :2])


def test_n_components_is_clipped_and_validated():
    x = np.random.default_rng(0).normal(size=(4, 6))  # 4 samples in 6 dims: rank <= 3
    pca = fit_pca(x, 10)
    assert pca.components.shape == (4, 6)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(4), atol=1e-12)
    assert pca.explained_variance[-1] < 1e-20
    assert fit_pca(np.random.default_rng(1).normal(size=(50, 3)), 7).components.shape == (3, 3)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_components"):
            fit_pca(x, bad)


def test_time_window_slices_the_time_axis():
    states = np.arange(2 * 120 * 3).reshape(2, 120, 3)
    w = time_window(states, 50, 100)
    assert w.shape == (2, 50, 3)
    np.testing.assert_array_equal(w, states[:, 50:100])
    np.testing.assert_array_equal(time_window(states, 100, None), states[:, 100:])
    np.testing.assert_array_equal(time_window(states, 5, 7, time_axis=1), states[:, 5:7])
    t_first = np.moveaxis(states, 1, 0)
    np.testing.assert_array_equal(time_window(t_first, 50, 100, time_axis=0), t_first[50:100])
    with pytest.raises(ValueError, match="empty"):
        time_window(states, 100, 50)
    with pytest.raises(ValueError, match="time_axis"):
        time_window(states, 0, 1, time_axis=3)


# --- tangling ----------------------------------------------------------------------------------

PERIOD = 64  # samples per loop
DT = 0.01


def _loop(kind: str) -> np.ndarray:
    """(1, PERIOD + 1, 2): one full loop at constant angular rate, samples at t = 0..PERIOD."""
    theta = 2 * np.pi * np.arange(PERIOD + 1) / PERIOD
    if kind == "circle":
        xy = np.stack([np.cos(theta), np.sin(theta)], -1)
    else:  # figure eight crossing at the origin with velocities (1, 2) and (-1, 2) (x omega)
        xy = np.stack([np.sin(theta), np.sin(2 * theta)], -1)
    return xy[None]


def _brute_force(x: np.ndarray, dt: float, epsilon: float) -> np.ndarray:
    c, t, _ = x.shape
    vel = np.diff(x, axis=1) / dt
    q = np.zeros((c, t - 1))
    for a in range(c):
        for i in range(t - 1):
            best = 0.0
            for b in range(c):
                for j in range(t - 1):
                    num = np.sum((vel[a, i] - vel[b, j]) ** 2)
                    den = np.sum((x[a, i + 1] - x[b, j + 1]) ** 2) + epsilon
                    best = max(best, num / den)
            q[a, i] = best
    return q


def test_circle_is_untangled_and_figure_eight_is_tangled_at_the_crossing():
    circle = _loop("circle")
    q_circle = tangling(circle, DT)
    eight = _loop("eight")
    q_eight = tangling(eight, DT)
    assert q_circle.shape == q_eight.shape == (1, PERIOD)
    # constant speed on a circle: Q is the same everywhere, = speed^2 * 4 / (4 + eps) (r = 1),
    # reached between antipodal points; eps ~ 0.1 * (0.5 + 0.5)
    eps = 0.1 * circle[0].var(0).sum()
    omega = 2 * np.pi / (PERIOD * DT)
    chord_speed = 2 * np.sin(np.pi / PERIOD) / DT  # finite-difference speed
    assert np.ptp(q_circle) < 1e-6 * q_circle.mean()
    np.testing.assert_allclose(q_circle.max(), chord_speed**2 * 4 / (4 + eps), rtol=1e-9)
    assert q_circle.max() < omega**2
    # figure eight: same position, opposite x velocity -> |dv|^2 / eps = 4 omega^2 / 0.1
    assert q_eight.max() > 20 * q_circle.max()
    step = np.argmax(q_eight[0]) + 1  # column j is step j + 1
    assert step % (PERIOD // 2) in (0, 1, PERIOD // 2 - 1)  # at theta = 0 or pi
    eps_eight = 0.1 * eight[0].var(0).sum()
    np.testing.assert_allclose(q_eight.max(), 4 * omega**2 / eps_eight, rtol=0.05)


def test_vectorised_equals_brute_force(monkeypatch):
    import ntdyn.analysis.tangling as module

    x = np.random.default_rng(3).normal(size=(3, 7, 4)) + 10.0
    eps = 0.1 * x.reshape(-1, 4).var(0).sum()
    expected = _brute_force(x, 0.05, eps)
    np.testing.assert_allclose(tangling(x, 0.05), expected, rtol=1e-9)
    np.testing.assert_allclose(
        tangling(x, 0.05, epsilon=0.3), _brute_force(x, 0.05, 0.3), rtol=1e-9
    )
    # several blocks give the same answer as one
    monkeypatch.setattr(module, "BLOCK_ELEMENTS", 2 * 18 + 5)
    np.testing.assert_allclose(tangling(x, 0.05), expected, rtol=1e-9)


def test_tangling_validates_and_runs_at_full_size():
    with pytest.raises(ValueError, match="epsilon"):
        tangling(np.ones((2, 5, 3)), DT)
    with pytest.raises(ValueError, match="time steps"):
        tangling(np.zeros((2, 1, 3)), DT)
    x = np.cumsum(np.random.default_rng(0).normal(size=(100, 100, 10)), axis=1)
    q = tangling(x, DT)  # 9900 points: ~100 blocks, well under a few seconds
    assert q.shape == (100, 99) and np.all(np.isfinite(q)) and np.all(q >= 0)
