"""Figure nodes drawn from a stored evaluation (`EvaluationArrays`): means + a bounded sample.

A synthetic evaluation is written in the stored layout (zarr trials sample + condition means,
conditions.parquet) from known single trials, so the figures can be checked against the
statistics of every trial, and their size against the number of repeats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis import LabelledArrays, experiments
from ntdyn.analysis.stored import (
    CONDITIONS,
    VARIABLES,
    EvaluationArrays,
    Keep,
    ModelWriter,
    open_for_writing,
    with_condition_index,
)
from ntdyn.pipelines.figures import nodes as n

N_STEPS, DT, HIDDEN = 12, 0.01, 3
WIDTHS = {"state": 4, "hidden": HIDDEN, "command": 2, "control": 2, "field": 2, "feedback": 4}
HASHES = ("aaaa", "bbbb")
SWEEP = pd.DataFrame({"hash": list(HASHES), "label": ["std 0", "std 1"], "x": [0.0, 1.0]})
FIGURES = {
    "n_plot_directions": 3,
    "aligned_profiles": {"group": "sisu", "split": "pert_amp"},
    "n_profile_units": 2,
}


def _arrays(n_trials: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: rng.normal(size=(n_trials, N_STEPS, w)).astype(np.float32) for k, w in WIDTHS.items()
    }


def _store(folder, build, keep: Keep | None = None) -> tuple[EvaluationArrays, dict]:
    """Write one synthetic evaluation of every model in HASHES; also return every trial."""
    keep = keep or Keep()
    root = open_for_writing(folder)
    tables, full = [], {}
    for i, h in enumerate(HASHES):
        _, cond = build()
        cond = with_condition_index(cond.sort_values("trial").reset_index(drop=True))
        arrays = full[h] = _arrays(len(cond), i)
        group = root.create_group(h)
        sample = keep.trial_sample(cond)
        group.create_array("trial_index", data=sample.astype(np.int64), dimension_names=("trial",))
        writer = ModelWriter(
            group, {k: (1, len(sample), N_STEPS, WIDTHS[k]) for k in keep.trials}, "trials"
        )
        for k in keep.trials:
            writer.write(k, slice(0, len(sample)), arrays[k][sample][None])
        for k in keep.means:
            mean = np.stack(
                [
                    arrays[k][cond["condition"].to_numpy() == c].mean(0)
                    for c in range(cond["condition"].max() + 1)
                ]
            )
            group.create_array(
                f"means/{k}", data=mean[None].astype(np.float32),
                dimension_names=("replicate", "condition", "time", VARIABLES[k]),
            )  # fmt: skip
        group.attrs.update(hash=h, analysis="synthetic", dt=DT, seed=0, replicates=[0], selected=0)
        tables.append(cond.assign(hash=h))
    pd.concat(tables, ignore_index=True).to_parquet(folder / CONDITIONS, index=False)
    return EvaluationArrays(folder), full


def _plant(n_repeats: int):
    return lambda: experiments.plant_perts(
        pert_type="curl", amplitudes=[0.0, 4.0], sisu=[0.0, 1.0], grid_n=1, n_directions=8,
        reach_length=0.5, n_repeats=n_repeats, n_steps=N_STEPS, workspace=1.0,
    )  # fmt: skip


def _feedback(n_repeats: int):
    return lambda: experiments.feedback_perts(
        amplitudes={"position": [1.0, 2.0], "velocity": [0.5]}, sisu=[0.0], grid_n=1,
        n_directions=4, n_repeats=n_repeats, impulse_start=2, impulse_steps=2,
        n_steps=N_STEPS, workspace=1.0,
    )  # fmt: skip


def _sisu_pert(n_repeats: int):
    return lambda: experiments.sisu_pert(
        sisu_start=0.0, sisu_ends=[0.0, 2.0], step_at=4, curl_amps=[0.0, 2.0],
        tasks=["steady", "reach"], grid_n=1, n_directions=3, reach_length=0.5,
        n_repeats=n_repeats, n_steps=N_STEPS, workspace=1.0,
    )  # fmt: skip


def _unit_perts(n_repeats: int):
    return lambda: experiments.unit_perts(
        n_units=HIDDEN, stim_amps=[0.0, 1.0], stim_start=3, stim_steps=3, curl_amps=[0.0, 4.0],
        sisu=[-1.0, 1.0], grid_n=1, n_repeats=n_repeats, n_steps=N_STEPS, workspace=1.0,
    )  # fmt: skip


COEFFICIENTS = pd.DataFrame(
    [
        {"hash": h, "unit": u, "response": "amplitude", "coef_curl_amp": u, "coef_sisu": -u}
        for h in HASHES
        for u in range(HIDDEN)
    ]
)
EVALUATION = {"sisu_pert": {"step_at": 4}, "unit_perts": {"stim_start": 3, "stim_steps": 3}}

DRAW = {
    "center_out": (_plant, lambda s: n.center_out(s, SWEEP, FIGURES)),
    "aligned_profiles": (_plant, lambda s: n.aligned_profiles(s, SWEEP, FIGURES)),
    "feedback_responses": (_feedback, lambda s: n.feedback_responses(s, SWEEP)),
    "sisu_pert": (_sisu_pert, lambda s: n.sisu_pert(s, SWEEP, EVALUATION)),
    "unit_response_profiles": (
        _unit_perts,
        lambda s: n.unit_response_profiles(s, SWEEP, COEFFICIENTS, EVALUATION, FIGURES),
    ),
}


def _size(figures: dict) -> int:
    return max(len(f.to_json().encode()) for f in figures.values())


@pytest.mark.parametrize("kind", sorted(DRAW))
def test_figure_size_does_not_grow_with_the_number_of_repeats(kind, tmp_path):
    build, draw = DRAW[kind]
    sizes = {}
    # one repeat, one kept; six repeats, every one kept: the same traces are drawn, only
    # their values differ (floats are stored packed: at most a few bytes more)
    for r, keep in ((1, Keep()), (6, Keep(repeats=None))):
        states, _ = _store(tmp_path / f"r{r}", build(r), keep)
        figures = draw(states)
        assert {name.partition("__")[0] for name in figures} == set(HASHES)
        sizes[r] = _size(figures)
    assert sizes[6] <= 1.05 * sizes[1], sizes
    assert sizes[6] < 5e6


def test_center_out_draws_repeat_0_of_the_chosen_directions_of_the_first_sisu(tmp_path):
    states, full = _store(tmp_path, _plant(3))
    fig = n.center_out(states, SWEEP, FIGURES)[HASHES[0]]
    paths = [t for t in fig.data if t.mode == "lines"]
    assert len(paths) == 2 * 3  # 2 field amplitudes x 3 directions, repeat 0, SISU 0
    cond = states[HASHES[0]].conditions
    first = cond[(cond["repeat"] == 0) & (cond["sisu"] == 0.0) & (cond["direction_index"] == 0)]
    expected = full[HASHES[0]]["state"][first["trial"].iloc[0], :, 0]
    np.testing.assert_allclose(np.asarray(paths[0].x, float), expected, rtol=1e-6)


def test_feedback_and_unit_profiles_are_means_over_every_trial(tmp_path):
    states, full = _store(tmp_path / "fb", _feedback(4))
    cond = states[HASHES[1]].conditions
    fig = n.feedback_responses(states, SWEEP)[HASHES[1]]
    rows = (cond["channel"] == "position") & (cond["impulse_amp"] == 2.0)
    c = cond[rows]
    pos = (
        full[HASHES[1]]["state"][c["trial"].to_numpy(), :, :2]
        - c[["start_x", "start_y"]].to_numpy()[:, None]
    )
    d = c["direction"].to_numpy()[:, None]
    parallel = np.cos(d) * pos[..., 0] + np.sin(d) * pos[..., 1]
    line = next(t for t in fig.data if t.name == "position 2")
    np.testing.assert_allclose(np.asarray(line.y, float), parallel.mean(0), atol=1e-5)

    states, full = _store(tmp_path / "up", _unit_perts(3))
    cond = states[HASHES[0]].conditions
    fig = n.unit_response_profiles(states, SWEEP, COEFFICIENTS, EVALUATION, FIGURES)[HASHES[0]]
    control = full[HASHES[0]]["control"]
    ctx = (cond["curl_amp"] == 4.0) & (cond["sisu"] == 1.0)
    base = control[cond[ctx & (cond["unit"] == -1)]["trial"].to_numpy()].mean(0)
    stim = control[cond[ctx & (cond["unit"] == 1) & (cond["stim_amp"] > 0)]["trial"].to_numpy()]
    line = next(t for t in fig.data if t.name == "curl 4, SISU 1")  # unit 1: the first column
    np.testing.assert_allclose(np.asarray(line.y, float), (stim.mean(0) - base)[:, 0], atol=1e-5)


def test_aligned_profiles_and_sisu_pert_summarise_the_kept_sample(tmp_path):
    states, full = _store(tmp_path, _plant(4), Keep(repeats=2))
    m = states[HASHES[0]]
    assert len(m.trial_conditions) == 2 * len(m.mean_conditions)  # the first 2 of 4 repeats
    fig = n.aligned_profiles(states, SWEEP, FIGURES)[f"{HASHES[0]}__pert_amp_4"]
    c = m.trial_conditions[
        (m.trial_conditions["pert_amp"] == 4.0) & (m.trial_conditions["sisu"] == 1.0)
    ]
    vel = full[HASHES[0]]["state"][c["trial"].to_numpy(), :, 2:]
    d = c["direction"].to_numpy()[:, None]
    parallel = np.cos(d) * vel[..., 0] + np.sin(d) * vel[..., 1]
    lines = [t for t in fig.data if t.name == "sisu = 1"]  # position, velocity: parallel, lateral
    np.testing.assert_allclose(np.asarray(lines[2].y, float), parallel.mean(0), atol=1e-5)

    states, _ = _store(tmp_path / "sp", _sisu_pert(3))
    assert set(n.sisu_pert(states, SWEEP, EVALUATION)) == set(HASHES)


def test_an_array_the_evaluation_did_not_keep_is_named(tmp_path):
    states, _ = _store(tmp_path, _plant(1), Keep(trials=("hidden",)))
    with pytest.raises(KeyError, match="keeps no trials of 'state'"):
        n.center_out(states, SWEEP, FIGURES)


def _projections(states: EvaluationArrays, k: int = 3) -> dict[str, LabelledArrays]:
    """pca_tangling's projections as it stores them: condition means on `k` PCs."""
    out = {}
    for h, m in states.items():
        components, mean = np.eye(HIDDEN)[:k], np.full(HIDDEN, 0.5)
        projected = (m.means("hidden") - mean) @ components.T
        table = m.mean_conditions
        out[h] = LabelledArrays(
            {"projected": projected, "components": components, "mean": mean},
            {"projected": ("condition", "time", "pc"), "components": ("pc", "unit"),
             "mean": ("unit",)},
            {"hash": h, "conditions": {c: table[c].tolist() for c in table.columns}},
        )  # fmt: skip
    return out


