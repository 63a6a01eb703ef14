"""Evaluation nodes, one set per analysis (`plant_perts`, `feedback_perts`)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ntdyn.analysis import LabelledArrays, behaviour_measures, experiments, simulate_ensemble
from ntdyn.analysis.measures import MEASURES
from ntdyn.hyperparams import flatten, hash_of, validate_measures_table
from ntdyn.store import RecordStore
from ntdyn.tasks.reaching import Trial
from ntdyn.training import TrainedEnsemble

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """How to build an analysis' trials for one model, and which columns name its conditions."""

    build: Callable[[dict, dict], tuple[Trial, pd.DataFrame]]
    conditions: tuple[str, ...]


def _plant_perts(spec: dict, hp: dict):
    pert_type = hp["train__pert__type"] if spec["pert_type"] == "trained" else spec["pert_type"]
    if pert_type not in spec["amplitudes"]:
        raise ValueError(
            f"plant_perts.amplitudes has no entry for pert_type {pert_type!r}; "
            f"give one of {sorted(spec['amplitudes'])} or add it"
        )
    return experiments.plant_perts(
        pert_type=pert_type,
        amplitudes=spec["amplitudes"][pert_type],
        sisu=spec["sisu"],
        grid_n=spec["grid_n"],
        n_directions=spec["n_directions"],
        reach_length=spec["reach_length"],
        n_repeats=spec["n_repeats"],
        n_steps=spec["n_steps"],
        workspace=float(hp["task__workspace"]),
    )


def _feedback_perts(spec: dict, hp: dict):
    return experiments.feedback_perts(
        amplitudes=spec["amplitudes"],
        sisu=spec["sisu"],
        grid_n=spec["grid_n"],
        n_directions=spec["n_directions"],
        n_repeats=spec["n_repeats"],
        impulse_start=spec["impulse_start"],
        impulse_steps=spec["impulse_steps"],
        n_steps=spec["n_steps"],
        workspace=float(hp["task__workspace"]),
    )


ANALYSES = {
    "plant_perts": Analysis(_plant_perts, ("pert_type", "pert_amp", "sisu")),
    "feedback_perts": Analysis(_feedback_perts, ("channel", "impulse_amp", "sisu")),
}


def loaded(models: dict) -> dict[str, TrainedEnsemble]:
    """Models from a PartitionedDataset (lazy loaders) or from memory, keyed by hash."""
    return {k: (v() if callable(v) else v) for k, v in models.items()}


def run_analysis(
    analysis: str, models: dict, evaluation: dict
) -> tuple[dict[str, LabelledArrays], pd.DataFrame]:
    """Simulate every replicate of every model on the analysis' trials (evaluation seed).

    Returns (states by model hash, conditions: one row per (hash, trial)).
    """
    spec, seed = evaluation[analysis], int(evaluation["seed"])
    states, tables = {}, []
    for h, ensemble in tqdm(loaded(models).items(), desc=analysis, unit="model"):
        trials, conditions = ANALYSES[analysis].build(spec, ensemble.hyperparams)
        arrays = simulate_ensemble(ensemble.model, ensemble.hyperparams, trials, seed)
        arrays.attrs.update(hash=h, analysis=analysis, dt=float(ensemble.hyperparams["task__dt"]))
        states[h] = arrays
        tables.append(conditions.assign(hash=h))
    return states, pd.concat(tables, ignore_index=True)


def measure_behaviour(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame,
) -> pd.DataFrame:  # fmt: skip
    """Behaviour measures per (model, replicate, trial), with condition and hyperparameter columns.

    `selected` marks each model's best replicate; `excluded` its outlier replicates.
    """
    records = model_records.set_index("hash")
    varying = [c for c in sweep.columns if c not in ("hash", "label") and sweep[c].nunique() > 1]
    hp = sweep.set_index("hash")[["label", *varying]]
    rows = []
    for h, arrays in states.items():
        cond = conditions[conditions["hash"] == h].sort_values("trial")
        start = cond[["start_x", "start_y"]].to_numpy()
        goal = cond[["goal_x", "goal_y"]].to_numpy()
        excluded = {int(x) for x in str(records.at[h, "excluded_replicates"]).split(",") if x}
        state, control = np.asarray(arrays["state"]), np.asarray(arrays["control"])
        for r in range(state.shape[0]):
            m = behaviour_measures(state[r], control[r], start, goal, cond["direction"].to_numpy())
            rows.append(
                pd.concat([cond.reset_index(drop=True), m], axis=1).assign(
                    replicate=r,
                    selected=r == int(records.at[h, "best_replicate"]),
                    excluded=r in excluded,
                )
            )
    table = pd.concat(rows, ignore_index=True).join(hp, on="hash")
    return validate_measures_table(table)


def record_evaluation(
    analysis: str, measures: pd.DataFrame, evaluation: dict, store: RecordStore
) -> tuple[pd.DataFrame, dict]:
    """Summarise per condition (selected replicates) and record the evaluation in MLflow.

    The evaluation hash covers the analysis, its parameters, the seed and every
    model hash; an unchanged evaluation finds its record instead of adding one.
    """
    spec = evaluation[analysis]
    model_hashes = sorted(measures["hash"].unique())
    h = hash_of(analysis, spec, int(evaluation["seed"]), model_hashes)
    keys = ["label", *ANALYSES[analysis].conditions]
    summary = (
        measures[measures["selected"]].groupby(keys, sort=True)[list(MEASURES)].agg(["mean", "std"])
    )
    summary.columns = [f"{m}__{stat}" for m, stat in summary.columns]
    summary = summary.reset_index()
    record = store.find_evaluation(h)
    if record is not None:
        log.info("evaluation %s (%s) is already record %s", h, analysis, record.run_id)
        status = "reused"
    else:
        metrics = {
            "/".join([*(f"{k}_{row[k]}" for k in keys), c]): float(row[c])
            for _, row in summary.iterrows()
            for c in summary.columns
            if c.endswith("__mean")
        }
        params = {f"eval__{k}": v for k, v in flatten(spec).items()} | {
            "eval__seed": evaluation["seed"]
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{analysis}_summary.parquet"
            summary.to_parquet(path, index=False)
            record = store.record_evaluation(
                hash=h, analysis=analysis, params=params, model_hashes=model_hashes,
                metrics=metrics, artifacts=[path],
            )  # fmt: skip
        status = "recorded"
    info = {
        "analysis": analysis, "hash": h, "run_id": record.run_id, "status": status,
        "models": model_hashes,
    }  # fmt: skip
    return summary, info
