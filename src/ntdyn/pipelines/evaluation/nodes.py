"""Evaluation nodes: one set per analysis, looked up in `ANALYSES`."""

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
from ntdyn.analysis.arrays import load_labelled, save_labelled
from ntdyn.analysis.measures import MEASURES
from ntdyn.analysis.unit_stim import (
    ablation_effects,
    centred_direction,
    regress_on_context,
    unit_force_responses,
)
from ntdyn.hyperparams import flatten, hash_of, validate_measures_table, varying_columns
from ntdyn.store import RecordStore
from ntdyn.tasks.reaching import Trial
from ntdyn.training import TrainedEnsemble

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """How to build an analysis' trials for one model, and the columns its summary groups by."""

    build: Callable[[dict, dict], tuple[Trial, pd.DataFrame]]
    summary_by: tuple[str, ...]


def _plant_perts(spec: dict, hp: dict):
    pert_type = hp["train__pert__type"] if spec["pert_type"] == "trained" else spec["pert_type"]
    if pert_type not in spec["amplitudes"]:
        raise ValueError(
            f"plant_perts.amplitudes has no entry for pert_type {pert_type!r}; "
            f"give one of {sorted(spec['amplitudes'])} or add it"
        )
    return experiments.plant_perts(
        pert_type=pert_type, amplitudes=spec["amplitudes"][pert_type], sisu=spec["sisu"],
        grid_n=spec["grid_n"], n_directions=spec["n_directions"],
        reach_length=spec["reach_length"], n_repeats=spec["n_repeats"], n_steps=spec["n_steps"],
        workspace=float(hp["task__workspace"]),
    )  # fmt: skip


def _with_workspace(builder, **from_hp):
    # Spec keys pass through; the workspace (and unit count) come from the model.
    def build(spec: dict, hp: dict):
        extra = {k: int(hp[v]) for k, v in from_hp.items()}
        return builder(**spec, **extra, workspace=float(hp["task__workspace"]))

    return build


ANALYSES = {
    "plant_perts": Analysis(_plant_perts, ("pert_type", "pert_amp", "sisu")),
    "feedback_perts": Analysis(
        _with_workspace(experiments.feedback_perts), ("channel", "impulse_amp", "sisu")
    ),
    "sisu_pert": Analysis(
        _with_workspace(experiments.sisu_pert), ("task", "curl_amp", "sisu_start", "sisu_end")
    ),
    "unit_perts": Analysis(
        _with_workspace(experiments.unit_perts, n_units="model__hidden_size"),
        ("stim_amp", "curl_amp", "sisu"),
    ),
    "tms_tdcs": Analysis(
        _with_workspace(experiments.tms_tdcs, n_units="model__hidden_size"),
        ("protocol", "amplitude"),
    ),
    "unit_ablation": Analysis(
        _with_workspace(experiments.unit_ablation, n_units="model__hidden_size"), ("sisu",)
    ),
}


def loaded(models: dict) -> dict[str, TrainedEnsemble]:
    """Models from a PartitionedDataset (lazy loaders) or from memory, keyed by hash."""
    return {k: (v() if callable(v) else v) for k, v in models.items()}


def evaluation_hash(analysis: str, evaluation: dict, model_hashes) -> str:
    """Hash of an evaluation: the analysis, its parameters, the seed and every model's hash."""
    return hash_of(analysis, evaluation[analysis], int(evaluation["seed"]), sorted(model_hashes))


def run_analysis(
    analysis: str, models: dict, evaluation: dict, store: RecordStore
) -> tuple[dict[str, LabelledArrays], pd.DataFrame]:
    """Simulate every replicate of every model on the analysis' trials (evaluation seed).

    An evaluation whose hash is already recorded is read back from its record
    instead. Returns (states by model hash, conditions: one row per (hash, trial)).
    """
    h = evaluation_hash(analysis, evaluation, models)
    record = store.find_evaluation(h)
    if record is not None:
        log.info("reusing evaluation %s (%s) from record %s", h, analysis, record.run_id)
        states = load_labelled(store.download_artifact(record, "states"))
        return states, pd.read_parquet(store.download_artifact(record, "conditions.parquet"))
    spec, seed = evaluation[analysis], int(evaluation["seed"])
    states, tables = {}, []
    for mh, ensemble in tqdm(loaded(models).items(), desc=analysis, unit="model"):
        trials, conditions = ANALYSES[analysis].build(spec, ensemble.hyperparams)
        arrays = simulate_ensemble(ensemble.model, ensemble.hyperparams, trials, seed)
        arrays.attrs.update(hash=mh, analysis=analysis, dt=float(ensemble.hyperparams["task__dt"]))
        states[mh] = arrays
        tables.append(conditions.assign(hash=mh))
    return states, pd.concat(tables, ignore_index=True)


