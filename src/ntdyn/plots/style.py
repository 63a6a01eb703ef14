"""Shared colours and layout defaults."""

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

PALETTE = px.colors.qualitative.Plotly
SEQUENTIAL = px.colors.sequential.Viridis


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def sample_colour(i: int, n: int) -> str:
    """i-th of n colours spread along the sequential scale (for ordered conditions)."""
    return px.colors.sample_colorscale(SEQUENTIAL, [i / max(n - 1, 1)])[0]


LAYOUT = dict(template="plotly_white", font=dict(size=12), margin=dict(l=60, r=20, t=60, b=50))


def band(x, lower, upper, colour: str, group: str) -> go.Scatter:
    """Filled band between `lower` and `upper` along `x` (no legend entry, no hover)."""
    x = np.asarray(x)
    return go.Scatter(
        x=np.r_[x, x[::-1]],
        y=np.r_[np.asarray(upper), np.asarray(lower)[::-1]],
        fill="toself",
        fillcolor=colour,
        opacity=0.2,
        line=dict(width=0),
        hoverinfo="skip",
        showlegend=False,
        legendgroup=group,
    )
