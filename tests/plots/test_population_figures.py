"""Population figure builders on small synthetic data: structure, plotted values, serialisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.plots.population import (
    eigenvalue_polar_figure,
    pc_trajectories_figure,
    scree_figure,
    tangling_figure,
)


def test_scree_bars_and_cumulative_line_reaching_one():
    ratio = np.array([0.5, 0.3, 0.15, 0.05])
    fig = scree_figure(ratio, "scree")
    bars = [tr for tr in fig.data if isinstance(tr, go.Bar)]
    lines = [tr for tr in fig.data if isinstance(tr, go.Scatter)]
    assert len(bars) == 1 and len(lines) == 1
    np.testing.assert_allclose(bars[0].y, ratio)
    np.testing.assert_array_equal(bars[0].x, [1, 2, 3, 4])
    np.testing.assert_allclose(lines[0].y, np.cumsum(ratio))
    assert lines[0].y[-1] == pytest.approx(1.0)
    assert fig.layout.title.text == "scree"
    fig.to_json()


def _trajectories(c: int = 6, t: int = 15) -> np.ndarray:
    s = np.linspace(0, 1, t)
    return np.stack([np.stack([s * k, s**2, np.sin(s + k), s], -1) for k in range(c)])


def test_pc_trajectories_numeric_colours_and_fixed_point_symbols():
    proj = _trajectories()
    conditions = pd.DataFrame({"sisu": [0.0, 0.0, 0.5, 0.5, 1.0, 1.0], "dir": list("abcabc")})
    fp = np.array([[0, 0, 0, 9], [1, 1, 1, 9], [2, 2, 2, 9]], float)
    stable = np.array([True, False, True])
    fig = pc_trajectories_figure(proj, conditions, "sisu", "pcs", fp, stable)
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    assert len(lines) == 6 and all(isinstance(tr, go.Scatter3d) for tr in fig.data)
    np.testing.assert_allclose(lines[2].z, proj[2, :, 2], rtol=1e-6)  # drawn as float32
    # one colour per value, sequential (same value -> same colour), one legend entry per value
    colours = [tr.line.color for tr in lines]
    assert colours[0] == colours[1] != colours[2] == colours[3] != colours[4] == colours[5]
    assert sum(bool(tr.showlegend) for tr in lines) == 3
    by_name = {tr.name: tr for tr in fig.data}
    assert by_name["stable FP"].marker.symbol == "circle"
    assert by_name["unstable FP"].marker.symbol == "circle-open"
    np.testing.assert_allclose(by_name["stable FP"].x, [0, 2])
    np.testing.assert_allclose(by_name["unstable FP"].x, [1])
    assert len(fig.data) == 6 + 1 + 2  # lines, start markers, stable + unstable
    fig.to_json()


def test_pc_trajectories_categorical_and_without_fixed_points():
    proj = _trajectories(4)
    conditions = pd.DataFrame({"dir": ["a", "b", "a", "c"]})
    fig = pc_trajectories_figure(proj, conditions, "dir", "pcs")
    assert len(fig.data) == 4 + 1
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    assert lines[0].line.color == lines[2].line.color != lines[1].line.color
    # all fixed points stable: no empty unstable trace; unknown stability: one trace
    only_stable = pc_trajectories_figure(
        proj, conditions, "dir", "pcs", np.zeros((2, 3)), np.array([True, True])
    )
    assert [tr.name for tr in only_stable.data][-1] == "stable FP" and len(only_stable.data) == 6
    unknown = pc_trajectories_figure(proj, conditions, "dir", "pcs", np.zeros((2, 3)))
    assert len(unknown.data) == 6
    with pytest.raises(ValueError, match="condition rows"):
        pc_trajectories_figure(proj, conditions.iloc[:2], "dir", "pcs")
    with pytest.raises(ValueError, match=">=3"):
        pc_trajectories_figure(proj[..., :2], conditions, "dir", "pcs")


def test_eigenvalue_figure_has_unit_circle_and_one_trace_per_label():
    rng = np.random.default_rng(0)
    eig = {
        "SISU 0": rng.normal(size=(3, 5)) + 1j * rng.normal(size=(3, 5)),
        "SISU 1": np.array([0.5 + 0.5j, 0.9]),
    }
    fig = eigenvalue_polar_figure(eig, "eig")
    assert len(fig.data) == 3
    circle = fig.data[0]
    assert circle.name == "unit circle"
    np.testing.assert_allclose(np.hypot(circle.x, circle.y), 1.0)
    assert [tr.name for tr in fig.data[1:]] == ["SISU 0", "SISU 1"]
    np.testing.assert_allclose(fig.data[1].x, eig["SISU 0"].real.ravel())
    np.testing.assert_allclose(fig.data[1].y, eig["SISU 0"].imag.ravel())
    np.testing.assert_allclose(fig.data[2].y, [0.5, 0.0])
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    fig.to_json()


def test_tangling_figure_boxes():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "Q": rng.gamma(2.0, size=60),
            "train_std": np.repeat([0.0, 0.5, 1.0], 20),
            "sisu": np.tile([0.0, 1.0], 30),
        }
    )
    fig = tangling_figure(df, "train_std", "sisu", "tangling")
    assert len(fig.data) == 2 and all(isinstance(tr, go.Box) for tr in fig.data)
    # each box is drawn from its statistics, computed independently here
    for trace, sisu in zip(fig.data, [0.0, 1.0], strict=True):
        assert trace.name == str(sisu)
        for k, std in enumerate([0.0, 0.5, 1.0]):
            q = df[(df["sisu"] == sisu) & (df["train_std"] == std)]["Q"].to_numpy()
            q1, med, q3 = np.quantile(q, [0.25, 0.5, 0.75])
            assert (trace.q1[k], trace.median[k], trace.q3[k]) == pytest.approx((q1, med, q3))
            inside = q[(q >= q1 - 1.5 * (q3 - q1)) & (q <= q3 + 1.5 * (q3 - q1))]
            assert trace.lowerfence[k] == pytest.approx(inside.min())
            assert trace.upperfence[k] == pytest.approx(inside.max())
            assert trace.mean[k] == pytest.approx(q.mean())
    assert len(tangling_figure(df, "train_std", None, "tangling").data) == 1
    with pytest.raises(ValueError, match="'Q'"):
        tangling_figure(df.rename(columns={"Q": "q"}), "train_std", None, "t")
    fig.to_json()
