"""N-bit flip-flop (NBFF): remember the sign of the last pulse on each of N channels.

Per step and bit a pulse of +1 or -1 arrives with probability `p_pulse`; the
input is the pulses plus Gaussian noise; the target is the sign of the last pulse
(0 before the first). docs/science.md §1.2 defaults: N = 3, T = 500, p = 0.01,
input noise std 0.15.

`FlipFlopVariant` holds the options of the Computation-Through-Dynamics benchmark's own
NBFF (ctd/task_modeling/task_env/NBFF.py and NBFFLoss in loss_func.py of
snel-repo/ComputationThruDynamicsBenchmark): targets in {0, 1}, no pulses in the first
steps, and a loss blind to the steps after each target change and to the first steps.
Its defaults are ntdyn's own task (none of them).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

# sign: the target is the last pulse's sign, in {-1, 0, 1} (0 before the first);
# zero_one: the benchmark's state in {0, 1}: +1 sets it to 1, -1 to 0, it starts at 0.
TARGET_CODINGS = ("sign", "zero_one")


class FlipFlopBatch(NamedTuple):
    """inputs: (B, T, N) noisy pulses; pulses: (B, T, N) in {-1, 0, 1}; targets: (B, T, N)."""

    inputs: Float[Array, "B T N"]
    pulses: Float[Array, "B T N"]
    targets: Float[Array, "B T N"]


@dataclass(frozen=True)
class FlipFlopVariant:
    """How the trials and the loss depart from ntdyn's plain NBFF (the defaults: none).

    target_coding: `sign` (ntdyn) or `zero_one` (the benchmark's); quiet_steps: steps at the
    start of a trial without pulses (the benchmark's 3; the input noise is still added);
    transition_blind: steps after each change of a channel's target that the loss ignores on
    that channel (the benchmark's 4: the steps c+1 .. c+transition_blind after a change at c,
    the step c itself counts, as NBFFLoss's shifted masks do); ignore_first_steps: steps at
    the start the loss ignores (the benchmark's 5). With a loss mask the loss is the masked
    squared error averaged over every entry (masked ones count as 0), as NBFFLoss.
    """

    target_coding: str = "sign"
    quiet_steps: int = 0
    transition_blind: int = 0
    ignore_first_steps: int = 0

    def __post_init__(self):
        if self.target_coding not in TARGET_CODINGS:
            raise ValueError(
                f"task.target_coding = {self.target_coding!r}: must be one of "
                f"{list(TARGET_CODINGS)}"
            )
        for name in ("quiet_steps", "transition_blind", "ignore_first_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"task.{name} = {value!r}: must be an integer >= 0")

    @property
    def masked(self) -> bool:
        """Whether the loss ignores any entry."""
        return self.transition_blind > 0 or self.ignore_first_steps > 0

    @classmethod
    def from_hyperparams(cls, hp: Mapping) -> FlipFlopVariant:
        """From flat hyperparameters (`task__target_coding`, ...; absent: the default)."""
        given = {f.name: hp[f"task__{f.name}"] for f in fields(cls) if f"task__{f.name}" in hp}
        return cls(**{k: v if k == "target_coding" else _whole(v) for k, v in given.items()})


def _whole(value):
    """A whole number read from a table (3.0, numpy 3) as an int; anything else unchanged, for
    the check to refuse."""
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and float(value).is_integer()
    ):
        return int(value)
    return value


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
    target_coding: str = "sign",
    quiet_steps: int = 0,
) -> FlipFlopBatch:
    """A batch of NBFF trials.

    p_pulse: the probability of a pulse per step and bit, +1 and -1 equally likely (the
    benchmark's `switch_prob` is per sign, so its 0.01 is p_pulse 0.02). target_coding and
    quiet_steps: see `FlipFlopVariant` (the defaults draw exactly the trials they always did).
    """
    if not 0 <= p_pulse <= 1:
        raise ValueError(f"p_pulse = {p_pulse}: must be in [0, 1]")
    variant = FlipFlopVariant(target_coding=target_coding, quiet_steps=quiet_steps)
    k_on, k_sign, k_noise = jax.random.split(key, 3)
    shape = (batch_size, n_steps, n_bits)
    on = jax.random.bernoulli(k_on, p_pulse, shape)
    if variant.quiet_steps:
        on = on & (jnp.arange(n_steps) >= variant.quiet_steps)[None, :, None]
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), 1.0, -1.0)
    pulses = on * sign
    inputs = pulses + input_noise_std * jax.random.normal(k_noise, shape)
    targets = jax.vmap(last_pulse_sign)(pulses)
    if variant.target_coding == "zero_one":  # +1 sets 1; -1 sets 0; 0 before the first pulse
        targets = (targets > 0).astype(targets.dtype)
    return FlipFlopBatch(inputs, pulses, targets)


def flipflop_loss_mask(
    targets: Float[Array, "*B T N"], transition_blind: int, ignore_first_steps: int
) -> Float[Array, "*B T N"]:
    """1 where the loss looks, 0 where it does not (`FlipFlopVariant`): on the first
    `ignore_first_steps` steps, and on a channel's steps c+1 .. c+transition_blind after each
    step c where that channel's target differs from the step before."""
    changed = jnp.diff(targets, axis=-2) != 0  # (..., T-1, N): a change at step t+1
    change_at = jnp.concatenate([jnp.zeros_like(changed[..., :1, :]), changed], axis=-2)
    blind = jnp.zeros_like(change_at)
    for lag in range(1, transition_blind + 1):
        shifted = jnp.concatenate(
            [jnp.zeros_like(change_at[..., :lag, :]), change_at[..., :-lag, :]], axis=-2
        )
        blind = blind | shifted
    early = jnp.arange(targets.shape[-2])[:, None] < ignore_first_steps
    return jnp.where(blind | early, 0.0, 1.0).astype(targets.dtype)
