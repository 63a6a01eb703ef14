"""Behaviour measures and the aligned frame (docs/science.md §4.1), on hand-built reaches."""

from __future__ import annotations

import numpy as np
import pytest

from ntdyn.analysis import MEASURES, aligned_trajectories, behaviour_measures, rotate_to_direction


@pytest.mark.parametrize("direction", [0.0, np.pi / 4, 2.0, -np.pi / 2, np.pi, 5.5])
@pytest.mark.parametrize("length", [0.3, 2.0])
def test_rotate_maps_the_direction_to_plus_x_and_left_to_plus_y(direction, length):
    unit = np.array([np.cos(direction), np.sin(direction)])
    left = np.array([-np.sin(direction), np.cos(direction)])
    d = np.array([direction])
    np.testing.assert_allclose(
        rotate_to_direction(length * unit[None], d), [[length, 0.0]], atol=1e-12
    )
    np.testing.assert_allclose(
        rotate_to_direction(length * left[None], d), [[0.0, length]], atol=1e-12
    )
    # extra axes: every time step of a trial uses that trial's direction
    vecs = np.stack([unit, left, -unit])[None]  # (1, 3, 2)
    np.testing.assert_allclose(
        rotate_to_direction(vecs, d)[0], [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], atol=1e-12
    )


def test_rotation_is_per_trial_and_preserves_norms():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 7, 2))
    dirs = rng.uniform(-np.pi, np.pi, size=5)
    out = rotate_to_direction(vecs, dirs)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(vecs, axis=-1))
    for i in range(5):
        c, s = np.cos(dirs[i]), np.sin(dirs[i])
        rot = np.array([[c, s], [-s, c]])  # R(-theta)
        np.testing.assert_allclose(out[i], vecs[i] @ rot.T, atol=1e-12)


def _straight_reach(start, direction, length, n_steps=40, reach_fraction=0.9):
    """Minimum-jerk-like straight reach ending at `reach_fraction` of the way."""
    unit = np.array([np.cos(direction), np.sin(direction)])
    tau = np.arange(1, n_steps + 1) / n_steps
    s = reach_fraction * length * (10 * tau**3 - 15 * tau**4 + 6 * tau**5)
    speed = np.gradient(s, 0.01)
    pos = start + s[:, None] * unit
    vel = speed[:, None] * unit
    force = np.sin(np.pi * tau)[:, None] * 3.0 * unit
    return pos, vel, force, s, speed


def test_straight_diagonal_reach_has_no_lateral_deviation():
    start, d, length = np.array([-0.2, 0.1]), np.pi / 4, 0.5
    pos, vel, force, s, speed = _straight_reach(start, d, length)
    goal = start + length * np.array([np.cos(d), np.sin(d)])
    state = np.concatenate([pos, vel], -1)[None]
    m = behaviour_measures(state, force[None], start[None], goal[None], np.array([d]))
    assert list(m.columns) == list(MEASURES)
    assert len(m) == 1
    row = m.iloc[0]
    assert row.max_lateral_distance == pytest.approx(0.0, abs=1e-12)
    assert row.sum_lateral_distance == pytest.approx(0.0, abs=1e-10)
    # stops at 90% of the way: 0.1 * L short of the goal
    assert row.end_position_error == pytest.approx(0.1 * length, rel=1e-9)
    assert row.end_velocity_error == pytest.approx(abs(speed[-1]), rel=1e-9, abs=1e-12)
    assert row.max_parallel_velocity == pytest.approx(speed.max(), rel=1e-9)
    assert row.max_net_force == pytest.approx(3.0 * np.sin(np.pi * np.arange(1, 41) / 40).max())
    assert row.max_parallel_force == pytest.approx(row.max_net_force)


@pytest.mark.parametrize("bump", [0.05, -0.08])
def test_a_lateral_bump_gives_its_height(bump):
    n, d, length = 50, 2.3, 0.4
    start = np.array([0.3, -0.1])
    unit, left = np.array([np.cos(d), np.sin(d)]), np.array([-np.sin(d), np.cos(d)])
    tau = np.arange(1, n + 1) / n
    lateral = bump * np.sin(np.pi * tau)
    pos = start + (length * tau)[:, None] * unit + lateral[:, None] * left
    state = np.concatenate([pos, np.zeros((n, 2))], -1)[None]
    goal = start + length * unit
    m = behaviour_measures(state, np.zeros((1, n, 2)), start[None], goal[None], np.array([d]))
    assert m.max_lateral_distance[0] == pytest.approx(abs(bump) * np.sin(np.pi * tau).max())
    assert m.sum_lateral_distance[0] == pytest.approx(np.abs(lateral).sum())
    assert m.end_position_error[0] == pytest.approx(abs(lateral[-1]), abs=1e-12)
    al = aligned_trajectories(state, np.zeros((1, n, 2)), start[None], np.array([d]))
    np.testing.assert_allclose(al["position"][0, :, 1], lateral, atol=1e-12)  # left positive
    np.testing.assert_allclose(al["position"][0, :, 0], length * tau, atol=1e-12)


def test_measures_are_per_trial():
    # two trials, different directions: each is measured in its own frame
    n = 10
    tau = np.arange(1, n + 1) / n
    dirs = np.array([0.0, np.pi / 2])
    start = np.zeros((2, 2))
    pos = np.zeros((2, n, 2))
    pos[0, :, 0] = tau  # along +x, its own direction
    pos[1, :, 0] = 0.2 * tau  # along +x, but its direction is +y: lateral (to the right)
    pos[1, :, 1] = tau
    state = np.concatenate([pos, np.zeros_like(pos)], -1)
    goal = np.array([[1.0, 0.0], [0.0, 1.0]])
    m = behaviour_measures(state, np.zeros((2, n, 2)), start, goal, dirs)
    assert m.max_lateral_distance[0] == pytest.approx(0.0, abs=1e-12)
    assert m.max_lateral_distance[1] == pytest.approx(0.2)
    np.testing.assert_allclose(m.end_position_error, [0.0, 0.2], atol=1e-12)
