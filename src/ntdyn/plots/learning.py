"""Training-dynamics figures: how an MLP classifier learns, recorded every k training steps.

Builders for the "training_dynamics" pipeline: learning curves, the PCA trajectory of the
parameters, power spectra of that trajectory, a t-SNE map of units, correlation vs weight of
unit pairs, convergent cross mapping (CCM), discrete learning states on a density map, and an
autoregressive (AR) forecast of the loss. Steps are optimiser steps (training batches).

A figure of per-record series draws at most `max_points` (default MAX_POINTS) records per
line, evenly spaced with the first and last included (`sampling.evenly`): the trace grows
with the number of steps, its figures do not (a million-step run recorded every 10 steps
would otherwise write 10^5 points per line).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.sampling import evenly
from ntdyn.plots.style import LAYOUT, SEQUENTIAL, band, colour

FAINT = "rgba(128, 128, 128, 0.25)"
OBSERVED_COLOUR = "black"
EXTRA_SCALARS = ("learning_rate", "grad_norm", "weight_density")
# Records per line at most: 1000 points resolve a curve across a screen's width and keep a
# figure well under 1 MB however long the training ran.
MAX_POINTS = 1000


def _check_max_points(max_points: int) -> None:
    if max_points < 2:
        raise ValueError(f"max_points = {max_points!r}: must be an integer >= 2")


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} needs columns {missing}; got {list(table.columns)}")


def _vector(x, name: str, n: int | None = None) -> np.ndarray:
    """1-D float array; ValueError naming `name` unless it has `n` entries (when given)."""
    v = np.asarray(x, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {v.shape}")
    if n is not None and len(v) != n:
        raise ValueError(f"{name} must have {n} entries; got {len(v)}")
    return v


def _scaled_to_max(values: np.ndarray) -> np.ndarray:
    """values / max |finite value|; unchanged when there is none or it is 0."""
    finite = np.abs(values[np.isfinite(values)])
    peak = finite.max() if finite.size else 0.0
    return values / peak if peak > 0 else values


def learning_curves_figure(
    scalars: pd.DataFrame, title: str, log_loss: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Train/test loss and accuracy vs training step, plus optimiser scalars when recorded.

    scalars: one row per recorded step with columns step (int, optimiser steps), train_loss,
    test_loss (cross-entropy, nats), train_accuracy, test_accuracy (fractions or %, plotted
    as given) and optionally learning_rate, grad_norm (L2 norm of the gradient) and
    weight_density (fraction of non-negligible weights). Rows are sorted by step.
    Rows (make_subplots, shared x): 1 "loss": "train loss" (solid) and "test loss" (dashed),
    colour 0, y logarithmic when `log_loss`; 2 "accuracy": "train accuracy" (solid) and
    "test accuracy" (dashed), colour 1. Row 3, only when any of learning_rate / grad_norm /
    weight_density is present: one line per present column (that order, colours 2, 3, 4),
    each divided by its own largest finite |value| so that quantities with different units
    share one axis in [-1, 1]; the hover shows the raw value. Longer traces are drawn at
    `max_points` evenly spaced records (first and last included; the scaling of row 3 uses
    every record).
    """
    _require(scalars, ["step", "train_loss", "test_loss", "train_accuracy", "test_accuracy"],
             "scalars")  # fmt: skip
    _check_max_points(max_points)
    data = scalars.sort_values("step", kind="stable")
    scaled = {name: _scaled_to_max(data[name].to_numpy(dtype=float)) for name in EXTRA_SCALARS
             if name in data.columns}  # fmt: skip
    rows_drawn = evenly(len(data), max_points)
    data = data.iloc[rows_drawn]
    step = data["step"].to_numpy()
    extras = [c for c in EXTRA_SCALARS if c in data.columns]
    titles = ["loss", "accuracy"] + (
        ["optimiser / weights (each ÷ its max |value|)"] * bool(extras)
    )
    rows = len(titles)
    fig = make_subplots(rows, 1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08)
    for row, quantity, c in [(1, "loss", colour(0)), (2, "accuracy", colour(1))]:
        for split, dash in [("train", "solid"), ("test", "dash")]:
            fig.add_trace(
                go.Scatter(
                    x=step, y=data[f"{split}_{quantity}"].to_numpy(dtype=float), mode="lines",
                    name=f"{split} {quantity}", line=dict(color=c, dash=dash),
                ),
                row, 1,
            )  # fmt: skip
    for i, name in enumerate(extras):
        raw = data[name].to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=step, y=scaled[name][rows_drawn], mode="lines", name=name, customdata=raw,
                line=dict(color=colour(2 + i)),
                hovertemplate=f"step %{{x}}<br>{name} %{{customdata:.4g}}<extra></extra>",
            ),
            3, 1,
        )  # fmt: skip
    fig.update_yaxes(title_text="loss", type="log" if log_loss else "linear", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=2, col=1)
    if extras:
        fig.update_yaxes(title_text="÷ max |value|", row=3, col=1)
    fig.update_xaxes(title_text="training step", row=rows, col=1)
    fig.update_layout(title=title, height=250 + 200 * rows, **LAYOUT)
    return fig


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
