"""Reaching figures: center-out trajectories, aligned profiles, measures, feedback impulses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.boxes import box_trace
from ntdyn.plots.style import LAYOUT, band, colour, sample_colour


def center_out_figure(
    position: np.ndarray, conditions: pd.DataFrame, panel: str, title: str
) -> go.Figure:
    """Hand paths, one panel per value of `panel` (e.g. pert_amp), coloured by direction.

    position: (N, K, 2) m, one trial per row of `conditions` (needs direction_index,
    goal_x, goal_y, start_x, start_y and `panel`).
    """
    values = sorted(conditions[panel].unique())
    fig = make_subplots(1, len(values), subplot_titles=[f"{panel} = {v:g}" for v in values])
    n_dir = int(conditions["direction_index"].max()) + 1
    for j, v in enumerate(values, start=1):
        rows = np.where(conditions[panel].to_numpy() == v)[0]
        for i in rows:
            d = int(conditions["direction_index"].iat[i])
            fig.add_trace(
                go.Scatter(
                    x=position[i, :, 0], y=position[i, :, 1], mode="lines",
                    line=dict(color=sample_colour(d, n_dir), width=1), opacity=0.7,
                    showlegend=False, hoverinfo="skip",
                ),  # fmt: skip
                1, j,
            )  # fmt: skip
        goals = conditions.iloc[rows].drop_duplicates(["goal_x", "goal_y"])
        fig.add_trace(
            go.Scatter(
                x=goals["goal_x"], y=goals["goal_y"], mode="markers",
                marker=dict(symbol="circle-open", size=10, color="black"),
                name="goal", showlegend=j == 1,
            ),  # fmt: skip
            1, j,
        )  # fmt: skip
        fig.update_xaxes(title_text="x (m)", row=1, col=j)
        fig.update_yaxes(title_text="y (m)", scaleanchor=f"x{j if j > 1 else ''}", row=1, col=j)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def aligned_profiles_figure(
    aligned: dict[str, np.ndarray], conditions: pd.DataFrame, group: str, dt: float, title: str
) -> go.Figure:
    """Mean +- std over trials of aligned position, velocity and force vs time, per `group` value.

    aligned: name -> (N, K, 2) [parallel, lateral] (from `aligned_trajectories`).
    """
    names = list(aligned)
    fig = make_subplots(
        2, len(names), shared_xaxes=True,
        subplot_titles=[f"{n} {c}" for c in ("parallel", "lateral") for n in names],
    )  # fmt: skip
    values = sorted(conditions[group].unique())
    for gi, v in enumerate(values):
        rows = conditions[group].to_numpy() == v
        c = colour(gi)
        for j, name in enumerate(names, start=1):
            arr = aligned[name][rows]
            t = np.arange(1, arr.shape[1] + 1) * dt
            for comp in (0, 1):
                mean, std = arr[..., comp].mean(0), arr[..., comp].std(0)
                fig.add_trace(band(t, mean - std, mean + std, c, str(v)), comp + 1, j)
                fig.add_trace(
                    go.Scatter(
                        x=t, y=mean, line=dict(color=c), name=f"{group} = {v:g}",
                        legendgroup=str(v), showlegend=(j == 1 and comp == 0),
                    ),  # fmt: skip
                    comp + 1, j,
                )  # fmt: skip
    for j in range(1, len(names) + 1):
        fig.update_xaxes(title_text="time (s)", row=2, col=j)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def measure_distributions_figure(
    measures: pd.DataFrame, measure: str, x: str, colour_by: str, title: str
) -> go.Figure:
    """Box plots of one behaviour measure vs `x` (e.g. train__pert__std), colour: `colour_by`.

    measures: one row per trial (or per evaluation), columns `measure`, `x` and `colour_by`.
    One box trace per value of `colour_by` (ascending, NaN last; named by its str), a box per
    value of `x` (a number on a linear axis, otherwise a category), grouped side by side.
    The boxes (quartiles, Tukey whiskers, mean) are drawn from their statistics
    (`boxes.box_trace`): the figure's size depends on the number of boxes, not of trials.
    """
    fig = go.Figure()
    by_colour = measures.groupby(colour_by, sort=True, dropna=False)
    for i, (value, g) in enumerate(by_colour):
        by_x = g[measure].groupby(g[x], sort=True)
        fig.add_trace(box_trace(by_x, name=str(value), colour=colour(i)))
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=measure)
    fig.update_layout(title=title, boxmode="group", legend_title_text=colour_by, **LAYOUT)
    return fig


def feedback_response_figure(
    aligned_position: np.ndarray, conditions: pd.DataFrame, dt: float, title: str
) -> go.Figure:
    """Mean aligned position (parallel to the impulse) vs time, per channel and amplitude.

    aligned_position: (N, K, 2) m relative to the hold position.
    """
    channels = list(dict.fromkeys(conditions["channel"]))
    fig = make_subplots(1, len(channels), subplot_titles=[f"{c} impulse" for c in channels])
    for j, ch in enumerate(channels, start=1):
        sub = conditions[conditions["channel"] == ch]
        amps = sorted(sub["impulse_amp"].unique())
        for ai, amp in enumerate(amps):
            rows = (conditions["channel"] == ch).to_numpy() & (
                conditions["impulse_amp"] == amp
            ).to_numpy()
            arr = aligned_position[rows, :, 0]
            t = np.arange(1, arr.shape[1] + 1) * dt
            fig.add_trace(
                go.Scatter(
                    x=t, y=arr.mean(0), name=f"{ch} {amp:g}",
                    line=dict(color=sample_colour(ai, len(amps))),
                ),  # fmt: skip
                1, j,
            )  # fmt: skip
        fig.update_xaxes(title_text="time (s)", row=1, col=j)
    fig.update_yaxes(title_text="position along impulse (m)", row=1, col=1)
    fig.update_layout(title=title, **LAYOUT)
    return fig
