"""Training throughput at full scale: batches/s and the projected time for 10 000 batches.

Default problem (docs/science.md §3.2): 4 training stds x 5 replicates = 20 GRUs of
100 units, 100 steps, batch 250, all in one compiled program. Runs with JAX
alone (no Kedro, MLflow or pandera), so it can be timed on a GPU machine:

    PYTHONPATH=src python benchmarks/training_throughput.py --batches 500

Writes benchmarks/results/training_throughput_<machine>.json (`--out` to change).
"""

from __future__ import annotations

import argparse
import time

from _results import add_out_option, save
from ntdyn.training import TRACE_COUNTS, train_group


def reaching_hyperparams(hidden: int, steps: int, batch: int, replicates: int) -> dict:
    """Flattened part-1 hyperparameters at the given scale (docs/science.md defaults otherwise)."""
    return {
        "model__cell": "gru", "model__hidden_size": hidden, "model__sisu_input": False,
        "task__mass": 1.0, "task__damping": 10.0, "task__dt": 0.01, "task__n_steps": steps,
        "task__workspace": 1.0, "task__feedback__delay": 0, "task__feedback__noise_std": 0.01,
        "task__motor__noise_std": 0.01, "task__motor__mult_noise_std": 0.018,
        "cost__position": 1.0, "cost__position_exponent": 6, "cost__final_velocity": 1.0,
        "cost__control": 1e-5, "cost__hidden": 1e-5,
        "train__method": "fixed", "train__pert__type": "curl", "train__pert__std": 0.0,
        "train__pert__p_active": 1.0, "train__batch_size": batch, "train__learning_rate": 0.01,
        "train__n_replicates": replicates, "train__seed": 0, "train__n_std_exclude": 2.0,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stds", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5])
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--batches", type=int, default=200, help="timed batches (multiple of 25)")
    add_out_option(ap)
    args = ap.parse_args()

    base = reaching_hyperparams(args.hidden, args.steps, args.batch, args.replicates)

    def sweep(n_batches: int) -> list[dict]:
        return [dict(base, train__pert__std=s, train__n_batches=n_batches) for s in args.stds]

    # Warm-up compiles the chunk program; the timed run reuses it (same chunk shape).
    t0 = time.perf_counter()
    train_group(sweep(25), progress=False)
    compile_and_warmup = time.perf_counter() - t0
    traces = TRACE_COUNTS["train_chunk"]

    t0 = time.perf_counter()
    result = train_group(sweep(args.batches), progress=False)
    elapsed = time.perf_counter() - t0
    assert TRACE_COUNTS["train_chunk"] == traces, "timed run recompiled"

    rate = args.batches / elapsed
    losses = result[0].history.query("term == 'total'").groupby("step")["value"].mean()
    config = {
        "models": len(args.stds) * args.replicates,
        "stds": args.stds,
        "replicates": args.replicates,
        "hidden": args.hidden,
        "steps": args.steps,
        "batch": args.batch,
        "timed_batches": args.batches,
        "warmup_batches": 25,
    }
    results = {
        "compile_and_warmup_s": round(compile_and_warmup, 2),
        "timed_s": round(elapsed, 2),
        "batches_per_s": round(rate, 2),
        "projected_10000_batches_s": round(10_000 / rate, 1),
        "first_loss": float(losses.iloc[0]),
        "last_loss": float(losses.iloc[-1]),
    }
    save("training_throughput", config, results, args.out)


if __name__ == "__main__":
    main()
