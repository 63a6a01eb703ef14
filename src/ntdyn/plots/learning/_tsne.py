"""A 2-D (t-SNE) map of units, one marker trace per layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ntdyn.plots.style import LAYOUT, colour


def unit_tsne_figure(
    embedding: np.ndarray,
    layers: Sequence[str] | np.ndarray,
    title: str,
    hover: Sequence[str] | None = None,
) -> go.Figure:
    """2-D (t-SNE) embedding of units, one marker trace per layer.

    embedding: (U, 2) coordinates of U units (arbitrary units). layers: (U,) layer name of
    each unit; traces in order of first appearance, named str(layer), colour i for the i-th.
    hover: (U,) hover text per unit; default "layer, unit u" with u the row index.
    """
    emb = np.asarray(embedding, dtype=float)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise ValueError(f"embedding must be (U, 2); got {emb.shape}")
    layers = np.asarray(layers).ravel()
    if len(layers) != len(emb):
        raise ValueError(f"layers must have {len(emb)} entries; got {len(layers)}")
    if hover is None:
        text = np.asarray([f"{layer}, unit {u}" for u, layer in enumerate(layers)], dtype=object)
    else:
        text = np.asarray(list(hover), dtype=object)
        if len(text) != len(emb):
            raise ValueError(f"hover must have {len(emb)} entries; got {len(text)}")
    fig = go.Figure()
    for i, layer in enumerate(dict.fromkeys(layers.tolist())):
        rows = layers == layer
        fig.add_trace(
            go.Scatter(
                x=emb[rows, 0], y=emb[rows, 1], mode="markers", name=str(layer),
                marker=dict(color=colour(i), size=6, opacity=0.8),
                hovertext=text[rows].tolist(), hoverinfo="text",
            )
        )  # fmt: skip
    fig.update_layout(title=title, xaxis_title="t-SNE 1", yaxis_title="t-SNE 2", **LAYOUT)
    return fig
