"""Scaling over the GPUs of one machine: part 2's training, heaviest evaluation and heaviest
population analysis on 1, 2 and 4 devices, with their outputs compared to one device's.

For each device count of `--devices` (counts above the machine's devices are skipped, and
said so), a fresh process (the device count is fixed when JAX starts) runs, with
`resources.devices` = that count (`ntdyn.sharding.Devices`: the first N local devices; with
one device the code path is the one without sharding):

  train     the part-2 sweep of conf/full (3 methods x 4 field stds = 12 members x 5
            replicates = 60 GRUs of 100 units, batch 250, 100 steps, SISU input) trained
            with the science library (`ntdyn.training.train_sweep`, no Kedro): one warm-up
            chunk (compilation), then `--batches` batches timed: steady batches/s and the
            projected 10 000; the final total loss of every model and a hash of all
            parameters;
  evaluate  feedback_perts (210 000 trials per model at research scale, the heaviest part-2
            evaluation: benchmarks/evaluation_memory.py) of the first `--models` trained
            models, into a zarr store as the pipeline writes it: trials/s (models after the
            first, which compiles), projected for every member; a hash of the measures and of the
            stored hidden states;
  fps       fps_steady (the heaviest population analysis: 830 s of the 1 705 s part-2 run
            on one H200, benchmarks/results/full_run_analysis_part2_h200.json) of the first
            `--fps-models` models on the states the evaluation stored
            (`ntdyn.pipelines.population.nodes.steady_fixed_points`): seconds per model;
            a hash of the points and eigenvalue tables.

The report gives per device count the times and rates, speed-up and efficiency against one
device, and whether every hash equals one device's (the numbers are meant to be those of one
device, bitwise: ntdyn.sharding). On the 2- or 4-GPU machine:

    PYTHONPATH=src python benchmarks/device_scaling.py --devices 1 2 4

`--preset tiny` runs small shapes in a minute or two on a CPU; there, several devices come
from XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu (their timings mean
nothing: they share the cores; their equality does). `--dry-run` prints what the preset
builds (rows, models, trials, candidates) and the device memory it needs, computing nothing.

Writes benchmarks/results/device_scaling_<preset>_<machine>.json (`--out` to change).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _results import add_out_option, save
from evaluation_memory import REPO, merged

PARTS = ("train", "evaluate", "fps")
PROJECTED_BATCHES = 10_000  # conf/full's train__n_batches

# Small shapes for a 2-core CPU: the part-2 sweep's structure (3 methods x 2 stds x 2
# replicates = 12 GRUs, SISU input), conf/base's demo evaluation and fps_steady, smaller.
TINY = {
    "reaching": {"model": {"hidden_size": 8}, "task": {"n_steps": 20},
                 "train": {"batch_size": 8, "n_replicates": 2}},
    "spread": {"train__method": ["bcs", "dai", "pai-asf"], "train__pert__std": [0.5, 1.5]},
    "feedback_perts": {"sisu": [0.0, 1.0], "n_steps": 40},
    "fps_steady": {"sisu": [0.0, 1.0], "n_candidates": 32, "n_steps": 10,
                   "finder": {"adam_iters": 50, "newton_iters": 10}},
    "trial_block": {"cpu": 32, "gpu": 32},
}  # fmt: skip
DEFAULTS = {  # preset -> (batches, models evaluated, models searched for fixed points)
    "research": (500, 4, 1),
    "tiny": (50, 2, 1),
}


def _load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def preset_conf(preset: str) -> dict:
    """The part-2 training section (hyperparams with overrides, spread), evaluation and
    population parameters and resources, as `kedro run --env full` merges them (research)
    or scaled down (tiny)."""
    reaching = _load("conf/base/globals.yml")["reaching"]
    part2 = _load("conf/base/parameters_analysis_part2.yml")["analysis_part2"]
    resources = _load("conf/base/parameters.yml")["resources"]
    if preset == "research":
        reaching = merged(reaching, _load("conf/full/globals.yml")["reaching"])
        part2 = merged(part2, _load("conf/full/parameters_analysis_part2.yml")["analysis_part2"])
    else:
        reaching = merged(reaching, TINY["reaching"])
        part2 = merged(part2, {"training": {"spread": TINY["spread"]},
                               "evaluation": {"feedback_perts": TINY["feedback_perts"]},
                               "population": {"fps_steady": TINY["fps_steady"]}})  # fmt: skip
        resources = {**resources, "trial_block": TINY["trial_block"]}
    training = part2["training"]
    base = merged(reaching, training.get("overrides") or {})
    return {"base": base, "spread": training["spread"], "evaluation": part2["evaluation"],
            "population": part2["population"], "resources": resources}  # fmt: skip


def sweep_rows(conf: dict, batches: int) -> list[dict]:
    """One flattened row per sweep member, as the plan_sweep node expands it (without its
    pandera validation), trained for `batches` batches."""
    from ntdyn.hyperparams import expand_spread

    return [dict(r, train__n_batches=batches) for r in expand_spread(conf["base"], conf["spread"])]


# ------------------------------------------------------------------ one device count (worker)


def digest(*arrays) -> str:
    """sha256 of the arrays' bytes (shape and dtype included): equal only if bitwise equal."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def table_digest(table) -> str:
    """digest of a table's numeric columns, in its row order."""
    return digest(*[table[c].to_numpy() for c in table.columns if table[c].dtype.kind in "biuf"])


