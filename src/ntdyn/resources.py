"""The memory budget of a run, its devices, and how work is cut into chunks that fit it.

`ResourceBudget` is built once from conf (`resources:` in globals) and passed to the
analyses; `resources.devices` says which local accelerators the work is spread over
(`ntdyn.sharding.Devices`). Work over many trials is cut in two levels:

- a *block*: the number of trials one compiled program simulates at once. It fixes the
  numerics (XLA's CPU kernels round differently for different batch sizes, by ~6e-8
  measured), so it comes from conf (`resources.trial_block`, per backend), never from the
  budget: the same evaluation gives the same bits whatever the budget.
- a *chunk*: a whole number of blocks run in one call (a `lax.map` over blocks) and held
  in memory at once; the budget decides how many blocks a chunk has.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ntdyn.sharding import Devices

log = logging.getLogger(__name__)

GB = 1e9
# Share of each budget given to one chunk's arrays; the rest covers the models, the compiled
# programs' workspace, accumulators and the tables being built.
CHUNK_SHARE = 0.25
DEFAULT_TRIAL_BLOCK = {"cpu": 32, "gpu": 1024}


@dataclass(frozen=True)
class ResourceBudget:
    """Memory a run may use (GB = 1e9 bytes), and the trial block per backend.

    gpu_memory_gb: device memory for JAX (its allocator is capped there, see
    `configure_jax_memory`); host_memory_gb: process memory for arrays being processed;
    trial_block: trials per compiled block, per backend ("cpu", "gpu"); devices: the local
    devices the work is spread over (gpu_memory_gb is per device); compilation_cache: the
    folder (relative: to the project) where compiled XLA programs are kept between runs
    (JAX's persistent compilation cache, see `configure_compilation_cache`), None: off.
    """

    gpu_memory_gb: float = 40.0
    host_memory_gb: float = 16.0
    trial_block: tuple[tuple[str, int], ...] = tuple(DEFAULT_TRIAL_BLOCK.items())
    devices: Devices = field(default_factory=Devices)
    compilation_cache: str | None = None

    def __post_init__(self):
        cache = self.compilation_cache
        if cache is not None and not (isinstance(cache, str) and cache.strip()):
            raise ValueError(
                f"resources.compilation_cache = {cache!r}: must be a folder (a path, relative "
                "to the project or absolute) or null (no cache)"
            )
        for name in ("gpu_memory_gb", "host_memory_gb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"resources.{name} = {value!r}: must be a number > 0 (GB)")
        for backend, block in self.trial_block:
            if backend not in DEFAULT_TRIAL_BLOCK:
                raise ValueError(
                    f"resources.trial_block has backend {backend!r}: must be among "
                    f"{sorted(DEFAULT_TRIAL_BLOCK)}"
                )
            if isinstance(block, bool) or not isinstance(block, int) or block < 1:
                raise ValueError(
                    f"resources.trial_block.{backend} = {block!r}: must be an integer >= 1"
                )

    @classmethod
    def from_conf(cls, conf: dict | None) -> ResourceBudget:
        """From the `resources` mapping of conf (missing keys take the defaults)."""
        conf = dict(conf or {})
        keys = {"gpu_memory_gb", "host_memory_gb", "trial_block", "devices", "compilation_cache"}
        unknown = set(conf) - keys
        if unknown:
            raise ValueError(
                f"resources has unknown key(s) {sorted(unknown)}: allowed are "
                f"{', '.join(sorted(keys))}"
            )
        devices = Devices.from_conf(conf.pop("devices", None))
        block = dict(DEFAULT_TRIAL_BLOCK)
        given = conf.pop("trial_block", None) or {}
        if not isinstance(given, dict):
            raise ValueError(
                f"resources.trial_block = {given!r}: must be a mapping backend -> trials, "
                f"e.g. {DEFAULT_TRIAL_BLOCK}"
            )
        block.update(given)
        return cls(**conf, trial_block=tuple(sorted(block.items())), devices=devices)

    def block_for(self, backend: str) -> int:
        """Trials per compiled block on `backend` (jax.default_backend(): cpu, gpu, ...)."""
        blocks = dict(self.trial_block)
        return blocks.get(backend, blocks["gpu"])


@dataclass(frozen=True)
class ChunkPlan:
    """How `n_items` items are processed: blocks of `block`, `blocks_per_chunk` per call.

    The last chunk is padded to the full chunk (one compiled shape for every chunk).
    """

    n_items: int
    block: int
    blocks_per_chunk: int

    @property
    def chunk(self) -> int:
        return self.block * self.blocks_per_chunk

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_items / self.chunk)

    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) of each chunk's real items (stop - start <= chunk)."""
        return [(s, min(s + self.chunk, self.n_items)) for s in range(0, self.n_items, self.chunk)]


def _size(n_bytes: float) -> str:
    return f"{n_bytes / GB:.2f} GB" if n_bytes >= 0.1 * GB else f"{n_bytes / 1e6:.1f} MB"


def plan_chunks(
    n_items: int,
    *,
    block: int,
    device_bytes_per_item: float,
    host_bytes_per_item: float,
    budget: ResourceBudget,
    host_reserved_bytes: float = 0.0,
    what: str = "trials",
    n_devices: int = 1,
) -> ChunkPlan:
    """The largest chunk (a whole number of blocks) whose arrays fit the budget.

    device_bytes_per_item / host_bytes_per_item: memory one item needs on the accelerator
    (outputs and the program's intermediates) and on the host while its chunk is processed.
    host_reserved_bytes: host memory held for the whole run (accumulators). A block that
    cannot fit is refused with the budget and the parameter to change. n_devices: the chunk
    is split across that many devices, each with the accelerator budget: it holds a
    multiple of n_devices blocks (at least one block per device, even where the host budget
    holds fewer: then a warning says so).
    """
    if n_items < 1:
        raise ValueError(f"nothing to compute: {n_items} {what}")
    block = min(block, n_items)
    device = budget.gpu_memory_gb * GB * CHUNK_SHARE
    host = budget.host_memory_gb * GB * CHUNK_SHARE - host_reserved_bytes
    need_device, need_host = block * device_bytes_per_item, block * host_bytes_per_item
    if need_device > device:
        raise ValueError(
            f"one block of {block} {what} needs {_size(need_device)} of accelerator memory, "
            f"more than {CHUNK_SHARE:.0%} of resources.gpu_memory_gb = {budget.gpu_memory_gb}: "
            "raise resources.gpu_memory_gb or lower resources.trial_block"
        )
    if need_host > host:
        raise ValueError(
            f"one block of {block} {what} needs {_size(need_host)} of host memory, and "
            f"{_size(host_reserved_bytes)} are held for the whole evaluation: more than "
            f"{CHUNK_SHARE:.0%} of resources.host_memory_gb = {budget.host_memory_gb}: raise "
            "resources.host_memory_gb, lower resources.trial_block or keep fewer arrays"
        )
    fits = int(min(n_devices * (device // need_device), host // need_host))
    blocks_needed = n_devices * math.ceil(math.ceil(n_items / block) / n_devices)
    blocks = max(1, min(fits, blocks_needed)) // n_devices * n_devices
    if blocks == 0:
        log.warning(
            "one block of %d %s per device (%d devices) needs %s of host memory, more than "
            "%.0f%% of resources.host_memory_gb = %s: running %d blocks at once anyway",
            block, what, n_devices, _size(n_devices * need_host), 100 * CHUNK_SHARE,
            budget.host_memory_gb, n_devices,
        )  # fmt: skip
        blocks = n_devices
    return ChunkPlan(n_items, block, blocks)


def _total_gpu_memory_bytes() -> float | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        return min(float(x) for x in out.stdout.split()) * 2**20  # MiB
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def configure_jax_memory(budget: ResourceBudget) -> dict[str, str]:
    """Cap JAX's GPU allocator at the budget, before JAX starts its backend.

    Sets XLA_PYTHON_CLIENT_PREALLOCATE=false (memory is taken as needed, not 75% up front)
    and XLA_PYTHON_CLIENT_MEM_FRACTION = gpu_memory_gb / the GPU's memory, unless the
    environment sets them already. Returns what it set. Without an NVIDIA GPU: nothing.
    """
    total = _total_gpu_memory_bytes()
    if total is None:
        return {}
    fraction = min(budget.gpu_memory_gb * GB / total, 0.95)
    wanted = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
              "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{fraction:.3f}"}  # fmt: skip
    applied = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(applied)
    try:
        import jax._src.xla_bridge as xb

        started = bool(xb._backends)  # noqa: SLF001 (no public way to ask)
    except (ImportError, AttributeError):
        started = False
    if started and applied:
        log.warning(
            "JAX's backend started before the memory budget was applied: %s take effect in "
            "the next process", applied,
        )  # fmt: skip
    return applied


# The compilation cache's size at most (JAX evicts the least recently used programs beyond).
COMPILATION_CACHE_MAX_BYTES = 2 * 10**9


def configure_compilation_cache(budget: ResourceBudget, project_path: Path) -> str | None:
    """Keep compiled XLA programs between runs in `resources.compilation_cache`.

    JAX's persistent compilation cache (`jax_compilation_cache_dir`): a program compiled
    once, by this run or an earlier one, is read back instead of compiled again when its
    optimised module and the machine are the same (JAX's cache key: the module, the
    compile options, the devices and the JAX/XLA versions), so a second run with other
    hyperparameters of the same shapes compiles little. Every program is kept whatever its
    compile time (most of ntdyn's take under a second on the CPU and add up to a third of
    a demo run); the folder is capped at 2 GB (least recently used evicted).

    `JAX_COMPILATION_CACHE_DIR` in the environment wins over conf (the test suite shares
    one folder between its processes that way). The folder is also put in the environment,
    so processes started by the run (Dask workers) use it. Returns the folder, or None
    when off. The numbers do not depend on it: a program read back is the compiled one.
    """
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if not folder:
        if budget.compilation_cache is None:
            return None
        folder = str((Path(project_path) / budget.compilation_cache).resolve())
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILATION_CACHE_MAX_BYTES))
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))  # fmt: skip
    jax.config.update("jax_compilation_cache_max_size",
                      int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))  # fmt: skip
    # JAX decides once per process, at its first compilation, whether the cache is used:
    # a program compiled before this call (in-process sessions) would have switched it off
    compilation_cache.reset_cache()
    return folder
