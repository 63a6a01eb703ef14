"""Task-vs-data figure builders on small synthetic data: structure, plotted values, JSON."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.plots.task_vs_data import (
    aligned_fixed_points_figure,
    metric_bars_figure,
    raster_rates_figure,
    rollout_error_figure,
    shared_pc_latents_figure,
)


def _planar_latents(b: int = 5, t: int = 12, h: int = 6, seed: int = 0) -> np.ndarray:
    """(B, T, H) latents on a 2-D plane (offset from the origin) embedded in H dims."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(h, 2)))[0].T  # (2, H) orthonormal
    s = np.linspace(0, 2 * np.pi, t)
    coords = np.stack(
        [np.stack([3 * np.cos(s + k), np.sin(s + k) * (1 + k / b)], -1) for k in range(b)]
    )
    return coords @ basis + rng.normal(size=h)


def _independent_pcs(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(0)
    cov = np.cov(flat - mean, rowvar=False)
    w, v = np.linalg.eigh(cov)
    return mean, v[:, np.argsort(w)[::-1][:k]].T


def _matches_up_to_sign(a: np.ndarray, b: np.ndarray) -> bool:
    return np.allclose(a, b, atol=1e-8) or np.allclose(a, -b, atol=1e-8)


def test_shared_pc_latents_projection_and_trace_structure():
    true = _planar_latents()
    inferred = true + 0.1 * np.random.default_rng(1).normal(size=true.shape)
    fig = shared_pc_latents_figure(true, inferred, "shared", n_trials=3)
    assert len(fig.data) == 2 * 3 and all(isinstance(tr, go.Scatter3d) for tr in fig.data)
    assert [tr.legendgroup for tr in fig.data] == ["true", "inferred"] * 3
    assert sum(bool(tr.showlegend) for tr in fig.data) == 2
    assert fig.data[0].line.dash == "solid" and fig.data[1].line.dash == "dash"
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    # planar true latents: PC3 carries no variance, PC1 + PC2 carry all of it
    for tr in fig.data[::2]:
        np.testing.assert_allclose(tr.z, 0, atol=1e-9)
    assert fig.layout.scene.zaxis.title.text == "PC3 (0.0% var)"
    pct = [
        float(ax.title.text.split("(")[1].split("%")[0])
        for ax in (fig.layout.scene.xaxis, fig.layout.scene.yaxis)
    ]
    assert sum(pct) == pytest.approx(100, abs=0.11)
    # coordinates equal the centred projection (computed independently, sign-free); inferred
    # latents are centred with the true mean and projected on the true PCs
    mean, pcs = _independent_pcs(true, 2)
    for j, axis in enumerate(["x", "y"]):
        assert _matches_up_to_sign(getattr(fig.data[0], axis), (true[0] - mean) @ pcs[j])
        expected = (inferred[2] - mean) @ pcs[j]
        assert _matches_up_to_sign(getattr(fig.data[5], axis), expected)
    # distances within the plane are preserved (projection is isometric on it)
    p = np.stack([fig.data[0].x, fig.data[0].y], -1)
    np.testing.assert_allclose(
        np.linalg.norm(p[1:] - p[:-1], axis=1), np.linalg.norm(np.diff(true[0], axis=0), axis=1)
    )
    fig.to_json()


def test_shared_pc_latents_two_pcs_and_validation():
    true = _planar_latents(b=2)
    fig = shared_pc_latents_figure(true, true, "2d", n_trials=10, n_pcs=2)
    assert len(fig.data) == 4 and all(isinstance(tr, go.Scatter) for tr in fig.data)
    np.testing.assert_allclose(fig.data[0].x, fig.data[1].x)  # identical latents overlap
    assert fig.layout.xaxis.title.text.startswith("PC1 (")
    # H = 2 falls back to 2-D even with n_pcs=3
    assert isinstance(shared_pc_latents_figure(true[..., :2], true[..., :2], "h2").data[0],
                      go.Scatter)  # fmt: skip
    with pytest.raises(ValueError, match="shapes differ"):
        shared_pc_latents_figure(true, true[:1], "bad")
    with pytest.raises(ValueError, match="n_pcs"):
        shared_pc_latents_figure(true, true, "bad", n_pcs=4)
    fig.to_json()


def _trial(t: int = 20, n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    true_rates = np.exp(rng.normal(size=(t, n)) * 0.3)
    spikes = rng.poisson(true_rates).astype(float)
    inferred = true_rates * 1.1
    return spikes, true_rates, inferred


def test_raster_rates_default_neurons_include_held_out():
    spikes, true_rates, inferred = _trial()
    held_out = [6, 7]
    fig = raster_rates_figure(spikes, true_rates, inferred, held_out, "raster", dt=0.01)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_allclose(np.asarray(heat.z), spikes.T)
    np.testing.assert_allclose(heat.x, np.arange(20) * 0.01)
    marks = [tr for tr in fig.data if tr.name == "held-out"]
    assert len(marks) == 1 and list(marks[0].y) == held_out
    rows = [a.text for a in fig.layout.annotations][1:]
    assert len(rows) == 4 and sum("held-out" in r for r in rows) >= 1
    assert len(fig.data) == 2 + 3 * 4
    # every shown neuron: counts, true and inferred rate with its own data
    shown = [int(r.split()[1]) for r in rows]
    by_name = {}
    for tr in fig.data[2:]:
        by_name.setdefault(tr.name, []).append(tr)
    for i, n in enumerate(shown):
        np.testing.assert_allclose(by_name["spike count"][i].y, spikes[:, n])
        np.testing.assert_allclose(by_name["true rate"][i].y, true_rates[:, n])
        np.testing.assert_allclose(by_name["inferred rate"][i].y, inferred[:, n])
    assert sum(bool(tr.showlegend) for tr in fig.data[2:]) == 3
    assert fig.layout.xaxis5.title.text == "time (s)"
    fig.to_json()


def test_raster_rates_explicit_neurons_no_held_out_and_validation():
    spikes, true_rates, inferred = _trial(n=3)
    fig = raster_rates_figure(spikes, true_rates, inferred, [], "raster", neurons=[2])
    assert len(fig.data) == 1 + 3 and not any(tr.name == "held-out" for tr in fig.data)
    np.testing.assert_allclose(fig.data[3].y, inferred[:, 2])
    assert fig.layout.xaxis2.title.text == "time (bins)"
    default = raster_rates_figure(spikes, true_rates, inferred, [1], "raster")
    assert len(default.data) == 2 + 3 * 3  # N < 4: every neuron shown
    with pytest.raises(ValueError, match="held_out"):
        raster_rates_figure(spikes, true_rates, inferred, [3], "bad")
    with pytest.raises(ValueError, match="inferred_rates"):
        raster_rates_figure(spikes, true_rates, inferred[:, :2], [], "bad")
    fig.to_json()


def _rollout_table(with_sd: bool) -> pd.DataFrame:
    rows = []
    for s, source in enumerate(["flipflop", "3bff"]):
        for m, model in enumerate(["gru", "lfads"]):
            for h in [8, 1, 4, 2]:
                rows.append(
                    dict(source=source, model=model, horizon=h, error=0.1 * h * (1 + m + s))
                )
    table = pd.DataFrame(rows)
    if with_sd:
        table["error_sd"] = 0.2 * table["error"]
    return table


def test_rollout_error_lines_bands_and_log_axis():
    table = _rollout_table(with_sd=True)
    fig = rollout_error_figure(table, "rollout")
    lines = [tr for tr in fig.data if tr.mode == "lines+markers"]
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    assert len(lines) == 4 and len(bands) == 4 and len(fig.data) == 8
    assert [tr.name for tr in lines] == ["3bff / gru", "3bff / lfads", "flipflop / gru",
                                         "flipflop / lfads"]  # fmt: skip
    np.testing.assert_array_equal(lines[0].x, [1, 2, 4, 8])
    np.testing.assert_allclose(lines[0].y, 0.2 * np.array([1, 2, 4, 8]))
    np.testing.assert_allclose(np.max(bands[0].y), 1.2 * 1.6)
    assert lines[0].line.color == lines[2].line.color != lines[1].line.color  # colour = model
    assert lines[0].line.dash != lines[2].line.dash  # dash = source
    assert fig.layout.yaxis.type == "log"
    fig.to_json()


def test_rollout_error_without_sd_nonpositive_and_nan():
    table = _rollout_table(with_sd=False)
    table.loc[0, "error"] = 0.0
    table.loc[1, "error"] = np.nan
    fig = rollout_error_figure(table, "rollout")
    assert len(fig.data) == 4 and fig.layout.yaxis.type == "linear"
    assert rollout_error_figure(_rollout_table(False), "r", log_y=False).layout.yaxis.type == (
        "linear"
    )
    with pytest.raises(ValueError, match="horizon"):
        rollout_error_figure(table.drop(columns="horizon"), "bad")
    fig.to_json()


def test_aligned_fixed_points_marker_split_and_projection():
    true = _planar_latents(b=4, h=5)
    mean, pcs = _independent_pcs(true, 2)
    src = true[0, [0, 3, 6]]
    src_stable = np.array([True, False, True])
    mod = true[1, [2, 5]] + 0.01
    mod_stable = np.array([False, False])
    fig = aligned_fixed_points_figure(src, src_stable, mod, mod_stable, true, "fps", n_trials=3)
    assert all(isinstance(tr, go.Scatter3d) for tr in fig.data)
    names = [tr.name for tr in fig.data]
    assert names == ["true latents"] * 3 + ["source stable FP", "source unstable FP",
                                            "model unstable FP"]  # fmt: skip
    by_name = {tr.name: tr for tr in fig.data}
    assert by_name["source stable FP"].marker.symbol == "circle"
    assert by_name["source unstable FP"].marker.symbol == "circle-open"
    assert by_name["model unstable FP"].marker.symbol == "diamond-open"
    assert len(by_name["source stable FP"].x) == 2 and len(by_name["model unstable FP"].x) == 2
    assert _matches_up_to_sign(by_name["source stable FP"].x, (src[[0, 2]] - mean) @ pcs[0])
    assert _matches_up_to_sign(by_name["model unstable FP"].y, (mod - mean) @ pcs[1])
    # source points lie on the trajectories they were taken from
    np.testing.assert_allclose(by_name["source unstable FP"].x, [fig.data[0].x[3]])
    fig.to_json()


def test_aligned_fixed_points_empty_unknown_and_2d():
    true = _planar_latents(b=3, h=4)
    no_points = aligned_fixed_points_figure(
        np.zeros((0, 4)), np.zeros(0, bool), np.zeros((0, 4)), np.zeros(0, bool), true, "none"
    )
    assert [tr.name for tr in no_points.data] == ["true latents"] * 3
    unknown = aligned_fixed_points_figure(true[0, :2], None, np.empty((0,)), [], true, "u")
    assert [tr.name for tr in unknown.data][-1] == "source FP" and len(unknown.data) == 4
    flat = aligned_fixed_points_figure(
        true[0, :2, :2], [True, True], true[1, :1, :2], [False], true[..., :2], "2d"
    )
    assert all(isinstance(tr, go.Scatter) for tr in flat.data) and len(flat.data) == 5
    assert flat.layout.xaxis.title.text.startswith("PC1 (")
    with pytest.raises(ValueError, match="model_points"):
        aligned_fixed_points_figure(true[0, :2], None, np.zeros((1, 3)), None, true, "bad")
    with pytest.raises(ValueError, match="source_stable"):
        aligned_fixed_points_figure(true[0, :2], [True], np.zeros((0, 4)), None, true, "bad")
    no_points.to_json()
    flat.to_json()


def test_metric_bars_grouped_with_nan_and_missing_rows():
    comparison = pd.DataFrame(
        {
            "source": ["ff", "ff", "3bff", "3bff", "ff"],
            "model": ["gru", "lfads", "gru", "lfads", "latent"],
            "co_bps": [0.3, np.nan, 0.2, 0.25, 0.1],
            "r2": [0.9, 0.8, 0.7, 0.6, 0.5],
            "fp_dist": [1.0, 2.0, 3.0, 4.0, 5.0],
            "state_r2": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    metrics = ["co_bps", "r2", "fp_dist", "state_r2"]
    fig = metric_bars_figure(comparison, metrics, "bars")
    assert len(fig.data) == 4 * 2 and all(isinstance(tr, go.Bar) for tr in fig.data)
    assert fig.layout.barmode == "group"
    assert [a.text for a in fig.layout.annotations] == metrics
    ff, bff = fig.data[0], fig.data[1]
    assert list(ff.x) == ["gru", "lfads", "latent"] == list(bff.x)
    np.testing.assert_allclose(ff.y, [0.3, np.nan, 0.1])
    np.testing.assert_allclose(bff.y, [0.2, 0.25, np.nan])  # 3bff has no "latent" row
    np.testing.assert_allclose(fig.data[3].y, [0.7, 0.6, np.nan])
    assert ff.marker.color != bff.marker.color and sum(bool(t.showlegend) for t in fig.data) == 2
    assert fig.data[6].xaxis == "x4"  # 4 metrics wrap to a 2 x 3 grid
    y = json.loads(fig.to_json())["data"][0]["y"]  # NaN survives serialisation
    if isinstance(y, dict):  # plotly >= 6 encodes numpy arrays as base64 typed arrays
        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    np.testing.assert_allclose(np.asarray(y, dtype=float), [0.3, np.nan, 0.1])
    with pytest.raises(ValueError, match="more than one row"):
        metric_bars_figure(pd.concat([comparison, comparison]), metrics, "bad")
    with pytest.raises(ValueError, match="missing_metric"):
        metric_bars_figure(comparison, ["missing_metric"], "bad")