def train_part(rows: list[dict], devices) -> tuple[dict, list]:
    """Warm-up (one chunk: compiles), then the timed run of the rows' batches."""
    import jax
    import numpy as np

    from ntdyn.compilations import CompilationCounter
    from ntdyn.training import TRACE_COUNTS, train_sweep
    from ntdyn.training.core import chunk_size

    n_batches = int(rows[0]["train__n_batches"])
    warm_batches = chunk_size(n_batches)  # one chunk of the timed run's shape
    t0 = time.perf_counter()
    with CompilationCounter() as compilations:
        train_sweep([dict(r, train__n_batches=warm_batches) for r in rows], progress=False,
                    devices=devices)  # fmt: skip
    warm_s = time.perf_counter() - t0
    compiled = TRACE_COUNTS["train_chunk"]
    t0 = time.perf_counter()
    with CompilationCounter() as recompilations:  # none expected: the warm-up's shapes
        trained = train_sweep(rows, progress=False, devices=devices)
        jax.block_until_ready([t.model for t in trained])
    run_s = time.perf_counter() - t0
    rate = n_batches / run_s
    final = [
        h[(h["term"] == "total") & (h["step"] == n_batches - 1)].sort_values("replicate")["value"]
        for h in (t.history for t in trained)
    ]
    final = np.concatenate([f.to_numpy() for f in final])
    params = [x for t in trained for x in jax.tree.leaves(t.model) if hasattr(x, "dtype")]
    return {
        "models": int(final.size),
        "batches": n_batches,
        "warmup_batches": warm_batches,
        "warmup_s": round(warm_s, 2),
        "compile_s": round(max(warm_s - warm_batches / rate, 0.0), 2),
        # traces of the training chunk: one per static signature; each device then compiles
        # the traced program for itself (DevicePlan.on_each_device), one after another
        "train_chunk_traces": compiled,
        "xla_compilations": compilations.count,
        "xla_compile_s": round(compilations.seconds, 2),
        "xla_compilations_in_timed_run": recompilations.count,
        "run_s": round(run_s, 2),
        "batches_per_s": round(rate, 2),
        "projected_10000_s": round(PROJECTED_BATCHES / rate, 1),
        "projected_10000_with_compile_s": round(
            PROJECTED_BATCHES / rate + warm_s - warm_batches / rate, 1
        ),  # fmt: skip
        "final_total_loss": [float(x) for x in final],
        "final_total_loss_median": float(np.median(final)),
        "params_digest": digest(*params),
        "losses_digest": digest(final),
    }, trained


def untrained(rows: list[dict]) -> list:
    """The sweep's models at initialisation (evaluation and fixed points cost the same)."""
    import numpy as np

    from ntdyn.hyperparams import hyperparams_hash
    from ntdyn.models.controller import ensemble_from_hyperparams
    from ntdyn.training import TrainedEnsemble, select_replicate
    from ntdyn.training.keys import KeyStreams

    out = []
    for hp in rows:
        n = int(hp["train__n_replicates"])
        model = ensemble_from_hyperparams(hp, KeyStreams(int(hp["train__seed"])).init(n))
        out.append(TrainedEnsemble(hp, hyperparams_hash(hp), model, history=None,
                                   selection=select_replicate(np.zeros(n), 2.0)))  # fmt: skip
    return out


