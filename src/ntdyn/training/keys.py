"""Independent PRNG streams under one training seed, one key per replicate.

Every trainer draws from the same named streams of `jax.random.PRNGKey(seed)`:
initial weights, training batches, validation batches and probes. Per-step
randomness is `fold_in(batch key, step)`, a function of the step index alone, so a
run resumed at step k draws exactly what an uninterrupted run draws there.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jaxtyping import Array, Key

# Stream indices folded into the root key (fixed: changing one changes every trained number).
STREAM_INIT, STREAM_BATCHES, STREAM_VALIDATION, STREAM_PROBE = 0, 1, 2, 3


@dataclass(frozen=True)
class KeyStreams:
    """The streams of one model's training seed (`train__seed`, a non-negative integer)."""

    seed: int

    def __post_init__(self):
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"train__seed = {self.seed}: must be an integer >= 0")

    @property
    def root(self) -> Key[Array, ""]:
        return jax.random.PRNGKey(int(self.seed))

    def stream(self, index: int) -> Key[Array, ""]:
        """One stream's key (shared by the replicates, e.g. the validation batch)."""
        return jax.random.fold_in(self.root, index)

    def per_replicate(self, index: int, n_replicates: int) -> Key[Array, " R"]:
        """One key per replicate of a stream, (R, 2)."""
        return jax.vmap(jax.random.fold_in, (None, 0))(self.stream(index), jnp.arange(n_replicates))

    def init(self, n_replicates: int) -> Key[Array, " R"]:
        """Keys of the replicates' initial weights."""
        return self.per_replicate(STREAM_INIT, n_replicates)

    def batches(self, n_replicates: int) -> Key[Array, " R"]:
        """Keys of the replicates' training batches (step k uses `fold_in(key, k)`)."""
        return self.per_replicate(STREAM_BATCHES, n_replicates)

    def validation(self) -> Key[Array, ""]:
        """The validation batch's key, one for all replicates (they are compared on it)."""
        return self.stream(STREAM_VALIDATION)

    def probe(self) -> Key[Array, ""]:
        """The key of fixed probe inputs (recordings)."""
        return self.stream(STREAM_PROBE)


def step_keys(stream_keys: Key[Array, " M"], step: jax.Array) -> Key[Array, " M"]:
    """Each model's key for training step `step` (a traced integer)."""
    return jax.vmap(jax.random.fold_in, (0, None))(stream_keys, step)
