"""Divergence of a training run: detected inside the compiled step, reported per replicate.

A replicate diverges at the first step whose loss or gradient is not finite, or whose
loss exceeds `factor` times its loss at step 0 (`train__divergence_factor`). From then
on it is frozen (its parameters and optimiser state keep their last finite values, so
no NaN spreads through later steps) and excluded from replicate selection. When every
replicate of a spread member has diverged there is nothing to select: training stops
with a `DivergenceError` that names the member, the step and the usual cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

# Reason codes stored in `DivergenceState.reason` (0: still training).
NON_FINITE, TOO_LARGE = 1, 2
REASONS = {
    NON_FINITE: "non-finite loss or gradient",
    TOO_LARGE: "loss above divergence_factor x its initial value",
}


@dataclass(frozen=True)
class DivergenceConfig:
    """factor: a replicate diverges once its loss exceeds factor x its step-0 loss (> 1)."""

    factor: float = 1000.0

    def __post_init__(self):
        if not float(self.factor) > 1:
            raise ValueError(f"train__divergence_factor = {self.factor}: must be > 1")


class DivergenceState(eqx.Module):
    """Per model (a leading model axis M when stacked): what the compiled step tracks.

    factor: the threshold (data, so members with different factors share a program);
    initial: loss at step 0 (NaN before it); alive: not diverged yet; step: the step it
    diverged at (-1 while alive); reason: 0, NON_FINITE or TOO_LARGE.
    """

    factor: Float[Array, "*M"]
    initial: Float[Array, "*M"]
    alive: Bool[Array, "*M"]
    step: Int[Array, "*M"]
    reason: Int[Array, "*M"]


def initial_state(factors: Float[Array, " M"]) -> DivergenceState:
    """Every model alive, no initial loss yet."""
    factors = jnp.asarray(factors, jnp.float32)
    return DivergenceState(
        factor=factors,
        initial=jnp.full_like(factors, jnp.nan),
        alive=jnp.ones(factors.shape, bool),
        step=jnp.full(factors.shape, -1, jnp.int32),
        reason=jnp.zeros(factors.shape, jnp.int32),
    )


def check(
    state: DivergenceState,
    step: Int[Array, ""],
    loss: Float[Array, ""],
    grad_norm: Float[Array, ""],
) -> DivergenceState:
    """One model's state after a step with this loss and gradient norm (inside jit)."""
    initial = jnp.where(step == 0, loss, state.initial)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # abs: a loss that may be negative (a likelihood without its constant) diverges upwards too
    ok = finite & (loss <= state.factor * jnp.abs(initial))
    fails_now = state.alive & ~ok
    return DivergenceState(
        factor=state.factor,
        initial=initial,
        alive=state.alive & ok,
        step=jnp.where(fails_now, step, state.step),
        reason=jnp.where(fails_now, jnp.where(finite, TOO_LARGE, NON_FINITE), state.reason),
    )


def keep_if_alive(alive: Bool[Array, ""], new: PyTree, old: PyTree) -> PyTree:
    """`new` while the model trains, `old` (its last finite state) once it has diverged."""
    return jax.tree.map(lambda a, b: jnp.where(alive, a, b), new, old)


@dataclass(frozen=True)
class Divergence:
    """A replicate that diverged: at which step and why (recorded with the model)."""

    replicate: int
    step: int
    reason: str

    def __str__(self) -> str:
        return f"replicate {self.replicate} at step {self.step}: {self.reason}"


def divergences(state: DivergenceState, start: int, n_replicates: int) -> tuple[Divergence, ...]:
    """The diverged replicates of the member occupying models start .. start + R - 1."""
    alive, step, reason = (np.asarray(a)[start : start + n_replicates]
                           for a in (state.alive, state.step, state.reason))  # fmt: skip
    return tuple(
        Divergence(int(r), int(step[r]), REASONS[int(reason[r])])
        for r in range(n_replicates)
        if not alive[r]
    )


class DivergenceError(RuntimeError):
    """Every replicate of a member diverged: there is no model to record."""

    def __init__(self, member: str, diverged: tuple[Divergence, ...], learning_rate: float):
        first = min(d.step for d in diverged)
        self.member, self.step, self.diverged = member, first, diverged
        super().__init__(
            f"training diverged: every replicate of {member} diverged, the first at step "
            f"{first} ({'; '.join(map(str, diverged))}). The usual cause is too high a "
            f"learning rate (train__learning_rate = {learning_rate:g}): lower it. If the loss "
            f"legitimately grows that much, raise train__divergence_factor. No model was recorded."
        )
