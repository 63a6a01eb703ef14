"""Convergent cross mapping (CCM): cross-map skill vs library size, both directions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.learning._common import _require
from ntdyn.plots.style import LAYOUT, band, colour


def _first_str(g: pd.DataFrame, column: str, default: str) -> str:
    return str(g[column].iloc[0]) if column in g.columns and len(g) else default


def ccm_figure(table: pd.DataFrame, title: str, max_cols: int = 3) -> go.Figure:
    """Convergent cross mapping: cross-map skill vs library size, both directions.

    table: columns library_size (number of points in the shadow-manifold library), x_xmap_y
    and y_xmap_x (Pearson ρ between a variable and its cross-mapped estimate) and optionally
    x_name, y_name (names of the two variables; default "x", "y") and pair (one subplot per
    distinct pair, order of first appearance, at most `max_cols` per row, titled by pair).
    Column meaning (Sugihara et al. 2012, as `ntdyn.analysis.learning.convergent_cross_mapping`):
    x_xmap_y is the skill of estimating y from x's shadow manifold ("x cross-maps y"),
    evidence that y drives x (the effect carries the cause's signature); y_xmap_x the
    converse. Each direction is one line named in words, e.g. "weight_density → test_loss
    (test_loss cross-maps weight_density)" for y_xmap_x with x = weight_density; with
    several pairs and no x_name / y_name columns the names start with "pair: ". Colours 2j
    and 2j + 1 for pair j. When a library size has several rows (random libraries) the line
    is their mean and a band
    (style.band, drawn before it) spans mean ± s.d.
    Skill that rises with library size and converges suggests causation.
    """
    _require(table, ["library_size", "x_xmap_y", "y_xmap_x"], "table")
    if "pair" in table.columns and len(table):
        groups = [(p, table[table["pair"] == p]) for p in dict.fromkeys(table["pair"])]
    else:
        groups = [(None, table)]
    n_cols = min(len(groups), max_cols)
    n_rows = -(-len(groups) // n_cols)
    several = len(groups) > 1
    named = "x_name" in table.columns and "y_name" in table.columns
    titles = [str(p) for p, _ in groups] if groups[0][0] is not None else None
    fig = make_subplots(n_rows, n_cols, subplot_titles=titles) if several else go.Figure()
    for j, (pair, g) in enumerate(groups):
        x_name, y_name = _first_str(g, "x_name", "x"), _first_str(g, "y_name", "y")
        prefix = f"{pair}: " if several and not named else ""
        directions = [
            ("y_xmap_x", f"{prefix}{x_name} → {y_name} ({y_name} cross-maps {x_name})"),
            ("x_xmap_y", f"{prefix}{y_name} → {x_name} ({x_name} cross-maps {y_name})"),
        ]
        where = dict(row=j // n_cols + 1, col=j % n_cols + 1) if several else {}
        for d, (column, name) in enumerate(directions):
            c = colour(2 * j + d)
            stats = g.groupby("library_size")[column].agg(["mean", "std", "count"]).sort_index()
            lib = stats.index.to_numpy(dtype=float)
            mean = stats["mean"].to_numpy(dtype=float)
            if (stats["count"] > 1).any():
                sd = np.nan_to_num(stats["std"].to_numpy(dtype=float))
                ok = np.isfinite(mean)
                fig.add_trace(band(lib[ok], mean[ok] - sd[ok], mean[ok] + sd[ok], c, name),
                              **where)  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=lib, y=mean, mode="lines+markers", name=name, line=dict(color=c),
                    legendgroup=name,
                ),
                **where,
            )  # fmt: skip
    fig.update_xaxes(title_text="library size")
    fig.update_yaxes(title_text="cross-map skill ρ")
    fig.update_layout(title=title, **LAYOUT)
    if several:
        fig.update_layout(height=150 + 300 * n_rows)
    return fig
