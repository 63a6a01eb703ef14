"""Memory, time and storage of every part-2 evaluation at research scale, one model each.

For each analysis of `conf/full` part 2 (every condition, every repeat), one ensemble of the
research size (GRU 100 units, 5 replicates, SISU input; untrained weights cost the same)
is evaluated with `ntdyn.analysis.evaluate.evaluate_model` under the default budget of
conf/base/parameters.yml, into a zarr store in a temporary folder. Reports per analysis:
trials, chunk, seconds, trials/s, bytes stored; and the process's peak host memory and
JAX's peak device memory, against the budget. Projects the 12 models of the part-2 sweep:

    .venv/bin/python benchmarks/evaluation_memory.py [--analyses plant_perts ...]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import jax
import yaml

from _results import add_out_option, save
from ntdyn.analysis.evaluate import evaluate_model
from ntdyn.analysis.stored import Keep, open_for_writing
from ntdyn.hyperparams import flatten
from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.pipelines.evaluation.nodes import ANALYSES, keep_of
from ntdyn.resources import ResourceBudget, configure_jax_memory

REPO = Path(__file__).resolve().parents[1]
N_MODELS = 12  # the part-2 sweep: 3 methods x 4 stds


def merged(base: dict, over: dict) -> dict:
    """`over` merged into `base` key by key, nested mappings deeply (Kedro's soft merge of
    an environment's conf over conf/base)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def research_conf() -> tuple[dict, dict, dict]:
    """(hyperparams, part-2 evaluation params, resources) of conf/full over conf/base."""
    load = lambda p: yaml.safe_load((REPO / p).read_text())  # noqa: E731
    reaching = merged(load("conf/base/globals.yml")["reaching"],
                       load("conf/full/globals.yml")["reaching"])  # fmt: skip
    reaching["model"]["sisu_input"] = True
    evaluation = merged(
        load("conf/base/parameters_analysis_part2.yml")["analysis_part2"],
        load("conf/full/parameters_analysis_part2.yml")["analysis_part2"],
    )
    return (
        flatten(reaching),
        evaluation["evaluation"],
        load("conf/base/parameters.yml")["resources"],
    )


def bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--analyses", nargs="*", default=list(ANALYSES))
    ap.add_argument("--gpu-block", type=int, default=None, help="resources.trial_block.gpu")
    add_out_option(ap)
    opts = ap.parse_args()
    hp, evaluation, resources = research_conf()
    if opts.gpu_block:
        resources["trial_block"] = {**resources.get("trial_block", {}), "gpu": opts.gpu_block}
    budget = ResourceBudget.from_conf(resources)
    print("JAX memory settings:", configure_jax_memory(budget), flush=True)
    model = ensemble_from_hyperparams(
        hp, jax.random.split(jax.random.PRNGKey(0), int(hp["train__n_replicates"]))
    )
    per_analysis = {}
    for name in opts.analyses:
        spec = {k: v for k, v in evaluation[name].items() if k != "keep"}
        keep: Keep = keep_of(name, evaluation)
        trials, conditions = ANALYSES[name].build(spec, hp)
        with tempfile.TemporaryDirectory(dir=REPO / "data") as tmp:
            group = open_for_writing(tmp).create_group("m")
            group.attrs.update(hash="m", analysis=name, dt=float(hp["task__dt"]), seed=1)
            t0 = time.perf_counter()
            measures = evaluate_model(model, hp, trials, conditions, 1, keep=keep, budget=budget,
                                      group=group, selected=0, desc=name)  # fmt: skip
            seconds = time.perf_counter() - t0
            stored = bytes_under(Path(tmp))
        row = {"trials": len(conditions), "chunk": int(group.attrs["chunk"]),
               "block": int(group.attrs["block"]), "seconds": round(seconds, 1),
               "trials_per_s": round(len(conditions) / seconds),
               "stored_mb": round(stored / 1e6, 1), "measures_rows": len(measures)}  # fmt: skip
        stats = jax.devices()[0].memory_stats() or {}
        row["device_peak_gb_so_far"] = round(stats.get("peak_bytes_in_use", 0) / 1e9, 2)
        row["host_peak_gb_so_far"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2
        )
        per_analysis[name] = row
        print(name, row, flush=True)
    total_s = sum(r["seconds"] for r in per_analysis.values())
    total_mb = sum(r["stored_mb"] for r in per_analysis.values())
    results = {
        "per_analysis": per_analysis,
        "one_model_s": round(total_s, 1),
        "projected_12_models_s": round(N_MODELS * total_s, 1),
        "projected_12_models_stored_gb": round(N_MODELS * total_mb / 1e3, 2),
        "host_peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "device_peak_gb": round(
            (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use", 0) / 1e9, 2
        ),
        "budget": {"gpu_memory_gb": budget.gpu_memory_gb, "host_memory_gb": budget.host_memory_gb},
    }
    print(results)
    config = {"analyses": opts.analyses, "scale": "conf/full part 2",
              "trial_block": dict(budget.trial_block)}  # fmt: skip
    save("evaluation_memory", config, results, opts.out)


if __name__ == "__main__":
    main()
