"""Which process made a run, and whether it is still alive: runs left RUNNING by a dead one.

Every run this project creates (records, and the kedro-mlflow run of a `kedro run`) is
tagged with the process that made it: host, pid and the process's start time (so a reused
pid is not taken for the same process). A RUNNING run whose process is gone was abandoned
(killed, out of memory, machine down): `abandoned_runs` finds them on this host, and
`mark_abandoned` ends them as KILLED with the reason, so they are never left RUNNING and
unfinished work never becomes a FINISHED record.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mlflow.entities import Run, ViewType

TAG_PROCESS = "ntdyn.process"  # "<host>:<pid>:<start time>" of the process that made the run
TAG_ABANDONED = "ntdyn.abandoned"  # why a RUNNING run was ended as KILLED
# "<scheduler address> <worker address>" of the Dask worker whose task made the run
TAG_DASK_WORKER = "ntdyn.dask_worker"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (Linux); [] where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where unknown."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def process_alive(tag: str) -> bool | None:
    """Whether the process named by a `ntdyn.process` tag runs; None if it ran on another
    host (this host cannot tell)."""
    host, _, rest = tag.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields[:1] == ["Z"]:  # a zombie: dead, not yet reaped by its parent
        return False
    return not started or _start_time(pid) in ("", started)


def this_dask_worker() -> str | None:
    """`TAG_DASK_WORKER`'s value inside a task of a Dask worker, else None."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        worker = get_worker()
    except ValueError:
        return None
    return f"{worker.scheduler.address} {worker.address}"


def dask_worker_alive(tag: str) -> bool | None:
    """Whether the Dask worker named by a `TAG_DASK_WORKER` tag is still one of its scheduler's
    workers (a killed worker leaves; its nanny's replacement has a new address), asked of that
    scheduler through this process's Dask client or worker; None where this process is not
    connected to the same scheduler (it cannot tell)."""
    scheduler, _, worker = tag.partition(" ")
    if not worker:
        return None
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        client = get_client()
    except ValueError:
        return None
    if client.scheduler is None or client.scheduler.address != scheduler:
        return None
    return worker in client.scheduler_info(n_workers=-1)["workers"]


def run_alive(run: Run) -> bool | None:
    """Whether the process that made `run` runs: asked of this host, or, for a run made in a
    Dask task on another host, of the Dask scheduler; None where neither can tell."""
    alive = process_alive(run.data.tags.get(TAG_PROCESS, ""))
    if alive is None and TAG_DASK_WORKER in run.data.tags:
        return dask_worker_alive(run.data.tags[TAG_DASK_WORKER])
    return alive


def abandoned_runs(client, experiment_id: str) -> list[Run]:
    """RUNNING runs of the experiment made by a process of this host that is gone."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token)  # fmt: skip
        runs += [r for r in page if process_alive(r.data.tags.get(TAG_PROCESS, "")) is False]
        token = page.token
        if not token:
            return runs


def mark_abandoned(client, runs: list[Run]) -> None:
    """End each run as KILLED, tagged with the process that abandoned it."""
    for run in runs:
        client.set_tag(run.info.run_id, TAG_ABANDONED,
                       f"process {run.data.tags.get(TAG_PROCESS)} is gone")  # fmt: skip
        client.set_terminated(run.info.run_id, "KILLED")
