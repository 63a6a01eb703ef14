"""Population-dynamics figures: PCA scree, trajectories in PC space, eigenvalues, tangling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.boxes import box_statistics as box_statistics  # re-exported (moved)
from ntdyn.plots.boxes import box_trace
from ntdyn.plots.style import LAYOUT, colour, sample_colour


def scree_figure(explained_variance_ratio: np.ndarray, title: str) -> go.Figure:
    """Fraction of variance per PC (bars) and its cumulative sum (line), PCs numbered from 1.

    explained_variance_ratio: (k,) fractions of the total variance (sum <= 1).
    """
    ratio = np.asarray(explained_variance_ratio, dtype=float).ravel()
    pcs = np.arange(1, ratio.size + 1)
    fig = go.Figure(
        [
            go.Bar(x=pcs, y=ratio, name="per PC", marker_color=colour(0)),
            go.Scatter(
                x=pcs,
                y=np.cumsum(ratio),
                mode="lines+markers",
                name="cumulative",
                line=dict(color=colour(1)),
            ),  # fmt: skip
        ]
    )
    fig.update_xaxes(title_text="principal component", tickmode="linear", dtick=1)
    fig.update_yaxes(title_text="fraction of variance", range=[0, 1.05])
    fig.update_layout(title=title, **LAYOUT)
    return fig


def _value_colours(values: pd.Series) -> dict:
    """Colour per distinct value: sequential (sorted) for numbers, qualitative otherwise."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = sorted(values.unique())
        return {v: sample_colour(i, len(distinct)) for i, v in enumerate(distinct)}
    return {v: colour(i) for i, v in enumerate(dict.fromkeys(values))}


def _label(v) -> str:
    return f"{v:g}" if isinstance(v, float | np.floating) else str(v)


def pc_trajectories_figure(
    projected: np.ndarray,
    conditions: pd.DataFrame,
    colour_by: str,
    title: str,
    fixed_points: np.ndarray | None = None,
    fp_stable: np.ndarray | None = None,
) -> go.Figure:
    """Trajectories in the space of the first 3 PCs, coloured by `conditions[colour_by]`.

    projected: (C, T, >=3) PC coordinates, one trajectory per row of `conditions`.
    Traces: one line per trajectory (one legend entry per value of `colour_by`), one marker
    trace of the start points, then optionally fixed points (M, >=3) in the same PC space:
    filled circles where fp_stable (M,) is True, open circles where False, diamonds if
    fp_stable is None (stability unknown). Empty fixed-point groups get no trace.
    """
    # Coordinates drawn as float32: half the file of float64, far finer than the plot shows.
    projected = np.asarray(projected, dtype=np.float32)
    if projected.ndim != 3 or projected.shape[-1] < 3:
        raise ValueError(f"projected must be (C, T, >=3); got {projected.shape}")
    if len(conditions) != projected.shape[0]:
        raise ValueError(f"{len(conditions)} condition rows but {projected.shape[0]} trajectories")
    values = conditions[colour_by]
    colours = _value_colours(values)
    fig = go.Figure()
    shown = set()
    for i, v in enumerate(values):
        p = projected[i]
        fig.add_trace(
            go.Scatter3d(
                x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="lines",
                line=dict(color=colours[v], width=3), name=f"{colour_by} = {_label(v)}",
                legendgroup=str(v), showlegend=v not in shown, hoverinfo="skip",
            )
        )  # fmt: skip
        shown.add(v)
    start = projected[:, 0]
    fig.add_trace(
        go.Scatter3d(
            x=start[:, 0], y=start[:, 1], z=start[:, 2], mode="markers", name="start",
            marker=dict(size=3, color=[colours[v] for v in values], symbol="square"),
        )
    )  # fmt: skip
    if fixed_points is not None:
        fp = np.asarray(fixed_points, dtype=np.float32)
        if fp.ndim != 2 or fp.shape[-1] < 3:
            raise ValueError(f"fixed_points must be (M, >=3); got {fp.shape}")
        if fp_stable is None:
            groups = [("fixed point", np.ones(len(fp), bool), "diamond")]
        else:
            stable = np.asarray(fp_stable, dtype=bool).ravel()
            if stable.shape != (len(fp),):
                raise ValueError(f"fp_stable must be ({len(fp)},); got {stable.shape}")
            groups = [("stable FP", stable, "circle"), ("unstable FP", ~stable, "circle-open")]
        for name, rows, symbol in groups:
            if rows.any():
                fig.add_trace(
                    go.Scatter3d(
                        x=fp[rows, 0], y=fp[rows, 1], z=fp[rows, 2], mode="markers", name=name,
                        marker=dict(size=5, color="black", symbol=symbol),
                    )
                )  # fmt: skip
    fig.update_layout(
        title=title,
        scene=dict(xaxis_title="PC1", yaxis_title="PC2", zaxis_title="PC3"),
        **LAYOUT,
    )
    return fig


