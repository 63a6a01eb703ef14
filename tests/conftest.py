"""Test-suite settings shared by every test directory."""

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

# One JAX compilation cache for the whole suite: its processes (pytest-xdist workers, the
# `kedro run`s and Dask workers the tests start, which inherit the environment) read back
# the programs another already compiled (the tiny projects' pipelines compile the same
# programs in many files) instead of compiling them again. Set before anything imports
# JAX, which reads these at import; `ntdyn.resources.configure_compilation_cache` keeps them
# (the environment wins over conf). The numbers do not depend on it. Off with
# NTDYN_TEST_COMPILATION_CACHE=0.
if os.environ.get("NTDYN_TEST_COMPILATION_CACHE", "1") != "0":
    _cache = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation-cache"
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_cache))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 10**9))  # locked, bounded

# Property tests run on shared 2-core CI machines: a stall (JIT compilation, another
# process) must not fail a test through timing. What is generated and asserted is unchanged.
settings.register_profile("ntdyn", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ntdyn")


def pytest_collection_modifyitems(config, items):
    """Files with pipeline tests (real Kedro sessions and processes: minutes each, the rest
    seconds) run first, each file's tests in their order. `make test` hands whole files to two
    processes (pytest-xdist, `--dist loadfile --no-loadscope-reorder`) in this order: the long
    files start at once instead of last, when one process would run one alone."""
    slow = {item.path for item in items if item.get_closest_marker("pipeline") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order is otherwise kept
