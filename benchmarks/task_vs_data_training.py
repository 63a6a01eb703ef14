"""Time the task-vs-data work at a configuration's size, with the science library alone.

Trains the flip-flop source, simulates its spikes, fits every data-trained model
and compares each with the source (fixed points, DSA, every metric), as the
`task_vs_data` pipeline does, and prints the wall time of each stage and the
comparison table as JSON. Needs only JAX/Equinox/NumPy/SciPy (no Kedro, no
MLflow), so it runs on a GPU machine.

    # resolve the parameters with Kedro (where it is installed) into a JSON file ...
    python benchmarks/task_vs_data_training.py --dump-params full --params tvd_full.json
    # ... then, on the machine to time (a GPU one for the full size):
    PYTHONPATH=src python benchmarks/task_vs_data_training.py --params tvd_full.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np


def dump_params(env: str, path: str) -> None:
    """Write the `task_vs_data` parameters of a Kedro environment to a JSON file (needs Kedro)."""
    from pathlib import Path

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root = Path(__file__).resolve().parents[1]
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=env) as session:
        params = session.load_context().params["task_vs_data"]
    Path(path).write_text(json.dumps(params, indent=1))


def _progress(times: dict) -> None:
    """Each stage's time on stderr as it ends (a run cut short still tells how far it got)."""
    name, value = list(times.items())[-1]
    print(f"{name} = {value:.1f}", file=sys.stderr, flush=True)


