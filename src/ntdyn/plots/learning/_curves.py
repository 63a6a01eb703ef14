"""Learning curves: train/test loss and accuracy vs training step, plus optimiser scalars."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.learning._common import (
    EXTRA_SCALARS,
    MAX_POINTS,
    _check_max_points,
    _require,
    _scaled_to_max,
)
from ntdyn.plots.sampling import evenly
from ntdyn.plots.style import LAYOUT, colour


def learning_curves_figure(
    scalars: pd.DataFrame, title: str, log_loss: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Train/test loss and accuracy vs training step, plus optimiser scalars when recorded.

    scalars: one row per recorded step with columns step (int, optimiser steps), train_loss,
    test_loss (cross-entropy, nats), train_accuracy, test_accuracy (fractions or %, plotted
    as given) and optionally learning_rate, grad_norm (L2 norm of the gradient) and
    weight_density (fraction of non-negligible weights). Rows are sorted by step.
    Rows (make_subplots, shared x): 1 "loss": "train loss" (solid) and "test loss" (dashed),
    colour 0, y logarithmic when `log_loss`; 2 "accuracy": "train accuracy" (solid) and
    "test accuracy" (dashed), colour 1. Row 3, only when any of learning_rate / grad_norm /
    weight_density is present: one line per present column (that order, colours 2, 3, 4),
    each divided by its own largest finite |value| so that quantities with different units
    share one axis in [-1, 1]; the hover shows the raw value. Longer traces are drawn at
    `max_points` evenly spaced records (first and last included; the scaling of row 3 uses
    every record).
    """
    _require(scalars, ["step", "train_loss", "test_loss", "train_accuracy", "test_accuracy"],
             "scalars")  # fmt: skip
    _check_max_points(max_points)
    data = scalars.sort_values("step", kind="stable")
    scaled = {name: _scaled_to_max(data[name].to_numpy(dtype=float)) for name in EXTRA_SCALARS
             if name in data.columns}  # fmt: skip
    rows_drawn = evenly(len(data), max_points)
    data = data.iloc[rows_drawn]
    step = data["step"].to_numpy()
    extras = [c for c in EXTRA_SCALARS if c in data.columns]
    titles = ["loss", "accuracy"] + (
        ["optimiser / weights (each ÷ its max |value|)"] * bool(extras)
    )
    rows = len(titles)
    fig = make_subplots(rows, 1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08)
    for row, quantity, c in [(1, "loss", colour(0)), (2, "accuracy", colour(1))]:
        for split, dash in [("train", "solid"), ("test", "dash")]:
            fig.add_trace(
                go.Scatter(
                    x=step, y=data[f"{split}_{quantity}"].to_numpy(dtype=float), mode="lines",
                    name=f"{split} {quantity}", line=dict(color=c, dash=dash),
                ),
                row, 1,
            )  # fmt: skip
    for i, name in enumerate(extras):
        raw = data[name].to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=step, y=scaled[name][rows_drawn], mode="lines", name=name, customdata=raw,
                line=dict(color=colour(2 + i)),
                hovertemplate=f"step %{{x}}<br>{name} %{{customdata:.4g}}<extra></extra>",
            ),
            3, 1,
        )  # fmt: skip
    fig.update_yaxes(title_text="loss", type="log" if log_loss else "linear", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=2, col=1)
    if extras:
        fig.update_yaxes(title_text="÷ max |value|", row=3, col=1)
    fig.update_xaxes(title_text="training step", row=rows, col=1)
    fig.update_layout(title=title, height=250 + 200 * rows, **LAYOUT)
    return fig
