"""Population nodes on stored evaluations with known answers (no Kedro session).

The evaluations are written in the stored layout (`ntdyn.analysis.stored`) and read back
through `EvaluationArrays`, as the pipeline reads them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis.arrays import load_labelled, save_labelled
from ntdyn.analysis.pca import fit_pca, project, time_window
from ntdyn.analysis.stored import (
    CONDITIONS,
    VARIABLES,
    EvaluationArrays,
    open_for_writing,
    with_condition_index,
)
from ntdyn.analysis.tangling import tangling
from ntdyn.pipelines.population.nodes import _reach_steps, pca_tangling

DT = 0.01
N_DIR, N_REP, N_STEPS, HIDDEN = 4, 2, 40, 5
SPEC = {"pca_tangling": {"start": 10, "stop": 30, "n_components": 4, "tangling_pcs": 2}}


def _conditions() -> pd.DataFrame:
    """Centre-out reaches: direction x field amplitude x SISU x repeat, trials numbered 0..N-1."""
    d, amp, sisu, rep = np.meshgrid(
        np.arange(N_DIR), [0.0, 4.0], [0.0, 2.0], np.arange(N_REP), indexing="ij"
    )
    angle = 2 * np.pi * d.ravel() / N_DIR
    table = pd.DataFrame({
        "direction_index": d.ravel(), "direction": angle, "pert_amp": amp.ravel(),
        "sisu": sisu.ravel(), "goal_x": np.cos(angle), "goal_y": np.sin(angle),
        "repeat": rep.ravel(),
    })  # fmt: skip
    return table.assign(trial=np.arange(len(table)))


def _write(folder: Path, h: str, conditions: pd.DataFrame, arrays: dict, sample, selected: int):
    """One model's evaluation in the stored layout: `arrays` name -> (replicate, trial, T, V)
    of every trial; means over repeats per condition; single trials of `sample` kept."""
    root = open_for_writing(folder)
    group = root.create_group(h)
    conditions = with_condition_index(conditions).assign(hash=h)
    index = conditions["condition"].to_numpy()
    n_rep = next(iter(arrays.values())).shape[0]
    for name, values in arrays.items():
        dims = ("replicate", "condition", "time", VARIABLES[name])
        means = np.stack([[values[r][index == c].mean(0) for c in range(index.max() + 1)]
                          for r in range(n_rep)])  # fmt: skip
        group.create_array(f"means/{name}", data=means.astype(np.float32), dimension_names=dims)
        group.create_array(
            f"trials/{name}", data=values[:, sample].astype(np.float32),
            dimension_names=("replicate", "trial", "time", VARIABLES[name]),
        )  # fmt: skip
    group.create_array("trial_index", data=np.asarray(sample, np.int64), dimension_names=("trial",))
    group.attrs.update(hash=h, analysis="plant_perts", dt=DT, seed=0,
                       replicates=list(range(n_rep)), selected=selected)  # fmt: skip
    conditions.to_parquet(folder / CONDITIONS, index=False)
    return EvaluationArrays(folder)


@pytest.fixture
def noisy_loops(tmp_path):
    """Condition means: loops in the (e0, e1) plane, one radius and phase per condition.
    Single trials add +n(t) (repeat 0) or -n(t) (repeat 1) along e2, 10x larger than the
    loops: it dominates the trials' variance and is absent from the condition means. The
    selected replicate is 1; replicate 0 is noise."""
    cond = with_condition_index(_conditions())
    c = cond["condition"].to_numpy()
    theta = 2 * np.pi * np.arange(N_STEPS) / N_STEPS
    radius = 1.0 + 0.1 * c[:, None]
    loops = np.zeros((len(cond), N_STEPS, HIDDEN))
    loops[..., 0] = radius * np.cos(theta + c[:, None])
    loops[..., 1] = radius * np.sin(theta + c[:, None])
    loops[..., 3] = 0.2 * np.cos(2 * theta + c[:, None])
    noise = 10 * np.random.default_rng(0).normal(size=(len(cond) // N_REP, N_STEPS))
    trials = loops.copy()
    trials[..., 2] = np.where(cond["repeat"].to_numpy()[:, None] == 0, 1, -1) * noise[c]
    hidden = np.stack([np.random.default_rng(1).normal(size=trials.shape), trials])
    sample = np.flatnonzero(cond["repeat"].to_numpy() == 0)
    states = _write(tmp_path / "eval", "m0", _conditions(), {"hidden": hidden}, sample, 1)
    templates = np.stack([loops[c == k][0] for k in range(c.max() + 1)])
    return states, templates, trials


def test_pca_tangling_fits_and_tangles_the_condition_means(noisy_loops, tmp_path):
    states, templates, trials = noisy_loops
    spec = SPEC["pca_tangling"]
    records = pd.DataFrame({"hash": ["m0"], "best_replicate": [1]})
    pca, table, projections = pca_tangling(states, records, SPEC)

    # fitted on the condition means: the repeat noise along e2 cancels and is in no component
    assert np.allclose(states["m0"].means("hidden"), templates, atol=1e-5)
    expected = fit_pca(time_window(templates, spec["start"], spec["stop"], 1), 4)
    np.testing.assert_allclose(pca["explained_variance"], expected.explained_variance, rtol=1e-4)
    proj = projections["m0"]
    assert np.abs(proj["components"][:, 2]).max() < 1e-3  # e2 (the repeat noise) is not used
    assert pca["explained_variance_ratio"].sum() == pytest.approx(1.0)
    # (fitted on single trials, the noise would be the first component)
    assert (
        abs(fit_pca(time_window(trials, spec["start"], spec["stop"], 1), 1).components[0, 2]) > 0.99
    )

    # projections: the condition means projected, (condition, time, pc), with their table
    assert proj.axes["projected"] == ("condition", "time", "pc")
    np.testing.assert_allclose(proj["projected"], project(expected, templates), atol=1e-4)
    mean_conditions = states["m0"].mean_conditions
    pd.testing.assert_frame_equal(pd.DataFrame(proj.attrs["conditions"]), mean_conditions)
    assert proj.attrs["window"] == [spec["start"], spec["stop"]]
    save_labelled(tmp_path / "projections", projections)  # JSON-able attrs
    back = load_labelled(tmp_path / "projections")["m0"]
    pd.testing.assert_frame_equal(pd.DataFrame(back.attrs["conditions"]), mean_conditions)

    # tangling Q(c, t) on the top PCs of the condition means, a row per condition x step
    q = tangling(project(expected, templates)[..., : spec["tangling_pcs"]], DT)
    n_c, n_t = q.shape
    assert len(table) == n_c * n_t == len(mean_conditions) * (N_STEPS - 1)
    np.testing.assert_allclose(table["Q"].to_numpy(), q.ravel(), rtol=1e-3)
    first = table[table["step"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(first[mean_conditions.columns], mean_conditions)


def _reach_store(tmp_path, sample):
    cond = _conditions()
    n, rng = len(cond), np.random.default_rng(2)
    arrays = {"hidden": rng.normal(size=(1, n, N_STEPS, HIDDEN)),
              "feedback": rng.normal(size=(1, n, N_STEPS, 6))}  # fmt: skip
    return _write(tmp_path / "reach", "m0", cond, arrays, sample, 0), arrays


REACH = {"start": 5, "stop": 9, "n_directions": 2, "pert_amp": 0.0}


def test_reach_steps_take_the_chosen_reaches_from_the_kept_trials(tmp_path):
    cond = _conditions()
    sample = np.flatnonzero(cond["repeat"] == 0)  # what keep.repeats: 1 keeps
    states, arrays = _reach_store(tmp_path, sample)
    ensemble = SimpleNamespace(hyperparams={"model__sisu_input": True})
    ids, inputs, near = _reach_steps(ensemble, 0, states["m0"], REACH)
    # 2 directions (0, 2) x 2 SISU, repeat 0, no field; 4 steps each
    chosen = cond[(cond["repeat"] == 0) & (cond["pert_amp"] == 0.0)
                  & cond["direction_index"].isin([0, 2])]  # fmt: skip
    assert sorted(set(ids[:, 0].astype(int))) == sorted(chosen["trial"])
    assert len(ids) == len(chosen) * 4
    table = states["m0"].conditions.set_index("trial")
    for (trial, d, t, sisu, c), u, h in zip(ids, inputs, near, strict=True):
        trial, t = int(trial), int(t)
        row = table.loc[trial]
        assert (d, sisu, c) == (row["direction_index"], row["sisu"], row["condition"])
        np.testing.assert_allclose(h, arrays["hidden"][0, trial, t - 2 : t + 1], rtol=1e-6)
        np.testing.assert_allclose(
            u, [row["goal_x"], row["goal_y"], *arrays["feedback"][0, trial, t], sisu], rtol=1e-6
        )


def test_a_chosen_reach_outside_the_kept_sample_is_an_error(tmp_path):
    cond = _conditions()
    sample = np.flatnonzero((cond["repeat"] == 0) & (cond["direction_index"] != 2))
    states, _ = _reach_store(tmp_path, sample)
    ensemble = SimpleNamespace(hyperparams={"model__sisu_input": True})
    with pytest.raises(ValueError, match=r"evaluation\.plant_perts\.keep"):
        _reach_steps(ensemble, 0, states["m0"], REACH)
