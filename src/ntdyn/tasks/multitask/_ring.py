"""Directions on the circle: the benchmark's (cos, sin) encoding, its decode, angular error.

CtDB's MultiTask encodes every stimulus and response direction theta (radians) as the
2-vector m (cos theta, sin theta), the magnitude m carrying stimulus strength (1 except in
the decision tasks). Decoding is the vector's angle; with one unit pair per ring the
population-vector decode of Yang et al. (2019) reduces to atan2.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def direction_vector(theta: Float[Array, "*shape"]) -> Float[Array, "*shape 2"]:
    """(cos theta, sin theta) for angles theta in radians."""
    theta = jnp.asarray(theta)
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)


def direction_angle(vector: Float[Array, "*shape 2"]) -> Float[Array, "*shape"]:
    """Angle (radians, in (-pi, pi]) of 2-vectors; 0 for the zero vector (atan2's choice)."""
    return jnp.arctan2(vector[..., 1], vector[..., 0])


def angular_distance(
    a: Float[Array, "*shape"], b: Float[Array, "*shape"]
) -> Float[Array, "*shape"]:
    """Smallest unsigned angle between directions a and b (radians, in [0, pi]).

    The benchmark's own helper computes ((b - a) % 2) * pi, an operator-precedence slip;
    this is the intended wrapped difference.
    """
    return jnp.abs(jnp.mod(b - a + jnp.pi, 2 * jnp.pi) - jnp.pi)


def target_angles(num_targets: int) -> Float[Array, " num_targets"]:
    """The benchmark's grid of directions: -pi + 2 pi k / num_targets, k = 0 .. n-1."""
    return -jnp.pi + 2 * jnp.pi * jnp.arange(num_targets) / num_targets
