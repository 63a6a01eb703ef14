"""Behaviour measures of reaches, in the frame aligned with the reach (or impulse) direction."""

from __future__ import annotations

import numpy as np
import pandas as pd

MEASURES = (
    "max_lateral_distance",
    "max_parallel_velocity",
    "max_net_force",
    "max_parallel_force",
    "end_position_error",
    "end_velocity_error",
    "sum_lateral_distance",
)


def rotate_to_direction(vectors: np.ndarray, direction: np.ndarray, xp=np) -> np.ndarray:
    """Rotate 2-D vectors (N, ..., 2) by -direction (N,) rad, so the direction becomes +x.

    Component 0 is then parallel to the direction, component 1 lateral (left positive).
    xp: the array module (numpy, or jax.numpy inside compiled code).
    """
    c, s = xp.cos(direction), xp.sin(direction)
    shape = (-1,) + (1,) * (vectors.ndim - 2)
    c, s = c.reshape(shape), s.reshape(shape)
    x, y = vectors[..., 0], vectors[..., 1]
    return xp.stack([c * x + s * y, -s * x + c * y], -1)


def aligned_trajectories(
    state: np.ndarray, control: np.ndarray, start: np.ndarray, direction: np.ndarray, xp=np
) -> dict[str, np.ndarray]:
    """Aligned position (relative to start), velocity and control force.

    state: (N, K, 4); control: (N, K, 2); start: (N, 2); direction: (N,) rad.
    Returns arrays of shape (N, K, 2): [parallel, lateral].
    """
    return {
        "position": rotate_to_direction(state[..., :2] - start[:, None], direction, xp),
        "velocity": rotate_to_direction(state[..., 2:], direction, xp),
        "force": rotate_to_direction(control, direction, xp),
    }


def measure_arrays(state, control, start, goal, direction, xp=np) -> dict[str, np.ndarray]:
    """The measures of `behaviour_measures` as arrays (N,), computed with array module `xp`
    (numpy, or jax.numpy so that an evaluation reduces its trials on the device)."""
    al = aligned_trajectories(state, control, start, direction, xp)
    lateral = xp.abs(al["position"][..., 1])
    return {
        "max_lateral_distance": lateral.max(-1),
        "max_parallel_velocity": al["velocity"][..., 0].max(-1),
        "max_net_force": xp.linalg.norm(control, axis=-1).max(-1),
        "max_parallel_force": al["force"][..., 0].max(-1),
        "end_position_error": xp.linalg.norm(state[:, -1, :2] - goal, axis=-1),
        "end_velocity_error": xp.linalg.norm(state[:, -1, 2:], axis=-1),
        "sum_lateral_distance": lateral.sum(-1),
    }


def behaviour_measures(
    state: np.ndarray,
    control: np.ndarray,
    start: np.ndarray,
    goal: np.ndarray,
    direction: np.ndarray,
) -> pd.DataFrame:
    """One row per trial with the measures of docs/science.md §4.1.

    state: (N, K, 4) [p, v] after each step (m, m/s); control: (N, K, 2) N;
    start, goal: (N, 2) m; direction: (N,) rad. Lateral distances are absolute
    (m); forces in N; end errors are norms at the last step.
    """
    return pd.DataFrame(measure_arrays(state, control, start, goal, direction))
