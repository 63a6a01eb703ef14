"""Local dynamics of a trained controller: its map, Jacobians, Hessian of q, stimulation.

The network's map at a fixed input u is F(h, u) = cell(u, h) (H units). Its
force readout is o = W h + b (N).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ntdyn.models.controller import Controller


def _cell_step(controller: Controller, h, u):
    return controller.cell(u, h)


def controller_step(controller: Controller) -> eqx.Partial:
    """F(h (H,), u (n_in,)) -> (H,): one controller (no replicate axis) as a map at fixed input.

    An `eqx.Partial`, so its weights are traced: one compiled program serves every model
    of the same shape.
    """
    return eqx.Partial(_cell_step, controller)


def steady_state_inputs(goal: np.ndarray, sisu: float | None) -> np.ndarray:
    """Inputs of a network holding still at its goal: [goal, feedback p = goal, v = 0, (SISU)].

    goal: (2,) m. Returns (6,) or (7,) when `sisu` is given (networks with the SISU input).
    """
    goal = np.asarray(goal, float)
    parts = [goal, goal, np.zeros(2)] + ([np.array([sisu], float)] if sisu is not None else [])
    return np.concatenate(parts)


# Module-level compiled programs: the map `step` is an argument (an `eqx.Partial` whose
# weights are traced), so every model, input and state of one shape shares one compilation.
# `assert_max_traces(max_traces=None)` only counts traces, for the tests and for
# `compilation_counts`.
@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _autonomous(
    step, h0: Float[Array, "n h"], u: Float[Array, " n_in"], n_steps: int
) -> Float[Array, "n t h"]:
    def run(h):
        return jax.lax.scan(lambda h, _: (step(h, u), step(h, u)), h, None, length=n_steps)[1]

    return jax.vmap(run)(h0)


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _state_jacobians(
    step, h: Float[Array, "t h"], u: Float[Array, "t n_in"]
) -> Float[Array, "t h h"]:
    return jax.vmap(jax.jacfwd(step))(h, u)


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _input_jacobians(
    step, h: Float[Array, "m h"], u: Float[Array, "m n_in"]
) -> Float[Array, "m h n_in"]:
    return jax.vmap(jax.jacfwd(step, argnums=1))(h, u)


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _q_hessian(
    step, h: Float[Array, " h"], u: Float[Array, " n_in"]
) -> tuple[Float[Array, "h h"], Float[Array, "h h"]]:
    def q(x):
        r = step(x, u) - x
        return 0.5 * jnp.sum(r**2)

    # the Gauss-Newton part (J - I)^T (J - I) alongside: their difference is the
    # residual's curvature, which bounds how far below zero the spectrum may go
    m = jax.jacfwd(step)(h, u) - jnp.eye(h.shape[0], dtype=h.dtype)
    return jax.hessian(q)(h), m.T @ m


COMPILED = {
    "autonomous_states": _autonomous,
    "jacobians_along": _state_jacobians,
    "input_jacobians": _input_jacobians,
    "q_hessian": _q_hessian,
}


def trace_counts() -> dict[str, int]:
    """How many times each compiled program of this module has been traced (compiled)."""
    return {name: eqx.debug.get_num_traces(fn) for name, fn in COMPILED.items()}


def autonomous_states(step, h0: np.ndarray, u: np.ndarray, n_steps: int) -> np.ndarray:
    """States visited from each initial state in `h0` (N, H) at fixed input: (N, n_steps, H).

    The network's own trajectories, the usual source of fixed-point candidates.
    """
    return np.asarray(_autonomous(step, jnp.asarray(h0), jnp.asarray(u), int(n_steps)))


def jacobians_along(step, h: np.ndarray, u: np.ndarray) -> np.ndarray:
    """dF/dh at every state of a trajectory: h (T, H), u (T, n_in) -> (T, H, H)."""
    return np.asarray(_state_jacobians(step, jnp.asarray(h), jnp.asarray(u)))


def input_jacobians(step, h: np.ndarray, u: np.ndarray) -> np.ndarray:
    """dF/du at states h (M, H) and inputs u (M, n_in) -> (M, H, n_in)."""
    return np.asarray(_input_jacobians(step, jnp.asarray(h), jnp.asarray(u)))


def effective_directions(readout_weight: np.ndarray, jacobians: np.ndarray) -> np.ndarray:
    """Force change one step after a unit perturbation: W dF/dh, (..., H, H) -> (..., 2, H).

    Column i is the readout-weighted effective direction of unit i: the force (N per
    unit of activity) that nudging unit i produces through the network's next step.
    """
    return np.einsum("fh,...hk->...fk", readout_weight, jacobians)


def q_hessian(step, h: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Hessian of q(h) = 1/2 |F(h, u) - h|^2 at h (H,): (H, H); the slow landscape's curvature.

    At a fixed point it equals (J - I)^T (J - I), so its eigenvalues are the squared
    singular values of J - I; small ones mark slow directions.
    """
    return np.asarray(_q_hessian(step, jnp.asarray(h), jnp.asarray(u))[0])


def q_hessian_spectrum(step, h: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    """Eigenvalues of the Hessian of q at h (ascending, (H,)) and how far below zero they may go.

    H = (J - I)^T (J - I) + sum_i r_i d^2F_i/dh^2 with r = F(h, u) - h. The first term is
    positive semi-definite; the second vanishes only at an exact fixed point. A numerical
    search stops at q > 0 (a slow point at worst), where H may have small negative
    eigenvalues. By Weyl's inequality none lies below -||H - (J - I)^T (J - I)||_2; the
    returned bound (>= 0, in the units of q per unit of activity squared) adds the
    round-off of the eigensolver, 1e-5 ||H||_2 (single precision with margin).
    """
    hess, gauss_newton = (
        np.asarray(a, np.float64) for a in _q_hessian(step, jnp.asarray(h), jnp.asarray(u))
    )
    values = np.sort(np.linalg.eigvalsh(hess))
    residual = float(np.linalg.norm(hess - gauss_newton, 2))
    return values, residual + 1e-5 * float(np.abs(values).max(initial=0.0))


def eigvec_stimulation(
    step, readout_weight: np.ndarray, h_star: np.ndarray, u_star: np.ndarray,
    vectors: np.ndarray, amplitude: float, n_steps: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Perturb a fixed point along each vector; the force response and its decay.

    vectors: (k, H) directions (complex eigenvectors use their real part,
    normalised). Returns (responses (k, n_steps, 2): force minus the fixed point's
    force, N; decay (k,): per-step factor r with |response_t| ~ r^t, from a
    log-linear fit; below 1 means the perturbation dies out).
    """
    v = np.real(vectors)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    start = np.asarray(h_star)[None] + amplitude * v
    traj = autonomous_states(step, start, np.asarray(u_star), n_steps)
    responses = np.einsum("fh,kth->ktf", readout_weight, traj - np.asarray(h_star))
    size = np.linalg.norm(responses, axis=-1)
    t = np.arange(n_steps)
    decay = np.array([np.exp(np.polyfit(t, np.log(np.maximum(s, 1e-300)), 1)[0]) for s in size])
    return responses, decay
