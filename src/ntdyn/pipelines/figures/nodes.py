"""Figure nodes: select data, call an `ntdyn.plots` builder, return figures by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ntdyn import plots
from ntdyn.analysis import LabelledArrays, aligned_trajectories
from ntdyn.analysis.measures import MEASURES
from ntdyn.store import RecordStore

ID_COLUMNS = ("hash", "label")


def _varying(sweep: pd.DataFrame) -> list[str]:
    return [c for c in sweep.columns if c not in ID_COLUMNS and sweep[c].nunique() > 1]


def _best(states: LabelledArrays, records: pd.DataFrame, h: str) -> dict[str, np.ndarray]:
    r = int(records.set_index("hash").at[h, "best_replicate"])
    return {k: np.asarray(v[r]) for k, v in states.arrays.items()}


def loss_curves(training_history: pd.DataFrame, figures: dict) -> go.Figure:
    """Total training loss per spread member (mean and range over replicates)."""
    return plots.loss_curves_figure(training_history, smooth=figures["loss_smoothing"])


def center_out(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame, figures: dict,
) -> dict[str, go.Figure]:  # fmt: skip
    """Hand paths of the best replicate, a panel per field amplitude, one figure per member."""
    out = {}
    labels = sweep.set_index("hash")["label"]
    for h, arrays in states.items():
        cond = conditions[conditions["hash"] == h].sort_values("trial").reset_index(drop=True)
        n_dir = int(cond["direction_index"].max()) + 1
        keep_dirs = np.unique(
            np.linspace(0, n_dir, min(figures["n_plot_directions"], n_dir), endpoint=False).astype(
                int
            )
        )
        rows = cond["direction_index"].isin(keep_dirs).to_numpy() & (cond["repeat"] == 0).to_numpy()
        best = _best(arrays, model_records, h)
        out[h] = plots.center_out_figure(
            best["state"][rows, :, :2], cond[rows].reset_index(drop=True), "pert_amp",
            f"Center-out reaches — {labels[h]} (best replicate)",
        )  # fmt: skip
    return out


def aligned_profiles(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame,
) -> dict[str, go.Figure]:  # fmt: skip
    """Aligned position, velocity and force (mean +- std) with and without the field, per member."""
    out = {}
    labels = sweep.set_index("hash")["label"]
    for h, arrays in states.items():
        cond = conditions[conditions["hash"] == h].sort_values("trial").reset_index(drop=True)
        best = _best(arrays, model_records, h)
        al = aligned_trajectories(
            best["state"], best["control"], cond[["start_x", "start_y"]].to_numpy(),
            cond["direction"].to_numpy(),
        )  # fmt: skip
        out[h] = plots.aligned_profiles_figure(
            al, cond, "pert_amp", arrays.attrs["dt"], f"Aligned reach profiles — {labels[h]}"
        )
    return out


def measure_distributions(measures: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Each behaviour measure vs the swept hyperparameter, coloured by field amplitude."""
    varying = _varying(sweep)
    x = varying[0] if len(varying) == 1 else "label"
    selected = measures[measures["selected"]]
    return {
        m: plots.measure_distributions_figure(
            selected, m, x, "pert_amp", f"{m.replace('_', ' ')} vs {x} (best replicates)"
        )
        for m in MEASURES
    }


def feedback_responses(
    states: dict[str, LabelledArrays], conditions: pd.DataFrame, model_records: pd.DataFrame,
    sweep: pd.DataFrame,
) -> dict[str, go.Figure]:  # fmt: skip
    """Position along the impulse direction after feedback impulses, per member."""
    out = {}
    labels = sweep.set_index("hash")["label"]
    for h, arrays in states.items():
        cond = conditions[conditions["hash"] == h].sort_values("trial").reset_index(drop=True)
        best = _best(arrays, model_records, h)
        al = aligned_trajectories(
            best["state"], best["control"], cond[["start_x", "start_y"]].to_numpy(),
            cond["direction"].to_numpy(),
        )  # fmt: skip
        out[h] = plots.feedback_response_figure(
            al["position"], cond, arrays.attrs["dt"], f"Feedback impulse responses — {labels[h]}"
        )
    return out


def record_figures(
    loss_figure: go.Figure,
    center_out_figures: dict,
    aligned_figures: dict,
    measure_figures: dict,
    feedback_figures: dict,
    plant_record: dict,
    feedback_record: dict,
    sweep: pd.DataFrame,
    store: RecordStore,
) -> pd.DataFrame:
    """Record every figure in MLflow with its kind, parameters and evaluation hash.

    Per-member figures carry the member's hash and swept hyperparameters as
    parameters, so figures can be listed by hyperparameter values.
    """
    hp = sweep.set_index("hash")[_varying(sweep)]
    member = lambda h: {"model_hash": h, **hp.loc[h].to_dict()}  # noqa: E731
    items = [("loss_curves", "all", loss_figure, {"term": "total"}, None)]
    for kind, figs, rec in [
        ("center_out", center_out_figures, plant_record),
        ("aligned_profiles", aligned_figures, plant_record),
        ("feedback_responses", feedback_figures, feedback_record),
    ]:
        items += [(kind, h, fig, member(h), rec["hash"]) for h, fig in _figures(figs).items()]
    items += [
        ("measure_distributions", m, fig, {"measure": m}, plant_record["hash"])
        for m, fig in _figures(measure_figures).items()
    ]
    rows = []
    for kind, name, fig, params, eval_hash in items:
        rec = store.record_figure(kind=kind, figure=fig, params=params, evaluation_hash=eval_hash)
        rows.append(
            {"kind": kind, "name": name, "figure_hash": rec.hash, "run_id": rec.run_id,
             "evaluation_hash": eval_hash}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _figures(figs: dict) -> dict[str, go.Figure]:
    # Loaded from a PartitionedDataset, partitions are loader callables.
    return {k: (v() if callable(v) else v) for k, v in figs.items()}
