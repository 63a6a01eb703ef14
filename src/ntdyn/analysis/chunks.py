"""Work over trials in chunks that fit the memory budget (`ntdyn.resources`).

Two levels: a fixed block of trials per compiled block body (`over_blocks`, a `lax.map`
inside the compiled function) and a whole number of blocks per chunk, the last chunk padded
(`in_chunks`, the host loop calling one compiled program). The numbers depend on the block
from conf, never on the budget.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import PartitionSpec

from ntdyn.resources import ChunkPlan, ResourceBudget, plan_chunks
from ntdyn.sharding import AXIS, DevicePlan

# On the device: a chunk's inputs, the block bodies' intermediates, the outputs stacked over
# blocks and their reshaped copy. On the host: the chunk's inputs and outputs as they come back.
DEVICE_COPIES = 4
HOST_COPIES = 3


def over_blocks(fn: Callable, block: int, *arrays, devices: DevicePlan | None = None):
    """fn(*block_arrays) on each block of `block` trials (leading axes), inside a compiled
    function: a `lax.map`, so one block body serves every chunk length and a trial's numbers
    do not depend on how many blocks a chunk holds (bitwise, on CPU). The leading axis must be
    a multiple of `block`; the outputs keep a leading trial axis.

    devices: with several, the trials are split across them (`arrays` placed with
    `DevicePlan.place`, a multiple of block x devices trials) and each device runs the
    `lax.map` over its own blocks (`shard_map`): the same block body as on one device, so
    the same numbers; what `fn` closes over is copied to every device."""

    def blockwise(*arrays):
        n_blocks = jax.tree.leaves(arrays)[0].shape[0] // block
        blocks = jax.tree.map(lambda x: x.reshape(n_blocks, block, *x.shape[1:]), arrays)
        out = jax.lax.map(lambda a: fn(*a), blocks)
        return jax.tree.map(lambda x: x.reshape(n_blocks * block, *x.shape[2:]), out)

    if devices is None or devices.n == 1:
        return blockwise(*arrays)
    # Sharding propagation cannot split a sequential loop over blocks; shard_map says that
    # each device loops over its share.
    split = PartitionSpec(AXIS)
    return devices.per_device(blockwise, split, split)(*arrays)


def in_chunks(compute: Callable, plan: ChunkPlan):
    """compute(index) -> a pytree of arrays with a leading axis of plan.chunk trials, called for
    each chunk's trial index (the last chunk padded with its last real trial, whose repeated
    outputs are dropped: one shape, one compiled program). Returns the real trials' outputs of
    every chunk gathered into NumPy arrays (leading axis plan.n_items)."""
    out = None
    for start, stop in plan.bounds():
        index = np.minimum(np.arange(start, start + plan.chunk), stop - 1)
        part = compute(index)
        if out is None:
            out = jax.tree.map(lambda x: np.empty((plan.n_items, *x.shape[1:]), x.dtype), part)
        for o, x in zip(jax.tree.leaves(out), jax.tree.leaves(part), strict=True):
            o[start:stop] = np.asarray(x)[: stop - start]
    return out


def plan_trials(
    n_trials: int, bytes_per_trial: float, budget: ResourceBudget | None, *,
    reserved_bytes: float = 0.0, host_bytes_per_trial: float | None = None, what: str,
) -> ChunkPlan:  # fmt: skip
    """The chunks of `n_trials` trials whose arrays (`bytes_per_trial` for one copy of a
    trial's inputs, intermediates and outputs) fit `budget` (default `ResourceBudget()`);
    reserved_bytes: host memory held for the whole call (the gathered outputs).
    host_bytes_per_trial: one copy of what of a trial crosses to the host (its inputs and
    outputs: the compiled program's intermediates stay on the accelerator); default
    `bytes_per_trial` (work done on the host)."""
    budget = ResourceBudget() if budget is None else budget
    host_bytes = bytes_per_trial if host_bytes_per_trial is None else host_bytes_per_trial
    return plan_chunks(
        n_trials, block=budget.block_for(jax.default_backend()),
        device_bytes_per_item=DEVICE_COPIES * bytes_per_trial,
        host_bytes_per_item=HOST_COPIES * host_bytes,
        budget=budget, host_reserved_bytes=reserved_bytes, what=what,
    )  # fmt: skip
