"""Part 2 figures: SISU (scalar information about system uncertainty) as a context input.

SISU-step responses, unit stimulation profiles, regression coefficients over units,
ablation rankings and behaviour measures vs evaluation SISU.

Time convention as in `reaching.py`: sample k of a (N, K, ...) array is drawn at t = (k + 1) * dt.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.boxes import box_trace
from ntdyn.plots.style import LAYOUT, SEQUENTIAL, band, colour, sample_colour

TASKS = ("steady", "reach")
COMPONENTS = ("parallel", "lateral")
FORCE_COMPONENTS = ("x", "y")


def _time(n_steps: int, dt: float) -> np.ndarray:
    return np.arange(1, n_steps + 1) * dt


def _band(t: np.ndarray, mean: np.ndarray, std: np.ndarray, c: str, group: str) -> go.Scatter:
    """Filled mean +- std band (no legend entry, no hover)."""
    return band(t, mean - std, mean + std, c, group)


def _sisu_pert_name(curl: float, start: float, end: float) -> str:
    sisu = f"{start:g}" if np.isclose(start, end) else f"{start:g}→{end:g}"
    return f"curl {curl:g}, SISU {sisu}"


def sisu_pert_figure(
    aligned_position: np.ndarray, conditions: pd.DataFrame, dt: float, step_at: int, title: str
) -> go.Figure:
    """Position responses to plant (curl) and SISU perturbations, all conditions on one figure.

    aligned_position: (N, K, 2) [parallel, lateral] position in m relative to the start, one
    trial per row of `conditions` (columns curl_amp, sisu_start, sisu_end, task).
    Columns: task ("steady", "reach"; only those present); rows: parallel, lateral component.
    One line per (curl_amp, sisu_start, sisu_end) condition: mean over trials with a +- std
    band; colour = curl on (curl_amp != 0) / off, dash = SISU stepped (sisu_start != sisu_end).
    A dotted vertical line at t = step_at * dt (s) marks the SISU step.
    """
    if len(conditions) != aligned_position.shape[0]:
        raise ValueError(f"{len(conditions)} condition rows but {aligned_position.shape[0]} trials")
    present = set(conditions["task"])
    tasks = [t for t in TASKS if t in present]
    if not tasks:
        raise ValueError(f"no trials with task in {TASKS}; got {sorted(present)}")
    fig = make_subplots(
        2,
        len(tasks),
        shared_xaxes=True,
        subplot_titles=[f"{task}: {comp}" for comp in COMPONENTS for task in tasks],
    )
    curl = conditions["curl_amp"].to_numpy(float)
    start = conditions["sisu_start"].to_numpy(float)
    end = conditions["sisu_end"].to_numpy(float)
    task = conditions["task"].to_numpy()
    keys = sorted(
        {(c, s, e) for c, s, e in zip(curl, start, end, strict=True)},
        key=lambda k: (k[0] != 0, k[0], not np.isclose(k[1], k[2]), k[1], k[2]),
    )
    t = _time(aligned_position.shape[1], dt)
    shown: set[str] = set()
    for j, task_name in enumerate(tasks, start=1):
        for c_amp, s0, s1 in keys:
            rows = (task == task_name) & (curl == c_amp) & (start == s0) & (end == s1)
            if not rows.any():
                continue
            name = _sisu_pert_name(c_amp, s0, s1)
            c = colour(1 if c_amp != 0 else 0)
            dash = "solid" if np.isclose(s0, s1) else "dash"
            for comp in (0, 1):
                arr = aligned_position[rows, :, comp]
                mean, std = arr.mean(0), arr.std(0)
                fig.add_trace(_band(t, mean, std, c, name), comp + 1, j)
                fig.add_trace(
                    go.Scatter(
                        x=t,
                        y=mean,
                        name=name,
                        line=dict(color=c, dash=dash),
                        legendgroup=name,
                        showlegend=name not in shown,
                    ),
                    comp + 1,
                    j,
                )
                shown.add(name)
        fig.update_xaxes(title_text="time (s)", row=2, col=j)
    for comp, label in enumerate(COMPONENTS, start=1):
        fig.update_yaxes(title_text=f"{label} (m)", row=comp, col=1)
    fig.add_vline(x=step_at * dt, line=dict(dash="dot", color="grey", width=1))
    fig.update_layout(title=title, **LAYOUT)
    return fig


def unit_response_profiles_figure(
    force: np.ndarray,
    conditions: pd.DataFrame,
    units: list[int],
    dt: float,
    stim_window: tuple[int, int],
    title: str,
) -> go.Figure:
    """Force response to stimulation of single units, relative to the unstimulated baseline.

    force: (N, K, 2) control force (N) per trial, one trial per row of `conditions`
    (columns unit (-1 = unstimulated baseline), stim_amp, curl_amp, sisu).
    One column per unit in `units`; rows: force x, force y. Each line is the mean over the
    unit's stimulated trials (stim_amp > 0) in one (curl_amp, sisu) context minus the mean of
    the baseline trials of that context; colour = sisu (sequential), dashed when curl_amp > 0.
    The stimulation window [stim_window[0] * dt, stim_window[1] * dt) s is shaded.
    """
    if len(conditions) != force.shape[0]:
        raise ValueError(f"{len(conditions)} condition rows but {force.shape[0]} trials")
    unit = conditions["unit"].to_numpy()
    stim = conditions["stim_amp"].to_numpy(float) > 0
    curl = conditions["curl_amp"].to_numpy(float)
    sisu = conditions["sisu"].to_numpy(float)
    is_base = unit == -1
    contexts = sorted({(c, s) for c, s in zip(curl[~is_base], sisu[~is_base], strict=True)})
    sisus = sorted({s for _, s in contexts})
    baseline = {}
    for c_amp, s in contexts:
        rows = is_base & (curl == c_amp) & (sisu == s)
        if not rows.any():
            raise ValueError(f"no baseline trials (unit == -1) for curl_amp={c_amp}, sisu={s}")
        baseline[c_amp, s] = force[rows].mean(0)

    fig = make_subplots(
        2,
        len(units),
        shared_xaxes=True,
        shared_yaxes=True,
        subplot_titles=[f"unit {u}" for u in units] + [""] * len(units),
    )
    t = _time(force.shape[1], dt)
    shown: set[str] = set()
    for j, u in enumerate(units, start=1):
        for c_amp, s in contexts:
            rows = (unit == u) & stim & (curl == c_amp) & (sisu == s)
            if not rows.any():
                continue
            response = force[rows].mean(0) - baseline[c_amp, s]  # (K, 2)
            name = f"curl {c_amp:g}, SISU {s:g}"
            line = dict(
                color=sample_colour(sisus.index(s), len(sisus)),
                dash="dash" if c_amp > 0 else "solid",
            )
            for comp in (0, 1):
                fig.add_trace(
                    go.Scatter(
                        x=t,
                        y=response[:, comp],
                        name=name,
                        line=line,
                        legendgroup=name,
                        showlegend=name not in shown,
                    ),
                    comp + 1,
                    j,
                )
                shown.add(name)
        fig.update_xaxes(title_text="time (s)", row=2, col=j)
    for comp, label in enumerate(FORCE_COMPONENTS, start=1):
        fig.update_yaxes(title_text=f"Δ force {label} (N)", row=comp, col=1)
    fig.add_vrect(
        x0=stim_window[0] * dt,
        x1=stim_window[1] * dt,
        fillcolor="grey",
        opacity=0.15,
        line_width=0,
        layer="below",
    )
    fig.update_layout(title=title, **LAYOUT)
    return fig


def regression_scatter_figure(
    coefficients: pd.DataFrame, x: str, y: str, title: str, colour_by: str | None = None
) -> go.Figure:
    """Scatter over units of two regression outputs (e.g. coef_curl_amp vs coef_sisu).

    coefficients: one row per unit; column `unit` (int) plus the columns `x`, `y` and,
    optionally, `colour_by` (continuous colour bar). Hover text names the unit.
    """
    marker: dict = dict(size=8)
    if colour_by is not None:
        marker.update(
            color=coefficients[colour_by].to_numpy(float),
            colorscale=SEQUENTIAL,
            showscale=True,
            colorbar=dict(title=dict(text=colour_by)),
        )
    else:
        marker.update(color=colour(0))
    fig = go.Figure(
        go.Scatter(
            x=coefficients[x].to_numpy(float),
            y=coefficients[y].to_numpy(float),
            mode="markers",
            marker=marker,
            text=[f"unit {u}" for u in coefficients["unit"]],
            hovertemplate=f"%{{text}}<br>{x} = %{{x:.3g}}<br>{y} = %{{y:.3g}}<extra></extra>",
            showlegend=False,
        )
    )
    zero = dict(color="grey", width=1)
    fig.add_hline(y=0, line=zero, layer="below")
    fig.add_vline(x=0, line=zero, layer="below")
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, **LAYOUT)
    return fig


def ablation_ranking_figure(effects: pd.DataFrame, measure: str, top: int, title: str) -> go.Figure:
    """Horizontal bars of the `top` units whose ablation changes `measure` the most.

    effects: columns unit (int), measure (str), delta (ablated minus intact mean, in the
    measure's units), delta_std (error bar; NaN = none); one row per (unit, measure).
    Bars sorted by |delta|, largest at the top; colour by the sign of delta.
    """
    data = effects[effects["measure"] == measure]
    if data.empty:
        raise ValueError(f"no effects for measure {measure!r}")
    if data["unit"].duplicated().any():
        raise ValueError(f"more than one row per unit for measure {measure!r}")
    order = np.argsort(-data["delta"].abs().to_numpy(float), kind="stable")[:top]
    data = data.iloc[order]
    delta = data["delta"].to_numpy(float)
    std = data["delta_std"].to_numpy(float)
    fig = go.Figure(
        go.Bar(
            x=delta,
            y=[f"unit {u}" for u in data["unit"]],
            orientation="h",
            marker=dict(color=[colour(1) if d > 0 else colour(0) for d in delta]),
            error_x=dict(
                type="data",
                array=[None if np.isnan(s) else float(s) for s in std],
                visible=bool(np.isfinite(std).any()),
            ),
            showlegend=False,
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title=f"Δ {measure} (ablated − intact)",
        yaxis=dict(autorange="reversed"),
        **LAYOUT,
    )
    return fig


def _sorted_unique(values: pd.Series) -> list:
    """Unique values in ascending order (numeric when numeric), NaN last."""
    return list(pd.Series(values.unique()).sort_values(na_position="last"))


def measures_vs_sisu_figure(
    measures: pd.DataFrame, measure: str, colour_by: str, facet: str | None, title: str
) -> go.Figure:
    """Box plots of one behaviour measure vs the evaluation SISU (column sisu, categorical).

    measures: one row per trial (or per evaluation), columns sisu, `measure`, `colour_by`
    (e.g. train__pert__std; discrete colours, one box trace per value) and, if given, `facet`
    (e.g. train__method; one subplot column per value).
    The boxes (quartiles, Tukey whiskers, mean) are drawn from their statistics
    (`boxes.box_trace`): the figure's size depends on the number of boxes, not of trials.
    """
    facets = _sorted_unique(measures[facet]) if facet is not None else [None]
    colours = _sorted_unique(measures[colour_by])
    sisus = [f"{s:g}" for s in sorted(measures["sisu"].astype(float).unique())]
    fig = make_subplots(
        1,
        len(facets),
        shared_yaxes=True,
        subplot_titles=[f"{facet} = {f}" for f in facets] if facet is not None else None,
    )
    for j, f in enumerate(facets, start=1):
        sub = measures if facet is None else measures[measures[facet] == f]
        for ci, cv in enumerate(colours):
            rows = sub[sub[colour_by] == cv] if pd.notna(cv) else sub[sub[colour_by].isna()]
            by_sisu = rows[measure].groupby(rows["sisu"].astype(float), sort=True)
            fig.add_trace(
                box_trace(
                    [(f"{s:g}", v) for s, v in by_sisu],
                    name=str(cv),
                    colour=colour(ci),
                    showlegend=j == 1,
                ),
                1,
                j,
            )
        fig.update_xaxes(
            title_text="SISU", type="category", categoryorder="array", categoryarray=sisus,
            row=1, col=j,
        )  # fmt: skip
    fig.update_yaxes(title_text=measure, row=1, col=1)
    fig.update_layout(title=title, boxmode="group", legend_title_text=colour_by, **LAYOUT)
    return fig