def evaluate_part(models: list, conf: dict, budget, folder: Path, n_members: int) -> dict:
    """feedback_perts of each model into the evaluation store `folder`, as the pipeline's
    run_analysis writes it (arrays per model, conditions table)."""
    import pandas as pd

    from ntdyn.analysis.evaluate import evaluate_model
    from ntdyn.analysis.stored import (
        CONDITIONS,
        open_for_writing,
        open_group_for_writing,
        with_condition_index,
    )
    from ntdyn.compilations import CompilationCounter
    from ntdyn.pipelines.evaluation.nodes import ANALYSES, keep_of

    evaluation, name = conf["evaluation"], "feedback_perts"
    spec = {k: v for k, v in evaluation[name].items() if k != "keep"}
    keep, seed = keep_of(name, evaluation), int(evaluation["seed"])
    open_for_writing(folder)
    seconds, trials, measures, tables, hidden = [], 0, [], [], []
    compilations = CompilationCounter().start()
    for i, ensemble in enumerate(models):
        hp = ensemble.hyperparams
        trial_spec, conditions = ANALYSES[name].build(spec, hp)
        group = open_group_for_writing(folder, ensemble.hash)
        group.attrs.update(hash=ensemble.hash, analysis=name, dt=float(hp["task__dt"]), seed=seed)
        t0 = time.perf_counter()
        m = evaluate_model(ensemble.model, hp, trial_spec, conditions, seed, keep=keep,
                           budget=budget, group=group, selected=ensemble.selection.best,
                           desc=f"{name} model {i + 1}/{len(models)}")  # fmt: skip
        seconds.append(time.perf_counter() - t0)
        trials = len(conditions)
        measures.append(table_digest(m))
        hidden.append(digest(group["trials"]["hidden"][:]))
        tables.append(with_condition_index(conditions).assign(hash=ensemble.hash))
    compilations.stop()
    pd.concat(tables, ignore_index=True).to_parquet(folder / CONDITIONS, index=False)
    warm = seconds[1:] or seconds  # the first model compiles
    rate = trials * len(warm) / sum(warm)
    return {
        "analysis": name,
        "models": len(models),
        "trials_per_model": trials,
        "seconds_per_model": [round(s, 2) for s in seconds],
        "trials_per_s": round(rate),
        # every member of the sweep, the first model's compilation once
        "projected_all_models_s": round(n_members * trials / rate + seconds[0] - trials / rate, 1),
        "xla_compilations": compilations.count,
        "xla_compile_s": round(compilations.seconds, 2),
        "measures_digest": digest(*[m.encode() for m in measures]),
        "hidden_digest": digest(*[h.encode() for h in hidden]),
    }


def fps_part(models: list, conf: dict, devices, folder: Path, n_members: int) -> dict:
    """fps_steady of the models on the feedback_perts states stored in `folder`."""
    import pandas as pd

    from ntdyn.analysis.stored import EvaluationArrays
    from ntdyn.compilations import CompilationCounter
    from ntdyn.pipelines.population.nodes import steady_fixed_points

    records = pd.DataFrame({"hash": [m.hash for m in models],
                            "best_replicate": [m.selection.best for m in models]})  # fmt: skip
    t0 = time.perf_counter()
    with CompilationCounter() as compilations:
        points, eigenvalues = steady_fixed_points({m.hash: m for m in models}, records,
                                                  EvaluationArrays(folder),
                                                  conf["population"], devices=devices)  # fmt: skip
    seconds = time.perf_counter() - t0
    spec = conf["population"]["fps_steady"]
    searches = len(spec["sisu"]) * int(spec["grid_n"]) ** 2
    return {
        "analysis": "fps_steady",
        "models": len(models),
        "searches_per_model": searches,
        "candidates_per_search": int(spec["n_candidates"]),
        "seconds": round(seconds, 2),
        "seconds_per_model": round(seconds / len(models), 2),
        "projected_all_models_s": round(n_members * seconds / len(models), 1),
        "xla_compilations": compilations.count,
        "xla_compile_s": round(compilations.seconds, 2),
        "points": len(points),
        "points_digest": table_digest(points.drop(columns=["h"])),
        "point_states_digest": digest(*points["h"].tolist()),
        "eigenvalues_digest": table_digest(eigenvalues),
    }


