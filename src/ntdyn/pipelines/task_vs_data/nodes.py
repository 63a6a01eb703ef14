"""Task-trained vs data-trained nodes: thin wrappers around ntdyn.training / ntdyn.analysis.

sources -> simulated spiking data sets -> data-trained models -> comparison
table -> figures; every model, data set, comparison and figure is a record.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ntdyn import plots
from ntdyn.analysis.fixed_points import FixedPointConfig
from ntdyn.analysis.sources import (
    SOURCE_KINDS,
    flipflop_activity,
    multitask_activity,
    reaching_activity,
    source_connectivity,
    source_step,
)
from ntdyn.analysis.spiking import STANDARDISATIONS, simulate_spikes
from ntdyn.analysis.task_vs_data import PairTrials, compare_pair, system_fixed_points
from ntdyn.hyperparams import (
    flatten,
    hyperparams_hash,
    sweep_rows,
    sweep_table,
    validate_sweep_table,
    varying_columns,
)
from ntdyn.hyperparams.kinds import without_defaults
from ntdyn.hyperparams.tables import validate_table
from ntdyn.models.stacking import unstack
from ntdyn.models.unroll import ScanUnroll
from ntdyn.parallel import map_independent
from ntdyn.pipelines.task_vs_data.per_source import (
    check_source_blocks,
    source_data_models,
    source_spiking,
    source_unroll,
    spiking_path,
)
from ntdyn.pipelines.training.nodes import (
    checkpoint_config,
    member_label,
    training_tags,
    with_overrides,
)
from ntdyn.resources import ResourceBudget
from ntdyn.store import Record, RecordStore, record_figure_set, reuse_or_compute
from ntdyn.store.claims import RECORDED, REUSED, compute_once
from ntdyn.store.records import MODEL
from ntdyn.store.reuse import model_of, write_parquet_tables
from ntdyn.training import train_sweep
from ntdyn.training.checkpoint import remove as remove_checkpoint
from ntdyn.training.data_trained import (
    SpikeTrainingData,
    check_data_model_hyperparams,
    data_model_hyperparams,
    infer,
    train_data_model,
)
from ntdyn.training.ensemble_io import load_trained, save_trained
from ntdyn.training.flipflop import train_flipflop
from ntdyn.training.multitask import multitask_config, train_multitask

log = logging.getLogger(__name__)

TAG_ROLE = "ntdyn.task_vs_data_role"
SPIKING_KEYS = ("n_trials", "n_valid", "n_held_in", "n_held_out", "rate_scaling", "rectifier",
                "seed")  # fmt: skip
# Optional spiking options and their defaults (what ntdyn did before them): a data set's hash
# names one only when it is set to something else.
SPIKING_DEFAULTS = {"standardise": "per_neuron"}
# Optional comparison options and their defaults (what ntdyn did before them): the comparison's
# hash names one only when it is set to something else. co_bps_ctdb: add the benchmark's
# co-bps column (`ntdyn.analysis.comparison.co_bps_ctdb`); trial_length_mask: score the table's
# metrics on each trial's bins only, where a data set has trial lengths (MultiTask).
COMPARISON_DEFAULTS = {"co_bps_ctdb": False, "trial_length_mask": False}


# ----------------------------------------------------------------------------- plans


def present(named: dict) -> dict:
    """The entries of a `sources` or `data_models` mapping that are not null: a conf
    environment removes an entry its base has by setting it to null (a soft merge can only
    add and replace keys)."""
    return {name: spec for name, spec in named.items() if spec is not None}


def plan_sources(sources: dict) -> pd.DataFrame:
    """One row per source network (spreads expanded): name, kind, hash, flat hyperparameters.

    sources: {name: {kind: flipflop | reaching | multitask, hyperparams: nested, overrides,
    spread}}; a null entry is left out (`present`). Every member is validated by its kind's
    pandera schema before any compute; optional hyperparameters at their default are dropped
    (`without_defaults`), so spelling a default out changes no hash.
    """
    rows = []
    for name, spec in present(sources).items():
        kind = spec.get("kind")
        if kind not in SOURCE_KINDS:
            raise ValueError(
                f"task_vs_data.sources.{name}.kind = {kind!r}: must be one of {list(SOURCE_KINDS)}"
            )
        base = with_overrides(spec["hyperparams"], spec.get("overrides"))
        table = sweep_table(base, spec.get("spread"), kind)
        varying = varying_columns(table)
        for (_, row), hp in zip(table.iterrows(), sweep_rows(table), strict=True):
            hp = without_defaults(hp, kind)
            label = name if not varying else f"{name}[{member_label(row, varying)}]"
            if kind == "multitask":  # task names and trial length, before any compute
                try:
                    multitask_config(hp)
                except ValueError as err:
                    raise ValueError(f"task_vs_data.sources.{label}: {err}") from err
            rows.append({"source": label, "kind": kind, "hash": hyperparams_hash(hp), "hp": hp})
    if len({r["source"] for r in rows}) != len(rows):
        raise ValueError("task_vs_data.sources: two sources have the same name")
    return pd.DataFrame(rows)


def _data_model_rows(
    data_models: dict, where: str = "task_vs_data.data_models.{name}"
) -> list[tuple[str, dict]]:
    """(name, flat options) of each data model that is not null, each checked; `where`: the
    parameter an error names (a source's own options name theirs, `plan_task_vs_data`)."""
    rows = []
    for name, spec in present(data_models).items():
        hp = flatten(spec)
        try:
            validate_sweep_table(pd.DataFrame([hp]), "data_model")
            check_data_model_hyperparams(hp)
        except (ValueError, KeyError) as err:
            raise ValueError(f"{where.format(name=name)}: {err}") from err
        rows.append((name, hp))
    return rows


# ----------------------------------------------------------------------------- sources


def plan_task_vs_data(sources: dict, data_models: dict, spiking: dict) -> pd.DataFrame:
    """The source networks to train (`plan_sources`), with the data-model and spiking options
    validated too, so a typo fails before the first network trains: the shared blocks and
    each source's own `spiking` / `data_models` merged over them (`per_source`).

    A node of its own, as the experiments' `plan_sweep`: Kedro runs ready nodes in order of
    name, so `train_sources` then runs after the experiments' `train_models`, and a source
    that an experiment trains (the demo's reaching source is part 1's controller without a
    field) is found in the records instead of trained alone first (its own compiled
    training program, then part 1's group without it: another).
    """
    models = [name for name, _ in _data_model_rows(data_models)]
    _check_spiking(spiking)
    sources = present(sources)
    check_source_blocks(sources, (*SPIKING_KEYS, *SPIKING_DEFAULTS), models)
    for name, spec in sources.items():  # a source's own blocks, merged, checked as the shared
        if spec.get("data_models"):
            _data_model_rows(
                source_data_models(data_models, sources, name),
                f"task_vs_data.sources.{name}.data_models.{{name}} (merged over "
                "task_vs_data.data_models.{name})",
            )  # fmt: skip
        if spec.get("spiking"):
            _check_spiking(source_spiking(spiking, sources, name),
                           spiking_path(name, spec["spiking"]))  # fmt: skip
    return plan_sources(sources)


def train_sources(
    plan: pd.DataFrame, store: RecordStore, options: dict, sources: dict | None = None
) -> tuple[dict, pd.DataFrame]:
    """Reuse recorded source networks by hash, train the others, record them.

    plan: `plan_task_vs_data`'s table; sources: the `sources` parameters (each one's own
    `unroll`, `per_source.source_unroll`). Returns ({source: trained ensemble}, records).
    """
    rows = {row.hash: row for row in plan.itertuples()}  # one source of each hash trains
    trained_now: dict[str, object] = {}

    def train_and_record(hashes: list[str]) -> dict[str, Record]:
        with tempfile.TemporaryDirectory() as tmp:
            return {h: _train_source(store, rows[h], trained_now, tmp, options,
                                     source_unroll(options, sources, rows[h].source))
                    for h in hashes}  # fmt: skip

    outcomes = compute_once(store, MODEL, list(rows), store.find_model, train_and_record,
                            lambda h: rows[h].source,
                            "cache hit: source %s is record %s; not training")  # fmt: skip
    models, records = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for row in plan.itertuples():
            rec, status = outcomes[row.hash]
            if status == RECORDED:
                trained, status = trained_now[row.hash], "trained"
            else:
                trained = load_trained(store.download_model_file(rec, tmp))
            models[row.source] = trained
            records.append({"source": row.source, "kind": row.kind, "hash": row.hash,
                            "run_id": rec.run_id, "status": status,
                            "best_replicate": trained.selection.best})  # fmt: skip
    return models, pd.DataFrame(records)


def _train_source(
    store: RecordStore, row, trained_now: dict, tmp: str, options: dict, unroll: int | None
) -> Record:
    """Train one source network (into `trained_now`) and record it (unroll: its scan's
    steps per loop iteration, None for the model's default)."""
    checkpoint = checkpoint_config(store, options)
    if row.kind in ("flipflop", "multitask"):
        train = train_flipflop if row.kind == "flipflop" else train_multitask
        trained = train(row.hp, progress=options["progress"], checkpoint=checkpoint,
                        label=row.source,
                        unroll=None if unroll is None else ScanUnroll(unroll))  # fmt: skip
    else:
        (trained,) = train_sweep(
            [row.hp], progress=options["progress"], checkpoint=checkpoint,
            labels=[row.source],
        )  # fmt: skip
    trained_now[row.hash] = trained
    path = Path(tmp) / f"{row.hash}.eqx"
    save_trained(path, trained)
    rec = store.record_model(
        hash=row.hash, params=row.hp, history=trained.history, model_file=path,
        metric_every=int(options["metric_every"]),
        tags={"ntdyn.label": row.source, TAG_ROLE: f"source:{row.kind}",
              **training_tags(trained)},
    )  # fmt: skip
    if checkpoint is not None:  # the record holds the model now
        remove_checkpoint(checkpoint, row.hash)
    return rec


def _check_spiking(
    spiking: dict, path: Callable[[str], str] = lambda k: f"task_vs_data.spiking.{k}"
) -> None:
    """Clear errors for a spiking block; `path(key)`: the parameter an error names (a
    source's own block names where each merged key was set, `per_source.spiking_path`)."""
    missing = [k for k in SPIKING_KEYS if k not in spiking]
    if missing:
        raise ValueError(f"task_vs_data.spiking lacks {missing}")
    standardise = spiking.get("standardise", SPIKING_DEFAULTS["standardise"])
    if standardise not in STANDARDISATIONS:
        raise ValueError(f"{path('standardise')} = {standardise!r}: must be one of "
                         f"{list(STANDARDISATIONS)}")  # fmt: skip
    for k in ("n_trials", "n_valid", "n_held_in", "n_held_out", "rate_scaling"):
        if not float(spiking[k]) > 0:
            raise ValueError(f"{path(k)} = {spiking[k]}: must be > 0")
    if spiking["n_valid"] >= spiking["n_trials"]:
        raise ValueError(
            f"{path('n_valid')} = {spiking['n_valid']}: must be < n_trials = "
            f"{spiking['n_trials']} ({path('n_trials')}; the rest are training trials)"
        )


def _kind(trained) -> str:
    if "task__n_bits" in trained.hyperparams:
        return "flipflop"
    return "multitask" if "task__tasks" in trained.hyperparams else "reaching"


def _best(trained):
    return unstack(trained.model, trained.selection.best)


def source_activity(trained, n_trials: int, seed: int, budget: ResourceBudget | None = None):
    """Latents and inputs of a source's selected replicate on fresh trials, run in chunks of
    trials sized from `budget` (the results do not depend on it)."""
    model, hp = _best(trained), trained.hyperparams
    if _kind(trained) == "flipflop":
        return flipflop_activity(model, hp, n_trials, seed, budget)
    if _kind(trained) == "multitask":
        return multitask_activity(model, multitask_config(hp), float(hp["model__hidden_noise_std"]),
                                  n_trials, seed, budget)  # fmt: skip
    return reaching_activity(model, hp, n_trials, seed, budget)


# ----------------------------------------------------------------------------- spiking data


def simulate_spiking_data(
    source_models: dict, spiking: dict, store: RecordStore, resources: dict | None = None,
    sources: dict | None = None,
) -> tuple[dict[str, dict], pd.DataFrame]:  # fmt: skip
    """A simulated spiking data set per source, recorded with the source model's hash, from
    the spiking options with the source's own ones (`sources.<name>.spiking`) merged over.

    Returns ({source: arrays}, records). Arrays: spikes, rates, latents, inputs (B, T, .),
    readout (N,), held_in, held_out, train, valid (indices), trial_lengths (B,) where the
    trials end before the arrays do (MultiTask). The sources and the spikes run
    over trials in chunks sized from `resources` (the memory budget; it changes no number).
    """
    budget, shared = ResourceBudget.from_conf(resources), spiking
    data, records = {}, []
    loaded = _all_loaded(source_models)
    for name, trained in tqdm(loaded.items(), total=len(loaded), desc="spiking data",
                              unit="source"):  # fmt: skip
        spiking = source_spiking(shared, sources, name)  # the shared block, its own merged over
        act = source_activity(trained, int(spiking["n_trials"]), int(spiking["seed"]), budget)
        sim = simulate_spikes(
            act.latents, act.inputs, n_held_in=int(spiking["n_held_in"]),
            n_held_out=int(spiking["n_held_out"]), rate_scaling=float(spiking["rate_scaling"]),
            rectifier=spiking["rectifier"], seed=int(spiking["seed"]), budget=budget,
            standardise=spiking.get("standardise", SPIKING_DEFAULTS["standardise"]),
        )  # fmt: skip
        n_valid = int(spiking["n_valid"])
        arrays = {
            "spikes": sim.spikes.astype(np.float32), "rates": sim.rates.astype(np.float32),
            "latents": sim.latents.astype(np.float32), "inputs": sim.inputs.astype(np.float32),
            "readout": sim.readout, "held_in": sim.held_in, "held_out": sim.held_out,
            "train": np.arange(len(sim.spikes) - n_valid),
            "valid": np.arange(len(sim.spikes) - n_valid, len(sim.spikes)),
            "rest_input": act.rest_input.astype(np.float32),
        }  # fmt: skip
        if act.trial_lengths is not None:  # trials shorter than the array (MultiTask)
            arrays["trial_lengths"] = np.asarray(act.trial_lengths, np.int64)
        params = spiking_dataset_params(spiking, name, trained.hash)
        data_hash = hyperparams_hash(params)
        metrics = {"mean_rate_per_bin": float(sim.rates.mean()),
                   "mean_count_per_bin": float(sim.spikes.mean())}  # fmt: skip
        outcome = reuse_or_compute(  # the arrays are made again either way: nothing to read
            store, hash=data_hash, analysis="spiking_dataset", compute=lambda a=arrays: a,
            write=_write_spiking_data, read=lambda artifact, a=arrays: a, params=params,
            model_hashes=[trained.hash], run_name=f"spiking data {name}",
            metrics=lambda _, m=metrics: m,
        )  # fmt: skip
        rec, status = outcome.record, outcome.status
        data[name] = arrays | {"dataset_hash": np.array(data_hash)}
        records.append({"source": name, "source_hash": trained.hash, "dataset_hash": data_hash,
                        "run_id": rec.run_id, "n_trials": len(sim.spikes),
                        "n_neurons": sim.spikes.shape[-1], "n_steps": sim.spikes.shape[1],
                        "mean_count_per_bin": float(sim.spikes.mean()),
                        "record": "evaluation", "status": status})  # fmt: skip
    return data, pd.DataFrame(records)


def spiking_dataset_params(spiking: dict, source: str, source_hash: str) -> dict:
    """What identifies a simulated data set: the spiking options (the optional ones only when
    set away from their default, `SPIKING_DEFAULTS`), the source's name and hash."""
    optional = {f"spiking__{k}": spiking[k] for k, default in SPIKING_DEFAULTS.items()
                if spiking.get(k, default) != default}  # fmt: skip
    return ({f"spiking__{k}": spiking[k] for k in SPIKING_KEYS}
            | {"source": source, "source_hash": source_hash} | optional)  # fmt: skip


def _write_spiking_data(arrays: dict, folder: Path) -> list[Path]:
    np.savez(folder / "spiking_data.npz", **arrays)
    return [folder / "spiking_data.npz"]


def _loaded(value):
    return value() if callable(value) else value  # partitions load lazily


def _all_loaded(partitions: dict) -> dict:
    return {k: _loaded(v) for k, v in partitions.items()}


def _training_data(arrays: dict) -> SpikeTrainingData:
    return SpikeTrainingData(
        spikes=arrays["spikes"], inputs=arrays["inputs"], n_held_in=len(arrays["held_in"]),
        train=arrays["train"], valid=arrays["valid"],
    )  # fmt: skip


# ----------------------------------------------------------------------------- data models


def _pair_name(source: str, model: str) -> str:
    return f"{source}__{model}"


def train_data_models(
    spiking_data: dict, source_models: dict, data_models: dict, store: RecordStore,
    options: dict, resources: dict | None = None, sources: dict | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Fit every data model to every source's held-in spikes (reusing records by hash), each
    with the source's own options for it (`sources.<name>.data_models`) merged over.

    Returns ({source__model: trained}, records, history (step, replicate, term, value, pair)).
    The validation metrics run over trials in chunks sized from `resources` (the memory
    budget; it changes no number).
    """
    budget = ResourceBudget.from_conf(resources)
    source_models = _all_loaded(source_models)
    plan = []  # (source, name, pair, hp, hash, arrays)
    for source, arrays in spiking_data.items():
        arrays = _loaded(arrays)
        for name, spec_hp in _data_model_rows(source_data_models(data_models, sources, source)):
            hp = data_model_hyperparams(
                spec_hp, n_held_in=len(arrays["held_in"]), n_held_out=len(arrays["held_out"]),
                n_inputs=arrays["inputs"].shape[-1], dataset_hash=str(arrays["dataset_hash"]),
            )  # fmt: skip
            plan.append((source, name, _pair_name(source, name), hp, hyperparams_hash(hp), arrays))
    first = {}  # hash -> the first pair with it (the one that trains)
    for entry in plan:
        first.setdefault(entry[4], entry)
    checkpoint = checkpoint_config(store, options)

    def fit(job: tuple) -> tuple[tuple[Record, str], object]:
        """One data-model fit, (its record and status, the model if trained in this task): an
        independent task (`map_independent`), a Dask task under the DaskRunner."""
        (source, _, pair, hp, h, arrays), src = job
        trained_here: dict[str, object] = {}

        def train_and_record(hashes: list[str]) -> dict[str, Record]:
            connected = None
            if hp.get("train__connectome__mode") == "unconnected_to_zero":
                connected = source_connectivity(
                    source_step(_kind(src), _best(src)), arrays["latents"],
                    arrays["rest_input"], arrays["readout"], arrays["held_in"],
                    float(hp["train__connectome__density"]),
                )  # fmt: skip
            trained = train_data_model(hp, _training_data(arrays), connected=connected,
                                       progress=options["progress"], budget=budget,
                                       checkpoint=checkpoint)  # fmt: skip
            trained_here[h] = trained
            with tempfile.TemporaryDirectory() as tmp:
                record = _record_data_model(store, trained, pair, tmp, options)
            if checkpoint is not None:  # the record holds the model now
                remove_checkpoint(checkpoint, h)
            return {h: record}

        outcomes = compute_once(store, MODEL, [h], store.find_model, train_and_record,
                                lambda _: pair,
                                "cache hit: data model %s is record %s; not training")  # fmt: skip
        return outcomes[h], trained_here.get(h)

    # each fit gets its own entry and, where its connectome needs it, its source model
    jobs = [(entry, source_models[entry[0]]
             if entry[3].get("train__connectome__mode") == "unconnected_to_zero" else None)
            for entry in first.values()]  # fmt: skip
    fits = dict(zip(first, map_independent(fit, jobs, name="fit_data_model"), strict=True))
    outcomes = {h: outcome for h, (outcome, _) in fits.items()}
    trained_now = {h: trained for h, (_, trained) in fits.items() if trained is not None}
    models, records, histories = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for source, name, pair, hp, h, _ in plan:
            rec = outcomes[h][0]
            trained, history, status = model_of(store, outcomes[h], trained_now, h, tmp)
            models[pair] = trained
            histories.append(history.assign(pair=pair, source=source, model=name))
            records.append({"pair": pair, "source": source, "model": name,
                            "model_kind": hp["model__kind"], "hash": h, "run_id": rec.run_id,
                            "status": status, "dataset_hash": hp["data__dataset_hash"],
                            "best_replicate": trained.selection.best})  # fmt: skip
    return models, pd.DataFrame(records), pd.concat(histories, ignore_index=True)


def _record_data_model(store: RecordStore, trained, pair: str, tmp: str, options: dict):
    path = Path(tmp) / f"{trained.hash}.eqx"
    save_trained(path, trained)
    ckpt_dir = Path(tmp) / trained.hash / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    for epoch, model in trained.checkpoints.items():
        save_trained(ckpt_dir / f"epoch_{epoch:05d}.eqx", type(trained)(
            trained.hyperparams, trained.hash, model, None, trained.selection))  # fmt: skip
    extra = [ckpt_dir] if trained.checkpoints else []
    return store.record_model(
        hash=trained.hash, params=trained.hyperparams, history=trained.history, model_file=path,
        metric_every=int(options["metric_every"]), extra_artifacts=extra,
        tags={"ntdyn.label": pair, TAG_ROLE: f"data_model:{trained.hyperparams['model__kind']}",
              **training_tags(trained)},
    )  # fmt: skip


# ----------------------------------------------------------------------------- comparison


def compare_systems(
    source_models: dict, spiking_data: dict, data_models: dict, history: pd.DataFrame,
    comparison: dict, resources: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:  # fmt: skip
    """Every metric for every source x data model pair, scored on the held-out (validation)
    trials, every fitted map fitted on the training trials (the split the data models were
    trained and validated on).

    Returns (comparison table, roll-out error table (source, model, horizon, error),
    fixed points table (source, model, system, point, stable; the aligned coordinates go to
    the figures), figure inputs {pair: arrays}). Inference runs over the trials in chunks
    sized from `resources` (the memory budget; it changes no number).
    """
    budget = ResourceBudget.from_conf(resources)
    fp_cfg = FixedPointConfig(**comparison.get("fixed_points", {}))
    n_cand, seed = int(comparison["n_candidates"]), int(comparison["seed"])
    dsa_opts = dict(comparison["dsa"])
    ctdb_co_bps = bool(comparison.get("co_bps_ctdb", COMPARISON_DEFAULTS["co_bps_ctdb"]))
    cut = bool(comparison.get("trial_length_mask", COMPARISON_DEFAULTS["trial_length_mask"]))
    rows, rollout_rows, fp_rows, fig_inputs = [], [], [], {}
    source_models, data_models = _all_loaded(source_models), _all_loaded(data_models)
    # one step per system: each source's fixed points, then each pair's full comparison
    bar = tqdm(total=len(spiking_data) + len(data_models), desc="compare systems", unit="system",
               disable=not comparison.get("progress", True))  # fmt: skip
    for source, arrays in spiking_data.items():
        arrays = _loaded(arrays)
        trained_source = source_models[source]
        v = arrays["valid"]
        true_latents = arrays["latents"][v].astype(np.float64)
        source_points = system_fixed_points(
            source_step(_kind(trained_source), _best(trained_source)), true_latents,
            arrays["rest_input"], n_cand, fp_cfg, seed,
        )  # fmt: skip
        fp_rows += _points_rows(source, "", "source", source_points.h, source_points.stable)
        bar.update(1)
        for pair, trained in data_models.items():
            if not pair.startswith(f"{source}__"):
                continue
            name, hp, model = pair[len(source) + 2 :], trained.hyperparams, trained.replicate()
            inf = infer(model, hp, arrays["spikes"], arrays["inputs"], budget=budget)
            train, test = (_pair_trials(arrays, inf, arrays[split]) for split in ("train", "valid"))
            result = compare_pair(
                train=train, test=test, held_out=arrays["held_out"], source_points=source_points,
                model_step=model.step, model_rest_input=np.zeros(arrays["inputs"].shape[-1]),
                n_candidates=n_cand, fixed_point_config=fp_cfg, dsa_options=dsa_opts, seed=seed,
                ctdb_co_bps=ctdb_co_bps, lengths=(
                    (arrays["trial_lengths"][arrays["train"]], arrays["trial_lengths"][v])
                    if cut and "trial_lengths" in arrays else None
                ),
            )  # fmt: skip
            valid = _last_validation(history[history["pair"] == pair], trained.selection.best)
            rows.append({
                "source": source, "source_hash": trained_source.hash, "model": name,
                "model_kind": hp["model__kind"], "model_hash": trained.hash,
                "dataset_hash": str(arrays["dataset_hash"]), **result.metrics,
                "valid_nll": valid.get("valid_nll", np.nan),
                "rollout_steps_stable": valid.get("rollout_steps_stable", np.nan),
            })  # fmt: skip
            for key, value in valid.items():
                if key.startswith("rollout_error_h"):
                    rollout_rows.append({"source": source, "model": name,
                                         "horizon": int(key.removeprefix("rollout_error_h")),
                                         "error": value})  # fmt: skip
            bar.update(1)
            W, b = result.affine
            fp_rows += _points_rows(source, name, "model", result.model_points.h @ W + b,
                                    result.model_points.stable)  # fmt: skip
            fig_inputs[pair] = {
                "true_latents": true_latents, "inferred_mapped": result.inferred_mapped,
                "spikes": test.spikes[0], "true_rates": test.true_rates[0],
                "inferred_rates": np.exp(test.inferred_log_rates[0]),
                "held_out": arrays["held_out"],
                "source_points": source_points.h, "source_stable": source_points.stable,
                "model_points": result.model_points.h @ W + b,
                "model_stable": result.model_points.stable,
            }  # fmt: skip
    bar.close()
    table = validate_table("comparison", pd.DataFrame(rows))
    fixed = pd.DataFrame(fp_rows, columns=["source", "model", "system", "point", "stable"])
    return table, pd.DataFrame(rollout_rows), fixed, fig_inputs


def _pair_trials(arrays: dict, inf, trials: np.ndarray) -> PairTrials:
    """The data set's and the inference's arrays of `trials` (float64 for the fits)."""

    def f64(x):
        return np.asarray(x[trials], np.float64)

    return PairTrials(
        true_latents=f64(arrays["latents"]), true_rates=f64(arrays["rates"]),
        spikes=f64(arrays["spikes"]), true_inputs=f64(arrays["inputs"]),
        inferred_latents=f64(inf.latents), inferred_log_rates=f64(inf.log_rates),
        inferred_inputs=f64(inf.inferred_inputs),
    )  # fmt: skip


def _points_rows(source, model, system, points, stable) -> list[dict]:
    return [{"source": source, "model": model, "system": system, "point": i,
             "stable": bool(s)} for i, s in enumerate(np.asarray(stable))]  # fmt: skip


def _last_validation(history: pd.DataFrame, replicate: int) -> dict[str, float]:
    """The selected replicate's last validation metrics from a data model's history."""
    terms = history[(history["replicate"] == replicate)
                    & (history["term"].str.startswith(("rollout_", "valid_")))]  # fmt: skip
    last = terms.sort_values("step").groupby("term")["value"].last()
    return {k: float(v) for k, v in last.items()}


# The version of the comparison's metric definitions, part of its record's identity: bump it
# when a metric changes meaning, so the next run records the comparison anew instead of
# finding the old one.
# 2: state R^2 and the affine alignment fitted on the training trials and scored on the
#    held-out ones; cycle consistency as the benchmark defines it (the old inferred -> true ->
#    inferred round trip is round_trip_r2); input R^2 of inferred inputs.
COMPARISON_VERSION = 2


def comparison_params(comparison: dict) -> dict:
    """The comparison options as a record's parameters (`comparison__<option>`), the optional
    ones only when set away from their default (`COMPARISON_DEFAULTS`)."""
    given = {k: v for k, v in comparison.items()
             if not (k in COMPARISON_DEFAULTS and v == COMPARISON_DEFAULTS[k])}  # fmt: skip
    return {"comparison__" + k: v for k, v in flatten(given).items()}


def record_comparison(
    comparison_table: pd.DataFrame, rollout: pd.DataFrame, comparison: dict, store: RecordStore
) -> dict:
    """Record the comparison table (metrics `<source>.<model>.<metric>`, table as artifacts),
    linked to every source and data model; an identical comparison is not recorded twice."""
    model_hashes = sorted(
        set(comparison_table["source_hash"]) | set(comparison_table["model_hash"])
    )
    params = comparison_params(comparison)
    h = hyperparams_hash({"analysis": "task_vs_data", "params": params, "models": model_hashes,
                          "version": COMPARISON_VERSION})  # fmt: skip
    numeric = comparison_table.select_dtypes("number").columns
    metrics = {
        f"{row.source}.{row.model}.{col}": float(getattr(row, col))
        for row in comparison_table.itertuples() for col in numeric
        if np.isfinite(getattr(row, col))
    }  # fmt: skip

    outcome = reuse_or_compute(
        store, hash=h, analysis="task_vs_data", read=lambda artifact: None,
        compute=lambda: {"comparison": comparison_table, "rollout_error": rollout},
        write=write_parquet_tables,
        params=params, model_hashes=model_hashes, metrics=lambda tables: metrics,
    )  # fmt: skip
    rec, status = outcome.record, outcome.status
    if status == REUSED:
        log.info("comparison %s is already recorded (run %s)", h, rec.run_id)
    return {"hash": h, "run_id": rec.run_id, "analysis": "task_vs_data",
            "model_hashes": model_hashes, "status": status}  # fmt: skip


# ----------------------------------------------------------------------------- figures

METRIC_BARS = (
    "rate_r2", "co_bps", "co_bps_ctdb", "state_r2_true_to_inferred", "state_r2_inferred_to_true",
    "cycle_consistency_r2", "round_trip_r2", "input_r2_true_to_inferred", "fp_mean_distance",
    "dsa_angular", "dsa_wasserstein",
)  # fmt: skip


def draw_figures(
    fig_inputs: dict, comparison_table: pd.DataFrame, rollout: pd.DataFrame, figures: dict
) -> tuple[dict, dict, dict, dict, dict]:
    """(shared-PC latents, rasters with rates, roll-out error, aligned fixed points, metric bars);
    each a {name: figure} dict, per pair where the figure is about one pair."""
    n_trials = int(figures.get("n_trials", 4))
    latents, rasters, fps = {}, {}, {}
    for pair, d in fig_inputs.items():
        title = pair.replace("__", " vs ")
        latents[pair] = plots.shared_pc_latents_figure(
            d["true_latents"], d["inferred_mapped"], f"true vs inferred latents: {title}",
            n_trials=n_trials,
        )  # fmt: skip
        rasters[pair] = plots.raster_rates_figure(
            d["spikes"], d["true_rates"], d["inferred_rates"], d["held_out"],
            f"spikes and rates (held-out trial 0): {title}",
        )  # fmt: skip
        fps[pair] = plots.aligned_fixed_points_figure(
            d["source_points"], d["source_stable"], d["model_points"], d["model_stable"],
            d["true_latents"], f"fixed points after affine alignment: {title}",
        )  # fmt: skip
    rollout_fig = plots.rollout_error_figure(rollout, "roll-out error (Poisson NLL) vs horizon")
    metrics = [m for m in METRIC_BARS if m in comparison_table]
    bars = plots.metric_bars_figure(comparison_table, metrics, "task-trained vs data-trained")
    return latents, rasters, {"all": rollout_fig}, fps, {"all": bars}


def record_task_vs_data_figures(
    kind: str, figures: dict, evaluation_record: dict, data_model_records: pd.DataFrame,
    figure_params: dict, store: RecordStore,
) -> pd.DataFrame:  # fmt: skip
    """Record each figure with its kind, the evaluation hash, the pair's model hashes and the
    figure options (`params:figures`, as `fig__<option>`)."""
    by_pair = data_model_records.set_index("pair")
    options = {f"fig__{k}": v for k, v in figure_params.items()}

    def params_of(name: str) -> dict:
        params = {"figure": name}
        if name in by_pair.index:
            r = by_pair.loc[name]
            params |= {"source": r["source"], "model": r["model"], "model_hash": r["hash"]}
        return params | options

    return record_figure_set(
        store, kind, figures, params_of=params_of, evaluation_hash=evaluation_record["hash"],
        version=plots.figure_version(kind),
    )  # fmt: skip
