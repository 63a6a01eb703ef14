"""Figures of many items stay small at research scale: summaries plus a bounded even sample.

Shapes are those of `kedro run --env full` (conf/full over conf/base, analysis_part2): a
GRU of 100 units; plant_perts with 4 centres x 24 directions x 2 field amplitudes x 7 SISU
values = 1344 conditions of 150 steps; pca_tangling's 30 components; fps_steady over 7 SISU
values x 25 centres finding a few thousand fixed points per model, 100 eigenvalues each.
Drawn item by item, fps_eigenvalues was 8.1 MB and pc_trajectories 3.5 MB there.
Training-dynamics figures grow with the records of the trace (steps / record_every): at
30 000 records, drawn record by record, the learning curves were 5.2 MB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ntdyn.analysis import LabelledArrays
from ntdyn.pipelines.figures import nodes as n
from ntdyn.plots import (
    ar_forecast_figure,
    learning_curves_figure,
    learning_states_figure,
    parameter_trajectory_figure,
    power_spectra_figure,
)
from ntdyn.plots.learning import EXTRA_SCALARS, MAX_POINTS
from ntdyn.plots.sampling import by_rank, evenly

HIDDEN, SISU, CENTRES, N_POINTS = 100, (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0), 25, 3000
N_CONDITIONS, N_STEPS, N_PCS = 4 * 24 * 2 * 7, 150, 30
SWEEP = pd.DataFrame({"hash": ["h0"], "label": ["member 0"], "x": [0.0]})
MB = 1e6


@given(st.integers(0, 500), st.integers(1, 600))
def test_evenly_keeps_min_n_k_distinct_indices_from_first_to_last(n_items, k):
    idx = evenly(n_items, k)
    assert len(idx) == min(n_items, k)
    assert np.all(np.diff(idx) > 0)
    if n_items:
        assert idx[0] == 0
        assert idx[-1] == (n_items - 1 if k > 1 else 0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(2, 50))
def test_by_rank_spans_the_smallest_and_largest_value(values, k):
    v = np.asarray(values)
    idx = by_rank(v, k)
    assert len(idx) == min(len(v), k) and len(set(idx)) == len(idx)
    assert v[idx[0]] == v.min() and v[idx[-1]] == v.max()
    assert np.all(np.diff(v[idx]) >= 0)


@pytest.mark.parametrize(("n_items", "k", "named"), [(-1, 3, "n = -1"), (5, 0, "k = 0")])
def test_evenly_refuses_bad_sizes(n_items, k, named):
    with pytest.raises(ValueError, match=named):
        evenly(n_items, k)


def _steady_points(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """fps_steady's points and eigenvalues of one model at research-scale shapes."""
    rng = np.random.default_rng(seed)
    searches = [(s, c) for s in SISU for c in range(CENTRES)]
    per = np.diff(np.linspace(0, N_POINTS, len(searches) + 1).astype(int))
    rows = [(s, c, i) for (s, c), k in zip(searches, per, strict=True) for i in range(k)]
    points = pd.DataFrame(rows, columns=["sisu", "centre_index", "point"])
    points = points.assign(hash="h0", kind="fixed", stable=rng.uniform(size=len(points)) < 0.5)
    points["h"] = list(rng.normal(size=(len(points), HIDDEN)))
    lam = rng.uniform(0, 0.9, (len(points), HIDDEN)) * np.exp(
        2j * np.pi * rng.uniform(size=(len(points), HIDDEN))
    )
    eig = pd.DataFrame({
        "hash": "h0", "sisu": np.repeat(points["sisu"], HIDDEN),
        "centre_index": np.repeat(points["centre_index"], HIDDEN),
        "point": np.repeat(points["point"], HIDDEN),
        "mode": np.tile(np.arange(HIDDEN), len(points)),
        "real": lam.real.ravel(), "imag": lam.imag.ravel(), "abs": np.abs(lam).ravel(),
    })  # fmt: skip
    return points, eig


def test_fps_eigenvalues_at_research_scale_stays_small_and_keeps_the_extremes():
    points, eig = _steady_points()
    # one unstable point (|lambda| 1.5) of SISU 2 at centre 7: the sample must draw it
    unstable = (eig["sisu"] == 2.0) & (eig["centre_index"] == 7) & (eig["point"] == 3)
    eig.loc[unstable & (eig["mode"] == 0), ["real", "imag", "abs"]] = [1.5, 0.0, 1.5]
    fig = n.fps_eigenvalues(points, eig, SWEEP)["h0"]
    assert len(fig.to_json()) < 0.5 * MB  # every eigenvalue drawn: 8.1 MB
    traces = fig.data[1:]
    assert len(traces) == len(SISU)
    per_sisu = N_POINTS // len(SISU)  # points found per SISU (each of 100 eigenvalues)
    drawn = n.MAX_EIGENVALUES // (len(SISU) * HIDDEN)
    assert traces[0].name == f"SISU -3 ({drawn} of {per_sisu} points)"
    assert all(len(t.x) == drawn * HIDDEN for t in traces)
    sisu_2 = next(t for t in traces if t.name.startswith("SISU 2 "))
    assert np.max(np.hypot(sisu_2.x, sisu_2.y)) == np.float32(1.5)


def test_few_fixed_points_have_every_eigenvalue_drawn():
    points, eig = _steady_points()
    few = points[points["centre_index"] == 0]  # 7 SISU values x ~17 points
    fig = n.fps_eigenvalues(few, eig, SWEEP)["h0"]
    assert [t.name for t in fig.data[1:]] == [f"SISU {s:g}" for s in SISU]
    assert sum(len(t.x) for t in fig.data[1:]) == len(few) * HIDDEN


