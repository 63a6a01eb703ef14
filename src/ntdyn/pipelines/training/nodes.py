"""Training nodes: thin wrappers; the work is in ntdyn.hyperparams, ntdyn.training, ntdyn.store."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ntdyn.hyperparams import (
    flatten,
    hyperparams_hash,
    sweep_rows,
    sweep_table,
    unflatten,
    varying_columns,
)
from ntdyn.models.unroll import ScanUnroll
from ntdyn.parallel import map_independent
from ntdyn.resources import ResourceBudget
from ntdyn.store import Record, RecordStore
from ntdyn.store.claims import compute_once
from ntdyn.store.records import MODEL
from ntdyn.store.reuse import model_of
from ntdyn.training import CheckpointConfig, TrainedEnsemble, train_sweep
from ntdyn.training.checkpoint import remove as remove_checkpoint
from ntdyn.training.ensemble_io import save_trained
from ntdyn.training.loop import static_signature

log = logging.getLogger(__name__)

ID_COLUMNS = ("hash", "label")


def member_label(row: pd.Series, varying: list[str]) -> str:
    """Short name of a sweep member from the hyperparameters that vary in its sweep."""
    if not varying:
        return "base"
    return ", ".join(f"{c}={row[c]}" for c in varying)


def with_overrides(base: dict, overrides: dict | None) -> dict:
    """`base` hyperparameters with an experiment's `overrides` applied (keys must exist)."""
    flat_base, flat_over = flatten(base), flatten(overrides or {})
    unknown = sorted(set(flat_over) - set(flat_base))
    if unknown:
        raise ValueError(
            f"overrides {unknown} are not hyperparameters; known: {', '.join(sorted(flat_base))}"
        )
    return unflatten(flat_base | flat_over)


def plan_sweep(training: dict) -> pd.DataFrame:
    """Expand and validate the sweep (before any compute): one row per model.

    `training`: hyperparams (nested base), overrides (optional, nested), spread.
    Columns: hash, label, then every flattened hyperparameter.
    """
    base = with_overrides(training["hyperparams"], training.get("overrides"))
    table = sweep_table(base, training.get("spread"))
    varying = varying_columns(table)
    hashes = [hyperparams_hash(row) for row in sweep_rows(table)]
    if len(set(hashes)) != len(hashes):
        raise ValueError("the sweep lists the same hyperparameters twice; remove the duplicate")
    labels = [member_label(row, varying) for _, row in table.iterrows()]
    return table.assign(hash=hashes, label=labels)[["hash", "label", *[c for c in table.columns]]]


def checkpoint_config(store: RecordStore, options: dict) -> CheckpointConfig | None:
    """Checkpoints in the store's checkpoint folder, paced by `options["checkpoint"]`
    (min_interval_s, max_overhead; null: no checkpoints)."""
    pacing = options.get("checkpoint", {})
    return None if pacing is None else CheckpointConfig(store.checkpoint_dir(), **pacing)


def training_tags(trained) -> dict[str, str]:
    """What a model record says about its training: selection and diverged replicates."""
    return {
        "ntdyn.best_replicate": str(trained.selection.best),
        "ntdyn.excluded_replicates": str(list(trained.selection.excluded)),
        "ntdyn.diverged_replicates": "; ".join(map(str, trained.diverged)) or "none",
    }


def shape_groups(rows: dict[str, dict]) -> list[list[str]]:
    """The sweep's hashes grouped by static signature (one compiled program each), in order."""
    groups: dict[tuple, list[str]] = {}
    for h, row in rows.items():
        groups.setdefault(static_signature(row), []).append(h)
    return list(groups.values())


