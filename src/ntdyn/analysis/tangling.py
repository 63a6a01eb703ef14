"""Trajectory tangling (Russo et al. 2018, Neuron 97:953).

Q(t) = max_t' |x'(t) - x'(t')|^2 / (|x(t) - x(t')|^2 + epsilon): high where nearby states
move in different directions, which a smooth autonomous flow field cannot produce.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ntdyn.analysis.fixed_points import x64

# Elements of the pairwise (block, N) matrices computed at once (float64): bounds each temporary
# whatever N = C * (T - 1). At research scale N ~ 2e5, so all N^2 pairs are ~4e10: computed on
# the accelerator in compiled blocks, not in NumPy.
BLOCK_ELEMENTS = 2**24


@functools.partial(jax.jit, static_argnames=("block",))
def _block_max_ratio(
    pos: Float[Array, "N D"], vel: Float[Array, "N D"], epsilon: Float[Array, ""], block: int
) -> Float[Array, " N"]:
    """max_j |v_i - v_j|^2 / (|p_i - p_j|^2 + eps) for every i, `block` rows at a time."""
    n = pos.shape[0]
    n_blocks = -(-n // block)
    rows = jnp.minimum(jnp.arange(n_blocks * block), n - 1).reshape(n_blocks, block)
    vel_sq, pos_sq = (vel**2).sum(1), (pos**2).sum(1)

    def one_block(i):
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clipped at 0 against rounding
        dv = jnp.maximum(vel_sq[i, None] + vel_sq - 2.0 * vel[i] @ vel.T, 0.0)
        dp = jnp.maximum(pos_sq[i, None] + pos_sq - 2.0 * pos[i] @ pos.T, 0.0)
        return (dv / (dp + epsilon)).max(1)

    return jax.lax.map(one_block, rows).reshape(-1)[:n]


def tangling(x: np.ndarray, dt: float, epsilon: float | None = None) -> np.ndarray:
    """Tangling Q (C, T-1) of trajectories x (C, T, D) (C conditions, D dims, e.g. top PCs).

    Derivatives are backward differences x'_t = (x_t - x_{t-1}) / dt (units of x per s for dt
    in s), so Q is defined for t >= 1 and column j of the result is step t = j + 1. The max
    runs over every (condition, step >= 1) pair, including across conditions. epsilon (units
    of x squared) defaults to 0.1 * the total variance of x (sum over dims of the variance
    over all C * T samples); it must be > 0, as it keeps Q finite for coincident states.
    Q is in units of 1 / s^2. Computed in float64, in compiled blocks of rows.
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
    # a power of two: few distinct compiled shapes
    block = 1 << max(0, min(n, max(1, BLOCK_ELEMENTS // n)).bit_length() - 1)
    with x64():
        q = _block_max_ratio(jnp.asarray(pos), jnp.asarray(vel), jnp.asarray(epsilon), block)
        return np.asarray(q).reshape(c, t - 1)
