"""Spreading a stacked axis over the local accelerators, with `jax.sharding`.

`Devices` is the choice in conf (`resources.devices`: all, a count, or device indices);
`Devices.plan()` resolves it against `jax.local_devices()` into a `DevicePlan`: a
one-axis `Mesh` over the chosen devices, arrays placed with a `NamedSharding` whose
leading axis is split across them (`place`) or copied to each (`replicate`), and the
padding that makes a leading axis a multiple of the device count (`pad`: copies of the
last real row, whose outputs `unpad` drops). Two ways to compute: `on_each_device` runs
the one-device program on every device's share of placed arrays (compiled for each device;
`joined` makes the outputs one split array again), and `per_device` is one `shard_map`
program over the mesh.

What is split: the stacked model axis of training (`ntdyn.training.core.run_training`,
`on_each_device`), the trials of an evaluation chunk (`ntdyn.analysis.evaluate`: a
`shard_map` of the fixed trial block's `lax.map`) and whole fixed-point searches, and the
blocks of a large one (`ntdyn.analysis.fixed_points.search_fixed_points`: block k on
`DevicePlan.devices[k mod n]`, the one-device program at the block's shape). Each row of
those axes is computed on its own, and the numbers are those of one device, bitwise
(tests/test_sharding.py, README "Several GPUs of one machine"). Not so for a program that
jit partitions from the placement: XLA's SPMD clean-up merges equal expressions before the
algebraic simplifier runs, which then rewrites some arithmetic differently (Adam's
bias-corrected division), a rounding apart from one device's; nor for a program compiled
at another shape (XLA:CPU emits a sum differently above a size).

With one device that is JAX's default, every method is a no-op: the one-device code path is
exactly the code without sharding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# The name of the mesh's one axis (the leading axis of the arrays split across it).
AXIS = "devices"

ALLOWED = ("'all', a count N >= 1 (the first N local devices) or a non-empty list of "
           "distinct device indices >= 0 (into jax.local_devices())")  # fmt: skip


def devices_problem(value) -> str | None:
    """What is wrong with a `resources.devices` value ("must be ..."), or None."""
    if value == "all":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value >= 1 else f"must be {ALLOWED}"
    if isinstance(value, list | tuple) and value:
        ints = all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
        if ints and len(set(value)) == len(value):
            return None
    return f"must be {ALLOWED}"


@dataclass(frozen=True)
class Devices:
    """Which local devices a run spreads its work over (conf `resources.devices`).

    choice: "all" (every device `jax.local_devices()` lists, on JAX's default backend), a
    count N (the first N of them) or the indices of the devices to use, in mesh order.
    """

    choice: str | int | tuple[int, ...] = "all"

    def __post_init__(self):
        problem = devices_problem(self.choice)
        if problem is not None:
            raise ValueError(f"resources.devices = {self.choice!r}: {problem}")

    @classmethod
    def from_conf(cls, value) -> Devices:
        """From the `resources.devices` value of conf (None: all)."""
        if value is None:
            return cls()
        if isinstance(value, list):
            problem = devices_problem(value)
            if problem is not None:
                raise ValueError(f"resources.devices = {value!r}: {problem}")
            value = tuple(value)
        return cls(value)

    def resolve(self) -> tuple[jax.Device, ...]:
        """The chosen devices (starts JAX's backend). A count or an index beyond the local
        devices is refused naming resources.devices."""
        local = jax.local_devices()
        if self.choice == "all":
            return tuple(local)
        if isinstance(self.choice, int):
            if self.choice > len(local):
                raise ValueError(
                    f"resources.devices = {self.choice}: only {len(local)} local "
                    f"{jax.default_backend()} device(s) here; use at most {len(local)} or 'all'"
                )
            return tuple(local[: self.choice])
        missing = [i for i in self.choice if i >= len(local)]
        if missing:
            raise ValueError(
                f"resources.devices = {list(self.choice)}: no local device {missing}; the "
                f"{len(local)} local {jax.default_backend()} device(s) are 0..{len(local) - 1}"
            )
        return tuple(local[i] for i in self.choice)

    def plan(self) -> DevicePlan:
        return DevicePlan(self.resolve())


@dataclass(frozen=True)
class DevicePlan:
    """Resolved devices: a one-axis mesh and the placement of arrays on it.

    Hashable and comparable (a static argument of a compiled function: one program per
    mesh).
    """

    devices: tuple[jax.Device, ...]

    def __post_init__(self):
        if not self.devices:
            raise ValueError("a DevicePlan needs at least one device")

    @property
    def n(self) -> int:
        return len(self.devices)

    @property
    def active(self) -> bool:
        """False for JAX's default device alone: then nothing is placed, padded or split."""
        return self.n > 1 or self.devices[0] != jax.devices()[0]

    @cached_property
    def mesh(self) -> Mesh:
        return Mesh(np.asarray(self.devices), (AXIS,))

    @property
    def split(self) -> NamedSharding:
        """Leading axis split across the devices."""
        return NamedSharding(self.mesh, PartitionSpec(AXIS))

    @property
    def copied(self) -> NamedSharding:
        """A whole copy on every device."""
        return NamedSharding(self.mesh, PartitionSpec())

    def per_device(self, fn, in_specs, out_specs):
        """fn run by every device on its share of the arrays (`jax.shard_map`; specs in
        terms of AXIS): each device's program is fn's own at the local shapes, and nothing
        is communicated unless fn says so. check_vma=False: loops that start from constants
        and carry per-device values are allowed (shard_map's varying-axes types refuse
        them)."""
        return jax.shard_map(fn, mesh=self.mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=False)  # fmt: skip

    def on_each_device(self, fn, *args) -> list:
        """fn(*args) run by every device by itself, on its own rows of the array leaves of
        `args` placed with `place` (and its copy of those placed with `replicate`; any other
        leaf as it is): the one-device program, compiled for each device, so every device
        computes exactly what one device computes on those rows. Returns fn's outputs, one
        per device in mesh order, each on its device (`joined` makes them one array).

        Not one program partitioned over the mesh (jit's sharding propagation, or
        `shard_map`): XLA compiles a multi-device program through its SPMD partitioner,
        whose clean-up merges equal expressions (CSE) before the algebraic simplifier runs,
        and the simplifier then rewrites some arithmetic differently from the one-device
        program (measured: Adam's bias-corrected division, one rounding apart). The price:
        one compilation per device instead of one for all (each device's first call);
        calls after that only dispatch, and the devices run at the same time.
        """
        leaves, treedef = jax.tree.flatten(args)
        columns = [self._shares(x) for x in leaves]
        return [fn(*jax.tree.unflatten(treedef, [c[k] for c in columns]))
                for k in range(self.n)]  # fmt: skip

    def _shares(self, x) -> list:
        """Each device's part of one leaf (its rows, its copy, or the leaf itself)."""
        if not isinstance(x, jax.Array) or len(x.sharding.device_set) == 1:
            return [x] * self.n  # a host value, or one jit moves to the device it runs on
        by_device = {s.device: s.data for s in x.addressable_shards}
        if x.sharding.is_fully_replicated or x.sharding.is_equivalent_to(self.split, x.ndim):
            return [by_device[d] for d in self.devices]
        raise ValueError(
            f"an array of shape {x.shape} with sharding {x.sharding}: each device's part "
            "must be its rows (`place`) or a copy (`replicate`)"
        )

    def joined(self, parts: list, axis: int = 0):
        """One array per leaf from the per-device pytrees `parts` (mesh order, as
        `on_each_device` returns them), split across the devices along `axis`, without
        copying."""
        sharding = NamedSharding(self.mesh, PartitionSpec(*([None] * axis), AXIS))

        def join(*xs):
            shape = (*xs[0].shape[:axis], sum(x.shape[axis] for x in xs), *xs[0].shape[axis + 1 :])
            return jax.make_array_from_single_device_arrays(shape, sharding, list(xs))

        return jax.tree.map(join, *parts)

    def padded(self, n_items: int, min_per_device: int = 1) -> int:
        """n_items rounded up to a multiple of the device count, with at least
        min_per_device rows on each device when there are several."""
        per_device = math.ceil(n_items / self.n)
        if self.n > 1:
            per_device = max(per_device, min_per_device)
        return self.n * per_device

    def pad(self, tree, n_items: int, min_per_device: int = 1):
        """Every leaf's leading axis (n_items) extended to `padded(n_items, min_per_device)`
        with copies of its last row: a padded row computes what a real one does, and is
        dropped."""
        extra = self.padded(n_items, min_per_device) - n_items
        if extra == 0:
            return tree

        def pad_leaf(x):
            if x.shape[0] != n_items:
                raise ValueError(f"leading axis {x.shape[0]}, expected {n_items} to pad")
            xp = np if isinstance(x, np.ndarray) else jnp
            return xp.concatenate([x, xp.repeat(x[-1:], extra, axis=0)])

        return jax.tree.map(pad_leaf, tree)

    def place(self, tree):
        """Array leaves with their leading axis split across the devices (a multiple of the
        device count: see `pad`); other leaves as they are."""
        return self._put(tree, self.split)

    def replicate(self, tree):
        """Array leaves copied to every device; other leaves as they are."""
        return self._put(tree, self.copied)

    def _put(self, tree, sharding):
        if not self.active:
            return tree
        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.device_put(arrays, sharding), static)

    def unpad(self, tree, n_items: int):
        """The first n_items rows of every array leaf (the padding dropped), JAX arrays
        brought back to JAX's default device uncommitted, so that they mix with any other array
        afterwards (an array committed to the mesh cannot meet one committed elsewhere)."""
        if not self.active:
            return tree

        def unpad_leaf(x):
            if isinstance(x, np.ndarray):  # a host array stays one
                return x[:n_items]
            return jnp.asarray(np.asarray(x)[:n_items])

        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.tree.map(unpad_leaf, arrays), static)