def eigenvalue_polar_figure(eigenvalues: dict[str, np.ndarray], title: str) -> go.Figure:
    """Eigenvalues in the complex plane with the unit circle (discrete-time stability bound).

    eigenvalues: label (e.g. "SISU 0") -> complex array of any shape (flattened), e.g. the
    (M, H) spectra of M fixed points' Jacobians. First trace: the unit circle; then one
    marker trace per label. Axes have equal scale so the circle is round.
    """
    theta = np.linspace(0, 2 * np.pi, 201)
    fig = go.Figure(
        go.Scatter(
            x=np.cos(theta), y=np.sin(theta), mode="lines", name="unit circle",
            line=dict(color="grey", dash="dash", width=1), hoverinfo="skip",
        )
    )  # fmt: skip
    for i, (label, ev) in enumerate(eigenvalues.items()):
        ev = np.asarray(ev).ravel()
        fig.add_trace(
            go.Scatter(
                # float32: half the file of float64, far finer than the plot shows
                x=ev.real.astype(np.float32), y=ev.imag.astype(np.float32), mode="markers",
                name=str(label),
                marker=dict(color=colour(i), size=5, opacity=0.7),
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="Re λ", zeroline=True)
    fig.update_yaxes(title_text="Im λ", zeroline=True, scaleanchor="x", scaleratio=1)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def tangling_figure(tangling: pd.DataFrame, x: str, colour_by: str | None, title: str) -> go.Figure:
    """Box plots of tangling (column `Q`, 1/s^2) vs `x`, optionally grouped by `colour_by`.

    The boxes are drawn from their statistics (`boxes.box_trace`), so the figure's size
    depends on the number of boxes, not of (condition, step) values: at research scale
    there are millions.
    """
    if "Q" not in tangling.columns:
        raise ValueError(f"tangling needs a column 'Q'; got {list(tangling.columns)}")
    fig = go.Figure()
    groups = [(None, tangling)] if colour_by is None else tangling.groupby(colour_by, sort=True)
    for i, (value, g) in enumerate(groups):
        fig.add_trace(box_trace(
            [(str(xv), q) for xv, q in g["Q"].groupby(g[x], sort=True)],
            name=str(value) if value is not None else "Q", colour=colour(i),
            showlegend=colour_by is not None,
        ))  # fmt: skip
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text="tangling Q (1/s²)")
    fig.update_layout(title=title, boxmode="group", legend_title_text=colour_by, **LAYOUT)
    return fig


def dose_response_figure(measures: pd.DataFrame, measure_names: list[str], title: str) -> go.Figure:
    """Behaviour measures vs stimulation amplitude, a line per protocol (mean +- s.e.m.).

    measures: one row per trial with columns protocol, amplitude and the measures.
    One subplot per measure; amplitude 0 of each protocol is its unstimulated control.
    """
    fig = make_subplots(1, len(measure_names), subplot_titles=measure_names)
    for j, m in enumerate(measure_names, start=1):
        for i, (protocol, g) in enumerate(measures.groupby("protocol", sort=True)):
            stats = g.groupby("amplitude")[m].agg(["mean", "sem"]).reset_index()
            fig.add_trace(
                go.Scatter(
                    x=stats["amplitude"], y=stats["mean"], mode="lines+markers",
                    error_y=dict(type="data", array=stats["sem"].fillna(0)), name=protocol,
                    line=dict(color=colour(i)), legendgroup=protocol, showlegend=j == 1,
                ),  # fmt: skip
                1, j,
            )  # fmt: skip
        fig.update_xaxes(title_text="amplitude", row=1, col=j)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def hessian_spectra_figure(hessian: pd.DataFrame, title: str) -> go.Figure:
    """Eigenvalues of the Hessian of q at the steady-state point (log scale), a line per SISU.

    hessian: columns sisu, mode, eigenvalue (ascending per SISU). Small eigenvalues
    are the slow directions of the landscape.
    """
    fig = go.Figure()
    values = sorted(hessian["sisu"].unique())
    for i, s in enumerate(values):
        g = hessian[hessian["sisu"] == s]
        fig.add_trace(go.Scatter(
            x=g["mode"], y=np.maximum(g["eigenvalue"], 1e-16), mode="lines+markers",
            name=f"SISU {_label(s)}", line=dict(color=sample_colour(i, len(values))),
        ))  # fmt: skip
    fig.update_layout(title=title, xaxis_title="mode (ascending)", yaxis_title="eigenvalue",
                      yaxis_type="log", **LAYOUT)  # fmt: skip
    return fig