def train_models(
    sweep: pd.DataFrame, store: RecordStore, options: dict, resources: dict | None = None
) -> tuple[dict[str, TrainedEnsemble], pd.DataFrame, pd.DataFrame]:
    """Reuse recorded models by hash, train the others (one program per shape), record them.

    Each shape group is one independent task (`map_independent`: a Dask task of the run's
    cluster under the DaskRunner, else in turn here). A model another live run or task is
    training is waited for, then reused (`compute_once`).
    Each shape's stacked models are split across `resources.devices`.
    Returns (models by hash, training history, model records table).
    """
    devices = ResourceBudget.from_conf(resources).devices
    rows = dict(zip(sweep["hash"], sweep_rows(sweep), strict=True))
    labels = dict(zip(sweep["hash"], sweep["label"], strict=True))
    checkpoint = checkpoint_config(store, options)

    def train_group(hashes: list[str]) -> dict[str, tuple[tuple[Record, str], object]]:
        """{hash: ((record, status), the ensemble if trained in this task)} of one group."""
        trained: dict[str, TrainedEnsemble] = {}

        def train_and_record(todo: list[str]) -> dict[str, Record]:
            for t in train_sweep(
                [rows[h] for h in todo], progress=options["progress"],
                record_every=int(options.get("record_every", 0)), checkpoint=checkpoint,
                unroll=ScanUnroll(options.get("unroll")),
                labels=[labels[h] for h in todo], devices=devices,
            ):  # fmt: skip
                trained[t.hash] = t
            records = {}
            for h in todo:
                records[h] = _record(store, h, rows[h], labels[h], trained[h], options)
                if checkpoint is not None:  # the record holds the model now
                    remove_checkpoint(checkpoint, h)
            return records

        outcomes = compute_once(store, MODEL, hashes, store.find_model, train_and_record,
                                lambda h: f"{h} ({labels[h]})",
                                "cache hit: model %s is record %s; not training")  # fmt: skip
        return {h: (outcomes[h], trained.get(h)) for h in hashes}

    done: dict[str, tuple[tuple[Record, str], object]] = {}
    for part in map_independent(train_group, shape_groups(rows), name="train_shape_group"):
        done.update(part)
    trained = {h: t for h, (_, t) in done.items() if t is not None}
    models, histories, records = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for h in rows:
            rec = done[h][0][0]
            ensemble, history, status = model_of(store, done[h][0], trained, h, tmp)
            models[h] = ensemble
            histories.append(history.assign(hash=h, label=labels[h]))
            records.append(_record_row(h, labels[h], rec.run_id, status, ensemble))
    return models, pd.concat(histories, ignore_index=True), pd.DataFrame(records)


def _record(store: RecordStore, h: str, row: dict, label: str, ensemble: TrainedEnsemble,
            options: dict) -> Record:  # fmt: skip
    """Record one trained ensemble: its model file, history and trace."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{h}.eqx"
        save_trained(path, ensemble)
        extra = [_write_trace(ensemble.trace, Path(tmp) / h)] if ensemble.trace else []
        return store.record_model(
            hash=h,
            params=row,
            history=ensemble.history,
            metric_every=int(options["metric_every"]),
            model_file=path,
            extra_artifacts=extra,
            tags={"ntdyn.label": label, **training_tags(ensemble)},
        )


def _write_trace(trace: dict[str, pd.DataFrame], folder: Path) -> Path:
    """The training trace as `<folder>/trace/<table>.parquet` (validated), for the model record."""
    from ntdyn.hyperparams.tables import validate_table

    out = folder / "trace"
    out.mkdir(parents=True)
    for name, table in trace.items():
        kind = f"trace_controller_{name}" if name in ("scalars", "layers") else f"trace_{name}"
        validate_table(kind, table)
        table.to_parquet(out / f"{name}.parquet", index=False)
    return out


def _record_row(h: str, label: str, run_id: str, status: str, ensemble: TrainedEnsemble) -> dict:
    sel = ensemble.selection
    return {
        "hash": h,
        "label": label,
        "run_id": run_id,
        "status": status,
        "best_replicate": sel.best,
        "excluded_replicates": ",".join(map(str, sel.excluded)),
        "n_replicates": len(sel.validation_loss),
        "best_validation_loss": sel.validation_loss[sel.best],
        "mean_validation_loss": float(np.mean(sel.validation_loss)),
    }
