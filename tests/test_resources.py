"""The memory budget: chunk plans that fit, and clear refusals."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ntdyn.resources import CHUNK_SHARE, GB, ResourceBudget, plan_chunks


@given(
    n=st.integers(1, 100_000),
    block=st.integers(1, 4096),
    per_item=st.floats(1e2, 1e7),
    host_gb=st.floats(0.5, 64),
)
def test_a_plan_covers_every_item_once_and_fits_the_budget(n, block, per_item, host_gb):
    budget = ResourceBudget(gpu_memory_gb=1000, host_memory_gb=host_gb)
    try:
        plan = plan_chunks(
            n, block=block, device_bytes_per_item=per_item, host_bytes_per_item=per_item,
            budget=budget,
        )  # fmt: skip
    except ValueError as err:
        assert "resources.host_memory_gb" in str(err)
        assert min(block, n) * per_item > host_gb * GB * CHUNK_SHARE
        return
    bounds = plan.bounds()
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert plan.chunk * per_item <= host_gb * GB * CHUNK_SHARE or plan.blocks_per_chunk == 1
    assert plan.block == min(block, n) and plan.chunk % plan.block == 0
    assert (plan.n_chunks - 1) * plan.chunk < n <= plan.n_chunks * plan.chunk


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"gpu_memory_gb": 0}, "resources.gpu_memory_gb = 0"),
        ({"host_memory_gb": "16"}, "resources.host_memory_gb = '16'"),
        ({"trial_block": {"tpu": 8}}, "backend 'tpu'"),
        ({"trial_block": {"cpu": 0}}, "resources.trial_block.cpu = 0"),
        ({"gpu_memory": 40}, r"unknown key\(s\) \['gpu_memory'\]"),
    ],
)
def test_bad_budgets_are_refused_naming_the_setting(conf, message):
    with pytest.raises(ValueError, match=message):
        ResourceBudget.from_conf(conf)


def test_importing_the_pipelines_does_not_start_jax_before_the_budget_is_applied():
    # The budget caps JAX's allocator through the environment, read when the backend starts:
    # no import of the project may start it.
    code = (
        "import jax._src.xla_bridge as xb\n"
        "from ntdyn.pipeline_registry import register_pipelines\n"
        "register_pipelines()\n"
        "assert not xb._backends, 'an import started JAX'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


_CACHED_PROGRAM = """
import json, os, sys
from pathlib import Path
from jax import monitoring
hits = []
monitoring.register_event_listener(lambda event, **kw: hits.append(event))
from ntdyn.resources import ResourceBudget, configure_compilation_cache
folder = configure_compilation_cache(ResourceBudget.from_conf({"compilation_cache": "cache"}),
                                     Path(sys.argv[1]))
import jax, jax.numpy as jnp
value = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.arange(12.0).reshape(3, 4))
print(json.dumps({"folder": folder, "env": os.environ.get("JAX_COMPILATION_CACHE_DIR"),
                  "hit": "/jax/compilation_cache/cache_hits" in hits, "value": float(value)}))
"""


def _cached_run(project, env_cache=None) -> dict:
    import json
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["JAX_PLATFORMS"] = "cpu"
    if env_cache is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(env_cache)
    done = subprocess.run([sys.executable, "-c", _CACHED_PROGRAM, str(project)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_compiled_programs_are_read_back_by_the_next_run(tmp_path):
    first, second = _cached_run(tmp_path), _cached_run(tmp_path)
    folder = str((tmp_path / "cache").resolve())
    assert first["folder"] == second["folder"] == first["env"] == folder
    # the first run compiles and keeps the program; the next reads it back, same number
    assert not first["hit"] and second["hit"]
    assert any((tmp_path / "cache").iterdir())
    assert first["value"] == second["value"]


def test_the_environment_wins_over_conf_for_the_compilation_cache(tmp_path):
    got = _cached_run(tmp_path, env_cache=tmp_path / "from_env")
    assert got["folder"] == got["env"] == str(tmp_path / "from_env")
    assert not (tmp_path / "cache").exists() and any((tmp_path / "from_env").iterdir())


def test_a_bad_compilation_cache_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"resources\.compilation_cache = '': must be a folder"):
        ResourceBudget.from_conf({"compilation_cache": ""})
    with pytest.raises(ValueError, match=r"resources\.compilation_cache = 3: must be a folder"):
        ResourceBudget(compilation_cache=3)
