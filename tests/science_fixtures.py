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


# ---------------------------------------------------------------- training
# Every training test in the process shares ONE compiled program: 4 spread members x 3
# replicates (M = 12), hidden 7, 20 steps, batch 16, and n_batches with the same chunk size
# (25, 50, 150 -> chunks of 25). Shapes chosen so no other test compiles them first.

SWEEP_STDS = (0.0, 0.5, 1.0, 1.5)
SWEEP_BASE = dict(
    model__hidden_size=7, task__n_steps=20, train__batch_size=16, train__n_replicates=3
)


def sweep_rows(n_batches: int = 25, stds=SWEEP_STDS, **overrides) -> list[dict]:
    """One row per field std (curl, method `fixed`), all of one static signature."""
    return [
        hp(**{**SWEEP_BASE, "train__n_batches": n_batches, "train__pert__std": s, **overrides})
        for s in stds
    ]


@functools.cache
def first_sweep():
    """The first training of the shared shapes in this process, and what it traced.

    Returns (ensembles, traces): traces is {name: number of traces during this call}.
    Cached, so every test sees the same first run whichever test asks first.
    """
    from ntdyn.training import TRACE_COUNTS, train_sweep

    before = dict(TRACE_COUNTS)
    ensembles = train_sweep(sweep_rows(), progress=False)
    traces = {k: TRACE_COUNTS[k] - before.get(k, 0) for k in ("train_chunk", "validation")}
    return ensembles, traces
