"""How many time steps of a recurrence each iteration of its compiled loop runs (scan unroll).

A small recurrent step (a GRU of 100 units on a batch of 250) is latency-bound on a GPU:
every iteration of the time loop costs a few kernel launches and a loop-condition round
trip whatever it computes. Unrolling the whole trial lets XLA fuse across steps and
removes the loop (issue 16: 62 -> see README "Performance"); on the CPU the loop costs
little and unrolling only lengthens compiles. Unrolling changes no numbers' meaning
(the same operations in the same order), only the program.

`training_options.unroll`: null (auto: the whole trial on GPU/TPU, 1 on the CPU) or an
integer k >= 1 (k >= the trial's steps: the whole trial).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

# Backends where a fully unrolled time loop pays: kernel launches dominate a small step.
ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")


@dataclass(frozen=True)
class ScanUnroll:
    """steps: time steps per loop iteration (None: auto, chosen per backend)."""

    steps: int | None = None

    def __post_init__(self):
        s = self.steps
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
            raise ValueError(
                f"training_options.unroll = {s!r}: must be null (auto: the whole trial on "
                "GPU/TPU, 1 on the CPU) or an integer >= 1"
            )

    def for_scan(self, n_steps: int, backend: str | None = None) -> int:
        """The `unroll` of a scan over `n_steps` steps on `backend` (default JAX's): an
        integer in [1, n_steps] (n_steps: fully unrolled)."""
        if self.steps is not None:
            return max(1, min(self.steps, n_steps))
        backend = backend or jax.default_backend()
        return n_steps if backend in ACCELERATORS else 1


AUTO = ScanUnroll()  # the default: chosen per backend
