"""Training-dynamics figure builders on small synthetic data: structure, values, JSON."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.plots import (
    ar_forecast_figure,
    ccm_figure,
    correlation_weight_figure,
    learning_curves_figure,
    learning_states_figure,
    parameter_trajectory_figure,
    power_spectra_figure,
    unit_tsne_figure,
)


def _strict_json(fig: go.Figure) -> dict:
    """fig.to_json() parsed with NaN/Infinity refused, float typed arrays checked finite."""

    def refuse(token):
        raise AssertionError(f"non-finite constant {token} in figure JSON")

    def walk(node):
        if isinstance(node, dict):
            if "bdata" in node and "dtype" in node:  # plotly >= 6 typed arrays
                a = np.frombuffer(base64.b64decode(node["bdata"]), dtype=node["dtype"])
                assert np.isfinite(a).all() if a.dtype.kind == "f" else True, "NaN in array"
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    data = json.loads(fig.to_json(), parse_constant=refuse)
    walk(data["data"])
    return data


def _scalars(n: int = 8, extras: bool = True) -> pd.DataFrame:
    step = np.arange(n) * 10
    table = pd.DataFrame(
        {
            "step": step,
            "train_loss": np.exp(-step / 30),
            "test_loss": np.exp(-step / 40) + 0.05,
            "train_accuracy": 1 - np.exp(-step / 30),
            "test_accuracy": 0.9 * (1 - np.exp(-step / 40)),
        }
    )
    if extras:
        table["learning_rate"] = 0.1
        table["grad_norm"] = -np.linspace(1, 4, n)  # sign kept: scaled by max |value|
        table["weight_density"] = 0.0  # all zero: left unscaled, no 0/0
    return table.iloc[::-1]  # unsorted on purpose


def test_learning_curves_rows_and_scaled_extras():
    fig = learning_curves_figure(_scalars(), "curves", log_loss=True)
    names = [tr.name for tr in fig.data]
    assert names == ["train loss", "test loss", "train accuracy", "test accuracy",
                     "learning_rate", "grad_norm", "weight_density"]  # fmt: skip
    by = {tr.name: tr for tr in fig.data}
    np.testing.assert_array_equal(by["train loss"].x, np.arange(8) * 10)  # sorted by step
    np.testing.assert_allclose(by["test loss"].y, np.exp(-np.arange(8) * 10 / 40) + 0.05)
    assert by["train loss"].line.dash == "solid" and by["test loss"].line.dash == "dash"
    assert [by[n].yaxis for n in names] == ["y", "y", "y2", "y2", "y3", "y3", "y3"]
    np.testing.assert_allclose(by["learning_rate"].y, 1.0)
    np.testing.assert_allclose(by["grad_norm"].y, -np.linspace(1, 4, 8) / 4)
    np.testing.assert_allclose(by["grad_norm"].customdata, -np.linspace(1, 4, 8))
    np.testing.assert_allclose(by["weight_density"].y, 0.0)
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis3.title.text == "training step"
    _strict_json(fig)

    plain = learning_curves_figure(_scalars(extras=False), "curves")
    assert len(plain.data) == 4 and len(plain.layout.annotations) == 2
    assert plain.layout.xaxis2.title.text == "training step"
    with pytest.raises(ValueError, match="test_accuracy"):
        learning_curves_figure(_scalars().drop(columns="test_accuracy"), "bad")


def test_parameter_trajectory_3d_colour_by_step_and_2d():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(12, 4))
    steps = np.arange(12) * 50
    ratio = np.array([0.6, 0.25, 0.1, 0.05])
    fig = parameter_trajectory_figure(scores, steps, ratio, "traj")
    assert [tr.name for tr in fig.data] == ["trajectory", "start", "end"]
    assert all(isinstance(tr, go.Scatter3d) for tr in fig.data)
    traj = fig.data[0]
    np.testing.assert_array_equal(traj.marker.color, steps)
    assert traj.marker.showscale and traj.marker.colorbar.title.text == "step"
    np.testing.assert_allclose(traj.z, scores[:, 2])
    np.testing.assert_allclose([fig.data[2].x[0]], [scores[-1, 0]])
    assert fig.layout.scene.xaxis.title.text == "PC1 (60.0% var)"
    assert fig.layout.scene.zaxis.title.text == "PC3 (10.0% var)"
    _strict_json(fig)

    flat = parameter_trajectory_figure(scores[:, :2], steps, ratio[:2], "flat")
    assert all(isinstance(tr, go.Scatter) for tr in flat.data) and len(flat.data) == 3
    np.testing.assert_array_equal(flat.data[0].marker.color, steps)
    assert flat.layout.yaxis.title.text == "PC2 (25.0% var)"
    with pytest.raises(ValueError, match="steps"):
        parameter_trajectory_figure(scores, steps[:-1], ratio, "bad")
    with pytest.raises(ValueError, match="explained_variance_ratio"):
        parameter_trajectory_figure(scores, steps, ratio[:2], "bad")
    with pytest.raises(ValueError, match="scores"):
        parameter_trajectory_figure(scores[:, :1], steps, ratio, "bad")


def test_power_spectra_log_axes_first_components_and_dc_dropped():
    freq = np.r_[0.0, np.linspace(0.01, 0.5, 6)]
    rows = [
        dict(component=c, frequency=f, power=(c + 1) / max(f, 1e-3) ** 2)
        for c in [3, 0, 2, 1]
        for f in freq[::-1]
    ]
    fig = power_spectra_figure(pd.DataFrame(rows), "psd", n_components=2)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert [tr.name for tr in fig.data] == ["component 0", "component 1"]
    np.testing.assert_allclose(fig.data[1].x, freq[1:])  # sorted, DC (f = 0) dropped
    np.testing.assert_allclose(fig.data[1].y, 2 / freq[1:] ** 2)
    _strict_json(fig)
    assert len(power_spectra_figure(pd.DataFrame(rows), "psd").data) == 3
    with pytest.raises(ValueError, match="power"):
        power_spectra_figure(pd.DataFrame(rows).drop(columns="power"), "bad")


def test_unit_tsne_one_trace_per_layer():
    emb = np.arange(14, dtype=float).reshape(7, 2)
    layers = np.array(["fc2", "fc1", "fc1", "fc2", "out", "fc1", "fc2"])
    fig = unit_tsne_figure(emb, layers, "tsne")
    assert [tr.name for tr in fig.data] == ["fc2", "fc1", "out"]
    np.testing.assert_allclose(fig.data[1].x, emb[[1, 2, 5], 0])
    assert list(fig.data[1].hovertext) == ["fc1, unit 1", "fc1, unit 2", "fc1, unit 5"]
    assert len({tr.marker.color for tr in fig.data}) == 3
    _strict_json(fig)
    hover = [f"u{i}" for i in range(7)]
    assert list(unit_tsne_figure(emb, list(layers), "t", hover=hover).data[2].hovertext) == ["u4"]
    with pytest.raises(ValueError, match="layers"):
        unit_tsne_figure(emb, layers[:-1], "bad")
    with pytest.raises(ValueError, match="hover"):
        unit_tsne_figure(emb, layers, "bad", hover=hover[:3])


def _pairs(n: int, seed: int, layered: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "post": np.arange(n),
            "pre": np.arange(n)[::-1],
            "correlation": rng.uniform(-1, 1, n),
            "weight": rng.normal(size=n),
        }
    )
    if layered:
        table["layer"] = ["fc1", "fc2"] * (n // 2)
    return table


def test_correlation_weight_cloud_highlight_and_zero_lines():
    strongest = _pairs(6, 0, layered=True)
    cloud = _pairs(50, 1, layered=False)
    fig = correlation_weight_figure(strongest, "cw", all_pairs=cloud, max_cloud=20)
    assert [tr.name for tr in fig.data] == ["all pairs", "fc1", "fc2"]
    assert len(fig.data[0].x) == 17  # every 3rd of 50 rows
    np.testing.assert_allclose(fig.data[2].x, strongest["weight"].iloc[1::2])
    np.testing.assert_allclose(fig.data[2].y, strongest["correlation"].iloc[1::2])
    assert fig.data[1].hovertext[0] == "fc1: post 0 ← pre 5"
    shapes = fig.layout.shapes
    assert len(shapes) == 2
    assert {(s.y0, s.y1) for s in shapes if s.yref == "y"} == {(0, 0)}  # horizontal y = 0
    assert {(s.x0, s.x1) for s in shapes if s.xref == "x"} == {(0, 0)}  # vertical x = 0
    _strict_json(fig)
    alone = correlation_weight_figure(strongest.drop(columns="layer"), "cw")
    assert [tr.name for tr in alone.data] == ["strongest pairs"]
    with pytest.raises(ValueError, match="all_pairs"):
        correlation_weight_figure(strongest, "bad", all_pairs=cloud.drop(columns="weight"))


def _ccm(pair: str, x: str, y: str, reps: int = 1) -> pd.DataFrame:
    lib = np.repeat([50, 10, 100, 20], reps)
    return pd.DataFrame(
        {
            "library_size": lib,
            # y_xmap_x: estimating x from y's manifold, evidence for x -> y (drawn first)
            "y_xmap_x": np.log(lib) / 5 + 0.01 * np.arange(len(lib)) % 3,
            "x_xmap_y": 0.1 + 0 * lib,
            "x_name": x,
            "y_name": y,
            "pair": pair,
        }
    )


def test_ccm_legend_names_direction_and_axes():
    fig = ccm_figure(_ccm("p", "weight_density", "test_loss"), "ccm")
    names = [tr.name for tr in fig.data]
    assert names == [
        "weight_density → test_loss (test_loss cross-maps weight_density)",
        "test_loss → weight_density (weight_density cross-maps test_loss)",
    ]
    np.testing.assert_array_equal(fig.data[0].x, [10, 20, 50, 100])
    np.testing.assert_allclose(fig.data[0].y, np.log([10, 20, 50, 100]) / 5 + [0.01, 0.03, 0, 0.02])
    assert fig.layout.yaxis.title.text == "cross-map skill ρ"
    assert fig.layout.xaxis.title.text == "library size"
    _strict_json(fig)

    anon = ccm_figure(_ccm("p", "a", "b").drop(columns=["x_name", "y_name", "pair"]), "ccm")
    assert anon.data[0].name == "x → y (y cross-maps x)"
    with pytest.raises(ValueError, match="y_xmap_x"):
        ccm_figure(_ccm("p", "a", "b").drop(columns="y_xmap_x"), "bad")


def test_ccm_several_pairs_panels_and_replicate_bands():
    table = pd.concat(
        [_ccm("lr/loss", "learning_rate", "test_loss", reps=3), _ccm("d/acc", "density", "acc")]
    )
    fig = ccm_figure(table, "ccm")
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    lines = [tr for tr in fig.data if tr.fill != "toself"]
    assert len(bands) == 2 and len(lines) == 4  # replicate bands only for the first pair
    assert [a.text for a in fig.layout.annotations] == ["lr/loss", "d/acc"]
    assert all("→" in tr.name for tr in lines)
    assert "learning_rate" in lines[0].name and "density" in lines[2].name
    assert lines[2].xaxis == "x2" and len({tr.line.color for tr in lines}) == 4
    # mean over the 3 replicate rows of library size 10 (rows 3..5 of the first pair)
    expected = np.log(10) / 5 + np.mean(0.01 * np.arange(3, 6) % 3)
    assert lines[0].y[0] == pytest.approx(expected)
    _strict_json(fig)


def _states(s: int = 30):
    steps = np.arange(s) * 5
    state = np.r_[np.zeros(10, int), np.ones(12, int), np.full(s - 22, 2)]
    rng = np.random.default_rng(0)
    centres = np.array([[0.5, 0.5], [2.5, 0.5], [1.5, 2.5]])
    emb = centres[state] + 0.1 * rng.normal(size=(s, 2))
    edges_x = np.linspace(0, 3, 4)  # NX = 3
    edges_y = np.linspace(0, 3.2, 5)  # NY = 4
    density = np.histogram2d(emb[:, 0], emb[:, 1], bins=[edges_x, edges_y])[0].T
    labels = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2], [2, 2, 2]])
    return steps, state, emb, density, labels, edges_x, edges_y


def test_learning_states_heatmap_borders_and_states():
    steps, state, emb, density, labels, ex, ey = _states()
    loss = np.exp(-steps / 50)
    fig = learning_states_figure(steps, state, emb, density, labels, ex, ey, "st", loss=loss)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap) and np.asarray(heat.z).shape == (4, 3)
    np.testing.assert_allclose(np.asarray(heat.z), density)
    np.testing.assert_allclose(heat.x, [0.5, 1.5, 2.5])
    names = [tr.name for tr in fig.data]
    assert names == ["density", "region borders", "trajectory", "state 0", "state 1",
                     "state 2", "region labels", "state", "state 0", "state 1", "state 2",
                     "loss"]  # fmt: skip
    # borders: 2 vertical cell edges at x = 2 (rows 0, 1), 3 horizontal at y = 1.6
    border = fig.data[1]
    xs = [v for v in border.x if v is not None]
    ys = [v for v in border.y if v is not None]
    assert len(xs) == 2 * 5 and xs[:4] == [2.0, 2.0, 2.0, 2.0]
    assert ys[4:] == [1.6] * 6
    labels_text = fig.data[6]
    assert list(labels_text.text) == ["0", "1", "2"]
    assert labels_text.x[1] == pytest.approx(2.5) and labels_text.y[1] == pytest.approx(0.8)
    right = fig.data[8:11]
    np.testing.assert_array_equal(right[1].x, steps[10:22])
    np.testing.assert_array_equal(right[1].y, 1)
    assert [tr.showlegend for tr in fig.data[3:6]] == [False] * 3
    assert fig.data[3].marker.color == right[0].marker.color != right[1].marker.color
    assert fig.data[-1].yaxis == "y3"  # secondary axis of the right panel
    np.testing.assert_allclose(fig.data[-1].y, loss)
    _strict_json(fig)

    no_loss = learning_states_figure(steps, state, emb, density, labels, ex, ey, "st")
    assert len(no_loss.data) == len(fig.data) - 1


def test_learning_states_validation():
    steps, state, emb, density, labels, ex, ey = _states()
    with pytest.raises(ValueError, match="state"):
        learning_states_figure(steps, state[:-1], emb, density, labels, ex, ey, "bad")
    with pytest.raises(ValueError, match="embedding"):
        learning_states_figure(steps, state, emb[:, :1], density, labels, ex, ey, "bad")
    with pytest.raises(ValueError, match="edges_x"):
        learning_states_figure(steps, state, emb, density.T, labels.T, ex, ey, "bad")
    with pytest.raises(ValueError, match="labels_map"):
        learning_states_figure(steps, state, emb, density, labels[:2], ex, ey, "bad")
    with pytest.raises(ValueError, match="loss"):
        learning_states_figure(steps, state, emb, density, labels, ex, ey, "b", loss=steps[:3])


def test_ar_forecast_positions_window_and_validation():
    steps = np.arange(10) * 20
    series = np.exp(-steps / 100)
    forecast = np.linspace(0.3, 0.1, 6)  # 4 inside the observed range, 2 beyond
    naive = np.full(6, series[5])
    fig = ar_forecast_figure(steps, series, 6, forecast, "ar", naive=naive, log_y=True)
    assert [tr.name for tr in fig.data] == ["observed", "AR forecast", "naive forecast"]
    np.testing.assert_array_equal(fig.data[1].x, [120, 140, 160, 180, 200, 220])
    np.testing.assert_allclose(fig.data[1].y, forecast)
    assert fig.data[1].line.dash == "dash" and fig.data[2].line.dash == "dot"
    window = fig.layout.shapes[0]
    assert (window.x0, window.x1) == (0, 100)
    assert fig.layout.yaxis.type == "log"
    _strict_json(fig)
    assert len(ar_forecast_figure(steps, series, 10, forecast[:2], "ar").data) == 2
    with pytest.raises(ValueError, match="series"):
        ar_forecast_figure(steps, series[:-1], 6, forecast, "bad")
    with pytest.raises(ValueError, match="naive"):
        ar_forecast_figure(steps, series, 6, forecast, "bad", naive=naive[:2])
    with pytest.raises(ValueError, match="n_train"):
        ar_forecast_figure(steps, series, 0, forecast, "bad")


def test_strict_json_catches_nan():
    fig = go.Figure(go.Scatter(x=[0, 1], y=np.array([0.0, np.nan])))
    with pytest.raises(AssertionError, match="NaN"):
        _strict_json(fig)
