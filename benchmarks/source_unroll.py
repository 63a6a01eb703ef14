"""Time a task_vs_data source's training at several scan unrolls (issue 16, issue 15's ctdb run).

A source GRU (flip-flop or MultiTask) is latency-bound on a GPU: its step is small and the
time goes to the loop over the trial's steps. `task_vs_data.training_options.unroll` sets the
steps per loop iteration; this script measures, for each unroll asked, the first call of the
training (compile + `--batches` batches) and a second, warm call of the same shape (the same
chunk program, taken from the cache), and projects the source's whole training
(`train__n_batches` of the configuration) as compile + n_batches / rate. Needs JAX and the
science library only (no Kedro), so it runs on the GPU hosts; the parameters come from a JSON
file written where Kedro is installed:

    python benchmarks/task_vs_data_training.py --dump-params ctdb --params tvd_ctdb.json
    PYTHONPATH=src python benchmarks/source_unroll.py --params tvd_ctdb.json \
        --source multitask --unrolls 8,64,full --batches 500
"""

from __future__ import annotations

import argparse
import json

from _results import add_out_option, save
from data_model_scans import source_steps, time_source


def time_unroll(source: dict, unroll: str, batches: int) -> dict:
    """`time_source` at one unroll (k steps per loop iteration, or full: the whole trial)."""
    from ntdyn.hyperparams import flatten

    n_steps = source_steps(source["kind"], flatten(source["hyperparams"]))
    steps = n_steps if unroll == "full" else min(int(unroll), n_steps)
    (cold, warm), losses, _, n_total, _ = time_source({**source, "unroll": steps}, batches)
    rate = batches / warm
    compile_s = max(cold - warm, 0.0)
    return {
        "unroll": unroll, "steps_per_iteration": steps,
        "cold_s": round(cold, 2), "warm_s": round(warm, 2),
        "compile_s": round(compile_s, 1), "batches_per_s": round(rate, 1),
        "projected_training_s": round(compile_s + n_total / rate, 1),
        "last_loss_cold_warm": losses,
    }  # fmt: skip


def main() -> None:
    from ntdyn.hyperparams import flatten

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", required=True, help="JSON of task_vs_data parameters")
    p.add_argument("--source", default="multitask")
    p.add_argument("--unrolls", default="8,64,full", help="k or full, comma-separated")
    p.add_argument("--batches", type=int, default=500)
    add_out_option(p)
    args = p.parse_args()
    with open(args.params) as f:
        source = json.load(f)["sources"][args.source]
    hp = flatten(source["hyperparams"])
    rows = []
    for unroll in args.unrolls.split(","):
        rows.append(time_unroll(source, unroll, args.batches))
        print(json.dumps(rows[-1]), flush=True)
    best = min(rows, key=lambda r: r["projected_training_s"])
    config = {"source": args.source, "kind": source["kind"], "batches": args.batches,
              "n_batches": int(hp["train__n_batches"]),
              "batch_size": int(hp["train__batch_size"]),
              "hidden_size": int(hp["model__hidden_size"])}  # fmt: skip
    save(f"source_unroll_{args.source}", config, {"rows": rows, "best": best["unroll"]}, args.out)
    print(f"best: {best['unroll']}", flush=True)


if __name__ == "__main__":
    main()
