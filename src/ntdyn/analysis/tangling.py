"""Trajectory tangling (Russo et al. 2018, Neuron 97:953).

Q(t) = max_t' |x'(t) - x'(t')|^2 / (|x(t) - x(t')|^2 + epsilon): high where nearby states
move in different directions, which a smooth autonomous flow field cannot produce.
"""

from __future__ import annotations

import numpy as np

# Rows of the pairwise (N, N) matrices computed at once: bounds each temporary to ~BLOCK_ELEMENTS
# floats (8 MiB) whatever N = C * (T - 1).
BLOCK_ELEMENTS = 2**20


def tangling(x: np.ndarray, dt: float, epsilon: float | None = None) -> np.ndarray:
    """Tangling Q (C, T-1) of trajectories x (C, T, D) (C conditions, D dims, e.g. top PCs).

    Derivatives are backward differences x'_t = (x_t - x_{t-1}) / dt (units of x per s for dt
    in s), so Q is defined for t >= 1 and column j of the result is step t = j + 1. The max
    runs over every (condition, step >= 1) pair, including across conditions. epsilon (units
    of x squared) defaults to 0.1 * the total variance of x (sum over dims of the variance
    over all C * T samples); it must be > 0, as it keeps Q finite for coincident states.
    Q is in units of 1 / s^2.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"x must be (C, T, D); got shape {x.shape}")
    c, t, d = x.shape
    if t < 2:
        raise ValueError(f"need at least 2 time steps for a derivative; got {t}")
    if epsilon is None:
        epsilon = 0.1 * float(x.reshape(-1, d).var(0).sum())
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon} (constant trajectories?)")
    # Centring loses nothing (differences only) and limits cancellation in the Gram expansion.
    x = x - x.reshape(-1, d).mean(0)
    pos = x[:, 1:].reshape(-1, d)
    vel = (np.diff(x, axis=1) / dt).reshape(-1, d)
    n = pos.shape[0]
    vel_sq = (vel**2).sum(1)
    pos_sq_eps = (pos**2).sum(1) + epsilon
    q = np.empty(n)
    block = max(1, BLOCK_ELEMENTS // n)
    for i in range(0, n, block):
        j = slice(i, i + block)
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, built in place (the (block, N) temporaries dominate
        # the run time) and clipped at 0 against rounding.
        dv = vel[j] @ vel.T
        dv *= -2.0
        dv += vel_sq[j, None]
        dv += vel_sq
        np.maximum(dv, 0.0, out=dv)
        den = pos[j] @ pos.T
        den *= -2.0
        den += pos_sq_eps[j, None] - epsilon
        den += pos_sq_eps
        np.maximum(den, epsilon, out=den)
        dv /= den
        q[j] = dv.max(1)
    return q.reshape(c, t - 1)