def _member_columns(sweep: pd.DataFrame) -> pd.DataFrame:
    varying = varying_columns(sweep.drop(columns=["hash", "label"]))
    return sweep.set_index("hash")[["label", *varying]]


def measure_behaviour(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame,
) -> pd.DataFrame:  # fmt: skip
    """Behaviour measures per (model, replicate, trial), with condition and hyperparameter columns.

    `selected` marks each model's best replicate; `excluded` its outlier replicates.
    """
    records = model_records.set_index("hash")
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
    table = pd.concat(rows, ignore_index=True).join(_member_columns(sweep), on="hash")
    return validate_measures_table(table)


def record_evaluation(
    analysis: str,
    measures: pd.DataFrame,
    states: dict[str, LabelledArrays],
    conditions: pd.DataFrame,
    evaluation: dict,
    store: RecordStore,
) -> tuple[pd.DataFrame, dict]:
    """Summarise per condition (selected replicates) and record the evaluation in MLflow.

    The record holds the summary as metrics and, as artifacts, the summary table,
    the conditions and the states, so an unchanged evaluation is read back, not re-run.
    """
    spec = evaluation[analysis]
    model_hashes = sorted(states)
    h = evaluation_hash(analysis, evaluation, model_hashes)
    keys = ["label", *ANALYSES[analysis].summary_by]
    summary = (
        measures[measures["selected"]].groupby(keys, sort=True)[list(MEASURES)].agg(["mean", "std"])
    )
    summary.columns = [f"{m}__{stat}" for m, stat in summary.columns]
    summary = summary.reset_index()
    record = store.find_evaluation(h)
    status = "reused"
    if record is None:
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
            tmp = Path(tmp)
            summary.to_parquet(tmp / f"{analysis}_summary.parquet", index=False)
            conditions.to_parquet(tmp / "conditions.parquet", index=False)
            save_labelled(tmp / "states", states)
            record = store.record_evaluation(
                hash=h, analysis=analysis, params=params, model_hashes=model_hashes,
                metrics=metrics,
                artifacts=[tmp / f"{analysis}_summary.parquet", tmp / "conditions.parquet",
                           tmp / "states"],
            )  # fmt: skip
        status = "recorded"
    info = {
        "analysis": analysis, "hash": h, "run_id": record.run_id, "status": status,
        "models": model_hashes,
    }  # fmt: skip
    return summary, info


def unit_responses(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame, evaluation: dict,
) -> pd.DataFrame:  # fmt: skip
    """Force response of every stimulated unit in every context (best replicate of each model).

    Averaged over the stimulation window; one row per (model, unit, stim_amp, curl_amp, sisu).
    """
    spec = evaluation["unit_perts"]
    window = (spec["stim_start"], spec["stim_start"] + spec["stim_steps"])
    best = model_records.set_index("hash")["best_replicate"]
    tables = []
    for h, arrays in states.items():
        cond = conditions[conditions["hash"] == h].sort_values("trial").reset_index(drop=True)
        control = np.asarray(arrays["control"][int(best[h])])
        responses = unit_force_responses(control, cond, window)
        responses["direction_centred"] = centred_direction(responses)
        tables.append(responses.assign(hash=h))
    return pd.concat(tables, ignore_index=True).join(_member_columns(sweep), on="hash")


def unit_context_regression(responses: pd.DataFrame) -> pd.DataFrame:
    """Per model and unit: response amplitude and (centred) direction regressed on curl and SISU.

    Columns: hash, label, unit, response (amplitude | direction_centred), intercept,
    coef_curl_amp, coef_sisu, r2, n, plus the swept hyperparameters.
    """
    member_cols = [c for c in responses.columns if c == "label" or "__" in c]
    tables = []
    for (h, amp), group in responses.groupby(["hash", "stim_amp"], sort=False):
        for response in ("amplitude", "direction_centred"):
            coefs = regress_on_context(group, response)
            tables.append(coefs.assign(hash=h, stim_amp=amp, response=response))
    members = responses.drop_duplicates("hash").set_index("hash")[member_cols]
    return pd.concat(tables, ignore_index=True).join(members, on="hash")


def unit_ablation_effects(measures: pd.DataFrame) -> pd.DataFrame:
    """Change of every behaviour measure when each unit is silenced (best replicates), ranked."""
    selected = measures[measures["selected"]]
    member_cols = [c for c in measures.columns if c == "label" or "__" in c]
    tables = []
    for h, group in selected.groupby("hash", sort=False):
        tables.append(ablation_effects(group, MEASURES).assign(hash=h))
    members = selected.drop_duplicates("hash").set_index("hash")[member_cols]
    return pd.concat(tables, ignore_index=True).join(members, on="hash")
