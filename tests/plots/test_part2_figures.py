"""Part 2 figure builders on small synthetic data: structure, plotted values, serialisation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.plots.part2 import (
    ablation_ranking_figure,
    measures_vs_sisu_figure,
    regression_scatter_figure,
    sisu_pert_figure,
    unit_response_profiles_figure,
)

DT = 0.01
K = 20


def _lines(fig: go.Figure) -> list[go.Scatter]:
    """Mean lines (the std bands are filled and nameless)."""
    return [tr for tr in fig.data if isinstance(tr, go.Scatter) and tr.fill != "toself"]


def _cells(fig: go.Figure, n_rows: int, n_cols: int) -> dict[tuple[int, int], list[go.Scatter]]:
    """Mean lines per (row, col) subplot of a make_subplots grid."""
    return {
        (r, c): [tr for tr in fig.select_traces(row=r, col=c) if tr.fill != "toself"]
        for r in range(1, n_rows + 1)
        for c in range(1, n_cols + 1)
    }


# --- sisu_pert_figure -------------------------------------------------------------------------


def _sisu_pert_data(tasks=("steady", "reach"), n_rep=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for task, curl, (s0, s1) in itertools.product(tasks, (0.0, 2.0), ((0.0, 0.0), (0.0, 2.0))):
        rows += [dict(task=task, curl_amp=curl, sisu_start=s0, sisu_end=s1)] * n_rep
    conditions = pd.DataFrame(rows)
    # a signature per condition so the plotted mean can be checked
    sig = (
        conditions["curl_amp"].to_numpy()
        + 10 * (conditions["sisu_end"] - conditions["sisu_start"]).to_numpy()
        + 100 * (conditions["task"] == "reach").to_numpy()
    )
    base = np.linspace(0, 1, K)[None, :, None] * np.array([1.0, -0.5])
    noise = rng.normal(scale=0.01, size=(len(conditions), K, 2))
    noise -= noise.reshape(-1, n_rep, K, 2).mean(1).repeat(n_rep, axis=0)  # exact group means
    position = base + sig[:, None, None] + noise
    return position, conditions, sig


def test_sisu_pert_four_lines_per_task_and_component_with_names_and_step_line():
    position, conditions, _ = _sisu_pert_data()
    step_at = 7
    fig = sisu_pert_figure(position, conditions, DT, step_at, "sisu pert")
    assert isinstance(fig, go.Figure)
    lines = _lines(fig)
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    assert len(lines) == 2 * 2 * 4 and len(bands) == len(lines)
    expected = {"curl 0, SISU 0", "curl 0, SISU 0→2", "curl 2, SISU 0", "curl 2, SISU 0→2"}
    for cell, cell_lines in _cells(fig, 2, 2).items():
        assert sorted(tr.name for tr in cell_lines) == sorted(expected), cell
    # each condition appears once in the legend
    assert sorted(tr.name for tr in lines if tr.showlegend) == sorted(expected)
    # columns: steady then reach; rows parallel then lateral
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:4] == [
        "steady: parallel",
        "reach: parallel",
        "steady: lateral",
        "reach: lateral",
    ]
    # style: colour by curl, dash by stepped SISU
    by_name = {tr.name: tr for tr in lines}
    assert by_name["curl 0, SISU 0"].line.color == by_name["curl 0, SISU 0→2"].line.color
    assert by_name["curl 0, SISU 0"].line.color != by_name["curl 2, SISU 0"].line.color
    assert by_name["curl 2, SISU 0"].line.dash == "solid"
    assert by_name["curl 2, SISU 0→2"].line.dash == "dash"
    # vertical dotted step marker at step_at * dt in every subplot
    vlines = [s for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1]
    assert len(vlines) == 4
    assert all(s.x0 == pytest.approx(step_at * DT) and s.line.dash == "dot" for s in vlines)
    fig.to_json()


def test_sisu_pert_plots_condition_means_on_the_time_axis():
    position, conditions, _ = _sisu_pert_data()
    fig = sisu_pert_figure(position, conditions, DT, 5, "t")
    base = np.linspace(0, 1, K)
    for (row, col), cell_lines in _cells(fig, 2, 2).items():
        assert len(cell_lines) == 4
        for tr in cell_lines:
            task = ("steady", "reach")[col - 1]
            curl = float(tr.name.split(",")[0].split()[1])
            stepped = "→" in tr.name
            expected_sig = curl + 10 * (2.0 if stepped else 0.0) + 100 * (task == "reach")
            comp_scale = (1.0, -0.5)[row - 1]
            np.testing.assert_allclose(tr.y, base * comp_scale + expected_sig, atol=1e-9)
            np.testing.assert_allclose(tr.x, np.arange(1, K + 1) * DT)


def test_sisu_pert_only_present_tasks_get_columns():
    position, conditions, _ = _sisu_pert_data(tasks=("reach",))
    fig = sisu_pert_figure(position, conditions, DT, 5, "reach only")
    assert [a.text for a in fig.layout.annotations] == ["reach: parallel", "reach: lateral"]
    assert len(_lines(fig)) == 2 * 4


# --- unit_response_profiles_figure ------------------------------------------------------------


def _stim_data(units, offsets, n_rep=2, seed=1):
    """Stimulated force = context baseline + offsets[unit] * sisu-dependent factor, exactly."""
    rng = np.random.default_rng(seed)
    contexts = [(0.0, 0.0), (0.0, 1.0), (2.0, 0.0), (2.0, 1.0)]
    rows, force = [], []
    for curl, sisu in contexts:
        base = rng.normal(size=(K, 2))
        # baseline trials vary around `base` with zero mean deviation
        devs = rng.normal(size=(n_rep, K, 2))
        devs -= devs.mean(0)
        for d in devs:
            rows.append(dict(unit=-1, stim_amp=0.0, curl_amp=curl, sisu=sisu))
            force.append(base + d)
        for u in units:
            for _ in range(n_rep):
                rows.append(dict(unit=u, stim_amp=1.0, curl_amp=curl, sisu=sisu))
                force.append(base + offsets[u] * (1 + sisu))
            # unstimulated (stim_amp 0) trials of a unit must be ignored
            rows.append(dict(unit=u, stim_amp=0.0, curl_amp=curl, sisu=sisu))
            force.append(base + 1e3)
    return np.stack(force), pd.DataFrame(rows)


def test_unit_response_subtracts_context_baseline():
    units = [3, 7]
    offsets = {3: np.array([0.5, -0.25]), 7: np.array([-1.0, 2.0])}
    force, conditions = _stim_data(units, offsets)
    window = (4, 9)
    fig = unit_response_profiles_figure(force, conditions, units, DT, window, "stim")
    assert isinstance(fig, go.Figure)
    assert [a.text for a in fig.layout.annotations] == ["unit 3", "unit 7"]
    lines = _lines(fig)
    assert len(lines) == len(units) * 2 * 4
    for (row, col), cell_lines in _cells(fig, 2, len(units)).items():
        assert len(cell_lines) == 4
        for tr in cell_lines:
            u = units[col - 1]
            sisu = float(tr.name.split("SISU")[1])
            np.testing.assert_allclose(
                tr.y, np.full(K, offsets[u][row - 1] * (1 + sisu)), atol=1e-9
            )
            assert tr.line.dash == ("dash" if tr.name.startswith("curl 2") else "solid")
    # colour by sisu, not by curl
    by_name = {tr.name: tr.line.color for tr in lines}
    assert by_name["curl 0, SISU 0"] == by_name["curl 2, SISU 0"]
    assert by_name["curl 0, SISU 0"] != by_name["curl 0, SISU 1"]
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert rects and all(
        s.x0 == pytest.approx(window[0] * DT) and s.x1 == pytest.approx(window[1] * DT)
        for s in rects
    )
    fig.to_json()


def test_unit_response_requires_a_baseline_per_context():
    force, conditions = _stim_data([3], {3: np.array([1.0, 1.0])})
    drop = (conditions["unit"] == -1) & (conditions["sisu"] == 1.0) & (conditions["curl_amp"] == 0)
    keep = ~drop.to_numpy()
    with pytest.raises(ValueError, match="baseline"):
        unit_response_profiles_figure(force[keep], conditions[keep], [3], DT, (1, 2), "x")


# --- regression_scatter_figure ----------------------------------------------------------------


def _coefficients(n=12, seed=2):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        dict(
            unit=np.arange(n) * 3,
            coef_curl_amp=rng.normal(size=n),
            coef_sisu=rng.normal(size=n),
            r2=rng.uniform(size=n),
        )
    )


@pytest.mark.parametrize("colour_by", [None, "r2"])
def test_regression_scatter_data_and_hover(colour_by):
    coefs = _coefficients()
    fig = regression_scatter_figure(coefs, "coef_curl_amp", "coef_sisu", "reg", colour_by)
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 1
    tr = fig.data[0]
    np.testing.assert_array_equal(tr.x, coefs["coef_curl_amp"].to_numpy())
    np.testing.assert_array_equal(tr.y, coefs["coef_sisu"].to_numpy())
    assert list(tr.text) == [f"unit {u}" for u in coefs["unit"]]
    assert "%{text}" in tr.hovertemplate
    assert fig.layout.xaxis.title.text == "coef_curl_amp"
    assert fig.layout.yaxis.title.text == "coef_sisu"
    zero_lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert {(s.x0, s.x1) for s in zero_lines if s.xref == "x"} == {(0, 0)}
    assert {(s.y0, s.y1) for s in zero_lines if s.yref == "y"} == {(0, 0)}
    if colour_by is None:
        assert not tr.marker.showscale
    else:
        np.testing.assert_array_equal(tr.marker.color, coefs["r2"].to_numpy())
        assert tr.marker.showscale and tr.marker.colorbar.title.text == "r2"
    fig.to_json()


# --- ablation_ranking_figure ------------------------------------------------------------------


def test_ablation_ranking_orders_by_abs_delta_and_keeps_top():
    effects = pd.DataFrame(
        dict(
            unit=[1, 2, 3, 4, 5, 6, 1, 2],
            measure=["rt"] * 6 + ["error"] * 2,
            delta=[0.1, -0.9, 0.5, -0.05, 0.7, -0.3, 100.0, -100.0],
            delta_std=[0.01, 0.02, np.nan, 0.04, 0.05, 0.06, 1.0, 1.0],
        )
    )
    fig = ablation_ranking_figure(effects, "rt", 4, "ablation")
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 1
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["unit 2", "unit 5", "unit 3", "unit 6"]
    np.testing.assert_allclose(bar.x, [-0.9, 0.7, 0.5, -0.3])
    assert list(bar.error_x.array) == [0.02, 0.05, None, 0.06]
    assert fig.layout.yaxis.autorange == "reversed"  # first (largest) bar at the top
    colours = list(bar.marker.color)
    assert colours[1] == colours[2] != colours[0] == colours[3]  # by sign
    fig.to_json()


def test_ablation_ranking_unknown_measure_raises():
    effects = pd.DataFrame(dict(unit=[1], measure=["rt"], delta=[0.1], delta_std=[np.nan]))
    with pytest.raises(ValueError, match="error"):
        ablation_ranking_figure(effects, "error", 3, "x")


# --- measures_vs_sisu_figure ------------------------------------------------------------------


def _measures(seed=3):
    rng = np.random.default_rng(seed)
    rows = itertools.product((0.0, 0.5, 2.0, 10.0), (0.01, 0.1), ("bptt", "es"), range(5))
    df = pd.DataFrame(rows, columns=["sisu", "train__pert__std", "train__method", "rep"])
    df["max_lateral"] = rng.normal(size=len(df))
    return df


@pytest.mark.parametrize("facet", [None, "train__method"])
def test_measures_vs_sisu_one_box_per_colour_per_facet(facet):
    df = _measures()
    fig = measures_vs_sisu_figure(df, "max_lateral", "train__pert__std", facet, "m")
    assert isinstance(fig, go.Figure)
    n_facets = 1 if facet is None else 2
    assert all(isinstance(tr, go.Box) for tr in fig.data)
    assert len(fig.data) == 2 * n_facets
    assert sorted(tr.name for tr in fig.data) == sorted(["0.01", "0.1"] * n_facets)
    assert sum(bool(tr.showlegend) for tr in fig.data) == 2
    assert fig.layout.boxmode == "group"
    if facet is not None:
        titles = [a.text for a in fig.layout.annotations]
        assert titles == ["train__method = bptt", "train__method = es"]
    # sisu is categorical, sorted numerically (10 after 2, not after 0.5)
    assert list(fig.layout.xaxis.categoryarray) == ["0", "0.5", "2", "10"]
    # every box is drawn from the statistics of the rows of its colour, facet and SISU
    for tr in fig.data:
        assert tr.y is None  # no raw values
        assert list(tr.x) == ["0", "0.5", "2", "10"]
        rows = df[df["train__pert__std"] == float(tr.name)]
        if facet is not None:
            rows = rows[rows[facet] == ("bptt" if tr.xaxis == "x" else "es")]
        for k, s in enumerate([0.0, 0.5, 2.0, 10.0]):
            v = rows[rows["sisu"] == s]["max_lateral"].to_numpy()
            assert len(v) == 5 * (2 if facet is None else 1)
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            assert (tr.q1[k], tr.median[k], tr.q3[k]) == pytest.approx((q1, med, q3))
            assert tr.mean[k] == pytest.approx(v.mean())
    fig.to_json()
