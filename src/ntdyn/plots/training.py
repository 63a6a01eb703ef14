"""Training figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ntdyn.plots.style import LAYOUT, band, colour

# Points per line at most: a research-scale history (10 000 batches x members x replicates)
# drawn point by point made the part-1 loss figure 7.6 MB; 1000 bins keep it well under 1 MB.
MAX_POINTS = 1000


def loss_curves_figure(
    history: pd.DataFrame, term: str = "total", smooth: int = 10, max_points: int = MAX_POINTS
) -> go.Figure:
    """Loss vs batch, one line per spread member (mean over replicates, band = min..max).

    history: long table with columns label, step, replicate, term, value.
    `smooth`: moving-average window in batches. Longer histories are drawn in at most
    `max_points` bins of consecutive recorded steps: the bin's mean of the line and the
    band's lowest and highest value in the bin (so no excursion is hidden), at the bin's
    last step.
    """
    if max_points < 2:
        raise ValueError(f"max_points = {max_points!r}: must be an integer >= 2")
    fig = go.Figure()
    data = history[history["term"] == term]
    for i, (label, member) in enumerate(data.groupby("label", sort=False)):
        wide = member.pivot_table(index="step", columns="replicate", values="value")
        wide = wide.rolling(smooth, min_periods=1).mean()
        bins = np.arange(len(wide)) * max_points // max(len(wide), 1)
        by_bin = pd.DataFrame(
            {"step": wide.index.to_numpy(), "mean": wide.mean(axis=1).to_numpy(),
             "low": wide.min(axis=1).to_numpy(), "high": wide.max(axis=1).to_numpy()}
        ).groupby(bins).agg(step=("step", "last"), mean=("mean", "mean"), low=("low", "min"),
                            high=("high", "max"))  # fmt: skip
        c = colour(i)
        fig.add_trace(band(by_bin["step"], by_bin["low"], by_bin["high"], c, label))
        fig.add_trace(
            go.Scatter(
                x=by_bin["step"], y=by_bin["mean"], name=label, line=dict(color=c),
                legendgroup=label,
            )
        )  # fmt: skip
    fig.update_layout(
        title=f"Training loss ({term}); mean over replicates, band = range",
        xaxis_title="batch",
        yaxis_title="loss",
        yaxis_type="log",
        **LAYOUT,
    )
    return fig