def worker(opts) -> dict:
    """One device count: the parts asked for, in this process."""
    from ntdyn.resources import ResourceBudget, configure_jax_memory
    from ntdyn.sharding import Devices

    conf = preset_conf(opts.preset)
    budget = ResourceBudget.from_conf({**conf["resources"], "devices": opts.worker,
                                       "compilation_cache": None})  # fmt: skip
    configure_jax_memory(budget)  # before JAX starts, as the pipeline's hooks do
    import jax

    devices = Devices(opts.worker)
    out = {"devices": opts.worker, "platform": jax.default_backend(),
           "device_kinds": sorted({d.device_kind for d in devices.resolve()})}  # fmt: skip
    rows = sweep_rows(conf, opts.batches)
    parts = opts.what.split(",")
    models = None
    if "train" in parts:
        out["train"], models = train_part(rows, devices)
        print(f"[{opts.worker} device(s)] train", json.dumps(out["train"])[:400], flush=True)
    models = models or untrained(rows)
    with tempfile.TemporaryDirectory(prefix="device_scaling_") as tmp:
        folder = Path(tmp) / "feedback_perts"
        if "evaluate" in parts or "fps" in parts:
            n_eval = max(opts.models, opts.fps_models) if "fps" in parts else opts.models
            result = evaluate_part(models[:n_eval], conf, budget, folder, len(rows))
            if "evaluate" in parts:
                out["evaluate"] = result
                print(f"[{opts.worker} device(s)] evaluate", json.dumps(result), flush=True)
        if "fps" in parts:
            out["fps"] = fps_part(models[: opts.fps_models], conf, devices, folder, len(rows))
            print(f"[{opts.worker} device(s)] fps", json.dumps(out["fps"]), flush=True)
    stats = [d.memory_stats() or {} for d in devices.resolve()]
    out["device_peak_gb"] = [round(s.get("peak_bytes_in_use", 0) / 1e9, 2) for s in stats]
    return out


# ------------------------------------------------------------------ the report (parent)

RATES = {"train": ("batches_per_s", True), "evaluate": ("trials_per_s", True),
         "fps": ("seconds", False)}  # fmt: skip
DIGESTS = {"train": ("params_digest", "losses_digest"),
           "evaluate": ("measures_digest", "hidden_digest"),
           "fps": ("points_digest", "point_states_digest", "eigenvalues_digest")}  # fmt: skip


def compare(runs: dict[int, dict]) -> dict:
    """Speed-up and efficiency against one device, and whether the outputs equal its."""
    one = runs.get(1)
    out = {}
    for n, run in runs.items():
        row = {}
        for part, (key, higher_is_faster) in RATES.items():
            if part not in run or one is None or part not in one:
                continue
            a, b = one[part][key], run[part][key]
            speedup = b / a if higher_is_faster else a / b
            row[part] = {
                "speedup": round(speedup, 3),
                "efficiency": round(speedup / n, 3),
                "equal_to_1_device": all(run[part][d] == one[part][d] for d in DIGESTS[part]),
            }
            if part == "train":
                row[part]["final_losses_equal"] = (
                    run[part]["final_total_loss"] == one[part]["final_total_loss"]
                )
                # 10 000 batches end to end: the compilations (one per device) included
                key = "projected_10000_with_compile_s"
                row[part]["speedup_with_compile"] = round(one[part][key] / run[part][key], 3)
        out[n] = row
    return out


BASELINE_KEYS = ("preset", "what", "batches", "models", "fps_models")


def baseline_run(opts) -> dict:
    """The 1-device run of an earlier report, refused unless it ran what this one runs."""
    report = json.loads(Path(opts.baseline).read_text())
    config = report.get("config", {})
    differ = {k: config.get(k) for k in BASELINE_KEYS if config.get(k) != getattr(opts, k)}
    run = report.get("results", {}).get("per_devices", {}).get("1")
    if differ:
        ours = {k: getattr(opts, k) for k in differ}
        raise SystemExit(f"--baseline {opts.baseline}: it ran {differ}, this run {ours}")
    if run is None:
        raise SystemExit(f"--baseline {opts.baseline}: it has no 1-device run")
    return {**run, "from_baseline": opts.baseline}


