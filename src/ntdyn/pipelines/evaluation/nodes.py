"""Evaluation nodes: one set per analysis, looked up in `ANALYSES`."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ntdyn.analysis import experiments
from ntdyn.analysis.evaluate import evaluate_model
from ntdyn.analysis.measures import MEASURES
from ntdyn.analysis.stored import (
    CONDITIONS,
    MEASURES_TABLE,
    SUMMARY_TABLE,
    EvaluationArrays,
    Keep,
    open_for_writing,
    open_group_for_writing,
    with_condition_index,
)
from ntdyn.analysis.unit_stim import (
    ablation_effects,
    centred_direction,
    regress_on_context,
    unit_force_responses,
)
from ntdyn.hyperparams import flatten, hash_of, validate_measures_table, varying_columns
from ntdyn.parallel import map_independent
from ntdyn.resources import ResourceBudget
from ntdyn.store import Record, RecordStore
from ntdyn.store.claims import compute_once
from ntdyn.store.records import EVALUATION
from ntdyn.tasks.reaching import Trial

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


# Bumped when what an evaluation computes or stores changes, so old records are not reused.
EVALUATION_VERSION = 2
EVALUATION_ARTIFACT = "evaluation"


def keep_of(analysis: str, evaluation: dict) -> Keep:
    """What the evaluation stores: `evaluation.keep`, overridden by `evaluation.<a>.keep`."""
    merged = {**(evaluation.get("keep") or {}), **(evaluation[analysis].get("keep") or {})}
    return Keep.from_conf(merged, where=f"evaluation.{analysis}.keep")


def _spec(analysis: str, evaluation: dict) -> dict:
    return {k: v for k, v in evaluation[analysis].items() if k != "keep"}


def evaluation_hash(analysis: str, evaluation: dict, model_hashes) -> str:
    """Hash of an evaluation: the analysis, its parameters, what it keeps, the seed, every
    model's hash and the evaluation code's version."""
    keep = keep_of(analysis, evaluation)
    return hash_of(
        analysis, _spec(analysis, evaluation), int(evaluation["seed"]), sorted(model_hashes),
        {"keep": dataclasses.asdict(keep), "version": EVALUATION_VERSION},
    )  # fmt: skip


def run_analysis(
    analysis: str,
    models: dict,
    model_records: pd.DataFrame,
    sweep: pd.DataFrame,
    evaluation: dict,
    resources: dict,
    store: RecordStore,
) -> tuple[dict, dict, dict, pd.DataFrame, dict]:
    """Evaluate every replicate of every model on the analysis' trials (evaluation seed).

    Trials run in chunks sized from `resources`; the behaviour measures of every trial and
    the condition means are computed while a chunk is in memory, and the single trials
    `keep` names are streamed to a zarr store that becomes the record's only copy. An
    evaluation whose hash is recorded is read back instead. Returns (the same pointer to
    the evaluation's folder for the states, the conditions and the measures; the summary
    per condition of the selected replicates; the record).
    """
    keep = keep_of(analysis, evaluation)  # refuses a bad `keep` before any compute
    budget = ResourceBudget.from_conf(resources)
    spec, seed = _spec(analysis, evaluation), int(evaluation["seed"])
    model_hashes = sorted(models)
    h = evaluation_hash(analysis, evaluation, model_hashes)
    keys = ["label", *ANALYSES[analysis].summary_by]

    def evaluate_and_record(hashes: list[str]) -> dict[str, Record]:
        records, members = model_records.set_index("hash"), _member_columns(sweep)
        # named by the process, so `gc` can tell a killed run's leftovers from live work
        staged = f"{h}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        folder = store.staging_dir() / staged / EVALUATION_ARTIFACT
        open_for_writing(folder)

        def evaluate_one(job: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
            """One model: its arrays into its own group of the evaluation's store, its
            measures and conditions returned (a Dask task under the DaskRunner)."""
            i, mh, model = job  # the job carries its own model: a task ships only that one
            ensemble = model() if callable(model) else model
            hp = ensemble.hyperparams
            trials, conditions = ANALYSES[analysis].build(spec, hp)
            group = open_group_for_writing(folder, mh)
            group.attrs.update(hash=mh, analysis=analysis, dt=float(hp["task__dt"]), seed=seed)
            m = evaluate_model(
                ensemble.model, hp, trials, conditions, seed, keep=keep, budget=budget,
                group=group, selected=int(records.at[mh, "best_replicate"]),
                desc=f"{analysis} model {i + 1}/{len(models)}",
            )  # fmt: skip
            excluded = {int(x) for x in str(records.at[mh, "excluded_replicates"]).split(",") if x}
            conditions = with_condition_index(conditions).assign(hash=mh)
            rows = conditions.drop(columns="condition").set_index("trial").loc[m["trial"]]
            table = pd.concat([rows.reset_index(), m.drop(columns=["trial"])], axis=1)
            table["selected"] = table["replicate"] == int(records.at[mh, "best_replicate"])
            table["excluded"] = table["replicate"].isin(excluded)
            # validated model by model: a whole research-scale table is millions of rows
            return validate_measures_table(table.join(members, on="hash")), conditions

        # the models are independent: Dask tasks under the DaskRunner, else one after another
        jobs = [(i, mh, model) for i, (mh, model) in enumerate(models.items())]
        parts = map_independent(evaluate_one, jobs, name=f"evaluate_{analysis}")
        measures, tables = [m for m, _ in parts], [c for _, c in parts]
        table = pd.concat(measures, ignore_index=True)
        table.to_parquet(folder / MEASURES_TABLE, index=False)
        pd.concat(tables, ignore_index=True).to_parquet(folder / CONDITIONS, index=False)
        summary = _summary(table, keys)
        summary.to_parquet(folder / SUMMARY_TABLE, index=False)  # read back as is
        metrics = {
            "/".join([*(f"{k}_{row[k]}" for k in keys), c]): float(row[c])
            for _, row in summary.iterrows()
            for c in summary.columns
            if c.endswith("__mean")
        }
        params = {f"eval__{k}": v for k, v in flatten(evaluation[analysis]).items()}
        params |= {"eval__seed": seed}
        record = store.record_evaluation(
            hash=h, analysis=analysis, params=params, model_hashes=model_hashes,
            metrics=metrics, artifacts=[folder], move_artifacts=True,
        )  # fmt: skip
        shutil.rmtree(folder.parent, ignore_errors=True)
        return {h: record}

    # another run evaluating the same hash is waited for (see `compute_once`)
    [(record, status)] = compute_once(store, EVALUATION, [h], store.find_evaluation,
                                      evaluate_and_record, lambda _: f"{h} ({analysis})",
                                      "reusing evaluation %s from record %s").values()  # fmt: skip
    folder = store.download_artifact(record, EVALUATION_ARTIFACT)
    summary = pd.read_parquet(folder / SUMMARY_TABLE)
    pointer = {"folder": str(Path(folder).resolve()), "hash": h, "run_id": record.run_id}
    info = {"analysis": analysis, "hash": h, "run_id": record.run_id, "status": status,
            "models": model_hashes}  # fmt: skip
    return pointer, pointer, pointer, summary, info


def _member_columns(sweep: pd.DataFrame) -> pd.DataFrame:
    varying = varying_columns(sweep.drop(columns=["hash", "label"]))
    return sweep.set_index("hash")[["label", *varying]]


def _summary(measures: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std of every measure per condition, over the selected replicates' trials."""
    summary = measures[measures["selected"]].groupby(keys, sort=True)[list(MEASURES)]
    summary = summary.agg(["mean", "std"])
    summary.columns = [f"{m}__{stat}" for m, stat in summary.columns]
    return summary.reset_index()


def unit_responses(states: EvaluationArrays, sweep: pd.DataFrame, evaluation: dict) -> pd.DataFrame:
    """Force response of every stimulated unit in every context (best replicate of each model).

    Averaged over the stimulation window and over the trials of each context (from the
    condition means: every condition has the same number of repeats, so the mean of the
    means is the mean over trials); one row per (model, unit, stim_amp, curl_amp, sisu).
    """
    spec = evaluation["unit_perts"]
    window = (spec["stim_start"], spec["stim_start"] + spec["stim_steps"])
    tables = []
    for h, arrays in states.items():
        responses = unit_force_responses(arrays.means("control"), arrays.mean_conditions, window)
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
