"""Shared helpers for the science tests (tasks, models, training, analysis, datasets).

Import after putting `tests/` on sys.path:

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from science_fixtures import HP, hp
"""

from __future__ import annotations

import functools

import numpy as np

# One small model: hidden 8, 20 steps, batch 16, 20 batches, 2 replicates.
HP = {
    "model__cell": "gru",
    "model__hidden_size": 8,
    "model__sisu_input": False,
    "task__mass": 1.0,
    "task__damping": 10.0,
    "task__dt": 0.01,
    "task__n_steps": 20,
    "task__workspace": 1.0,
    "task__feedback__delay": 0,
    "task__feedback__noise_std": 0.01,
    "task__motor__noise_std": 0.01,
    "task__motor__mult_noise_std": 0.018,
    "cost__position": 1.0,
    "cost__position_exponent": 6,
    "cost__final_velocity": 1.0,
    "cost__control": 1e-5,
    "cost__hidden": 1e-5,
    "train__method": "fixed",
    "train__pert__type": "curl",
    "train__pert__std": 0.0,
    "train__pert__p_active": 1.0,
    "train__n_batches": 20,
    "train__batch_size": 16,
    "train__learning_rate": 0.01,
    "train__n_replicates": 2,
    "train__seed": 0,
    "train__n_std_exclude": 2.0,
}


def hp(**overrides) -> dict:
    """A copy of HP with `overrides` (keys with `__`, as in the flat tables)."""
    unknown = set(overrides) - set(HP)
    if unknown:
        raise KeyError(f"not hyperparameters: {sorted(unknown)}")
    return {**HP, **overrides}


def euler_reference(
    start_pos, start_vel, force_fn, *, mass: float, damping: float, dt: float, n_steps: int
) -> np.ndarray:
    """Hand-written forward Euler of the damped point mass, in float64.

    force_fn(k, p, v) -> external force (everything but damping) during step k.
    Returns (n_steps, 4): [p, v] after each step.
    """
    p = np.array(start_pos, dtype=float)
    v = np.array(start_vel, dtype=float)
    out = np.zeros((n_steps, 4))
    for k in range(n_steps):
        f = np.asarray(force_fn(k, p, v), dtype=float)
        p_next = p + dt * v
        v_next = v + dt * (f - damping * v) / mass
        p, v = p_next, v_next
        out[k, :2], out[k, 2:] = p, v
    return out


@functools.lru_cache(maxsize=None)
def tiny_trained(seed: int = 0):
    """One tiny trained ensemble (cached for the process): 2 replicates, 5 batches, hidden 6."""
    from ntdyn.training import train_sweep

    row = hp(model__hidden_size=6, train__n_batches=5, train__seed=seed, task__n_steps=10)
    return train_sweep([row], progress=False)[0]