def _points(states: EvaluationArrays) -> pd.DataFrame:
    rows = []
    for h, m in states.items():
        c = m.trial_conditions
        for _, r in c[(c["pert_amp"] == 0.0) & (c["direction_index"] < 2)].iterrows():
            rows.append({"hash": h, "trial": r["trial"], "sisu": r["sisu"], "kind": "fixed",
                         "stable": True, "h": np.full(HIDDEN, 0.1), "centre_index": 0,
                         "point": 0, "condition": r["condition"]})  # fmt: skip
    return pd.DataFrame(rows)


def test_pc_figures_draw_condition_means_and_the_analysed_single_reaches(tmp_path):
    states, full = _store(tmp_path, _plant(3))
    projections, points = _projections(states), _points(states)
    fig = n.pc_trajectories(projections, points, SWEEP, {"pc_colour_by": "direction_index"})
    lines = [t for t in fig[HASHES[0]].data if t.mode == "lines"]
    assert len(lines) == len(states[HASHES[0]].mean_conditions)  # one per condition

    fig = n.fps_reach_pc(projections, states, points, SWEEP)[HASHES[0]]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2  # directions 0 and 1 of the lowest SISU, field off, repeat 0
    p = points[(points["hash"] == HASHES[0]) & (points["sisu"] == 0.0)]
    trial = sorted(p["trial"])[0]
    np.testing.assert_allclose(
        np.asarray(lines[0].x, float), full[HASHES[0]]["hidden"][trial, :, 0] - 0.5, atol=1e-6
    )


def test_pc_trajectories_draw_an_even_subset_of_too_many_conditions(tmp_path, monkeypatch):
    states, _ = _store(tmp_path, _plant(1))
    projections, points = _projections(states), _points(states)
    n_cond = len(states[HASHES[0]].mean_conditions)  # 2 fields x 2 SISU x 8 directions
    monkeypatch.setattr(n, "MAX_TRAJECTORIES", 10)
    fig = n.pc_trajectories(projections, points, SWEEP, {"pc_colour_by": "direction_index"})
    lines = [t for t in fig[HASHES[0]].data if t.mode == "lines"]
    assert len(lines) == 10 and f"(10 of {n_cond} conditions)" in fig[HASHES[0]].layout.title.text
    monkeypatch.setattr(n, "MAX_TRAJECTORY_POINTS", 4 * N_STEPS)
    fig = n.pc_trajectories(projections, points, SWEEP, {"pc_colour_by": "direction_index"})
    assert len([t for t in fig[HASHES[0]].data if t.mode == "lines"]) == 4
