"""Task-trained source vs data-trained models: shared latents, rates, rollouts, fixed points.

A task-trained RNN (the "source", true latents in its H-dimensional hidden space) simulates
Poisson spikes; data-trained models (SAE-GRU, LFADS, latent evolution) fitted to the spikes
infer latents and rates. Inferred latents and model fixed points are expected already
(affinely) mapped into the source's H-dimensional space.

PCA convention (all builders here): PCs are fitted on the true latents only (rows with any
non-finite value ignored), centred on their mean; every point is projected as
(x - mean) @ components.T. The sign of each component is fixed so that its largest-magnitude
loading is positive (deterministic, like scikit-learn's `svd_flip`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ntdyn.plots.style import LAYOUT, band, colour

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
TRUE_COLOUR = "black"
FAINT = "rgba(128, 128, 128, 0.35)"


def _pca(latents: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k PCs of latents (..., H): mean (H,), components (k, H), variance ratios (k,).

    Components beyond the rank of the data are zero rows with ratio 0.
    """
    x = np.asarray(latents, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    x = x[np.isfinite(x).all(axis=1)]
    h = x.shape[1]
    if len(x) == 0:
        return np.zeros(h), np.zeros((k, h)), np.zeros(k)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    comps = vt[:k]
    rows = np.arange(len(comps))
    signs = np.sign(comps[rows, np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    missing = k - len(comps)
    if missing > 0:
        comps = np.vstack([comps, np.zeros((missing, h))])
        ratio = np.r_[ratio, np.zeros(missing)]
    return mean, comps, ratio[:k]


def _pc_titles(ratio: np.ndarray) -> list[str]:
    return [f"PC{i + 1} ({100 * r:.1f}% var)" for i, r in enumerate(ratio)]


def _line(p: np.ndarray, **kwargs) -> go.Scatter | go.Scatter3d:
    """Scatter3d for 3 coordinates (last axis), Scatter for 2."""
    if p.shape[-1] >= 3:
        return go.Scatter3d(x=p[..., 0], y=p[..., 1], z=p[..., 2], **kwargs)
    return go.Scatter(x=p[..., 0], y=p[..., 1], **kwargs)


def _pc_axes(fig: go.Figure, ratio: np.ndarray) -> None:
    titles = _pc_titles(ratio)
    if len(titles) >= 3:
        fig.update_layout(
            scene=dict(xaxis_title=titles[0], yaxis_title=titles[1], zaxis_title=titles[2])
        )
    else:
        fig.update_xaxes(title_text=titles[0])
        fig.update_yaxes(title_text=titles[1])


def _latents(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"{name} must be (B, T, H); got {x.shape}")
    return x


def shared_pc_latents_figure(
    true_latents: np.ndarray,
    inferred_latents_mapped: np.ndarray,
    title: str,
    n_trials: int = 4,
    n_pcs: int = 3,
) -> go.Figure:
    """True and inferred latents of the first trials in the true latents' top PCs.

    true_latents: (B, T, H) source hidden states. inferred_latents_mapped: (B, T, H) a
    data-trained model's inferred latents, already affinely mapped into the source space.
    PCA (see module docstring) is fitted on `true_latents` only and both are projected onto
    its top `n_pcs` (2 or 3, at most H) components: go.Scatter3d for 3, go.Scatter for 2.
    Traces: for each of the first min(n_trials, B) trials, the true trajectory (solid) then
    the inferred one (dashed), both in the trial's colour; legend groups "true"/"inferred"
    (one legend entry each). Axis titles "PCk (x% var)" give the true latents' variance.
    """
    true = _latents(true_latents, "true_latents")
    inferred = _latents(inferred_latents_mapped, "inferred_latents_mapped")
    if inferred.shape != true.shape:
        raise ValueError(f"inferred {inferred.shape} and true {true.shape} shapes differ")
    if n_pcs not in (2, 3):
        raise ValueError(f"n_pcs must be 2 or 3; got {n_pcs}")
    k = min(n_pcs, true.shape[-1])
    if k < 2:
        raise ValueError(f"need H >= 2 latent dimensions; got {true.shape[-1]}")
    mean, comps, ratio = _pca(true, k)
    p_true = (true - mean) @ comps.T
    p_inf = (inferred - mean) @ comps.T
    fig = go.Figure()
    for i in range(min(n_trials, true.shape[0])):
        c = colour(i)
        for p, name, dash in [(p_true[i], "true", "solid"), (p_inf[i], "inferred", "dash")]:
            fig.add_trace(
                _line(
                    p,
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0,
                    line=dict(color=c, width=3 if dash == "solid" else 2, dash=dash),
                    hovertext=f"trial {i} ({name})",
                    hoverinfo="text",
                )
            )
    _pc_axes(fig, ratio)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def _default_neurons(spikes: np.ndarray, held_out: np.ndarray, n: int = 4) -> np.ndarray:
    """Up to n neurons, about half held-out (at least one if any), most active first."""
    total = np.nansum(spikes, axis=0)
    is_out = np.zeros(spikes.shape[1], bool)
    is_out[held_out] = True

    def by_activity(mask: np.ndarray) -> list[int]:
        idx = np.flatnonzero(mask)
        return list(idx[np.argsort(-total[idx], kind="stable")])

    outs, ins = by_activity(is_out), by_activity(~is_out)
    n = min(n, spikes.shape[1])
    n_out = min(len(outs), max(n // 2, 1 if outs else 0))
    chosen = outs[:n_out] + ins[: n - n_out]
    chosen += outs[n_out : n_out + n - len(chosen)]
    return np.sort(np.asarray(chosen, dtype=int))


def raster_rates_figure(
    spikes: np.ndarray,
    true_rates: np.ndarray,
    inferred_rates: np.ndarray,
    held_out,
    title: str,
    neurons=None,
    dt: float | None = None,
) -> go.Figure:
    """Spike raster of one trial, then true vs inferred rates of a few neurons, one per row.

    spikes, true_rates, inferred_rates: (T, N) for one trial; rates are expected counts per
    bin, the units of `spikes`, so counts and rates share the y axes. held_out: indices of
    the held-out neurons (not seen by the model's encoder). neurons: indices of the neurons
    to show below the raster; default up to 4, about half held-out (at least one if any),
    the most active of each group. dt: bin width (s); the x axis is in s when given (bin k
    at k * dt), in bins otherwise.
    Row 1: heatmap of counts (neurons on y, time on x; trace "spikes") and, if any held-out
    neurons, a marker trace "held-out" of triangles just left of the first bin on their rows.
    Then per shown neuron: "true rate" (black line), "inferred rate" (dashed) and
    "spike count" (grey markers); legend entries on the first neuron's row only.
    """
    spikes = np.asarray(spikes, dtype=float)
    true_rates = np.asarray(true_rates, dtype=float)
    inferred_rates = np.asarray(inferred_rates, dtype=float)
    if spikes.ndim != 2:
        raise ValueError(f"spikes must be (T, N); got {spikes.shape}")
    for name, x in [("true_rates", true_rates), ("inferred_rates", inferred_rates)]:
        if x.shape != spikes.shape:
            raise ValueError(f"{name} must match spikes {spikes.shape}; got {x.shape}")
    n_steps, n_neurons = spikes.shape
    held_out = np.asarray(held_out if held_out is not None else [], dtype=int).ravel()
    if held_out.size and (held_out.min() < 0 or held_out.max() >= n_neurons):
        raise ValueError(f"held_out indices must be in [0, {n_neurons}); got {held_out}")
    if neurons is None:
        neurons = _default_neurons(spikes, held_out)
    neurons = np.asarray(neurons, dtype=int).ravel()
    if neurons.size and (neurons.min() < 0 or neurons.max() >= n_neurons):
        raise ValueError(f"neurons must be in [0, {n_neurons}); got {neurons}")
    out = set(held_out.tolist())

    step = 1.0 if dt is None else float(dt)
    t = np.arange(n_steps) * step
    rows = 1 + len(neurons)
    raster_height = 0.4 if len(neurons) else 1.0
    heights = [raster_height] + [(1 - raster_height) / max(len(neurons), 1)] * len(neurons)
    titles = ["spikes"] + [f"neuron {n}" + (" (held-out)" if n in out else "") for n in neurons]
    fig = make_subplots(
        rows, 1, shared_xaxes=True, row_heights=heights, subplot_titles=titles,
        vertical_spacing=0.04,
    )  # fmt: skip
    fig.add_trace(
        go.Heatmap(
            z=spikes.T, x=t, y=np.arange(n_neurons), colorscale="Greys", name="spikes",
            colorbar=dict(title="count", len=raster_height, y=1, yanchor="top"),
            hovertemplate="t=%{x}<br>neuron %{y}<br>count %{z}<extra></extra>",
        ),
        1, 1,
    )  # fmt: skip
    if held_out.size:
        fig.add_trace(
            go.Scatter(
                x=np.full(held_out.size, t[0] - step if n_steps else -step), y=held_out,
                mode="markers", name="held-out",
                marker=dict(symbol="triangle-right", color=colour(1), size=7),
            ),
            1, 1,
        )  # fmt: skip
    fig.update_yaxes(title_text="neuron", row=1, col=1)
    for r, n in enumerate(neurons, start=2):
        first = r == 2
        fig.add_trace(
            go.Scatter(
                x=t, y=spikes[:, n], mode="markers", name="spike count", legendgroup="counts",
                showlegend=first, marker=dict(color="grey", size=4, opacity=0.6),
            ),
            r, 1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=t, y=true_rates[:, n], mode="lines", name="true rate", legendgroup="true",
                showlegend=first, line=dict(color=TRUE_COLOUR, width=2),
            ),
            r, 1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=t, y=inferred_rates[:, n], mode="lines", name="inferred rate",
                legendgroup="inferred", showlegend=first,
                line=dict(color=colour(0), width=2, dash="dash"),
            ),
            r, 1,
        )  # fmt: skip
        fig.update_yaxes(title_text="count / bin", row=r, col=1)
    fig.update_xaxes(title_text="time (s)" if dt is not None else "time (bins)", row=rows, col=1)
    fig.update_layout(title=title, height=250 + 150 * len(neurons), **LAYOUT)
    return fig


def _require(table: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} needs columns {missing}; got {list(table.columns)}")


def rollout_error_figure(table: pd.DataFrame, title: str, log_y: bool = True) -> go.Figure:
    """Rollout (prediction) error vs horizon, one line per (source, model).

    table: columns source, model, horizon (int steps), error (float) and optionally
    error_sd (float; NaN read as 0). Colour = model, dash = source; lines sorted by horizon,
    NaN errors leave gaps. Traces per (source, model), sorted by source then model: an
    error +- error_sd band (style.band, only with error_sd; rows with NaN error dropped)
    then the line, named "source / model". The y axis is logarithmic when `log_y` and every
    finite error is > 0; there, band edges at or below 0 are clipped to error / 10.
    """
    _require(table, ["source", "model", "horizon", "error"], "table")
    has_sd = "error_sd" in table.columns
    errors = table["error"].to_numpy(dtype=float)
    finite = errors[np.isfinite(errors)]
    log = bool(log_y and finite.size and (finite > 0).all())
    models = list(dict.fromkeys(table["model"]))
    sources = list(dict.fromkeys(table["source"]))
    fig = go.Figure()
    for (source, model), g in table.groupby(["source", "model"], sort=True):
        g = g.sort_values("horizon")
        c = colour(models.index(model))
        group = f"{source} / {model}"
        if has_sd:
            ok = g[np.isfinite(g["error"].to_numpy(dtype=float))]
            err = ok["error"].to_numpy(dtype=float)
            sd = np.nan_to_num(ok["error_sd"].to_numpy(dtype=float))
            lower = err - sd
            if log:
                lower = np.where(lower > 0, lower, err / 10)
            fig.add_trace(band(ok["horizon"].to_numpy(), lower, err + sd, c, group))
        fig.add_trace(
            go.Scatter(
                x=g["horizon"], y=g["error"], mode="lines+markers", name=group,
                legendgroup=group,
                line=dict(color=c, dash=DASHES[sources.index(source) % len(DASHES)]),
            )
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="horizon (steps)", yaxis_title="error",
        yaxis_type="log" if log else "linear", **LAYOUT,
    )  # fmt: skip
    return fig


def _points(points, h: int, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.size == 0:
        return np.zeros((0, h))
    if p.ndim != 2 or p.shape[1] != h:
        raise ValueError(f"{name} must be (M, {h}); got {p.shape}")
    return p


def _stable(stable, m: int, name: str) -> np.ndarray | None:
    if stable is None:
        return None
    s = np.asarray(stable, dtype=bool).ravel()
    if s.shape != (m,):
        raise ValueError(f"{name} must be ({m},); got {s.shape}")
    return s


def aligned_fixed_points_figure(
    source_points: np.ndarray,
    source_stable: np.ndarray | None,
    model_points: np.ndarray,
    model_stable: np.ndarray | None,
    true_latents: np.ndarray,
    title: str,
    n_trials: int = 8,
) -> go.Figure:
    """Source and (mapped) model fixed points over faint true trajectories, in the true PCs.

    source_points: (M, H) fixed points of the source RNN; model_points: (K, H) fixed points
    of a data-trained model mapped into the source space; source_stable (M,), model_stable
    (K,) bool (None: stability unknown). true_latents: (B, T, H), context and PCA basis
    (module docstring); top 3 PCs with go.Scatter3d, or 2 with go.Scatter when H == 2.
    Traces: the first min(n_trials, B) true trajectories as faint grey lines (one legend
    entry "true latents"), then source points (black): "source stable FP" filled circles,
    "source unstable FP" open circles (or "source FP" crosses when stability is unknown),
    then model points (colour 0): "model stable FP" diamonds, "model unstable FP" open
    diamonds (or "model FP" x). Empty groups (M = 0, K = 0, all stable...) get no trace.
    """
    true = _latents(true_latents, "true_latents")
    h = true.shape[-1]
    if h < 2:
        raise ValueError(f"need H >= 2 latent dimensions; got {h}")
    k = min(3, h)
    src = _points(source_points, h, "source_points")
    mod = _points(model_points, h, "model_points")
    src_stable = _stable(source_stable, len(src), "source_stable")
    mod_stable = _stable(model_stable, len(mod), "model_stable")
    mean, comps, ratio = _pca(true, k)
    fig = go.Figure()
    p_true = (true - mean) @ comps.T
    for i in range(min(n_trials, true.shape[0])):
        fig.add_trace(
            _line(
                p_true[i], mode="lines", name="true latents", legendgroup="true latents",
                showlegend=i == 0, line=dict(color=FAINT, width=2), hoverinfo="skip",
            )
        )  # fmt: skip
    size = 5 if k >= 3 else 9
    for who, pts, stable, c, symbols in [
        ("source", src, src_stable, "black", ("circle", "circle-open", "cross")),
        ("model", mod, mod_stable, colour(0), ("diamond", "diamond-open", "x")),
    ]:
        p = (pts - mean) @ comps.T
        if stable is None:
            groups = [(f"{who} FP", np.ones(len(p), bool), symbols[2])]
        else:
            groups = [
                (f"{who} stable FP", stable, symbols[0]),
                (f"{who} unstable FP", ~stable, symbols[1]),
            ]
        for name, rows, symbol in groups:
            if rows.any():
                fig.add_trace(
                    _line(
                        p[rows], mode="markers", name=name,
                        marker=dict(size=size, color=c, symbol=symbol),
                    )
                )  # fmt: skip
    _pc_axes(fig, ratio)
    fig.update_layout(title=title, **LAYOUT)
    return fig


def metric_bars_figure(
    comparison: pd.DataFrame, metrics: list[str], title: str, max_cols: int = 3
) -> go.Figure:
    """Grouped bars of each metric: x = model, colour = source, one subplot per metric.

    comparison: one row per (source, model) with columns source, model and `metrics`.
    Subplots in `metrics` order, at most `max_cols` per row. Per subplot one go.Bar per
    source (order of first appearance; legend entry on the first subplot only) over all
    models (order of first appearance, same x in every subplot); missing combinations and
    NaN values are drawn as missing bars.
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty")
    _require(comparison, ["source", "model", *metrics], "comparison")
    if comparison.duplicated(["source", "model"]).any():
        raise ValueError("comparison has more than one row per (source, model)")
    models = [str(m) for m in dict.fromkeys(comparison["model"])]
    sources = list(dict.fromkeys(comparison["source"]))
    n_cols = min(len(metrics), max_cols)
    n_rows = -(-len(metrics) // n_cols)
    fig = make_subplots(n_rows, n_cols, subplot_titles=metrics)
    table = comparison.assign(model=comparison["model"].astype(str)).set_index(["source", "model"])
    for j, metric in enumerate(metrics):
        r, c = j // n_cols + 1, j % n_cols + 1
        for i, source in enumerate(sources):
            values = table.xs(source, level="source")[metric].reindex(models).to_numpy(dtype=float)
            fig.add_trace(
                go.Bar(
                    x=models, y=values, name=str(source), legendgroup=str(source),
                    showlegend=j == 0, marker_color=colour(i),
                ),
                r, c,
            )  # fmt: skip
        fig.update_yaxes(title_text=metric, row=r, col=c)
    fig.update_layout(title=title, barmode="group", **LAYOUT)
    return fig
