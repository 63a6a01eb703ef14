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