def dry_run(conf: dict, opts) -> dict:
    """What the preset builds, and the device memory it needs, without computing."""
    from ntdyn.pipelines.evaluation.nodes import ANALYSES

    rows = sweep_rows(conf, opts.batches)
    hp = rows[0]
    spec = {k: v for k, v in conf["evaluation"]["feedback_perts"].items() if k != "keep"}
    _, conditions = ANALYSES["feedback_perts"].build(spec, hp)
    fps = conf["population"]["fps_steady"]
    h, r = int(hp["model__hidden_size"]), int(hp["train__n_replicates"])
    n_in = 6 + int(bool(hp["model__sisu_input"]))
    gru_params = 3 * h * (n_in + h + 2) + 2 * h + 2  # GRU (two biases) + linear readout
    batch, steps = int(hp["train__batch_size"]), int(hp["task__n_steps"])
    # reverse-mode keeps every step's state: ~ gates (3H) + hidden (H) + plant (4) per trial
    train_act = len(rows) * r * batch * steps * (4 * h + 8) * 4
    return {
        "members": len(rows),
        "models": sum(int(x["train__n_replicates"]) for x in rows),
        "methods": sorted({x["train__method"] for x in rows}),
        "stds": sorted({x["train__pert__std"] for x in rows}),
        "hidden": h,
        "batch": batch,
        "steps": steps,
        "batches": opts.batches,
        "params_per_model": gru_params,
        "train_activations_gb_all_models": round(train_act / 1e9, 2),
        "feedback_perts_trials_per_model": len(conditions),
        "evaluate_models": opts.models,
        "fps_models": opts.fps_models,
        "fps_searches_per_model": len(fps["sisu"]) * int(fps["grid_n"]) ** 2,
        "fps_candidates": int(fps["n_candidates"]),
        "trial_block": conf["resources"]["trial_block"],
        "gpu_memory_gb_budget_per_device": conf["resources"]["gpu_memory_gb"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--preset", choices=sorted(DEFAULTS), default="research")
    ap.add_argument("--what", default=",".join(PARTS), help=f"comma-separated, of {PARTS}")
    ap.add_argument("--batches", type=int, default=None, help="timed training batches")
    ap.add_argument("--models", type=int, default=None, help="models evaluated (sweep members)")
    ap.add_argument("--fps-models", type=int, default=None, help="models searched for fixed points")
    ap.add_argument("--dry-run", action="store_true", help="print what would run; compute nothing")
    ap.add_argument(
        "--baseline",
        default=None,
        help="a report of this script whose 1-device run is reused (same preset, "
        "parts, batches and models): run 1 device in one command, more in another",
    )
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    add_out_option(ap)
    opts = ap.parse_args()
    batches, models, fps_models = DEFAULTS[opts.preset]
    opts.batches = opts.batches or batches
    opts.models = opts.models or models
    opts.fps_models = opts.fps_models or fps_models
    unknown = set(opts.what.split(",")) - set(PARTS)
    if unknown:
        ap.error(f"--what {opts.what!r}: {sorted(unknown)} unknown; allowed: {','.join(PARTS)}")
    members = len(sweep_rows(preset_conf(opts.preset), opts.batches))
    for name in ("models", "fps_models"):
        if not 1 <= getattr(opts, name) <= members:
            ap.error(
                f"--{name.replace('_', '-')} = {getattr(opts, name)}: must be 1..{members} "
                f"(the {opts.preset} sweep's members)"
            )
    if min(opts.devices) < 1:
        ap.error(f"--devices {opts.devices}: counts must be >= 1")

    if opts.worker is not None:
        Path(opts.worker_out).write_text(json.dumps(worker(opts)))
        return

    conf = preset_conf(opts.preset)
    if opts.dry_run:
        print(json.dumps(dry_run(conf, opts), indent=1))
        return

    import jax  # the parent only counts the devices (its backend holds no work)

    available = jax.device_count()
    skipped = [n for n in opts.devices if n > available]
    for n in skipped:
        print(f"skipping {n} devices: this machine has {available} "
              f"{jax.default_backend()} device(s)", file=sys.stderr)  # fmt: skip
    runs = {}
    if opts.baseline:
        runs[1] = baseline_run(opts)
    for n in sorted(set(opts.devices) - set(skipped) - set(runs)):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = [sys.executable, __file__, "--worker", str(n), "--worker-out", f.name,
                   "--preset", opts.preset, "--what", opts.what, "--batches", str(opts.batches),
                   "--models", str(opts.models), "--fps-models", str(opts.fps_models)]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=os.environ)
            runs[n] = json.loads(Path(f.name).read_text())
            runs[n]["process_s"] = round(time.perf_counter() - t0, 1)
    runs = dict(sorted(runs.items()))
    config = {"preset": opts.preset, "what": opts.what, "devices": opts.devices,
              "baseline": opts.baseline,
              "skipped_devices": skipped, "batches": opts.batches, "models": opts.models,
              "fps_models": opts.fps_models, "shapes": dry_run(conf, opts)}  # fmt: skip
    results = {"per_devices": runs, "vs_1_device": compare(runs)}
    save(f"device_scaling_{opts.preset}", config, results, opts.out)


if __name__ == "__main__":
    main()
