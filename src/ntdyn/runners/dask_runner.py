"""`kedro run --runner ntdyn.runners.DaskRunner`: every node's work as a task of a Dask cluster.

The pattern of Kedro's deployment guide for Dask (an `AbstractRunner` whose nodes run on Dask
workers), with one change so that every hook works as in a plain `kedro run`: this process
(the driver) keeps the catalog and the hooks, and the cluster does the work. For each node
whose inputs are ready, a driver thread loads its inputs from the catalog, calls the
`before_node_run` hooks (kedro-mlflow's among them), sends the node's function and inputs to
the cluster as one Dask task, waits for its outputs, calls `after_node_run` and saves them.
Independent nodes run at the same time; inside a node, independent work (shape groups,
evaluations of different models, data-model fits) fans out as more tasks of the same cluster
(`ntdyn.parallel.map_independent`).

So the data/ folders and kedro-mlflow's run stay on the driver; workers need only the
project's code and the record store (its tracking URI and credentials come with the store and
the workers' environment). A worker that dies has its task run again on another worker by
Dask; records are made through `compute_once`, so a task run twice never records twice.

Which cluster: `conf/<env>/dask.yml` (see `ntdyn.runners.cluster`), read by `DaskConfHooks`
when the run's context is created (so `--env` chooses it), or a `DaskConfig` / a client
passed to the runner from Python.
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import chain
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from kedro.runner.runner import AbstractRunner
from kedro.runner.task import Task

from .cluster import DaskConfig, connect

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

MAX_CONCURRENT_NODES = 16  # driver threads waiting on node tasks at once, at most


class DaskConfHooks:
    """Reads conf/<env>/dask.yml when a run's context is created, for the DaskRunner."""

    conf: dict | None = None

    @hook_impl
    def after_context_created(self, context):
        from kedro.config import MissingConfigException

        try:
            DaskConfHooks.conf = dict(context.config_loader["dask"] or {})
        except (KeyError, MissingConfigException):
            DaskConfHooks.conf = None


def _run_function(node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    """On a worker: the node's function on its inputs (no hooks, no catalog: the driver's)."""
    return node.run(inputs)


class _ClusterTask(Task):
    """A Kedro Task whose node function runs as a Dask task; loading, saving and hooks here."""

    def __init__(self, *args, client, retries: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.client, self.retries = client, retries

    def _call_node_run(self, node, catalog, inputs, is_async, hook_manager, run_id=None):
        try:
            if inspect.isgeneratorfunction(node.func):  # its outputs stream: it runs here
                outputs = node.run(inputs)
            else:
                key = f"node-{node.name}-{uuid.uuid4().hex[:8]}"
                future = self.client.submit(_run_function, node, inputs, key=key, pure=False,
                                            retries=self.retries)  # fmt: skip
                outputs = future.result()
        except Exception as exc:
            hook_manager.hook.on_node_error(error=exc, node=node, catalog=catalog, inputs=inputs,
                                            is_async=is_async, run_id=run_id)  # fmt: skip
            raise
        hook_manager.hook.after_node_run(node=node, catalog=catalog, inputs=inputs,
                                         outputs=outputs, is_async=is_async,
                                         run_id=run_id)  # fmt: skip
        return outputs


class DaskRunner(AbstractRunner):
    """Runs a pipeline's nodes on a Dask cluster (see the module's docstring)."""

    def __init__(self, is_async: bool = False, config: DaskConfig | None = None, client=None):
        """config: the cluster (default: dask.yml of the run's conf, else a LocalCluster);
        client: an existing Dask client to use instead (its cluster is left running)."""
        super().__init__(is_async=is_async)
        self._config, self._client = config, client

    def _get_executor(self, max_workers: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dask-node")

    def _get_required_workers_count(self, pipeline: Pipeline) -> int:
        widest = max((len(group) for group in pipeline.grouped_nodes), default=1)
        return max(1, min(widest, MAX_CONCURRENT_NODES))

    def config(self) -> DaskConfig:
        return self._config or DaskConfig.from_conf(DaskConfHooks.conf)

    def _run(self, pipeline, catalog, hook_manager=None, run_id=None) -> None:
        config = self.config()
        cluster = contextlib.nullcontext(self._client) if self._client else connect(config)
        with cluster as client:
            self._run_on(client, config, pipeline, catalog, hook_manager, run_id)

    def _run_on(self, client, config, pipeline, catalog, hook_manager, run_id) -> None:
        """AbstractRunner's scheduling loop, with each node a `_ClusterTask`."""
        nodes = pipeline.nodes
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        dependencies = pipeline.node_dependencies
        todo, done_nodes, futures = set(dependencies), set(), set()
        with self._get_executor(self._get_required_workers_count(pipeline)) as pool:
            while True:
                ready = {n for n in todo if dependencies[n] <= done_nodes}
                todo -= ready
                for node in ready:
                    task = _ClusterTask(node=node, catalog=catalog, hook_manager=hook_manager,
                                        is_async=self._is_async, run_id=run_id, client=client,
                                        retries=config.retries)  # fmt: skip
                    futures.add(pool.submit(task.execute))
                if not futures:
                    if todo:
                        self._raise_runtime_error(todo, done_nodes, ready, None)
                    break
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        node = future.result()
                    except Exception:
                        self._suggest_resume_scenario(pipeline, done_nodes, catalog)
                        raise
                    done_nodes.add(node)
                    self._logger.info("Completed node: %s", node.name)
                    self._logger.info("Completed %d out of %d tasks", len(done_nodes), len(nodes))
                    self._release_datasets(node, catalog, load_counts, pipeline)
