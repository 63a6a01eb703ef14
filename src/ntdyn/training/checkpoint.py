"""Training checkpoints: one file per model hash, written atomically at chunk boundaries.

A checkpoint holds everything the next steps depend on: parameters, optimiser state,
the replicates' PRNG stream keys, the divergence state, the step reached and the loss
history so far. It is written to `<hash>.eqx.tmp-<pid>` and renamed into place, so a
process killed at any moment leaves either the previous checkpoint or the new one,
never half of one. Per-step randomness derives from the step index (`ntdyn.training.keys`)
and a checkpoint is taken only between compiled chunks, so a run resumed from one
continues exactly as the uninterrupted run would have (bitwise, on CPU).

File: one JSON header line (format, hash, step, chunk length), then the leaves
(`eqx.tree_serialise_leaves`) of the member's slice of the training state.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often training state is saved.

    directory: one `<model hash>.eqx` per model being trained. A checkpoint is written at
    the end of a chunk once `min_interval_s` seconds (wall clock) have passed since the last
    one ended and at least the time the last write took divided by `max_overhead`, so
    writing costs at most that share of the training time (0.02: 2 %); and once at the end
    of training, so a run killed while recording its models does not train them again.
    """

    directory: Path
    min_interval_s: float = 60.0
    max_overhead: float = 0.02

    def __post_init__(self):
        object.__setattr__(self, "directory", Path(self.directory))
        if not self.min_interval_s >= 0:
            raise ValueError(f"checkpoint min_interval_s = {self.min_interval_s}: must be >= 0")
        if not 0 < self.max_overhead <= 1:
            raise ValueError(f"checkpoint max_overhead = {self.max_overhead}: must be in (0, 1]")

    def path(self, hash: str) -> Path:
        return self.directory / f"{hash}.eqx"


def write_atomic(path: Path, header: dict, tree) -> None:
    """Write header + leaves to a temporary file, flush it to disk, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, tree)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one


def read(path: Path, like) -> tuple[dict, object] | None:
    """(header, tree shaped like `like`), or None if there is no readable checkpoint."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if header.get("format") != FORMAT:
                return None
            return header, eqx.tree_deserialise_leaves(f, like)
    except (OSError, ValueError, RuntimeError) as err:  # another shape, or a damaged file
        log.warning("checkpoint %s not usable (%s); training from the start", path, err)
        return None


class Checkpointer:
    """Saves and restores the slices of a stacked training state that belong to each model.

    hashes / slices: each model's hash and its models on the leading axis of the state
    (`slice(None)`: one model's unstacked state, 0-d leaves included).
    `chunk` is the compiled chunk's length; a checkpoint taken with another chunk length
    is not resumed (a different program need not give the same bits).
    """

    def __init__(self, config: CheckpointConfig, hashes: list[str], slices: list[slice],
                 chunk: int):  # fmt: skip
        self.config, self.hashes, self.slices, self.chunk = config, hashes, slices, chunk
        self._last_end = time.perf_counter()
        self._last_cost = 0.0
        self.seconds = 0.0  # total time spent writing (for benchmarks)
        self.n_written = 0

    def due(self) -> bool:
        waited = time.perf_counter() - self._last_end
        return waited >= max(self.config.min_interval_s,
                             self._last_cost / self.config.max_overhead)  # fmt: skip

    def save(self, step: int, state) -> None:
        """Write every model's slice of `state` (a pytree, leading model axis) at `step`."""
        t0 = time.perf_counter()
        host = jax.device_get(state)
        for h, sl in zip(self.hashes, self.slices, strict=True):
            member = jax.tree.map(lambda x: _part(x, sl), host)  # noqa: B023
            header = {"format": FORMAT, "hash": h, "step": int(step), "chunk": self.chunk}
            write_atomic(self.config.path(h), header, member)
        self._last_end = time.perf_counter()
        self._last_cost = self._last_end - t0
        self.seconds += self._last_cost
        self.n_written += 1

    def load(self, like) -> tuple[int, object] | None:
        """(step, state) when every model has a checkpoint at the same step, else None."""
        found = []
        for h, sl in zip(self.hashes, self.slices, strict=True):
            member_like = jax.tree.map(lambda x: _part(x, sl), like)  # noqa: B023
            got = read(self.config.path(h), member_like)
            if got is None or got[0]["chunk"] != self.chunk or got[0]["hash"] != h:
                return None
            found.append(got)
        steps = {header["step"] for header, _ in found}
        if len(steps) != 1:  # killed between two models' writes: no common point to resume
            log.warning("checkpoints of %s are at different steps %s; training from the start",
                        ", ".join(self.hashes), sorted(steps))  # fmt: skip
            return None
        trees = [tree for _, tree in found]
        if len(trees) == 1:
            return steps.pop(), trees[0]
        state = jax.tree.map(lambda *xs: np.concatenate(xs), *trees)
        return steps.pop(), state


def _part(x, sl: slice) -> np.ndarray:
    """One model's part of a state leaf (the whole leaf for an unstacked state)."""
    return np.asarray(x) if sl == slice(None) else np.asarray(x[sl])


def remove(config: CheckpointConfig, hash: str) -> None:
    """Delete a model's checkpoint (once its record is written)."""
    config.path(hash).unlink(missing_ok=True)