def run(params: dict, source_name: str, source_unroll: str | None = None) -> dict:
    from ntdyn.analysis.fixed_points import FixedPointConfig
    from ntdyn.analysis.sources import (
        flipflop_activity,
        source_connectivity,
        source_step,
        unstack,
    )
    from ntdyn.analysis.spiking import simulate_spikes
    from ntdyn.analysis.task_vs_data import PairTrials, compare_pair, system_fixed_points
    from ntdyn.hyperparams import flatten
    from ntdyn.models.unroll import ScanUnroll
    from ntdyn.training.data_trained import (
        SpikeTrainingData,
        data_model_hyperparams,
        infer,
        train_data_model,
    )
    from ntdyn.training.flipflop import train_flipflop

    times, report = {}, {"device": str(jax.devices()[0]), "jax": jax.__version__}
    hp = flatten(params["sources"][source_name]["hyperparams"])
    t0 = time.perf_counter()
    unroll = None
    if source_unroll is not None:  # auto: the whole trial on GPU/TPU; k: k steps per iteration
        unroll = ScanUnroll(None if source_unroll == "auto" else int(source_unroll))
        report["source_unroll"] = unroll.for_scan(int(hp["task__n_steps"]))
    source = train_flipflop(hp, progress=False, unroll=unroll)
    jax.block_until_ready(source.model)
    times["source_training_s"] = time.perf_counter() - t0
    _progress(times)
    final = source.history[source.history["term"] == "total"].groupby("step")["value"].mean()
    report["source_final_mse"] = float(final.iloc[-20:].mean())
    model = unstack(source.model, source.selection.best)

    sp = params["spiking"]
    t0 = time.perf_counter()
    act = flipflop_activity(model, hp, int(sp["n_trials"]), int(sp["seed"]))
    sim = simulate_spikes(act.latents, act.inputs, n_held_in=int(sp["n_held_in"]),
                          n_held_out=int(sp["n_held_out"]), rate_scaling=float(sp["rate_scaling"]),
                          rectifier=sp["rectifier"], seed=int(sp["seed"]))  # fmt: skip
    times["simulate_s"] = time.perf_counter() - t0
    _progress(times)
    n = len(sim.spikes)
    valid = np.arange(n - int(sp["n_valid"]), n)
    data = SpikeTrainingData(sim.spikes.astype(np.float32), sim.inputs.astype(np.float32),
                             len(sim.held_in), np.arange(n - len(valid)), valid)  # fmt: skip
    step = source_step("flipflop", model)

    cmp = params["comparison"]
    fp_cfg = FixedPointConfig(**cmp.get("fixed_points", {}))
    t0 = time.perf_counter()
    source_points = system_fixed_points(
        step, sim.latents[valid], act.rest_input, int(cmp["n_candidates"]), fp_cfg,
        int(cmp["seed"]),
    )  # fmt: skip
    times["source_fixed_points_s"] = time.perf_counter() - t0
    _progress(times)

    rows = []
    for name, spec in params["data_models"].items():
        dm_hp = data_model_hyperparams(
            flatten(spec), n_held_in=len(sim.held_in), n_held_out=len(sim.held_out),
            n_inputs=sim.inputs.shape[-1], dataset_hash="benchmark",
        )  # fmt: skip
        connected = None
        if dm_hp.get("train__connectome__mode") == "unconnected_to_zero":
            density = float(dm_hp["train__connectome__density"])
            connected = source_connectivity(
                step, sim.latents, act.rest_input, sim.readout, sim.held_in, density
            )
        t0 = time.perf_counter()
        trained = train_data_model(dm_hp, data, connected=connected, progress=False)
        jax.block_until_ready(trained.model)
        times[f"{name}_training_s"] = time.perf_counter() - t0
        _progress(times)
        t0 = time.perf_counter()
        m = trained.replicate()
        inf = infer(m, dm_hp, data.spikes, data.inputs)

        def split(trials, inf=inf):  # maps are fitted on the training trials, scored on valid
            def f64(x):
                return np.asarray(x[trials], np.float64)

            return PairTrials(
                true_latents=f64(sim.latents), true_rates=f64(sim.rates), spikes=f64(sim.spikes),
                true_inputs=f64(sim.inputs), inferred_latents=f64(inf.latents),
                inferred_log_rates=f64(inf.log_rates), inferred_inputs=f64(inf.inferred_inputs),
            )  # fmt: skip

        out = compare_pair(
            train=split(data.train), test=split(valid), held_out=sim.held_out,
            source_points=source_points, model_step=m.step,
            model_rest_input=np.zeros(sim.inputs.shape[-1]),
            n_candidates=int(cmp["n_candidates"]), fixed_point_config=fp_cfg,
            dsa_options=dict(cmp["dsa"]), seed=int(cmp["seed"]),
        )  # fmt: skip
        times[f"{name}_comparison_s"] = time.perf_counter() - t0
        _progress(times)
        epochs, batches = (
            int(dm_hp["train__n_epochs"]),
            len(data.train) // int(dm_hp["train__batch_size"]),
        )
        rows.append({"model": name, "replicates": int(dm_hp["train__n_replicates"]),
                     "steps": epochs * batches, **out.metrics})  # fmt: skip
    report["times"] = {k: round(v, 2) for k, v in times.items()}
    report["comparison"] = rows
    report["shapes"] = {"trials": n, "steps": int(sim.spikes.shape[1]),
                        "neurons": int(sim.spikes.shape[2]),
                        "source_units": int(sim.latents.shape[-1])}  # fmt: skip
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", help="JSON file of task_vs_data parameters (see --dump-params)")
    p.add_argument("--dump-params", metavar="ENV", help="print the parameters of a Kedro env")
    p.add_argument("--source", default="flipflop")
    p.add_argument("--source-unroll", default=None,
                   help="the flip-flop source's scan unroll: auto or k (default: the model's, 8 "
                        "on accelerators)")  # fmt: skip
    args = p.parse_args()
    if not args.params:
        p.error("give --params FILE (with --dump-params ENV to write it)")
    if args.dump_params:
        dump_params(args.dump_params, args.params)
        return
    with open(args.params) as f:
        params = json.load(f)
    print(json.dumps(run(params, args.source, args.source_unroll), indent=1, default=float))


if __name__ == "__main__":
    main()
