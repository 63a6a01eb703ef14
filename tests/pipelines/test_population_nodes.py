"""Population nodes on stored evaluations with known answers (no Kedro session).

The evaluations are written in the stored layout (`ntdyn.analysis.stored`) and read back
through `EvaluationArrays`, as the pipeline reads them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
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
from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.pipelines.population.nodes import (
    _reach_steps,
    fps_reach,
    pca_tangling,
    reach_context_influence,
    reach_effective_directions,
    reach_fixed_points,
)

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
        "centre_index": 0, "direction_index": d.ravel(), "direction": angle,
        "pert_amp": amp.ravel(),
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


def _context_group_by_group(points: pd.DataFrame) -> pd.DataFrame:
    """Reference: reach_context_influence written row by row (per reach: centre and direction,
    when the points say their centre)."""
    keys = ["hash", *(["centre_index"] if "centre_index" in points else []), "direction_index",
            "step"]  # fmt: skip
    best = points.sort_values("q").drop_duplicates([*keys, "sisu"])
    rows = []
    for values, g in best.groupby(keys, sort=True):
        g = g.sort_values("sisu")
        ref = np.asarray(g["h"].iloc[0], float)
        for _, row in g.iterrows():
            rows.append({
                **dict(zip(keys, values, strict=True)), "sisu": row["sisu"],
                "fp_shift": float(np.linalg.norm(np.asarray(row["h"], float) - ref)),
                "max_abs_eigenvalue": row["max_abs_eigenvalue"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_reach_context_compares_sisu_within_one_reach_not_across_centres():
    h = [np.zeros(3), np.ones(3), np.full(3, 5.0), np.full(3, 7.0)]
    points = pd.DataFrame({
        "hash": "m", "centre_index": [0, 0, 1, 1], "direction_index": 0, "step": 3,
        "sisu": [0.0, 2.0, 0.0, 2.0], "q": [1e-3, 1e-3, 1e-9, 1e-9], "h": h,
        "max_abs_eigenvalue": 0.5,
    })  # fmt: skip
    context = reach_context_influence(points)
    # centre 1 has the lower q, but each centre's SISU 2 point is compared to its own SISU 0
    np.testing.assert_allclose(context["fp_shift"], [0.0, np.sqrt(3), 0.0, np.sqrt(12)])
    assert list(context["centre_index"]) == [0, 0, 1, 1]


def test_reach_context_takes_each_sisu_lowest_q_point_against_the_lowest_sisu():
    """Two models, several points per (direction, step, SISU) (grid centres, duplicates),
    SISU values in no particular order: the lowest-q point per SISU, its distance from
    the lowest SISU's, one row per (model, direction, step, SISU) in that order."""
    rng = np.random.default_rng(4)
    n = 400
    points = pd.DataFrame({
        "hash": rng.choice(["b", "a"], n), "direction_index": rng.choice([0, 8, 16], n),
        "step": rng.choice([50, 51, 52], n), "sisu": rng.choice([2.0, -3.0, 0.0, 1.0], n),
        "q": rng.choice([1e-14, 1e-13, 1e-20], n) * rng.uniform(1, 2, n),
        "max_abs_eigenvalue": rng.uniform(0.5, 1.2, n),
    })  # fmt: skip
    points["h"] = list(rng.normal(size=(n, HIDDEN)))
    table = reach_context_influence(points)
    pd.testing.assert_frame_equal(table, _context_group_by_group(points), rtol=1e-12)
    assert (
        table.groupby(["hash", "direction_index", "step"])["sisu"].is_monotonic_increasing
    ).all()
    assert (table.drop_duplicates(["hash", "direction_index", "step"])["fp_shift"] == 0).all()


def test_fps_reach_loads_each_model_once_and_equals_its_parts(tmp_path):
    """fps_reach builds a model's reach problems once for its points and its effective
    directions: the same tables as reach_fixed_points and reach_effective_directions."""
    cond = _conditions()
    rng = np.random.default_rng(5)
    arrays = {"hidden": 0.3 * rng.normal(size=(1, len(cond), N_STEPS, HIDDEN)),
              "feedback": rng.normal(size=(1, len(cond), N_STEPS, 4))}  # fmt: skip
    states = _write(tmp_path / "reach", "m0", cond, arrays, np.flatnonzero(cond["repeat"] == 0), 0)
    params = {"model__cell": "gru", "model__hidden_size": HIDDEN, "model__sisu_input": True}
    model = ensemble_from_hyperparams(params, jax.random.split(jax.random.PRNGKey(0), 1))
    ensemble = SimpleNamespace(hyperparams=params, model=model)
    loads = []
    models = {"m0": lambda: loads.append(1) or ensemble}  # a lazy loader, as Kedro gives
    records = pd.DataFrame({"hash": ["m0"], "best_replicate": [0]})
    population = {"fps_reach": {**REACH, "finder": {"adam_iters": 50, "newton_iters": 10}}}

    points, context, effective = fps_reach(models, records, states, population)
    assert len(loads) == 1 and len(points) >= 16  # 2 directions x 2 SISU x 4 steps
    pd.testing.assert_frame_equal(points, reach_fixed_points(models, records, states, population))
    pd.testing.assert_frame_equal(
        effective, reach_effective_directions(models, records, states, population)
    )
    pd.testing.assert_frame_equal(context, _context_group_by_group(points), rtol=1e-12)

    ids, inputs, near = _reach_steps(ensemble, 0, states["m0"], REACH)
    assert len(effective) == len(ids) * HIDDEN
    assert set(zip(points["trial"], points["step"], strict=True)) <= set(
        zip(ids[:, 0].astype(int), ids[:, 2].astype(int), strict=True)
    )
    # one row: W dF/dh at (h_t, u_t), rotated into the reach frame
    p = 5
    controller = jax.tree.map(lambda x: x[0], model)
    jac = jax.jacfwd(lambda h: controller.cell(jnp.asarray(inputs[p], jnp.float32), h))(
        jnp.asarray(near[p, 1])
    )
    eff = np.asarray(controller.readout.weight) @ np.asarray(jac)
    angle = states["m0"].conditions.set_index("trial").loc[int(ids[p, 0]), "direction"]
    row = effective.iloc[p * HIDDEN : (p + 1) * HIDDEN]
    assert (row["step"] == ids[p, 2]).all() and (row["trial"] == ids[p, 0]).all()
    np.testing.assert_allclose(
        row["parallel"], np.cos(angle) * eff[0] + np.sin(angle) * eff[1], rtol=1e-4, atol=1e-6
    )