def test_pc_trajectories_at_research_scale_stay_under_2_mb():
    rng = np.random.default_rng(1)
    conditions = {"direction_index": (np.arange(N_CONDITIONS) % 24).tolist()}
    projections = {"h0": LabelledArrays(
        {"projected": rng.normal(size=(N_CONDITIONS, N_STEPS, N_PCS)),
         "components": rng.normal(size=(N_PCS, HIDDEN)), "mean": np.zeros(HIDDEN)},
        {"projected": ("condition", "time", "pc"), "components": ("pc", "unit"),
         "mean": ("unit",)},
        {"conditions": conditions},
    )}  # fmt: skip
    points, _ = _steady_points()
    fig = n.pc_trajectories(projections, points, SWEEP, {"pc_colour_by": "direction_index"})["h0"]
    assert len(fig.to_json()) < 2 * MB  # every condition and point drawn: 3.5 MB
    lines = [t for t in fig.data if t.mode == "lines"]
    markers = [t for t in fig.data if t.name in ("stable FP", "unstable FP")]
    n_lines = n.MAX_TRAJECTORY_POINTS // N_STEPS
    assert len(lines) == n_lines
    assert sum(len(t.x) for t in markers) == n.MAX_FIXED_POINTS
    assert fig.layout.title.text.endswith(
        f"({n_lines} of {N_CONDITIONS} conditions, {n.MAX_FIXED_POINTS} of {N_POINTS} fixed points)"
    )


# ----------------------------------------------------------------------------- training dynamics
# A long recorded training: 300 000 steps recorded every 10 (the base conf records 300).
N_RECORDS = 30_000


def _records(seed: int = 2) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    steps = (np.arange(N_RECORDS) + 1) * 10
    scalars = pd.DataFrame({"step": steps})
    for c in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", *EXTRA_SCALARS):
        scalars[c] = rng.uniform(0.01, 1.0, N_RECORDS)
    return steps, scalars


def test_learning_curves_of_a_long_trace_draw_evenly_chosen_records():
    steps, scalars = _records()
    scalars.loc[N_RECORDS // 3, "grad_norm"] = 50.0  # the largest value scales row 3
    fig = learning_curves_figure(scalars, "long")
    assert len(fig.to_json()) < 0.5 * MB  # every record drawn: 5.2 MB
    for trace in fig.data:
        assert len(trace.x) == MAX_POINTS and trace.x[0] == steps[0] and trace.x[-1] == steps[-1]
    grad = next(t for t in fig.data if t.name == "grad_norm")
    np.testing.assert_allclose(grad.y, np.asarray(grad.customdata) / 50.0)


def test_parameter_trajectory_and_states_of_a_long_trace_stay_small():
    rng = np.random.default_rng(3)
    steps, scalars = _records()
    fig = parameter_trajectory_figure(
        rng.normal(size=(N_RECORDS, 10)), steps, np.full(10, 0.1), "pca"
    )
    assert len(fig.to_json()) < 0.5 * MB
    hover = fig.data[0].hovertext
    assert len(hover) == MAX_POINTS and (hover[0], hover[-1]) == (
        f"step {steps[0]}",
        f"step {steps[-1]}",
    )
    state = np.repeat(np.arange(5), N_RECORDS // 5)
    state[7] = 9  # a state of one record: still in the legend and on the map
    labels = np.repeat(np.arange(5), 64 * 64 // 5 + 1)[: 64 * 64].reshape(64, 64)
    labels[0, 0] = 9
    edges = np.linspace(-1, 1, 65)
    fig = learning_states_figure(
        steps, state, rng.normal(size=(N_RECORDS, 2)), rng.uniform(size=(64, 64)), labels,
        edges, edges, "states", loss=scalars["test_loss"].to_numpy(),
    )  # fmt: skip
    assert len(fig.to_json()) < 1 * MB
    assert "state 9" in {t.name for t in fig.data}
    assert "9" in next(t for t in fig.data if t.name == "region labels").text


def test_power_spectra_of_a_long_trace_are_averaged_in_log_spaced_bins():
    n_f = N_RECORDS // 2
    spectra = pd.DataFrame({"component": 0, "frequency": np.arange(1, n_f + 1) / N_RECORDS,
                            "power": 3.0})  # fmt: skip
    line = power_spectra_figure(spectra, "psd", max_points=200).data[0]
    assert len(line.x) <= 200
    np.testing.assert_allclose(line.y, 3.0)  # a bin's mean of a flat spectrum is flat
    np.testing.assert_allclose(line.x[:5], np.arange(1, 6) / N_RECORDS)  # low: one per bin
    assert line.x[-1] > 0.45  # the high end is still drawn (as a bin mean)


def test_ar_forecast_of_a_long_trace_keeps_the_fit_window():
    steps, scalars = _records()
    n_train = N_RECORDS // 2
    series = scalars["test_loss"].to_numpy()
    fig = ar_forecast_figure(steps, series, n_train, series[n_train:], "ar")
    assert len(fig.to_json()) < 0.5 * MB
    assert fig.layout.shapes[0].x1 == steps[n_train - 1]
    assert fig.data[1].x[0] == steps[n_train] and fig.data[1].x[-1] == steps[-1]


@pytest.mark.parametrize("bad", [1, 0])
def test_too_few_points_per_line_are_refused(bad):
    _, scalars = _records()
    with pytest.raises(ValueError, match="max_points"):
        learning_curves_figure(scalars.iloc[:10], "x", max_points=bad)
