"""Whether trials are performed correctly, and per-task accuracy.

The benchmark's MultiTaskPerformanceCallback: a trial's response is the mean output
vector over the last quarter of its response epoch, its target the mean target over the
second half. A trial that asks for a response is correct when the two directions differ
by less than `angle_tolerance` (pi / 10); one that asks for none (some match trials) is
correct when the response stays near zero.

Where ntdyn differs from that callback (its slips, not choices):
- the angle difference is wrapped to [0, pi] (the callback's ((b - a) % 2) * pi is not);
- "near zero" is the response's length below `no_response_norm`; the callback sums the
  two signed components, so a strong response pointing to (-1, -1) passed;
- a response trial needs a response at all (length >= `no_response_norm`): the
  callback took atan2(0, 0) = 0 as a direction, so a silent network was right on the
  targets at angle 0.
Optionally (`fixation_threshold`, Yang et al. 2019 use 0.5) the fixation output must
also stay above the threshold wherever the fixation target is 1 and the loss looks.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ntdyn.tasks.multitask._batch import MultiTaskBatch
from ntdyn.tasks.multitask._config import MultiTaskConfig
from ntdyn.tasks.multitask._ring import angular_distance, direction_angle

ANGLE_TOLERANCE = jnp.pi / 10  # the benchmark's success criterion (18 degrees)
NO_RESPONSE_NORM = 0.1


def _window_mean(x: Float[Array, "B T 2"], start, end) -> Float[Array, "B 2"]:
    t = jnp.arange(x.shape[1])[None, :]
    w = ((t >= start[:, None]) & (t < end[:, None])).astype(x.dtype)
    return jnp.sum(x * w[..., None], axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)[:, None]


def trial_correct(
    outputs: Float[Array, "B T 3"],
    batch: MultiTaskBatch,
    *,
    angle_tolerance: float = ANGLE_TOLERANCE,
    no_response_norm: float = NO_RESPONSE_NORM,
    fixation_threshold: float | None = None,
) -> Bool[Array, " B"]:
    """Per trial, whether `outputs` (fixation, response cos, sin) perform it correctly."""
    go, end = batch.epochs[:, 5], batch.epochs[:, 6]
    length = end - go
    response = _window_mean(outputs[..., 1:], go + (3 * length) // 4, end)
    target = _window_mean(batch.targets[..., 1:], go + length // 2, end)
    response_norm = jnp.linalg.norm(response, axis=-1)
    asks_response = jnp.linalg.norm(target, axis=-1) > 0.5  # targets are unit or zero
    on_target = (
        angular_distance(direction_angle(response), direction_angle(target)) < angle_tolerance
    )
    correct = jnp.where(
        asks_response,
        on_target & (response_norm >= no_response_norm),
        response_norm < no_response_norm,
    )
    if fixation_threshold is not None:
        judged = (batch.targets[..., 0] == 1) & (batch.mask > 0)
        held = jnp.all(~judged | (outputs[..., 0] > fixation_threshold), axis=1)
        correct = correct & held
    return correct


def multitask_performance(
    outputs: Float[Array, "B T 3"],
    batch: MultiTaskBatch,
    config: MultiTaskConfig,
    **criteria,
) -> Float[Array, " n_tasks"]:
    """Fraction of correct trials per task, in the order of config.tasks (NaN: no trial).

    `criteria`: the keyword arguments of `trial_correct`.
    """
    correct = trial_correct(outputs, batch, **criteria).astype(jnp.float32)
    member = (batch.task[:, None] == jnp.arange(config.n_tasks)[None, :]).astype(jnp.float32)
    count = member.sum(axis=0)
    return jnp.where(
        count > 0, (member * correct[:, None]).sum(axis=0) / jnp.maximum(count, 1), jnp.nan
    )
