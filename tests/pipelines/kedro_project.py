"""A throw-away copy of the project (conf + tiny parameters + its own MLflow store) for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

TINY_GLOBALS = {
    "reaching": {
        "model": {"hidden_size": 6},
        "task": {"n_steps": 12},
        "train": {"n_batches": 6, "batch_size": 8, "n_replicates": 2},
    }
}

TINY_PART1 = {
    "analysis_part1": {
        "training": {"spread": {"train__pert__std": [0.0, 1.0]}},
        # record_every: the reaching controllers' training trace (weights + probe activity)
        "training_options": {"progress": False, "metric_every": 2, "record_every": 3},
        "evaluation": {
            "plant_perts": {"grid_n": 1, "n_directions": 4, "n_repeats": 1, "n_steps": 15},
            "feedback_perts": {
                "grid_n": 1, "n_directions": 2, "n_repeats": 1, "n_steps": 15,
                "impulse_start": 3, "impulse_steps": 2,
                "amplitudes": {"position": [1.0], "velocity": [0.5]},
            },
        },
    }
}  # fmt: skip


TINY_PART2 = {
    "analysis_part2": {
        "training": {"spread": {"train__method": ["bcs", "dai", "pai-asf"],
                                "train__pert__std": [1.0]}},
        "training_options": {"progress": False, "metric_every": 2},
        "evaluation": {
            "plant_perts": {"grid_n": 1, "n_directions": 4, "n_repeats": 1, "n_steps": 15,
                            "sisu": [0.0, 2.0]},
            "feedback_perts": {
                "grid_n": 1, "n_directions": 2, "n_repeats": 1, "n_steps": 15,
                "impulse_start": 3, "impulse_steps": 2, "sisu": [0.0],
                "amplitudes": {"position": [1.0], "velocity": [0.5]},
            },
            "sisu_pert": {"grid_n": 1, "n_repeats": 1, "n_steps": 15, "step_at": 4},
            "unit_perts": {"grid_n": 1, "n_repeats": 1, "n_steps": 15, "stim_start": 3,
                           "stim_steps": 3, "sisu": [-1.0, 1.0]},
            "unit_ablation": {"grid_n": 1, "n_directions": 2, "n_repeats": 1, "n_steps": 15},
            "tms_tdcs": {"grid_n": 1, "n_directions": 2, "n_repeats": 1, "n_steps": 15,
                         "tms_start": 3},
        },
        "population": {
            # a 3 x 3 grid: the central hold (used by steady_state_dynamics) is centre 4
            "fps_steady": {"sisu": [0.0, 2.0], "n_candidates": 16, "n_steps": 5, "grid_n": 3,
                           "finder": {"adam_iters": 50, "newton_iters": 20}},
            "pca_tangling": {"start": 2, "stop": 12, "n_components": 5, "tangling_pcs": 3},
            "fps_reach": {"start": 2, "stop": 8, "n_directions": 2,
                          "finder": {"adam_iters": 30, "newton_iters": 20}},
            "steady_state_dynamics": {"n_steps": 10},
        },
    }
}  # fmt: skip


def make_project(
    root: Path, local_params: dict | None = None, local_globals: dict | None = None
) -> Path:
    """Copy pyproject.toml and conf/ to `root`, with tiny local parameters and a private store."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "conf", root / "conf", dirs_exist_ok=True)
    if not (root / "src").exists():
        (root / "src").mkdir()  # the package is imported from the installed project
    local = root / "conf" / "local"
    local.mkdir(exist_ok=True)
    for stale in local.glob("*.yml"):
        stale.unlink()
    mlflow_conf = yaml.safe_load((REPO / "conf" / "base" / "mlflow.yml").read_text())
    mlflow_conf["server"]["mlflow_tracking_uri"] = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    (root / "mlruns").mkdir(exist_ok=True)
    (local / "mlflow.yml").write_text(yaml.safe_dump(mlflow_conf))
    (local / "globals.yml").write_text(yaml.safe_dump(local_globals or TINY_GLOBALS))
    (local / "parameters_tiny.yml").write_text(yaml.safe_dump(local_params or TINY_PART1))
    return root


