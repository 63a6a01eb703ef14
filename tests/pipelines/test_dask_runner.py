"""`kedro run` on a Dask cluster (issue 17, points 2 and 3), on one real LocalCluster of two
worker processes shared by the tests of this module.

1. A pipeline run with the DaskRunner against the PostgreSQL-backed tracking server
(tests/servers.py): its sweep's two shape groups are trained as tasks of the workers, every
record arrives exactly once, a second run reuses them all, the server's API and UI list them.

2. A worker that dies has its task run again elsewhere, and nothing is recorded twice. A real
LocalCluster of two worker processes and a real MLflow store: each task makes one
record through `compute_once`; the first attempt of one task kills its own worker process
after claiming the hash (before recording), the first attempt of the other right after
recording (before its claim is released). Dask's scheduler runs both again (no retries
asked: a dead worker's tasks are rescheduled); the first is recorded once by its second
attempt, which takes over the dead claim, the second finds its record and reuses it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml
from kedro_project import TINY_PART1, make_project
from mlflow.entities import ViewType

from ntdyn.parallel import map_independent
from ntdyn.runners import DaskRunner
from ntdyn.runners.cluster import DaskConfig, connect
from ntdyn.store import RecordStore
from ntdyn.store.claims import RECORDED, REUSED, TAG_CLAIM, compute_once
from ntdyn.store.processes import TAG_ABANDONED
from ntdyn.store.records import EVALUATION, TAG_PARENT_RUN
from servers import assert_server_lists

pytestmark = pytest.mark.pipeline

EXPERIMENT = "worker_death"
# two shape groups (hidden sizes) of one model each: two independent training tasks
PARAMS = {
    "analysis_part1": {
        **TINY_PART1["analysis_part1"],
        "training": {"spread": {"model__hidden_size": [4, 6], "train__pert__std": [0.0]}},
        "training_options": {"progress": False, "metric_every": 2, "record_every": 0},
    }
}


@pytest.fixture(scope="module")
def cluster():
    with connect(DaskConfig(n_workers=2, dashboard_address="127.0.0.1:0")) as client:
        yield client


def _run(root: Path, client, tasks: list | None = None) -> dict[str, dict[str, int]]:
    """A real Kedro session of the project at `root` (part 1's training and evaluations),
    its nodes run by the DaskRunner; the prefixes of the cluster's tasks go to `tasks`."""
    from distributed import get_task_stream
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ntdyn.hooks import RunSummaryHooks
    from ntdyn.settings import HOOKS

    bootstrap_project(root)
    summary = next(h for h in HOOKS if isinstance(h, RunSummaryHooks))
    try:
        with KedroSession.create(project_path=root) as session, get_task_stream(client) as ts:
            session.run(pipeline_names=["training", "evaluation"], namespaces=["analysis_part1"],
                        runner=DaskRunner(client=client))  # fmt: skip
    finally:
        while mlflow.active_run() is not None:  # kedro-mlflow's re-opened runs
            mlflow.end_run()
    if tasks is not None:
        tasks += [str(d["key"]).rsplit("-", 2)[0] for d in ts.data]
    return {kind: dict(counter) for kind, counter in summary.counts.items()}


def _models(store: RecordStore) -> list:
    return store.client.search_runs([store.experiment_id], "tags.\"ntdyn.record\" = 'model'",
                                    run_view_type=ViewType.ALL)  # fmt: skip


def test_a_pipeline_on_two_workers_records_once_on_the_tracking_server(
    mlflow_server, cluster, tmp_path
):
    uri = mlflow_server.uri
    root = make_project(tmp_path / "project", local_params=PARAMS)
    conf = root / "conf" / "local" / "mlflow.yml"
    mlflow_conf = yaml.safe_load(conf.read_text())
    mlflow_conf["server"]["mlflow_tracking_uri"] = uri
    conf.write_text(yaml.safe_dump(mlflow_conf))
    # the run's dask.yml is read (here the runner is given the module's cluster instead)
    dask_conf = {"cluster": {"n_workers": 3, "dashboard_address": "127.0.0.1:0"}}
    (root / "conf" / "local" / "dask.yml").write_text(yaml.safe_dump(dask_conf))

    tasks = []
    counts = _run(root, cluster, tasks)
    assert counts["model"] == {"trained": 2} and counts["evaluation"] == {"recorded": 2}
    # the shape groups and each evaluation's models were tasks of their own on the workers
    for prefix in ("train_shape_group", "evaluate_plant_perts", "evaluate_feedback_perts"):
        assert Counter(tasks)[prefix] == 2, Counter(tasks)
    assert DaskRunner().config() == DaskConfig(n_workers=3, dashboard_address="127.0.0.1:0")
    store = RecordStore(tracking_uri=uri, experiment="ntdyn")
    records = _models(store)
    assert Counter(r.data.params["model__hidden_size"] for r in records) == {"4": 1, "6": 1}
    assert {r.info.status for r in records} == {"FINISHED"}
    # made on the workers (not this process), as children of this `kedro run`'s run
    assert str(os.getpid()) not in {r.data.tags["ntdyn.process"].split(":")[1] for r in records}
    for r in records:
        parent = store.client.get_run(r.data.tags[TAG_PARENT_RUN])
        assert parent.data.tags["ntdyn.process"].split(":")[1] == str(os.getpid())
    assert not store.client.search_runs([store.experiment_id], "attributes.status = 'RUNNING'")

    again = _run(root, cluster)  # the second run reuses them all
    assert again["model"] == {"reused": 2} and again["evaluation"] == {"reused": 2}
    assert {r.info.run_id for r in _models(store)} == {r.info.run_id for r in records}
    # the server's REST API (what its UI reads) and its UI list them
    assert_server_lists(uri, store.experiment_id, [r.info.run_id for r in records])


def _die_once(marker: Path) -> None:
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def record_or_die(job: tuple[str, str, str, str]) -> tuple[str, int]:
    """On a worker: record hash `h` once; the first attempt dies at `phase`."""
    uri, folder, h, phase = job
    store = RecordStore(uri, EXPERIMENT)
    marker = Path(folder) / f"{h}.died"

    def compute(hashes: list[str]):
        if phase == "before recording":
            _die_once(marker)
        record = store.record_evaluation(hash=h, analysis="probe", params={"pid": os.getpid()},
                                         model_hashes=[], metrics={"x": 1.0})  # fmt: skip
        if phase == "after recording":
            _die_once(marker)
        return {h: record}

    [(_, status)] = compute_once(store, EVALUATION, [h], store.find_evaluation, compute).values()
    return status, os.getpid()


def test_a_killed_workers_task_runs_again_and_records_once(cluster, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = RecordStore(uri, EXPERIMENT)
    jobs = [(uri, str(tmp_path), "dies-before", "before recording"),
            (uri, str(tmp_path), "dies-after", "after recording")]  # fmt: skip
    results = map_independent(record_or_die, jobs, retries=0)  # on `cluster`: default client

    (before, pid_before), (after, pid_after) = results
    assert (before, after) == (RECORDED, REUSED)
    killed = {h: int((tmp_path / f"{h}.died").read_text()) for h in ("dies-before", "dies-after")}
    assert pid_before != killed["dies-before"] and pid_after != killed["dies-after"]  # elsewhere

    records = store.client.search_runs([store.experiment_id],
                                       "tags.\"ntdyn.record\" = 'evaluation'",
                                       run_view_type=ViewType.ALL)  # fmt: skip
    assert Counter(r.data.tags["ntdyn.hash"] for r in records) == {
        "dies-before": 1,
        "dies-after": 1,
    }
    assert {r.info.status for r in records} == {"FINISHED"}
    # the record of the task that died before recording was made by its second attempt
    [first] = [r for r in records if r.data.tags["ntdyn.hash"] == "dies-before"]
    assert int(first.data.params["pid"]) == pid_before
    # the dead attempt's claim was found dead and ended as KILLED, not left RUNNING
    claims = store.client.search_runs([store.experiment_id],
                                      f"tags.\"{TAG_CLAIM}\" = 'evaluation:dies-before'",
                                      run_view_type=ViewType.ALL)  # fmt: skip
    killed_claims = [c for c in claims if c.info.status == "KILLED"]
    assert len(killed_claims) == 1 and TAG_ABANDONED in killed_claims[0].data.tags
    assert not [c for c in claims if c.info.status == "RUNNING"]


def test_a_claim_of_a_worker_on_another_host_is_dead_once_its_scheduler_drops_it(cluster, tmp_path):
    """This host cannot see another host's processes: a claim made in a Dask task there is
    alive while the scheduler lists its worker, and taken over once it does not."""
    from ntdyn.store.processes import TAG_DASK_WORKER, TAG_PROCESS

    store = RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}", EXPERIMENT)
    scheduler = cluster.scheduler.address
    live_worker = next(iter(cluster.scheduler_info()["workers"]))
    made = {}
    for name, worker in (("alive", live_worker), ("gone", "tcp://127.0.0.1:1")):
        tags = {
            TAG_CLAIM: f"evaluation:{name}",
            "ntdyn.claim_kind": "evaluation",
            TAG_PROCESS: "another-host:4242:1",
            TAG_DASK_WORKER: f"{scheduler} {worker}",
        }
        run = store.client.create_run(store.experiment_id, tags=tags)
        made[name] = run.info.run_id
    live = store.claims.live("evaluation")
    assert set(live) == {"alive"}
    gone = store.client.get_run(made["gone"])
    assert gone.info.status == "KILLED" and TAG_ABANDONED in gone.data.tags
