"""Fixed points on systems with known answers (docs/science.md §5.3)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.analysis.fixed_points import FixedPointConfig, find_fixed_points

A = np.array([[0.5, 0.2, 0.0], [-0.1, 0.3, 0.1], [0.0, 0.2, -0.4]])
B = np.array([1.0, -2.0, 0.5])


def linear(h, u):
    return jnp.asarray(A) @ h + jnp.asarray(B) + u


def bistable(h, u):
    # x: stable points at +-1, unstable at 0 (F' = 1 + 0.1 (1 - 3x^2)); y contracts by 0.5
    x, y = h[0], h[1]
    return jnp.stack([x + 0.1 * (x - x**3), 0.5 * y]) + u


def test_linear_map_gives_its_exact_fixed_point_and_eigenvalues():
    u = np.array([0.1, 0.0, -0.2])
    cands = np.random.default_rng(0).normal(size=(32, 3))
    fps = find_fixed_points(linear, cands, u)
    expected = np.linalg.solve(np.eye(3) - A, B + u)
    assert len(fps.h) == 1
    np.testing.assert_allclose(fps.h[0], expected, rtol=0, atol=1e-10)
    eig = np.linalg.eigvals(A)
    eig = eig[np.argsort(-np.abs(eig), kind="stable")]
    np.testing.assert_allclose(np.abs(fps.eigenvalues[0]), np.abs(eig), atol=1e-12)
    np.testing.assert_allclose(np.sort_complex(fps.eigenvalues[0]), np.sort_complex(eig))
    assert fps.stable[0] and fps.is_fixed[0]
    assert fps.q[0] < 1e-20  # float64 reaches far below tol_q
    assert fps.candidates_converged.all()


def test_two_stable_points_and_a_saddle_are_found_exactly():
    cands = np.random.default_rng(1).uniform(-1.5, 1.5, size=(64, 2))
    fps = find_fixed_points(bistable, cands, np.zeros(2))
    order = np.argsort(fps.h[:, 0])
    np.testing.assert_allclose(fps.h[order], [[-1, 0], [0, 0], [1, 0]], atol=1e-8)
    assert fps.stable[order].tolist() == [True, False, True]
    assert fps.table()["n_unstable_modes"].to_numpy()[order].tolist() == [0, 1, 0]
    np.testing.assert_allclose(np.abs(fps.eigenvalues[order][1]), [1.1, 0.5], atol=1e-10)
    np.testing.assert_allclose(np.abs(fps.eigenvalues[order][0]), [0.8, 0.5], atol=1e-10)


@pytest.mark.parametrize("block", [64, 5, 13])  # one block; 13 of 5 (the last padded); 5 of 13
def test_blocks_of_candidates_find_the_same_points(block):
    # Each candidate's search is its own: cut into blocks, the same points, the same
    # iterations for each candidate, and q per candidate to rounding.
    cands = np.random.default_rng(1).uniform(-1.5, 1.5, size=(64, 2))
    whole = find_fixed_points(bistable, cands, np.zeros(2))
    blocks = find_fixed_points(bistable, cands, np.zeros(2), block=block)
    np.testing.assert_array_equal(blocks.candidate, whole.candidate)
    np.testing.assert_array_equal(blocks.n_iters, whole.n_iters)
    np.testing.assert_allclose(blocks.h, whole.h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(blocks.candidates_q, whole.candidates_q, rtol=1e-9, atol=1e-30)


@pytest.mark.parametrize("block", [0, -3, 2.5, "8"])
def test_a_bad_block_is_refused_naming_it(block):
    with pytest.raises(ValueError, match=r"block = .*: must be an integer >= 1"):
        find_fixed_points(bistable, np.zeros((4, 2)), np.zeros(2), block=block)


def test_duplicates_are_merged_keeping_the_lowest_q():
    cands = np.random.default_rng(2).uniform(0.8, 1.2, size=(50, 2))  # all in one basin
    fps = find_fixed_points(bistable, cands, np.zeros(2))
    assert len(fps.h) == 1
    assert fps.q[0] == fps.candidates_q[np.isfinite(fps.candidates_q)].min()


def test_points_far_outside_the_candidate_cloud_are_dropped_as_outliers():
    # The only fixed point, 2 B + 2 u, lies ~40 mean-candidate-distances from the candidates.
    cands = np.random.default_rng(3).normal(scale=0.05, size=(20, 3))
    far = lambda h, u: 0.5 * h + 2.0 * jnp.asarray(B)  # noqa: E731
    fps = find_fixed_points(far, cands, np.zeros(3))
    assert fps.candidates_converged.all()
    assert len(fps.h) == 0
    kept = find_fixed_points(far, cands, np.zeros(3), FixedPointConfig(outlier_distance=1e3))
    np.testing.assert_allclose(kept.h[0], 4.0 * B, atol=1e-10)


def test_same_seed_same_points_and_noise_changes_candidates():
    cands = np.random.default_rng(4).uniform(-1.5, 1.5, size=(40, 2))
    cfg = FixedPointConfig(noise_std=0.05, newton_iters=0, max_iters=40)
    a = find_fixed_points(bistable, cands, np.zeros(2), cfg, seed=7)
    b = find_fixed_points(bistable, cands, np.zeros(2), cfg, seed=7)
    c = find_fixed_points(bistable, cands, np.zeros(2), cfg, seed=8)
    np.testing.assert_array_equal(a.candidates_q, b.candidates_q)
    np.testing.assert_array_equal(a.h, b.h)
    assert not np.array_equal(a.candidates_q, c.candidates_q)


def test_adam_alone_stops_each_candidate_at_tol_q():
    cfg = FixedPointConfig(newton_iters=0, max_iters=3000, tol_q=1e-8, learning_rate=0.05)
    cands = np.random.default_rng(5).uniform(0.6, 1.4, size=(8, 2))
    fps = find_fixed_points(bistable, cands, np.zeros(2), cfg)
    assert (fps.candidates_q < 1e-8).all()
    assert (fps.n_iters < 3000).all()


def test_slow_points_are_kept_and_labelled():
    # F(x) = x + 0.01 (x^2 + 0.01): no fixed point; q has a slow point at x = 0.
    def ghost(h, u):
        return h + 0.01 * (h**2 + 0.01) + u

    fps = find_fixed_points(ghost, np.linspace(-0.5, 0.5, 11)[:, None], np.zeros(1))
    assert len(fps.h) >= 1
    assert not fps.is_fixed.any()
    assert (fps.table()["kind"] == "slow").all()
    assert np.abs(fps.h).min() < 0.05


@pytest.mark.parametrize("field,value", [("tol_q", 0.0), ("max_iters", -1), ("unique_tol", -1e-3)])
def test_bad_options_are_refused_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        FixedPointConfig(**{field: value})


def test_groups_with_different_inputs_keep_their_own_fixed_points():
    # Same linear map, two inputs: two different fixed points, one per group.
    cands = np.random.default_rng(6).normal(size=(20, 3))
    u = np.zeros((20, 3))
    u[10:] = [1.0, 0.0, 0.0]
    groups = np.repeat([0, 1], 10)
    fps = find_fixed_points(linear, cands, u, groups=groups)
    assert fps.group.tolist() == [0, 1]
    for g, point in zip(fps.group, fps.h, strict=True):
        expected = np.linalg.solve(np.eye(3) - A, B + u[10 * g])
        np.testing.assert_allclose(point, expected, atol=1e-10)
    assert fps.candidate[1] >= 10


def test_jacobians_belong_to_the_kept_points_only():
    """The search keeps no (N, H, H) Jacobian per candidate; the points' Jacobians are dF/dh
    at those points (the bistable map: 1 + 0.1 (1 - 3x^2) and 0.5), computed in float64."""
    import jax

    from ntdyn.analysis.fixed_points import _solve, split_step

    cands = np.random.default_rng(3).normal(size=(64, 2)) * 1.5
    u = np.zeros(2)
    fps = find_fixed_points(bistable, cands, u)
    assert sorted(np.round(fps.h[:, 0], 6)) == [-1.0, 0.0, 1.0]
    assert fps.jacobian.shape == (3, 2, 2) and fps.jacobian.dtype == np.float64
    for h, jac in zip(fps.h, fps.jacobian, strict=True):
        expected = np.diag([1 + 0.1 * (1 - 3 * h[0] ** 2), 0.5])
        np.testing.assert_allclose(jac, expected, atol=1e-12)
    shapes = jax.eval_shape(
        lambda h0, uu: _solve(*split_step(bistable), h0, uu, (10, 5, 1e-12, 1e-20, 1e-2, 200.0)),
        jax.ShapeDtypeStruct((64, 2), np.float32), jax.ShapeDtypeStruct((64, 2), np.float32),
    )  # fmt: skip
    assert [s.shape for s in shapes] == [(64, 2), (64,), (64,)]  # states, q, iterations


def _kept_group_by_group(h, q, h0, groups, cfg):
    """Reference: `_kept` on one group at a time (outliers against all candidates)."""
    from ntdyn.analysis.fixed_points import _kept

    kept = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        kept.append(idx[_kept(h[idx], q[idx], h0[idx], cfg, cloud=h0)])
    return np.concatenate(kept).astype(int) if kept else np.zeros(0, int)


def test_duplicates_judged_for_all_groups_at_once_as_group_by_group():
    """Groups of 1 to ~20 candidates with unsorted, non-contiguous labels; exact and near
    duplicates (within and just outside unique_tol, and duplicate chains a-b-c where c is
    near b but not a), ties in q, non-finite q and distance outliers."""
    from ntdyn.analysis.fixed_points import _kept_in_groups

    rng = np.random.default_rng(8)
    n, dim = 900, 3
    groups = rng.choice(np.arange(100) * 7 + 3, size=n)
    groups[:5] = 1000  # a group of outliers only
    base = rng.normal(size=(30, dim))
    offset = rng.choice([0.0, 4e-4, 8e-4, 2e-3], size=(n, 1)) * rng.choice([-1, 1], (n, dim))
    h = base[rng.integers(0, len(base), n)] + offset
    q = rng.choice([1e-15, 1e-14, 1e-13, 1e-6], size=n)  # many ties
    q[rng.random(n) < 0.05] = np.nan
    h[:5] += 1e3
    h0 = h + rng.normal(scale=0.1, size=h.shape)
    cfg = FixedPointConfig()
    got = _kept_in_groups(h, q, h0, groups, cfg)
    np.testing.assert_array_equal(got, _kept_group_by_group(h, q, h0, groups, cfg))
    assert 1000 not in groups[got] and len(got) < n
    none = np.full(n, np.inf)
    assert _kept_in_groups(h, none, h0, groups, cfg).size == 0


def test_eigenvalues_alone_match_the_full_decomposition():
    cands = np.random.default_rng(1).uniform(-1.5, 1.5, size=(64, 2))
    full = find_fixed_points(bistable, cands, np.zeros(2))
    alone = find_fixed_points(bistable, cands, np.zeros(2), eigenvectors=False)
    assert alone.eigenvectors is None and full.eigenvectors.shape == (3, 2, 2)
    np.testing.assert_allclose(alone.eigenvalues, full.eigenvalues, atol=1e-12)
    pd.testing.assert_frame_equal(alone.table(), full.table())


@pytest.mark.parametrize("eigenvectors", [True, False])
def test_spectra_spread_over_threads_equal_one_call(monkeypatch, eigenvectors):
    from ntdyn.analysis import fixed_points
    from ntdyn.analysis.fixed_points import _spectra

    rng = np.random.default_rng(9)
    jac = rng.normal(size=(200, 12, 12)) * 0.3
    jac[:100] = (jac[:100] + jac[:100].transpose(0, 2, 1)) / 2  # real spectra, then complex
    monkeypatch.setattr(fixed_points, "_host_threads", lambda: 1)
    one = _spectra(jac, eigenvectors)
    monkeypatch.setattr(fixed_points, "_host_threads", lambda: 3)
    spread = _spectra(jac, eigenvectors)
    np.testing.assert_array_equal(spread[0], one[0])
    assert spread[0].dtype == one[0].dtype == np.complex128
    if eigenvectors:
        np.testing.assert_array_equal(spread[1], one[1])
    else:
        assert spread[1] is None is one[1]
    np.testing.assert_allclose(
        np.sort_complex(one[0][7]), np.sort_complex(np.linalg.eigvals(jac[7]))
    )


def test_point_jacobians_in_blocks_equal_one_call(monkeypatch):
    from ntdyn.analysis import fixed_points
    from ntdyn.analysis.dynamics import jacobians_along
    from ntdyn.analysis.fixed_points import _point_jacobians, x64

    def tanh_map(h, u):
        return jnp.tanh(jnp.asarray(A) @ h + u)

    rng = np.random.default_rng(10)
    h, u = rng.normal(size=(11, 3)), rng.normal(size=(11, 3))
    monkeypatch.setattr(fixed_points, "JACOBIAN_BLOCK", 4)  # 3 blocks, the last padded
    with x64():
        blocks = _point_jacobians(tanh_map, h, u)
        whole = jacobians_along(tanh_map, h, u)
        assert _point_jacobians(tanh_map, h[:3], u[:3]).shape == (3, 3, 3)  # padded to 4
    assert blocks.shape == (11, 3, 3) and blocks.dtype == np.float64
    np.testing.assert_allclose(blocks, whole, rtol=1e-14, atol=1e-15)


def _kept_greedy(h, q, h0, cfg, cloud=None):
    """Reference: the plain greedy pass, each candidate against every point kept so far."""
    from ntdyn.analysis.fixed_points import _inliers

    inlier = _inliers(h, q, h0 if cloud is None else cloud, cfg)
    kept: list[int] = []
    for i in np.where(inlier)[0][np.argsort(q[inlier], kind="stable")]:
        if not kept or not np.any(np.all(np.abs(h[kept] - h[i]) < cfg.unique_tol, axis=1)):
            kept.append(int(i))
    return np.asarray(kept, dtype=int)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_points=st.integers(1, 40), dim=st.integers(1, 6))
def test_duplicates_from_the_tree_are_the_plain_greedy_ones(seed, n_points, dim):
    """Exact and near duplicates (inside, at and just outside unique_tol), chains a-b-c where
    c is near b but not a, ties in q and non-finite q: the k-d tree's pairs give the same
    kept set, in the same order, as comparing each candidate with every kept point."""
    from ntdyn.analysis.fixed_points import _kept

    rng = np.random.default_rng(seed)
    cfg = FixedPointConfig()
    n = 150
    base = rng.normal(size=(n_points, dim))
    steps = rng.choice([0.0, 4e-4, 8e-4, 1e-3, 1.2e-3, 2e-3], size=(n, 1))
    h = base[rng.integers(0, n_points, n)] + steps * rng.choice([-1, 1], (n, dim))
    q = rng.choice([1e-15, 1e-13, 1e-6], size=n)
    q[rng.random(n) < 0.05] = np.nan
    np.testing.assert_array_equal(_kept(h, q, h, cfg), _kept_greedy(h, q, h, cfg))
