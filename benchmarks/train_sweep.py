"""The training stage of an experiment, timed: train every row of a planned sweep.

Plan the sweep with Kedro where Kedro is installed (it validates and hashes it):

    kedro run --env full --nodes analysis_part2.plan_sweep

then train its rows with the science library alone (JAX; no Kedro, MLflow or
pandera), e.g. on a GPU machine:

    PYTHONPATH=src python benchmarks/train_sweep.py data/05_model_input/analysis_part2/sweep.parquet

`--batches N` trains N batches instead of the configured number and projects the
configured total from the measured wall time (compilation included: an upper bound).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import pandas as pd

from ntdyn.hyperparams import sweep_rows
from ntdyn.training import TRACE_COUNTS, train_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="sweep table (parquet) written by the plan_sweep node")
    ap.add_argument("--batches", type=int, default=None)
    args = ap.parse_args()

    rows = sweep_rows(pd.read_parquet(args.sweep))
    configured = {int(r["train__n_batches"]) for r in rows}
    if args.batches:
        rows = [dict(r, train__n_batches=args.batches) for r in rows]

    t0 = time.perf_counter()
    trained = train_sweep(rows, progress=True)
    elapsed = time.perf_counter() - t0
    # One chunk is compiled per shape group; time it apart from the steady rate.
    n_batches = int(rows[0]["train__n_batches"])
    final = pd.concat(
        [t.history.query("term == 'total' and step >= @n_batches - 10") for t in trained]
    )
    report = {
        "device": str(jax.devices()[0]),
        "members": len(rows),
        "models": sum(int(r["train__n_replicates"]) for r in rows),
        "hidden": sorted({int(r["model__hidden_size"]) for r in rows}),
        "batch": sorted({int(r["train__batch_size"]) for r in rows}),
        "compiled_programs": TRACE_COUNTS["train_chunk"],
        "batches": n_batches,
        "wall_s": round(elapsed, 1),
        "configured_batches": sorted(configured),
        "final_total_loss_median": float(final["value"].median()),
        "excluded_replicates": {
            t.hyperparams.get("train__method", "")
            + f" std={t.hyperparams['train__pert__std']}": list(t.selection.excluded)
            for t in trained
        },
    }
    if args.batches:
        report["projected_configured_s"] = round(elapsed / args.batches * max(configured), 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
