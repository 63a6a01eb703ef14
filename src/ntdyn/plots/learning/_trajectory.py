"""The parameter vector's PCA trajectory over training, and the power spectra of its PCs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ntdyn.plots.learning._common import MAX_POINTS, _check_max_points, _require, _vector
from ntdyn.plots.sampling import evenly
from ntdyn.plots.style import LAYOUT, SEQUENTIAL, colour


def parameter_trajectory_figure(
    scores: np.ndarray,
    steps: np.ndarray,
    explained_variance_ratio: np.ndarray,
    title: str,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """The parameter vector's path through its top PCs, coloured by training step.

    scores: (S, k >= 2) PCA scores of the S recorded parameter vectors (row s at training
    step steps[s]); the first 3 columns are drawn with go.Scatter3d, or 2 with go.Scatter
    when k == 2. steps: (S,) training steps. explained_variance_ratio: (>= n shown,)
    fraction of the trajectory's variance per PC, shown in the axis titles "PC1 (x% var)".
    Traces: "trajectory" (lines + markers; marker colour = steps on the sequential scale
    with a colourbar titled "step"; in 3-D the line is coloured by step too, in 2-D it is
    grey), then "start" (square) and "end" (diamond) markers at the first and last rows.
    Longer trajectories are drawn at `max_points` evenly spaced records (first and last
    included).
    """
    p = np.asarray(scores, dtype=float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"scores must be (S, k >= 2); got {p.shape}")
    k = min(p.shape[1], 3)
    steps = _vector(steps, "steps", len(p))
    _check_max_points(max_points)
    rows = evenly(len(p), max_points)
    p, steps = p[rows], steps[rows]
    ratio = np.asarray(explained_variance_ratio, dtype=float).ravel()
    if len(ratio) < k:
        raise ValueError(f"explained_variance_ratio needs >= {k} entries; got {len(ratio)}")
    axes = [f"PC{i + 1} ({100 * r:.1f}% var)" for i, r in enumerate(ratio[:k])]
    marker = dict(
        color=steps, colorscale=SEQUENTIAL, size=4 if k == 3 else 7, showscale=True,
        colorbar=dict(title=dict(text="step")),
    )  # fmt: skip
    hover = [f"step {s:g}" for s in steps]
    ends = [("start", 0, "square"), ("end", -1, "diamond")]
    fig = go.Figure()
    if k == 3:
        fig.add_trace(
            go.Scatter3d(
                x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="lines+markers", name="trajectory",
                marker=marker, line=dict(color=steps, colorscale=SEQUENTIAL, width=4),
                hovertext=hover, hoverinfo="text",
            )
        )  # fmt: skip
        for name, i, symbol in ends[: 2 if len(p) else 0]:
            fig.add_trace(
                go.Scatter3d(
                    x=p[[i], 0], y=p[[i], 1], z=p[[i], 2], mode="markers", name=name,
                    marker=dict(color="black", size=6, symbol=symbol),
                )
            )  # fmt: skip
        fig.update_layout(scene=dict(xaxis_title=axes[0], yaxis_title=axes[1],
                                     zaxis_title=axes[2]))  # fmt: skip
    else:
        fig.add_trace(
            go.Scatter(
                x=p[:, 0], y=p[:, 1], mode="lines+markers", name="trajectory", marker=marker,
                line=dict(color="grey", width=1), hovertext=hover, hoverinfo="text",
            )
        )  # fmt: skip
        for name, i, symbol in ends[: 2 if len(p) else 0]:
            fig.add_trace(
                go.Scatter(
                    x=p[[i], 0], y=p[[i], 1], mode="markers", name=name,
                    marker=dict(color="black", size=10, symbol=symbol),
                )
            )  # fmt: skip
        fig.update_xaxes(title_text=axes[0])
        fig.update_yaxes(title_text=axes[1])
    fig.update_layout(title=title, legend=dict(x=0, y=1), **LAYOUT)
    return fig


def power_spectra_figure(
    spectra: pd.DataFrame, title: str, n_components: int = 3, max_points: int = MAX_POINTS
) -> go.Figure:
    """Power spectra of the first PCA components of the parameter trajectory, log-log.

    spectra: long table with columns component (PC index), frequency (cycles per training
    step) and power (units of score² per frequency). One line per component, for the first
    `n_components` components in ascending order, each sorted by frequency and named
    "component c". Rows with frequency <= 0 (the DC term) or power <= 0 cannot be drawn on
    log axes and are dropped. Both axes are logarithmic. A component with more than
    `max_points` frequencies is drawn as the mean power (and mean frequency) in `max_points`
    log-spaced frequency bins: the periodogram averaged where frequencies are dense (high
    frequencies), every frequency kept where a bin holds one.
    """
    _require(spectra, ["component", "frequency", "power"], "spectra")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1; got {n_components}")
    _check_max_points(max_points)
    components = sorted(spectra["component"].unique())[:n_components]
    fig = go.Figure()
    for i, comp in enumerate(components):
        g = spectra[spectra["component"] == comp].sort_values("frequency", kind="stable")
        f = g["frequency"].to_numpy(dtype=float)
        pw = g["power"].to_numpy(dtype=float)
        keep = (f > 0) & (pw > 0)
        f, pw = _log_binned(f[keep], pw[keep], max_points)
        fig.add_trace(
            go.Scatter(
                x=f, y=pw, mode="lines", name=f"component {comp}",
                line=dict(color=colour(i)),
            )
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="frequency (cycles / training step)", yaxis_title="power",
        xaxis_type="log", yaxis_type="log", **LAYOUT,
    )  # fmt: skip
    return fig


def _log_binned(
    frequency: np.ndarray, power: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean frequency and mean power in `n_bins` log-spaced bins (empty bins dropped), or the
    inputs unchanged when they have at most `n_bins` points. frequency > 0, ascending."""
    if len(frequency) <= n_bins:
        return frequency, power
    edges = np.geomspace(frequency[0], frequency[-1], n_bins + 1)
    which = np.clip(np.searchsorted(edges, frequency, side="right") - 1, 0, n_bins - 1)
    binned = pd.DataFrame({"bin": which, "f": frequency, "p": power}).groupby("bin").mean()
    return binned["f"].to_numpy(), binned["p"].to_numpy()
