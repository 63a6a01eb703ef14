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
import shutil
import time
from pathlib import Path

import numpy as np

from _hlo import count_kernels, module_text, start_dump
from _results import add_out_option, save

ENV = "NTDYN_WRITTEN_GRADIENTS"


def kernels_per_step(dump: str, into: str, module: str, steps_per_run: int, n_t: int) -> dict:
    """Kernels per training step and per time step of the largest `module` dumped since the
    last call (its files are then moved into `into`, so each way is counted on its own)."""
    folder = Path(dump) / into
    folder.mkdir()
    for f in Path(dump).iterdir():
        if f.is_file():
            shutil.move(str(f), folder / f.name)
    counts = count_kernels(module_text(str(folder), module))
    per_step = counts["kernels_per_run"] / steps_per_run
    # the time loops and the chunk's loop; XLA:CPU lowers each threefry draw as a loop of its
    # 5 rounds, left out here (a GPU fuses them)
    loops = [{k: lp[k] for k in ("depth", "trip_count", "kernels_per_iteration")}
             for lp in counts["loops"] if lp["trip_count"] != 5]  # fmt: skip
    return {"kernels_per_step": round(per_step, 1),
            "kernels_per_time_step": round(per_step / n_t, 2), "loops": loops}  # fmt: skip


def _twice(fit) -> tuple[list[float], list[float]]:
    """(cold, warm) seconds of fit() and the final loss of each call."""
    seconds, losses = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        losses.append(fit())
        seconds.append(time.perf_counter() - t0)
    return seconds, losses


def _last_total(history) -> float:
    """The last step's total loss, averaged over the replicates."""
    total = history[history["term"] == "total"]
    return float(total.groupby("step")["value"].mean().iloc[-1])


def time_data_model(spec: dict, data, epochs: int) -> tuple:
    import jax

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
        return _last_total(trained.history)

    seconds, losses = _twice(fit)
    # one train_step program per minibatch step, over T bins
    return (
        seconds,
        losses,
        epochs * per_epoch,
        total_epochs * per_epoch,
        ("train_step", 1, data.spikes.shape[1]),
    )


def source_steps(kind: str, hp: dict) -> int:
    """A source's time steps per trial (flip-flop: task__n_steps; MultiTask: its arrays')."""
    from ntdyn.training.multitask import multitask_config

    return int(hp["task__n_steps"]) if kind == "flipflop" else multitask_config(hp).n_timesteps


def time_source(source: dict, batches: int) -> tuple:
    """A source's training for `batches` batches, twice (cold, warm), at its own `unroll`
    (None: the model's default)."""
    import jax

    from ntdyn.hyperparams import flatten
    from ntdyn.models.unroll import ScanUnroll
    from ntdyn.training.core import chunk_size
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
        return _last_total(trained.history)

    seconds, losses = _twice(fit)
    # one train_chunk program per chunk of batches
    n_t = source_steps(source["kind"], hp)
    return seconds, losses, batches, total, ("train_chunk", chunk_size(batches), n_t)


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
    p.add_argument(
        "--count-kernels",
        action="store_true",
        help="dump the optimised HLO and count kernels per step and time step",
    )
    add_out_option(p)
    args = p.parse_args()
    dump = start_dump() if args.count_kernels else None  # before JAX starts
    import jax

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
            (cold, warm), (_, loss), steps, total, (module, per_run, n_t) = job()
            rate = steps / warm
            label = {"0": "plain", "1": "written"}[way]
            row[label] = {
                "cold_s": round(cold, 2), "warm_s": round(warm, 2),
                "compile_s": round(max(cold - warm, 0.0), 1), "steps_per_s": round(rate, 2),
                "projected_s": round(max(cold - warm, 0.0) + total / rate, 1),
                "last_loss": loss,
            }  # fmt: skip
            if dump is not None:
                row[label]["kernels"] = kernels_per_step(dump, f"{name}_{label}", module,
                                                         per_run, n_t)  # fmt: skip
        row["speedup"] = round(row["written"]["steps_per_s"] / row["plain"]["steps_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.environ.pop(ENV)
    config = {"platform": jax.default_backend(), "models": args.models, "sources": args.sources,
              "epochs": args.epochs, "count_kernels": args.count_kernels,
              "batches": args.batches, "shapes": list(data.spikes.shape)}  # fmt: skip
    save("data_model_scans", config, {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
