"""Test-suite settings shared by every test directory."""

from hypothesis import HealthCheck, settings

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
