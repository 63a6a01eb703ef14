"""Training figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ntdyn.plots.style import LAYOUT, band, colour


def loss_curves_figure(history: pd.DataFrame, term: str = "total", smooth: int = 10) -> go.Figure:
    """Loss vs batch, one line per spread member (mean over replicates, band = min..max).

    history: long table with columns label, step, replicate, term, value.
    `smooth`: moving-average window in batches.
    """
    fig = go.Figure()
    data = history[history["term"] == term]
    for i, (label, member) in enumerate(data.groupby("label", sort=False)):
        wide = member.pivot_table(index="step", columns="replicate", values="value")
        wide = wide.rolling(smooth, min_periods=1).mean()
        steps = wide.index.to_numpy()
        c = colour(i)
        fig.add_trace(band(steps, wide.min(axis=1), wide.max(axis=1), c, label))
        fig.add_trace(
            go.Scatter(
                x=steps, y=wide.mean(axis=1), name=label, line=dict(color=c), legendgroup=label
            )
        )
    fig.update_layout(
        title=f"Training loss ({term}); mean over replicates, band = range",
        xaxis_title="batch",
        yaxis_title="loss",
        yaxis_type="log",
        **LAYOUT,
    )
    return fig