def quick_compile_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a `kedro run` process of a test about records, claims, concurrency or resume:
    XLA compiles at LLVM -O0. A fresh process spends most of a tiny run compiling; -O0 takes
    about a third off a first analysis_part1 run's CPU time (31 s instead of 45 s, measured
    side by side on the 2-core machine). A test comparing bits between runs must start every
    run of the comparison with it (programs compiled alike)."""
    flags = env.get("XLA_FLAGS", "")
    return {**env, "XLA_FLAGS": f"{flags} --xla_backend_optimization_level=0".strip()}


def tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


def run_pipeline(
    root: Path, pipeline: str | list[str] = "analysis_part1", namespaces: list[str] | None = None,
    *, env: str | None = None, runtime_params: dict | None = None,
) -> dict[str, dict[str, int]]:  # fmt: skip
    """Run a real Kedro session of the copied project (kedro-mlflow hooks active): one pipeline
    or several, of `namespaces` only where given (as `kedro run --namespaces`), in the conf
    environment `env` (as `kedro run --env`; conf/local is then not read, so tiny settings come
    as `runtime_params`, as `kedro run --params`; the store is base's project-relative
    mlruns/mlflow.db, the same file `tracking_uri(root)` names).

    Returns what the project's end-of-run summary hook counted: {record kind: {status: n}}
    (kinds model, evaluation, analysis, figure), from the outputs the real nodes returned.
    """
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ntdyn.hooks import RunSummaryHooks
    from ntdyn.settings import HOOKS

    bootstrap_project(root)
    summary = next(h for h in HOOKS if isinstance(h, RunSummaryHooks))
    try:
        with KedroSession.create(project_path=root, env=env,
                                 runtime_params=runtime_params) as session:  # fmt: skip
            names = [pipeline] if isinstance(pipeline, str) else list(pipeline)
            session.run(pipeline_names=names, namespaces=namespaces)
    finally:
        # kedro-mlflow re-opens its run in every node; under MLflow 3 the re-opens stack up and
        # its single end_run leaves the run active in this process. Close the whole stack.
        while mlflow.active_run() is not None:
            mlflow.end_run()
    return {kind: dict(counter) for kind, counter in summary.counts.items()}


# Every data model lists its whole tiny `train:` block: the base file's `<<: *sae_train`
# anchors are resolved in base, so an override of sae_gru's block does not reach the others.
_TINY_DATA_TRAIN = {
    "n_epochs": 4, "batch_size": 8, "n_replicates": 2, "validate_every": 2,
    "checkpoint_every": 2, "rollout_horizons": [1, 2, 4], "rollout_max_steps": 20,
}  # fmt: skip

TINY_TVD = {
    "task_vs_data": {
        "training_options": {"progress": False, "metric_every": 2},
        "sources": {
            # the reaching source takes ${globals:reaching}: TINY_GLOBALS (n_steps 12)
            "flipflop": {"hyperparams": {
                "model": {"hidden_size": 8},
                "task": {"n_steps": 30},
                "train": {"n_batches": 20, "batch_size": 8, "n_replicates": 2},
            }},
        },
        "spiking": {"n_trials": 24, "n_valid": 8, "n_held_in": 10, "n_held_out": 4},
        "data_models": {
            "sae_gru": {
                "model": {"encoder_size": 8, "latent_size": 6, "factor_size": 4,
                          "controller_size": 8},
                "train": dict(_TINY_DATA_TRAIN),
            },
            "lfads": {
                "model": {"encoder_size": 8, "latent_size": 6, "factor_size": 4,
                          "controller_size": 8},
                "train": {**_TINY_DATA_TRAIN, "kl_ramp_epochs": 2},
            },
            # a variant base does not list: its blocks are complete here
            "sae_node": {
                "model": {"kind": "sae_node", "encoder_size": 8, "latent_size": 4,
                          "factor_size": 4, "width": 8, "depth": 2, "dt": 0.1},
                "train": {**_TINY_DATA_TRAIN, "learning_rate": 0.01, "seed": 0,
                          "n_std_exclude": 2.0, "rollout_divergence_factor": 10.0},
            },
            "latent_evolution": {
                "model": {"latent_size": 4, "width": 16, "depth": 1},
                "train": {**_TINY_DATA_TRAIN, "time_units": 2, "evolve_multiple_steps": 2,
                          "warmup_epochs": 1, "connectome": {"num_neurons": 4}},
            },
        },
        "comparison": {
            "n_candidates": 16,
            "fixed_points": {"max_iters": 200, "adam_iters": 50, "newton_iters": 10},
            "dsa": {"n_delays": 3, "rank": 6, "iters": 30},
        },
    }
}  # fmt: skip

TINY_TD = {
    "training_dynamics": {
        "training_options": {"progress": False, "metric_every": 1},
        "hyperparams": {
            "model": {"hidden_sizes": [8, 6]},
            "train": {"n_steps": 400, "record_every": 10, "probe_size": 8},
        },
        "analyses": {
            "pca": {"n_components": 4},
            "psd": {"n_components": 3},
            "tsne": {"perplexity": 5},
            "correlation": {"n_pairs": 5},
            "ccm": {"sample": 10},  # the pairs come from base
            "ar": {"order": 2},
            "states": {"n_components": 3, "n_frequencies": 4, "perplexity": 10, "grid": 32},
        },
    }
}
