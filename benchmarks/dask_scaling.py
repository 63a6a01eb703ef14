"""Shape groups of a sweep trained as Dask tasks: wall time and speed-up with 1, 2 and 4 workers.

A sweep of `--groups` (at least 8) shape groups (hidden sizes h, h+1, ...: one compiled program
each), planned from the project's analysis_part1 training parameters, is trained with
`ntdyn.parallel.map_independent` (the path the training node takes under the DaskRunner) on a
LocalCluster of N worker processes, one thread each, for every N of `--workers`. The workers
are started and have imported JAX and ntdyn before the clock starts: the times are the
training (compilation included, as in a run). Speed-up: the time with the fewest workers over
the time with N, scaled by that N (1 worker: the usual baseline).

    PYTHONPATH=src python benchmarks/dask_scaling.py                  # 8 groups, 1 2 4 workers
    PYTHONPATH=src python benchmarks/dask_scaling.py --batches 50 --groups 8 --workers 1 2

Writes benchmarks/results/dask_scaling_<machine>.json (`--out` to change). No records are
made (no MLflow): this times the fan-out, not the store.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from _results import add_out_option, save

PROJECT = Path(__file__).resolve().parents[1]


def train_shape_group(rows: list[dict]) -> list[str]:
    """On a worker: train one shape group; its hashes (the models stay on the worker)."""
    from ntdyn.training import train_sweep

    return [t.hash for t in train_sweep(rows, progress=False)]


def _warm_up() -> int:
    import jax  # noqa: F401

    import ntdyn.training  # noqa: F401

    return os.getpid()


def plan(groups: int, batches: int | None, replicates: int | None, hidden: int | None = None,
         steps: int | None = None) -> list[list[dict]]:  # fmt: skip
    """The sweep's rows by shape group: analysis_part1's hyperparameters, hidden sizes varied."""
    from ntdyn.hyperparams import sweep_rows
    from ntdyn.pipelines.training.nodes import plan_sweep, shape_groups
    from ntdyn.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    # the project's parameters as a run reads them (no session: no store is opened)
    conf = CONFIG_LOADER_CLASS(conf_source=str(PROJECT / "conf"), **CONFIG_LOADER_ARGS)
    training = dict(conf["parameters"]["analysis_part1"]["training"])
    base = hidden or training["hyperparams"]["model"]["hidden_size"]
    training["spread"] = {"model__hidden_size": [int(base) + i for i in range(groups)]}
    overrides = dict(training.get("overrides") or {})
    train = dict(overrides.get("train") or {})
    if batches:
        train["n_batches"] = batches
    if replicates:
        train["n_replicates"] = replicates
    training["overrides"] = overrides | ({"train": train} if train else {})
    if steps:
        task = dict(overrides.get("task") or {})
        training["overrides"]["task"] = task | {"n_steps": steps}
    table = plan_sweep(training)
    rows = dict(zip(table["hash"], sweep_rows(table), strict=True))
    return [[rows[h] for h in group] for group in shape_groups(rows)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=8, help="shape groups (>= 8 for the record)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--batches", type=int, default=None, help="training batches (default: conf)")
    ap.add_argument("--replicates", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None, help="first hidden size (default: conf)")
    ap.add_argument("--steps", type=int, default=None, help="time steps (default: conf)")
    add_out_option(ap)
    args = ap.parse_args()

    from ntdyn.parallel import map_independent
    from ntdyn.runners.cluster import DaskConfig, connect

    # the cluster's INFO lines (workers joining and leaving) would bury the results
    logging.getLogger("distributed").setLevel(logging.WARNING)
    groups = plan(args.groups, args.batches, args.replicates, args.hidden, args.steps)
    assert len(groups) == args.groups, f"{len(groups)} shape groups planned, not {args.groups}"
    first = groups[0][0]
    config = {"groups": args.groups, "models_per_group": len(groups[0]),
              "hidden_sizes": [g[0]["model__hidden_size"] for g in groups],
              "n_batches": int(first["train__n_batches"]),
              "n_replicates": int(first["train__n_replicates"]),
              "batch_size": int(first["train__batch_size"]), "threads_per_worker": 1}  # fmt: skip
    runs = []
    for n in args.workers:
        config_n = DaskConfig(n_workers=n, threads_per_worker=1, dashboard_address="127.0.0.1:0")
        with connect(config_n) as client:
            client.run(_warm_up)
            t0 = time.perf_counter()
            trained = map_independent(train_shape_group, groups, name="train_shape_group")
            seconds = time.perf_counter() - t0
        assert sum(map(len, trained)) == sum(map(len, groups))
        runs.append({"workers": n, "seconds": round(seconds, 2)})
        print(f"{n} worker(s): {seconds:.1f} s", flush=True)
        baseline = runs[0]
        for run in runs:
            run["speed_up"] = round(baseline["seconds"] * baseline["workers"] / run["seconds"], 2)
        # saved after every cluster size: a run cut short keeps what it measured
        save("dask_scaling", config, {"runs": runs}, args.out)


if __name__ == "__main__":
    main()
