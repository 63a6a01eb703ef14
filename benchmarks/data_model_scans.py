"""Time data-model and source training with the plain cell scans and with `ntdyn.models.scans`
(input share before the loop, the GRU's gradient written out), in one process (issue 16).

For each data model of a task_vs_data configuration (default: the ctdb one's 3BFF shapes:
1000 trials of 500 bins, 50 + 10 neurons, 3 inputs) and for the flip-flop / MultiTask source,
trains `--epochs` epochs (a source: `--batches` batches) twice per way, cold (compiles) and
warm, with NTDYN_WRITTEN_GRADIENTS=0 and =1, the compiled programs cleared in between, and
reports steps/s, compile time and the projected training time of the configuration, with
the final losses of both ways (equal to float rounding). Needs JAX and the science library
only (no Kedro): the parameters come from a JSON file written where Kedro is installed:

    python benchmarks/task_vs_data_training.py --dump-params ctdb \
        --params benchmarks/tvd_ctdb_params.json
    PYTHONPATH=src python benchmarks/data_model_scans.py --params benchmarks/tvd_ctdb_params.json \
        --models sae_gru,lfads,sae_lds --sources multitask --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from _results import add_out_option, save

ENV = "NTDYN_WRITTEN_GRADIENTS"


def _twice(fit) -> tuple[list[float], float]:
    """(cold, warm) seconds of fit() and the warm call's final loss."""
    seconds, loss = [], float("nan")
    for _ in range(2):
        t0 = time.perf_counter()
        loss = fit()
        seconds.append(time.perf_counter() - t0)
    return seconds, loss


def time_data_model(spec: dict, data, epochs: int) -> tuple[list[float], float, int, int]:
    from ntdyn.hyperparams import flatten
    from ntdyn.training.data_trained import data_model_hyperparams, train_data_model

    hp = data_model_hyperparams(
        flatten(spec), n_held_in=data.n_held_in, n_held_out=data.spikes.shape[-1] - data.n_held_in,
        n_inputs=data.inputs.shape[-1], dataset_hash="benchmark",
    )  # fmt: skip
    total_epochs = int(hp["train__n_epochs"])
    hp |= {"train__n_epochs": epochs, "train__validate_every": epochs,
           "train__checkpoint_every": 0}  # fmt: skip
    per_epoch = len(data.train) // min(int(hp["train__batch_size"]), len(data.train))

    def fit():
        trained = train_data_model(hp, data, progress=False)
        jax.block_until_ready(trained.model)
        h = trained.history
        return float(h[h["term"] == "total"]["value"].iloc[-1])

    seconds, loss = _twice(fit)
    return seconds, loss, epochs * per_epoch, total_epochs * per_epoch


def time_source(source: dict, batches: int) -> tuple[list[float], float, int, int]:
    from ntdyn.hyperparams import flatten
    from ntdyn.models.unroll import ScanUnroll
    from ntdyn.training.flipflop import train_flipflop
    from ntdyn.training.multitask import train_multitask

    hp = flatten(source["hyperparams"])
    total = int(hp["train__n_batches"])
    hp["train__n_batches"] = batches
    train = train_flipflop if source["kind"] == "flipflop" else train_multitask
    unroll = None if source.get("unroll") is None else ScanUnroll(int(source["unroll"]))

    def fit():
        trained = train(hp, progress=False, unroll=unroll)
        jax.block_until_ready(trained.model)
        h = trained.history
        return float(h[h["term"] == "total"]["value"].iloc[-1])

    seconds, loss = _twice(fit)
    return seconds, loss, batches, total


def synthetic_data(params: dict, seed: int = 0):
    """Poisson spikes and Gaussian inputs of the configuration's 3BFF shapes (the speed does
    not depend on the values)."""
    from ntdyn.training.data_trained import SpikeTrainingData

    sp = params["spiking"]
    task = params["sources"]["flipflop"]["hyperparams"]["task"]
    n, t = int(sp["n_trials"]), int(task["n_steps"])
    n_in, n_out = int(sp["n_held_in"]), int(sp["n_held_out"])
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(0.5, (n, t, n_in + n_out)).astype(np.float32)
    inputs = rng.normal(size=(n, t, int(task["n_bits"]))).astype(np.float32)
    valid = np.arange(n - int(sp["n_valid"]), n)
    return SpikeTrainingData(spikes, inputs, n_in, np.arange(n - len(valid)), valid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", required=True, help="JSON of task_vs_data parameters")
    p.add_argument("--models", default="sae_gru,lfads,sae_lds")
    p.add_argument("--sources", default="multitask", help="comma-separated; '' for none")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batches", type=int, default=500)
    add_out_option(p)
    args = p.parse_args()
    with open(args.params) as f:
        params = json.load(f)
    data = synthetic_data(params)
    jobs = [(m, lambda m=m: time_data_model(params["data_models"][m], data, args.epochs))
            for m in args.models.split(",") if m]  # fmt: skip
    jobs += [(s, lambda s=s: time_source(params["sources"][s], args.batches))
             for s in args.sources.split(",") if s]  # fmt: skip
    rows = []
    for name, job in jobs:
        row = {"what": name}
        for way in ("0", "1"):
            os.environ[ENV] = way
            jax.clear_caches()  # the choice is read when a program is traced
            (cold, warm), loss, steps, total = job()
            rate = steps / warm
            row[{"0": "plain", "1": "written"}[way]] = {
                "cold_s": round(cold, 2), "warm_s": round(warm, 2),
                "compile_s": round(max(cold - warm, 0.0), 1), "steps_per_s": round(rate, 2),
                "projected_s": round(max(cold - warm, 0.0) + total / rate, 1),
                "last_loss": loss,
            }  # fmt: skip
        row["speedup"] = round(row["written"]["steps_per_s"] / row["plain"]["steps_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.environ.pop(ENV)
    config = {"models": args.models, "sources": args.sources, "epochs": args.epochs,
              "batches": args.batches, "shapes": list(data.spikes.shape)}  # fmt: skip
    save("data_model_scans", config, {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
