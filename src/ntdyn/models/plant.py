"""2-D point mass with viscous damping, curl and constant force fields.

State x = [p_x, p_y, v_x, v_y] (m, m/s). Forward Euler with the net force held
constant within a step (zero-order hold):

    f = u + f_pert - k_d v,   p' = p + dt v,   v' = v + dt f / m.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

# Rotates velocity by -90 degrees: f = phi * CURL @ v is orthogonal to v. A NumPy constant:
# a JAX array here would start JAX's backend at import, before the run's memory budget is set.
CURL = np.array([[0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)


class PlantParams(NamedTuple):
    """Physical constants of one plant; scalars (or a leading model axis under vmap)."""

    mass: Float[Array, ""]  # kg
    damping: Float[Array, ""]  # k_d, N s / m
    dt: Float[Array, ""]  # s


def curl_force(velocity: Float[Array, "2"], phi: Float[Array, ""]) -> Float[Array, "2"]:
    """Curl field f = phi * [[0, 1], [-1, 0]] v (N); the sign of phi sets the direction."""
    return phi * (jnp.asarray(CURL) @ velocity)


def constant_force(amplitude: Float[Array, ""], angle: Float[Array, ""]) -> Float[Array, "2"]:
    """Constant field f = lambda [cos(theta), sin(theta)] (N)."""
    return amplitude * jnp.stack([jnp.cos(angle), jnp.sin(angle)])


def euler_step(
    plant: PlantParams, state: Float[Array, "4"], force: Float[Array, "2"]
) -> Float[Array, "4"]:
    """One forward-Euler step of the damped point mass under external force `force` (N).

    `force` is everything but damping (control + perturbation); damping is added here.
    """
    pos, vel = state[:2], state[2:]
    net = force - plant.damping * vel
    return jnp.concatenate([pos + plant.dt * vel, vel + plant.dt * net / plant.mass])