def eigvec_responses_figure(responses: pd.DataFrame, modes: pd.DataFrame, title: str) -> go.Figure:
    """Force response |f(t)| after a kick along each top Jacobian eigenvector (one SISU).

    responses: columns mode, step, fx, fy (N). modes: mode, abs_eigenvalue, decay.
    """
    fig = go.Figure()
    info = modes.set_index("mode")
    for i, (mode, g) in enumerate(responses.groupby("mode", sort=True)):
        lam, decay = info.at[mode, "abs_eigenvalue"], info.at[mode, "decay"]
        fig.add_trace(go.Scatter(
            x=g["step"], y=np.hypot(g["fx"], g["fy"]), mode="lines",
            name=f"mode {mode}: |λ| {lam:.3f}, decay {decay:.3f}", line=dict(color=colour(i)),
        ))  # fmt: skip
    fig.update_layout(title=title, xaxis_title="steps after the kick", yaxis_title="|force| (N)",
                      yaxis_type="log", **LAYOUT)  # fmt: skip
    return fig


def context_influence_figure(context: pd.DataFrame, group: str, title: str) -> go.Figure:
    """How SISU moves the steady-state point and changes its dynamics, a line per `group`.

    context: columns sisu, fp_shift, max_abs_eigenvalue, effective_gain and `group`.
    """
    panels = ["fp_shift", "max_abs_eigenvalue", "effective_gain"]
    fig = make_subplots(1, len(panels), subplot_titles=panels)
    for i, (name, g) in enumerate(context.groupby(group, sort=False)):
        g = g.sort_values("sisu")
        for j, col in enumerate(panels, start=1):
            fig.add_trace(go.Scatter(
                x=g["sisu"], y=g[col], mode="lines+markers", name=str(name),
                line=dict(color=colour(i)), legendgroup=str(name), showlegend=j == 1,
            ), 1, j)  # fmt: skip
            fig.update_xaxes(title_text="SISU", row=1, col=j)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def reach_context_figure(context: pd.DataFrame, title: str) -> go.Figure:
    """Fixed-point shift from the lowest SISU and spectral radius along the reach, per SISU.

    context: columns sisu, step, fp_shift, max_abs_eigenvalue (averaged over directions).
    """
    fig = make_subplots(1, 2, subplot_titles=["fixed-point shift", "max |λ|"])
    values = sorted(context["sisu"].unique())
    for i, s in enumerate(values):
        g = context[context["sisu"] == s].groupby("step")[["fp_shift", "max_abs_eigenvalue"]].mean()
        for j, col in enumerate(["fp_shift", "max_abs_eigenvalue"], start=1):
            fig.add_trace(go.Scatter(
                x=g.index, y=g[col], mode="lines", name=f"SISU {_label(s)}",
                line=dict(color=sample_colour(i, len(values))), legendgroup=str(s),
                showlegend=j == 1,
            ), 1, j)  # fmt: skip
            fig.update_xaxes(title_text="step", row=1, col=j)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def effective_directions_figure(directions: pd.DataFrame, title: str) -> go.Figure:
    """Each unit's mean effective direction over the reach (reach frame), a colour per SISU.

    directions: columns unit, sisu, parallel, lateral (N per unit activity).
    """
    fig = go.Figure()
    mean = directions.groupby(["sisu", "unit"], as_index=False)[["parallel", "lateral"]].mean()
    values = sorted(mean["sisu"].unique())
    for i, s in enumerate(values):
        g = mean[mean["sisu"] == s]
        fig.add_trace(go.Scatter(
            x=g["parallel"], y=g["lateral"], mode="markers", name=f"SISU {_label(s)}",
            text=[f"unit {u}" for u in g["unit"]], marker=dict(color=sample_colour(i, len(values))),
        ))  # fmt: skip
    fig.add_hline(y=0, line=dict(color="grey", width=1))
    fig.add_vline(x=0, line=dict(color="grey", width=1))
    fig.update_layout(title=title, xaxis_title="parallel to the reach (N)",
                      yaxis_title="lateral (N)", **LAYOUT)  # fmt: skip
    fig.update_yaxes(scaleanchor="x")
    return fig
