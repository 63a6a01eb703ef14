"""Shared colours and layout defaults."""

import plotly.express as px

PALETTE = px.colors.qualitative.Plotly
SEQUENTIAL = px.colors.sequential.Viridis


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def sample_colour(i: int, n: int) -> str:
    """i-th of n colours spread along the sequential scale (for ordered conditions)."""
    return px.colors.sample_colorscale(SEQUENTIAL, [i / max(n - 1, 1)])[0]


LAYOUT = dict(template="plotly_white", font=dict(size=12), margin=dict(l=60, r=20, t=60, b=50))
