"""N-bit flip-flop (NBFF): remember the sign of the last pulse on each of N channels.

Per step and bit a pulse of +1 or -1 arrives with probability `p_pulse`; the
input is the pulses plus Gaussian noise; the target is the sign of the last pulse
(0 before the first). docs/science.md §1.2 defaults: N = 3, T = 500, p = 0.01,
input noise std 0.15.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class FlipFlopBatch(NamedTuple):
    """inputs: (B, T, N) noisy pulses; pulses: (B, T, N) in {-1, 0, 1}; targets: (B, T, N)."""

    inputs: Float[Array, "B T N"]
    pulses: Float[Array, "B T N"]
    targets: Float[Array, "B T N"]


def last_pulse_sign(pulses: Float[Array, "T N"]) -> Float[Array, "T N"]:
    """Sign of the most recent non-zero pulse per channel (0 before the first)."""

    def step(state, p):
        state = jnp.where(p != 0, jnp.sign(p), state)
        return state, state

    _, out = jax.lax.scan(step, jnp.zeros(pulses.shape[-1]), pulses)
    return out


def sample_flipflop(
    key: PRNGKeyArray,
    *,
    batch_size: int,
    n_steps: int = 500,
    n_bits: int = 3,
    p_pulse: float = 0.01,
    input_noise_std: float = 0.15,
) -> FlipFlopBatch:
    """A batch of NBFF trials."""
    if not 0 <= p_pulse <= 1:
        raise ValueError(f"p_pulse = {p_pulse}: must be in [0, 1]")
    k_on, k_sign, k_noise = jax.random.split(key, 3)
    shape = (batch_size, n_steps, n_bits)
    on = jax.random.bernoulli(k_on, p_pulse, shape)
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), 1.0, -1.0)
    pulses = on * sign
    inputs = pulses + input_noise_std * jax.random.normal(k_noise, shape)
    return FlipFlopBatch(inputs, pulses, jax.vmap(last_pulse_sign)(pulses))
