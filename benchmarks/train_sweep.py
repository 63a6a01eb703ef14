"""The training stage of an experiment, timed: train every row of a planned sweep.

Plan the sweep with Kedro where Kedro is installed (it validates and hashes it):

    kedro run --env full --nodes analysis_part2.plan_sweep

then train its rows with the science library alone (JAX; no Kedro, MLflow or
pandera), e.g. on a GPU machine:

    PYTHONPATH=src python benchmarks/train_sweep.py data/05_model_input/analysis_part2/sweep.parquet

`--batches N` trains N batches instead of the configured number and projects the
configured total from the measured wall time (compilation included: an upper bound).

Writes benchmarks/results/train_sweep_<sweep>_<machine>.json, <sweep> being the folder
that holds the sweep table (e.g. train_sweep_analysis_part2_h200.json; `_<N>batches`
added with `--batches N`; `--out` to change).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from _results import add_out_option, save
from ntdyn.hyperparams import sweep_rows
from ntdyn.training import TRACE_COUNTS, train_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="sweep table (parquet) written by the plan_sweep node")
    ap.add_argument("--batches", type=int, default=None)
    add_out_option(ap)
    args = ap.parse_args()

    table = pd.read_parquet(args.sweep)
    rows = sweep_rows(table)
    configured = {int(r["train__n_batches"]) for r in rows}
    if args.batches:
        rows = [dict(r, train__n_batches=args.batches) for r in rows]

    t0 = time.perf_counter()
    trained = train_sweep(rows, progress=True)
    elapsed = time.perf_counter() - t0
    # One chunk is compiled per shape group; time it apart from the steady rate.
    n_batches = int(rows[0]["train__n_batches"])
    last = [t.history for t in trained]  # the total loss over the last 10 batches
    final = pd.concat([h[(h["term"] == "total") & (h["step"] >= n_batches - 10)] for h in last])
    config = {
        "sweep": args.sweep,
        "members": len(rows),
        "models": sum(int(r["train__n_replicates"]) for r in rows),
        "labels": table["label"].tolist() if "label" in table else None,
        "hashes": table["hash"].tolist() if "hash" in table else None,
        "hidden": sorted({int(r["model__hidden_size"]) for r in rows}),
        "batch": sorted({int(r["train__batch_size"]) for r in rows}),
        "steps": sorted({int(r["task__n_steps"]) for r in rows}),
        "configured_batches": sorted(configured),
        "batches": n_batches,
    }
    results = {
        "compiled_programs": TRACE_COUNTS["train_chunk"],
        "wall_s": round(elapsed, 1),
        "batches_per_s": round(n_batches / elapsed, 2),
        "final_total_loss_median": float(final["value"].median()),
        "excluded_replicates": {
            t.hyperparams.get("train__method", "")
            + f" std={t.hyperparams['train__pert__std']}": list(t.selection.excluded)
            for t in trained
        },
    }
    if args.batches:
        results["projected_configured_s"] = round(elapsed / args.batches * max(configured), 1)
    name = f"train_sweep_{Path(args.sweep).resolve().parent.name}"
    save(name + (f"_{args.batches}batches" if args.batches else ""), config, results, args.out)


if __name__ == "__main__":
    main()
