"""Independent work fans out as Dask tasks where a Dask cluster is at hand, else runs here.

`map_independent(fn, items)` is the one way nodes spread independent pieces of work (the shape
groups of a sweep, the evaluations of different models, the data-model fits of task_vs_data):

- inside a task on a Dask worker (a node run by `ntdyn.runners.DaskRunner`), the items become
  tasks of the same cluster, submitted through `distributed.worker_client`, which secedes this
  task's thread while it waits so that the sub-tasks can use it;
- in a process with a Dask client (a script or notebook that made one), they go to that client;
- otherwise they run one after the other in this process, in order, exactly as a plain loop.

A task whose worker dies is run again on another worker by Dask's scheduler (up to
`distributed.scheduler.allowed-failures` times); a task that raises is run again `retries`
times. The work itself must make every record through `ntdyn.store.claims.compute_once`, so a
task run twice (its first worker killed after it claimed, or even after it recorded) finds the
record, or the dead holder's claim, and never records twice.

JAX and fork do not mix: the workers of `ntdyn.runners.cluster` are separate processes started
by their nanny with `spawn` (Dask's default `distributed.worker.multiprocessing-method`), never
forked from a process that imported JAX; `check_spawn` refuses a fork configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_RETRIES = 1  # a task that raised runs once more (a worker that died: Dask reschedules)


def _on_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:  # not inside a task of a Dask worker
        return False
    return True


def _driver_client():
    """The Dask client of this process (the default one), or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def map_independent(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    name: str | None = None,
    retries: int = DEFAULT_RETRIES,
) -> list[R]:
    """`[fn(item) for item in items]`, the items as Dask tasks where a cluster is at hand.

    name: the task name prefix shown on Dask's dashboard (default: fn's name). With one item
    or none, or without a cluster, the items run here. Results come back in `items`' order;
    the first task that fails (after its retries) raises its error here.
    """
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    prefix = name or getattr(fn, "__name__", "task")
    if _on_worker():
        from distributed import worker_client

        with worker_client() as client:  # secedes: this thread is free while the tasks run
            futures = client.map(fn, items, key=_keys(prefix, len(items)), pure=False,
                                 retries=retries)  # fmt: skip
            return client.gather(futures)
    client = _driver_client()
    if client is None:
        return [fn(item) for item in items]
    log.info("%s: %d tasks on the Dask cluster %s", prefix, len(items), client.dashboard_link)
    futures = client.map(fn, items, key=_keys(prefix, len(items)), pure=False, retries=retries)
    return client.gather(futures)


def _keys(prefix: str, n: int) -> list[str]:
    """Unique task keys whose prefix groups them on the dashboard."""
    import uuid

    token = uuid.uuid4().hex[:8]
    return [f"{prefix}-{token}-{i}" for i in range(n)]


def check_spawn() -> None:
    """Workers must not be forked from a process that may have imported JAX."""
    import dask

    method = dask.config.get("distributed.worker.multiprocessing-method")
    if method == "fork":
        raise ValueError(
            "distributed.worker.multiprocessing-method = 'fork': JAX does not survive a fork; "
            "use 'spawn' (Dask's default) or 'forkserver'"
        )
