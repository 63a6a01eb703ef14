"""The benchmark's MultiTask loss: masked squared error summed over time."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ntdyn.tasks.multitask._batch import MultiTaskBatch


def multitask_loss(outputs: Float[Array, "B T 3"], batch: MultiTaskBatch) -> Float[Array, ""]:
    """mean over trials and outputs of sum_t mask_t (output - target)^2.

    CtDB's MultiTaskLoss (its latent L2 term has weight 0 in the MultiTask configs and is
    left out). Summing over time rather than averaging makes longer trials weigh more,
    as in the benchmark.
    """
    squared = (outputs - batch.targets) ** 2 * batch.mask[..., None]
    return jnp.mean(jnp.sum(squared, axis=1))
