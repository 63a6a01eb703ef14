"""Evaluation trial sets: plant and feedback perturbations, and ensemble rollouts."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.analysis import TRAJECTORY_AXES, feedback_perts, plant_perts, simulate_ensemble  # noqa: E402
from ntdyn.models import ensemble_from_hyperparams  # noqa: E402
from science_fixtures import hp  # noqa: E402

GRID = dict(grid_n=2, n_directions=5, n_repeats=2, workspace=1.0)
N_GRID = 2**2 * 5 * 2


def _np(trials):
    return jax.tree.map(np.asarray, trials)


def _feedback(**kw):
    args = dict(
        amplitudes={"position": [0.0, 0.5, 1.8], "velocity": [1.2]},
        sisu=[-1.0, 2.0],
        impulse_start=4,
        impulse_steps=3,
        n_steps=12,
        **GRID,
    )
    return feedback_perts(**(args | kw))


def test_feedback_perts_counts_and_conditions():
    trials, table = _feedback()
    t = _np(trials)
    n = (3 + 1) * 2 * N_GRID
    assert (
        t.start.shape == (n, 2)
        and t.sisu.shape == (n, 12)
        and t.feedback_offset.shape == (n, 12, 4)
    )
    assert len(table) == n
    assert list(table.trial) == list(range(n))
    assert {"channel", "impulse_amp", "sisu", "direction", "centre_index"} <= set(table.columns)
    counts = table.groupby(["channel", "impulse_amp", "sisu"]).size()
    assert len(counts) == 8 and set(counts) == {N_GRID}
    # steady state: length 0, no field; SISU as in the table, held over the trial
    np.testing.assert_array_equal(t.goal, t.start)
    np.testing.assert_array_equal(t.curl, 0.0)
    np.testing.assert_array_equal(t.force, 0.0)
    np.testing.assert_allclose(t.sisu, np.broadcast_to(table.sisu.to_numpy()[:, None], (n, 12)))
    np.testing.assert_allclose(t.start[:, 0], table.start_x)


def test_feedback_impulse_is_exactly_in_its_window_on_its_channel_along_its_direction():
    trials, table = _feedback()
    off = np.asarray(trials.feedback_offset, float)
    window = np.zeros(12, bool)
    window[4:7] = True
    for i, row in table.iterrows():
        cols = [0, 1] if row.channel == "position" else [2, 3]
        other = [2, 3] if row.channel == "position" else [0, 1]
        want = row.impulse_amp * np.array([np.cos(row.direction), np.sin(row.direction)])
        np.testing.assert_allclose(
            off[i][window][:, cols], np.broadcast_to(want, (3, 2)), atol=1e-6
        )
        np.testing.assert_array_equal(off[i][~window], 0.0)
        np.testing.assert_array_equal(off[i][:, other], 0.0)
        assert np.linalg.norm(off[i, 4, cols]) == pytest.approx(row.impulse_amp, abs=1e-6)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(impulse_start=10, impulse_steps=3), "impulse"),
        (dict(impulse_start=-1), "impulse"),
        (dict(impulse_steps=0), "impulse"),
        (dict(amplitudes={"torque": [1.0]}), "channel"),
        (dict(n_steps=0), "n_steps"),
    ],
)
def test_feedback_perts_refuses_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        _feedback(**kw)


def _plant(pert_type, **kw):
    args = dict(pert_type=pert_type, amplitudes=[0.0, 4.0], sisu=[-3.0, 0.0, 3.0],
                reach_length=0.5, n_steps=15, **GRID)  # fmt: skip
    return plant_perts(**(args | kw))


def test_plant_perts_curl_counts_and_fields():
    trials, table = _plant("curl")
    t = _np(trials)
    n = 2 * 3 * N_GRID
    assert len(table) == n == t.start.shape[0]
    np.testing.assert_allclose(t.curl, table.pert_amp)
    np.testing.assert_array_equal(t.force, 0.0)
    np.testing.assert_array_equal(t.feedback_offset, 0.0)
    np.testing.assert_allclose(t.sisu[:, 0], table.sisu)
    np.testing.assert_allclose(np.linalg.norm(t.goal - t.start, axis=1), 0.5, atol=1e-6)
    reach = t.goal - t.start
    np.testing.assert_allclose(np.arctan2(reach[:, 1], reach[:, 0]) % (2 * np.pi),
                               table.direction % (2 * np.pi), atol=1e-5)  # fmt: skip


def test_constant_plant_pert_points_to_the_left_of_the_reach():
    trials, table = _plant("constant", amplitudes=[0.0, 0.5, 2.0])
    t = _np(trials)
    np.testing.assert_array_equal(t.curl, 0.0)
    reach = (t.goal - t.start) / 0.5
    left = np.stack([-reach[:, 1], reach[:, 0]], -1)
    np.testing.assert_allclose(np.sum(t.force * left, 1), table.pert_amp, atol=1e-6)
    np.testing.assert_allclose(np.sum(t.force * reach, 1), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(t.force, axis=1), table.pert_amp, atol=1e-6)


def test_plant_perts_refuses_unknown_field():
    with pytest.raises(ValueError, match="pert_type"):
        _plant("gravity")


def test_rollout_uses_the_models_own_delay_and_labels_axes():
    delay = 4
    row = hp(model__hidden_size=5, task__feedback__delay=delay, task__feedback__noise_std=0.0,
             task__motor__noise_std=0.0, task__motor__mult_noise_std=0.0)  # fmt: skip
    ensemble = ensemble_from_hyperparams(row, jax.random.split(jax.random.PRNGKey(0), 2))
    trials, _ = _plant("constant", amplitudes=[3.0], sisu=[0.0], n_steps=12)
    out = simulate_ensemble(ensemble, row, trials, seed=0)
    assert out.axes == TRAJECTORY_AXES
    n = trials.start.shape[0]
    assert out["state"].shape == (2, n, 12, 4)
    assert out["hidden"].shape == (2, n, 12, 5)
    assert out.attrs["seed"] == 0
    start = np.asarray(trials.start, float)
    x0 = np.concatenate([start, np.zeros_like(start)], -1)  # (n, 4)
    for r in range(2):
        seen = np.concatenate([x0[:, None], out["state"][r]], axis=1)  # (n, 13, 4)
        want = seen[:, np.maximum(np.arange(12) - delay, 0)]
        np.testing.assert_allclose(out["feedback"][r], want, rtol=1e-5, atol=1e-7)
    # different replicates are different networks
    assert not np.allclose(out["hidden"][0], out["hidden"][1])
