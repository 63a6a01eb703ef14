"""Discrete learning states: a density map with watershed regions, and state vs step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.learning._common import FAINT, MAX_POINTS, _check_max_points, _vector
from ntdyn.plots.sampling import evenly
from ntdyn.plots.style import LAYOUT, colour


def _centres(edges, name: str, n: int) -> np.ndarray:
    e = _vector(edges, name, n + 1)
    return (e[:-1] + e[1:]) / 2


def _borders(labels: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> tuple[list, list]:
    """Polyline (None-separated) along every cell edge between different labels."""
    xs: list = []
    ys: list = []
    for i, j in zip(*np.nonzero(labels[:, 1:] != labels[:, :-1]), strict=True):
        xs += [ex[j + 1], ex[j + 1], None]
        ys += [ey[i], ey[i + 1], None]
    for i, j in zip(*np.nonzero(labels[1:, :] != labels[:-1, :]), strict=True):
        xs += [ex[j], ex[j + 1], None]
        ys += [ey[i + 1], ey[i + 1], None]
    return [None if v is None else float(v) for v in xs], [
        None if v is None else float(v) for v in ys
    ]


def learning_states_figure(
    steps: np.ndarray,
    state: np.ndarray,
    embedding: np.ndarray,
    density: np.ndarray,
    labels_map: np.ndarray,
    edges_x: np.ndarray,
    edges_y: np.ndarray,
    title: str,
    loss: np.ndarray | None = None,
    log_loss: bool = False,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """Discrete learning states: density map with watershed regions, and state vs step.

    steps: (S,) training steps. state: (S,) integer state (watershed region label) of each
    recorded step. embedding: (S, 2) 2-D embedding of the recorded steps. density: (NY, NX)
    point density on the grid edges_x (NX + 1,) by edges_y (NY + 1,); row i is y bin i and
    column j x bin j (image / heatmap convention, i.e. np.histogram2d(x, y)[0].T).
    labels_map: (NY, NX) integer region label of each grid cell (same values as `state`).
    loss: (S,) optional loss per step, drawn on a secondary y axis of the right panel
    (logarithmic when `log_loss`).
    Left panel: "density" heatmap (z = density, at the cell centres), "region borders"
    (grey polyline along every cell edge between cells of different labels), "trajectory"
    (faint line through the embedding in step order), one marker trace per state (sorted
    states, colour i for the i-th, named "state s", legend entries on the right panel only)
    and "region labels" (text "s" at the mean cell centre of each state's region, for the
    states present in labels_map). Right panel: "state" (grey step line, state vs step),
    one marker trace per state in the same colours, then "loss" if given.
    The traces of records (trajectory, state markers, state and loss lines) draw at most
    `max_points` evenly spaced records (first and last included); the density map and the
    regions are those of every record.
    """
    steps = _vector(steps, "steps")
    n = len(steps)
    state = np.asarray(state).ravel()
    if len(state) != n:
        raise ValueError(f"state must have {n} entries; got {len(state)}")
    emb = np.asarray(embedding, dtype=float)
    if emb.shape != (n, 2):
        raise ValueError(f"embedding must be ({n}, 2); got {emb.shape}")
    dens = np.asarray(density, dtype=float)
    if dens.ndim != 2:
        raise ValueError(f"density must be (NY, NX); got {dens.shape}")
    cx = _centres(edges_x, "edges_x", dens.shape[1])
    cy = _centres(edges_y, "edges_y", dens.shape[0])
    labels = np.asarray(labels_map)
    if labels.shape != dens.shape:
        raise ValueError(f"labels_map must match density {dens.shape}; got {labels.shape}")
    loss = None if loss is None else _vector(loss, "loss", n)
    _check_max_points(max_points)
    states = sorted(dict.fromkeys(state.tolist()))  # of every record: legend and labels
    drawn = evenly(n, max_points)
    steps, state, emb = steps[drawn], state[drawn], emb[drawn]
    loss = None if loss is None else loss[drawn]

    fig = make_subplots(
        1, 2, specs=[[{}, {"secondary_y": loss is not None}]], horizontal_spacing=0.14,
        subplot_titles=["state space (density, watershed regions)", "state over training"],
    )  # fmt: skip
    fig.add_trace(
        go.Heatmap(
            x=cx, y=cy, z=dens, colorscale="Blues", name="density",
            colorbar=dict(title=dict(text="density"), x=0.44, len=0.9, thickness=12),
        ),
        1, 1,
    )  # fmt: skip
    bx, by = _borders(labels, np.asarray(edges_x, float), np.asarray(edges_y, float))
    fig.add_trace(
        go.Scatter(x=bx, y=by, mode="lines", name="region borders", showlegend=False,
                   line=dict(color="dimgrey", width=1.5), hoverinfo="skip"),
        1, 1,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=emb[:, 0], y=emb[:, 1], mode="lines", name="trajectory", showlegend=False,
                   line=dict(color=FAINT, width=1), hoverinfo="skip"),
        1, 1,
    )  # fmt: skip
    for i, s in enumerate(states):
        rows = state == s
        fig.add_trace(
            go.Scatter(
                x=emb[rows, 0], y=emb[rows, 1], mode="markers", name=f"state {s}",
                legendgroup=f"state {s}", showlegend=False,
                marker=dict(color=colour(i), size=5, line=dict(color="white", width=0.5)),
                hovertext=[f"step {v:g}, state {s}" for v in steps[rows]], hoverinfo="text",
            ),
            1, 1,
        )  # fmt: skip
    gx, gy = np.meshgrid(cx, cy)
    present = [s for s in states if (labels == s).any()]
    fig.add_trace(
        go.Scatter(
            x=[float(gx[labels == s].mean()) for s in present],
            y=[float(gy[labels == s].mean()) for s in present], text=[str(s) for s in present],
            mode="text", name="region labels", showlegend=False, hoverinfo="skip",
            textfont=dict(size=14, color="black"),
        ),
        1, 1,
    )  # fmt: skip
    right = dict(row=1, col=2)
    if loss is not None:
        right["secondary_y"] = False
    order = np.argsort(steps, kind="stable")
    fig.add_trace(
        go.Scatter(x=steps[order], y=state[order], mode="lines", name="state", showlegend=False,
                   line=dict(color="lightgrey", shape="hv", width=1), hoverinfo="skip"),
        **right,
    )  # fmt: skip
    for i, s in enumerate(states):
        rows = state == s
        fig.add_trace(
            go.Scatter(
                x=steps[rows], y=state[rows], mode="markers", name=f"state {s}",
                legendgroup=f"state {s}", marker=dict(color=colour(i), size=6),
            ),
            **right,
        )  # fmt: skip
    if loss is not None:
        fig.add_trace(
            go.Scatter(x=steps[order], y=loss[order], mode="lines", name="loss",
                       line=dict(color="black", width=1.5, dash="dot")),
            row=1, col=2, secondary_y=True,
        )  # fmt: skip
        fig.update_yaxes(title_text="loss", type="log" if log_loss else "linear", row=1, col=2,
                         secondary_y=True, showgrid=False)  # fmt: skip
    fig.update_xaxes(title_text="embedding 1", row=1, col=1)
    fig.update_yaxes(title_text="embedding 2", row=1, col=1)
    fig.update_xaxes(title_text="training step", row=1, col=2)
    fig.update_yaxes(title_text="state", tickmode="array", tickvals=states, **right)
    fig.update_layout(title=title, height=500, **LAYOUT)
    return fig
