"""What recording a training trace costs: the MLP trained with and without the recorder.

Trains the same MLP on the same data twice per repeat, once with recording every
k steps and once without (the same compiled loop minus the records), after a
warm-up call that compiles both; reports the median wall times (the recorded one
includes building the long tables) and the extra time of recording, plus the host
time spent filing records into the tables (mostly hidden: it runs while the next
block of steps trains) and making the data frames at the end, as JSON:

    PYTHONPATH=src python benchmarks/recording_overhead.py [--record-every 10 --steps 3000]

`--data-file digits.npz` (x_train, y_train, x_test, y_test) replaces scikit-learn's loader,
for machines without scikit-learn (the GPU hosts).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from ntdyn.tasks.digits import load_digits, load_mnist_file
from ntdyn.training import recording


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record-every", type=int, default=10)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 16])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--test-samples", type=int, default=256, help="test subset per record (0: all)")
    p.add_argument("--data-file", default=None, help="an .npz split instead of load_digits()")
    args = p.parse_args()
    hp = dict(
        model__hidden_sizes=args.hidden, model__activation="relu", train__n_steps=args.steps,
        train__batch_size=args.batch_size, train__learning_rate=0.003, train__schedule="cosine",
        train__seed=0, train__record_every=args.record_every, train__probe_size=64,
        train__density_threshold=0.01,
    )  # fmt: skip
    if args.test_samples:
        hp["train__test_samples"] = args.test_samples
    data = load_mnist_file(args.data_file) if args.data_file else load_digits()
    host_s = []
    tables = recording.TraceTables

    def timed(method):
        def wrapper(*a):
            t0 = time.perf_counter()
            out = method(*a)
            host_s.append(time.perf_counter() - t0)
            return out

        return wrapper

    tables.fill, tables.frames = timed(tables.fill), timed(tables.frames)
    for record in (True, False):  # compile both programs first
        recording.train_recorded(hp, data, record=record, progress=False)
    times, host = {True: [], False: []}, []
    for _ in range(args.repeats):
        for record in (False, True):
            host_s.clear()
            t0 = time.perf_counter()
            recording.train_recorded(hp, data, record=record, progress=False)
            times[record].append(time.perf_counter() - t0)
            if record:
                host.append(sum(host_s))
    base, rec = np.median(times[False]), np.median(times[True])
    report = {
        **vars(args),
        "device": str(jax.devices()[0]),
        "n_parameters": int(
            sum((a + 1) * b for a, b in zip([64, *args.hidden], [*args.hidden, 10], strict=True))
        ),
        "without_recording_s": round(float(base), 4),
        "with_recording_s": round(float(rec), 4),
        "extra": round(float(rec / base - 1), 3),
        "host_filing_tables_s": round(float(np.median(host)), 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
