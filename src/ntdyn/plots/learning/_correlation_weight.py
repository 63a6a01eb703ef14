"""Connection weight vs activity correlation of unit pairs."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ntdyn.plots.learning._common import FAINT, _require
from ntdyn.plots.style import LAYOUT, colour


def _pair_hover(table: pd.DataFrame) -> list[str]:
    layer = table["layer"].astype(str) + ": " if "layer" in table.columns else ""
    return list(layer + "post " + table["post"].astype(str) + " ← pre " + table["pre"].astype(str))


def correlation_weight_figure(
    pairs: pd.DataFrame,
    title: str,
    all_pairs: pd.DataFrame | None = None,
    max_cloud: int = 20000,
) -> go.Figure:
    """Connection weight vs activity correlation of unit pairs: strongest pairs over all.

    pairs: the strongest (selected) pairs, columns post, pre (unit indices), correlation
    (Pearson r of the two units' activities, in [-1, 1]) and weight (pre -> post weight) and
    optionally layer. all_pairs: same columns, every pair, drawn first as one faint grey
    trace "all pairs" (evenly thinned to at most `max_cloud` points). Then the selected
    pairs: one trace per layer (order of first appearance, named str(layer)) when `pairs`
    has a layer column, else one trace "strongest pairs". x = weight, y = correlation;
    dashed zero lines on both axes (layout shapes).
    """
    columns = ["post", "pre", "correlation", "weight"]
    _require(pairs, columns, "pairs")
    fig = go.Figure()
    if all_pairs is not None:
        _require(all_pairs, columns, "all_pairs")
        if max_cloud < 1:
            raise ValueError(f"max_cloud must be >= 1; got {max_cloud}")
        stride = max(-(-len(all_pairs) // max_cloud), 1)
        cloud = all_pairs.iloc[::stride]
        fig.add_trace(
            go.Scatter(
                x=cloud["weight"].to_numpy(dtype=float),
                y=cloud["correlation"].to_numpy(dtype=float), mode="markers", name="all pairs",
                marker=dict(color=FAINT, size=3), hovertext=_pair_hover(cloud), hoverinfo="text",
            )
        )  # fmt: skip
    if "layer" in pairs.columns:
        groups = [(str(k), pairs[pairs["layer"] == k]) for k in dict.fromkeys(pairs["layer"])]
    else:
        groups = [("strongest pairs", pairs)]
    for i, (name, g) in enumerate(groups):
        fig.add_trace(
            go.Scatter(
                x=g["weight"].to_numpy(dtype=float), y=g["correlation"].to_numpy(dtype=float),
                mode="markers", name=name, hovertext=_pair_hover(g), hoverinfo="text",
                marker=dict(color=colour(i), size=7, line=dict(color="white", width=0.5)),
            )
        )  # fmt: skip
    zero = dict(color="grey", width=1, dash="dash")
    fig.add_hline(y=0, line=zero)
    fig.add_vline(x=0, line=zero)
    fig.update_layout(title=title, xaxis_title="weight (pre → post)",
                      yaxis_title="activity correlation r", **LAYOUT)  # fmt: skip
    return fig
