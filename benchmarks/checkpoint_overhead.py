"""Checkpoint overhead of training: the same sweep trained without and with checkpoints.

Trains the reaching sweep of the demo configuration (4 field stds x 3 replicates, GRU 32,
100 steps, batch 64) for `--n-batches` batches three ways: no checkpoints; the default pacing
(min_interval_s 60, max_overhead 0.02); and a checkpoint after every chunk of 25 batches
(min_interval_s 0, max_overhead 1: the worst case). Reports wall times, the time spent writing
checkpoints (the Checkpointer's own clock) and its share of the training time.

    python benchmarks/checkpoint_overhead.py [--n-batches 300] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from _results import add_out_option, save  # noqa: E402
from ntdyn.training import CheckpointConfig, train_sweep  # noqa: E402
from ntdyn.training import checkpoint as ckpt  # noqa: E402
from science_fixtures import sweep_rows  # noqa: E402

PACINGS = {"none": None, "default": {}, "every_chunk": {"min_interval_s": 0.0, "max_overhead": 1.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-batches", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    add_out_option(parser)
    args = parser.parse_args()
    rows = sweep_rows(n_batches=args.n_batches, model__hidden_size=32, task__n_steps=100,
                      train__batch_size=64)  # fmt: skip
    train_sweep(rows, progress=False)  # compile once, outside the timings
    written = {"seconds": 0.0, "n": 0}
    save_one = ckpt.Checkpointer.save

    def timed_save(self, step, state):  # counts the writes of every Checkpointer
        t0 = time.perf_counter()
        save_one(self, step, state)
        written["seconds"] += time.perf_counter() - t0
        written["n"] += 1

    ckpt.Checkpointer.save = timed_save
    results = {}
    for name, pacing in PACINGS.items():
        walls, writes, counts = [], [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                config = None if pacing is None else CheckpointConfig(Path(tmp), **pacing)
                written.update(seconds=0.0, n=0)
                t0 = time.perf_counter()
                train_sweep(rows, progress=False, checkpoint=config)
                walls.append(time.perf_counter() - t0)
                writes.append(written["seconds"])
                counts.append(written["n"])
        results[name] = {"wall_s": min(walls), "write_s": min(writes),
                         "n_checkpoints": counts[0],
                         "write_share": min(writes) / min(walls)}  # fmt: skip
    base = results["none"]["wall_s"]
    for name in ("default", "every_chunk"):
        results[name]["overhead_vs_none"] = results[name]["wall_s"] / base - 1
    save("checkpoint_overhead", vars(args) | {"rows": len(rows)}, results, args.out)


if __name__ == "__main__":
    main()
