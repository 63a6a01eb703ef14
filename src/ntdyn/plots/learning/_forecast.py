"""Autoregressive (AR) forecast of the loss: observed, fit window, out-of-sample forecasts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ntdyn.plots.learning._common import MAX_POINTS, OBSERVED_COLOUR, _check_max_points, _vector
from ntdyn.plots.sampling import evenly
from ntdyn.plots.style import LAYOUT, colour


def ar_forecast_figure(
    steps: np.ndarray,
    series: np.ndarray,
    n_train: int,
    forecast: np.ndarray,
    title: str,
    naive: np.ndarray | None = None,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """Observed loss, the AR fit window (shaded) and the out-of-sample forecasts.

    steps: (S,) training steps of the observations, increasing. series: (S,) observed loss.
    n_train: the AR model was fitted on the first n_train observations (1 <= n_train <= S),
    shaded as the "fit window" from steps[0] to steps[n_train - 1]. forecast: (H,) AR
    prediction for observation n_train + h, h = 0..H-1; positions past the last observation
    continue the grid with the last step spacing. naive: (H,) optional baseline forecast
    (e.g. the last training value carried forward), same positions.
    Traces: "observed" (black solid), "AR forecast" (colour 0, dashed), "naive forecast"
    (colour 1, dotted) if given; the window is a layout shape (add_vrect). y logarithmic
    when `log_y`. Each line draws at most `max_points` evenly spaced of its points (first
    and last included).
    """
    steps = _vector(steps, "steps")
    n = len(steps)
    series = _vector(series, "series", n)
    if not 1 <= n_train <= n:
        raise ValueError(f"n_train must be in [1, {n}]; got {n_train}")
    forecast = _vector(forecast, "forecast")
    h = len(forecast)
    if naive is not None:
        naive = _vector(naive, "naive", h)
    spacing = steps[-1] - steps[-2] if n > 1 else 1.0
    idx = n_train + np.arange(h)
    past = np.maximum(idx - (n - 1), 0)
    future = np.where(idx < n, steps[np.minimum(idx, n - 1)], steps[-1] + past * spacing)
    _check_max_points(max_points)
    window = (steps[0], steps[n_train - 1])
    observed = evenly(n, max_points)
    ahead = evenly(h, max_points)
    steps, series = steps[observed], series[observed]
    future, forecast = future[ahead], forecast[ahead]
    naive = None if naive is None else naive[ahead]
    fig = go.Figure()
    fig.add_vrect(
        x0=window[0], x1=window[1], fillcolor="grey", opacity=0.15, line_width=0,
        layer="below", annotation_text="fit window", annotation_position="top left",
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=steps, y=series, mode="lines", name="observed",
                   line=dict(color=OBSERVED_COLOUR, width=2))
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=future, y=forecast, mode="lines", name="AR forecast",
                   line=dict(color=colour(0), width=2, dash="dash"))
    )  # fmt: skip
    if naive is not None:
        fig.add_trace(
            go.Scatter(x=future, y=naive, mode="lines", name="naive forecast",
                       line=dict(color=colour(1), width=2, dash="dot"))
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="training step", yaxis_title="loss",
        yaxis_type="log" if log_y else "linear", **LAYOUT,
    )  # fmt: skip
    return fig
