"""Reaching task: cost, training-trial sampling, center-out grids (docs/science.md §1.1, §4)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.tasks import (  # noqa: E402
    COST_TERMS,
    center_out_grid,
    cost_weights,
    grid_centres,
    pert_params,
    reach_cost,
    sample_training_trials,
)
from science_fixtures import hp  # noqa: E402

# ------------------------------------------------------------------------- cost


def _loop_cost(pos, vel, control, hidden, goal, w_p, e, w_v, w_u, w_h):
    n = len(pos)
    position = 0.0
    for k in range(1, n + 1):
        d2 = sum((pos[k - 1][i] - goal[i]) ** 2 for i in range(2))
        position += (k / n) ** e * d2
    final_velocity = vel[-1][0] ** 2 + vel[-1][1] ** 2
    control_sum = sum(c**2 for row in control for c in row)
    hidden_sum = sum(h**2 for row in hidden for h in row)
    return {
        "position": w_p * position,
        "final_velocity": w_v * final_velocity,
        "control": w_u * control_sum,
        "hidden": w_h * hidden_sum,
    }


@pytest.mark.parametrize(
    "weights",
    [
        dict(cost__position=1.0, cost__position_exponent=6, cost__final_velocity=1.0,
             cost__control=1e-5, cost__hidden=1e-5),
        dict(cost__position=2.5, cost__position_exponent=2, cost__final_velocity=0.3,
             cost__control=0.1, cost__hidden=0.02),
    ],
)  # fmt: skip
def test_reach_cost_terms_match_explicit_loops(weights):
    rng = np.random.default_rng(0)
    n, h = 13, 5
    pos, vel = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    control, hidden, goal = rng.normal(size=(n, 2)), rng.normal(size=(n, h)), rng.normal(size=2)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    got = reach_cost(
        f32(pos), f32(vel), f32(control), f32(hidden), f32(goal), cost_weights(hp(**weights))
    )
    want = _loop_cost(
        pos.tolist(), vel.tolist(), control.tolist(), hidden.tolist(), goal.tolist(),
        weights["cost__position"], weights["cost__position_exponent"],
        weights["cost__final_velocity"], weights["cost__control"], weights["cost__hidden"],
    )  # fmt: skip
    assert set(got) == set(COST_TERMS)
    for term, value in want.items():
        np.testing.assert_allclose(float(got[term]), value, rtol=1e-5, err_msg=term)
    np.testing.assert_allclose(float(got["total"]), sum(want.values()), rtol=1e-5)


def test_position_cost_ramp_weights_the_last_step_fully_and_the_first_almost_not():
    n = 10
    goal = jnp.zeros(2)
    zeros = jnp.zeros((n, 2))
    w = cost_weights(hp())
    only_last = zeros.at[-1].set(jnp.array([1.0, 0.0]))
    only_first = zeros.at[0].set(jnp.array([0.0, 2.0]))
    assert float(reach_cost(only_last, zeros, zeros, zeros, goal, w)["position"]) == pytest.approx(
        1.0
    )
    assert float(reach_cost(only_first, zeros, zeros, zeros, goal, w)["position"]) == pytest.approx(
        4.0 * (1 / n) ** 6
    )
    # final velocity looks at the last row only
    vel = zeros.at[-2].set(jnp.array([5.0, 5.0]))
    assert float(reach_cost(zeros, vel, zeros, zeros, goal, w)["final_velocity"]) == 0.0
    vel = zeros.at[-1].set(jnp.array([3.0, 4.0]))
    assert float(reach_cost(zeros, vel, zeros, zeros, goal, w)["final_velocity"]) == pytest.approx(
        25.0
    )


# ------------------------------------------------------------ training trials

N_SAMPLES = 4000
K = 5


_sample_jit = jax.jit(sample_training_trials, static_argnames=("batch_size", "n_steps"))


def _sample(seed=0, workspace=1.0, n=N_SAMPLES, **overrides):
    return _sample_jit(
        jax.random.PRNGKey(seed),
        pert_params(hp(**overrides)),
        batch_size=n,
        n_steps=K,
        workspace=jnp.asarray(workspace, jnp.float32),
    )


def _np(trials):
    return jax.tree.map(lambda x: np.asarray(x, float), trials)


@pytest.mark.parametrize("workspace", [1.0, 0.4])
def test_start_and_goal_are_uniform_in_the_workspace(workspace):
    t = _np(_sample(workspace=workspace))
    for name in ("start", "goal"):
        xy = getattr(t, name)
        assert xy.shape == (N_SAMPLES, 2)
        assert np.all(np.abs(xy) <= workspace)
        se_mean = workspace / np.sqrt(3 * N_SAMPLES)
        assert np.all(np.abs(xy.mean(0)) < 4 * se_mean)
        np.testing.assert_allclose(xy.var(0), workspace**2 / 3, rtol=0.06)
        # the corners are reached: not confined to a smaller box
        assert np.all(np.abs(xy).max(0) > 0.98 * workspace)
    assert np.abs(np.corrcoef(t.start[:, 0], t.goal[:, 0])[0, 1]) < 0.06  # start, goal independent
    assert t.sisu.shape == (N_SAMPLES, K) and t.feedback_offset.shape == (N_SAMPLES, K, 4)
    np.testing.assert_array_equal(t.feedback_offset, 0.0)


@pytest.mark.parametrize("std", [0.0, 0.5, 1.5])
def test_fixed_curl_amplitudes_have_the_training_std(std):
    t = _np(_sample(train__method="fixed", train__pert__type="curl", train__pert__std=std))
    np.testing.assert_array_equal(t.force, 0.0)
    np.testing.assert_array_equal(t.sisu, 0.0)  # part 1: the network is told nothing
    if std == 0.0:
        np.testing.assert_array_equal(t.curl, 0.0)
    else:
        np.testing.assert_allclose(t.curl.std(), std, rtol=0.05)
        assert abs(t.curl.mean()) < 4 * std / np.sqrt(N_SAMPLES)
        # normal, not uniform: ~31.7% beyond one sd
        assert 0.28 < np.mean(np.abs(t.curl) > std) < 0.36


@pytest.mark.parametrize("std", [0.1, 1.0])
def test_fixed_constant_force_norm_is_half_normal_and_angle_uniform(std):
    t = _np(
        _sample(seed=1, train__method="fixed", train__pert__type="constant", train__pert__std=std)
    )
    np.testing.assert_array_equal(t.curl, 0.0)
    norm = np.linalg.norm(t.force, axis=1)
    # |N(0, s^2)|: mean s sqrt(2/pi), second moment s^2
    np.testing.assert_allclose(norm.mean(), std * np.sqrt(2 / np.pi), rtol=0.05)
    np.testing.assert_allclose(np.mean(norm**2), std**2, rtol=0.06)
    angle = np.arctan2(t.force[:, 1], t.force[:, 0])
    counts, _ = np.histogram(angle, bins=8, range=(-np.pi, np.pi))
    expected = N_SAMPLES / 8
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 24.3  # chi2(7) 0.999 quantile
    # uniform angle: the mean force vector is ~0
    assert np.all(np.abs(t.force.mean(0)) < 4 * std / np.sqrt(N_SAMPLES))


def test_p_active_switches_the_fixed_field_off_in_some_trials():
    t = _np(_sample(seed=2, train__pert__std=1.0, train__pert__p_active=0.3))
    active = t.curl != 0
    assert abs(active.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / N_SAMPLES)
    np.testing.assert_allclose(t.curl[active].std(), 1.0, rtol=0.08)


@pytest.mark.parametrize("pert_type", ["curl", "constant"])
def test_bcs_sisu_is_binary_and_marks_the_active_field(pert_type):
    t = _np(_sample(seed=3, train__method="bcs", train__pert__type=pert_type,
                    train__pert__std=1.0, train__pert__p_active=0.5))  # fmt: skip
    sisu = t.sisu[:, 0]
    np.testing.assert_array_equal(t.sisu, np.broadcast_to(sisu[:, None], t.sisu.shape))
    assert set(np.unique(sisu)) <= {0.0, 1.0}
    assert abs(sisu.mean() - 0.5) < 4 * np.sqrt(0.25 / N_SAMPLES)
    field = np.abs(t.curl) + np.linalg.norm(t.force, axis=1)
    np.testing.assert_array_equal(sisu == 1.0, field != 0)
    amp = t.curl if pert_type == "curl" else np.linalg.norm(t.force, axis=1)
    np.testing.assert_allclose(np.sqrt(np.mean(amp[sisu == 1] ** 2)), 1.0, rtol=0.08)


def test_dai_sisu_is_the_absolute_amplitude_and_always_active():
    t = _np(_sample(seed=4, train__method="dai", train__pert__std=1.5, train__pert__p_active=0.5))
    np.testing.assert_allclose(t.sisu[:, 0], np.abs(t.curl), rtol=1e-6)
    np.testing.assert_allclose(t.sisu[:, -1], np.abs(t.curl), rtol=1e-6)
    assert np.all(t.curl != 0)  # p_active is ignored: always active
    np.testing.assert_allclose(t.curl.std(), 1.5, rtol=0.05)


def test_pai_asf_sisu_is_the_scale_and_the_amplitude_spread_follows_it():
    std = 2.0
    t = _np(
        _sample(seed=5, train__method="pai-asf", train__pert__std=std, train__pert__p_active=0.5)
    )
    s, amp = t.sisu[:, 0], t.curl
    assert np.all((s >= 0) & (s <= 1))
    # s ~ U(0, 1)
    np.testing.assert_allclose(s.mean(), 0.5, atol=4 * np.sqrt(1 / 12 / N_SAMPLES))
    np.testing.assert_allclose(s.var(), 1 / 12, rtol=0.06)
    # amp / s ~ N(0, std^2)
    z = amp / s
    np.testing.assert_allclose(z.std(), std, rtol=0.05)
    # E|amp| = s std sqrt(2/pi): regression of |amp| on s through the origin
    slope = np.sum(s * np.abs(amp)) / np.sum(s * s)
    np.testing.assert_allclose(slope, std * np.sqrt(2 / np.pi), rtol=0.06)
    # the sample itself is not revealed: |amp| is not a function of SISU
    assert np.corrcoef(s, np.abs(amp))[0, 1] < 0.7


def test_sampling_is_reproducible_and_seed_dependent():
    a, b = _np(_sample(seed=7)), _np(_sample(seed=7))
    c = _np(_sample(seed=8))
    np.testing.assert_array_equal(a.start, b.start)
    assert not np.allclose(a.start, c.start)


# ----------------------------------------------------------- center-out grids


@pytest.mark.parametrize(
    ("grid_n", "n_dir", "n_rep", "length", "w"),
    [(1, 8, 1, 0.5, 1.0), (2, 24, 3, 0.5, 1.0), (5, 3, 2, 0.2, 0.6), (3, 7, 1, 0.8, 1.0)],
)
def test_center_out_grid_counts_lengths_and_workspace(grid_n, n_dir, n_rep, length, w):
    g = center_out_grid(grid_n, n_dir, length, n_rep, w)
    n = grid_n**2 * n_dir * n_rep
    for field in g._fields:
        assert len(getattr(g, field)) == n, field
    np.testing.assert_allclose(np.linalg.norm(g.goal - g.start, axis=1), length, atol=1e-12)
    assert np.all(np.abs(g.goal) <= w + 1e-12) and np.all(np.abs(g.start) <= w + 1e-12)
    # the reach points along its direction
    np.testing.assert_allclose(
        g.goal - g.start,
        length * np.stack([np.cos(g.direction), np.sin(g.direction)], -1),
        atol=1e-12,
    )
    # directions evenly spaced over the circle; each (centre, direction, repeat) exactly once
    np.testing.assert_allclose(np.unique(g.direction), 2 * np.pi * np.arange(n_dir) / n_dir)
    combos = set(
        zip(g.centre_index.tolist(), g.direction_index.tolist(), g.repeat.tolist(), strict=True)
    )
    assert len(combos) == n
    assert len(np.unique(g.centre, axis=0)) == grid_n**2


def test_grid_centres_are_evenly_spaced_and_symmetric():
    c = grid_centres(3, 1.0, 0.5)
    np.testing.assert_allclose(np.unique(c[:, 0]), [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(np.unique(c[:, 1]), [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(grid_centres(1, 1.0, 0.5), [[0.0, 0.0]])
    np.testing.assert_allclose(c.mean(0), 0.0, atol=1e-12)


def test_reach_as_long_as_the_workspace_half_width_leaves_only_the_origin():
    g = center_out_grid(1, 4, 1.0, 1, 1.0)
    np.testing.assert_allclose(g.start, 0.0)
    np.testing.assert_allclose(np.linalg.norm(g.goal, axis=1), 1.0)


def test_zero_reach_length_holds_still_at_the_centre():
    g = center_out_grid(2, 6, 0.0, 2, 1.0)
    np.testing.assert_array_equal(g.goal, g.start)
    # the full workspace is used for centres when there is no reach
    assert np.abs(g.centre).max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(grid_n=0), "eval_grid_n"),
        (dict(grid_n=-2), "eval_grid_n"),
        (dict(reach_length=1.5), "eval_reach_length"),
        (dict(n_directions=0), "eval_n_directions"),
        (dict(n_repeats=0), "eval_n"),
    ],
)
def test_bad_grid_values_raise_naming_the_parameter(kwargs, name):
    args = dict(grid_n=2, n_directions=4, reach_length=0.5, n_repeats=1, workspace=1.0) | kwargs
    with pytest.raises(ValueError, match=name):
        center_out_grid(**args)


def test_negative_reach_length_raises():
    with pytest.raises(ValueError, match="eval_reach_length"):
        center_out_grid(2, 4, -0.5, 1, 1.0)


def test_bcs_with_the_part2_configuration_switches_the_field_on_half_the_time():
    # docs/science.md §1.1: `bcs` has the field on with p = 0.5; part 2 sets it as an override.
    import yaml

    conf = Path(__file__).parents[2] / "conf" / "base" / "parameters_analysis_part2.yml"
    training = yaml.safe_load(conf.read_text())["analysis_part2"]["training"]
    p_active = training["overrides"]["train"]["pert"]["p_active"]
    assert "bcs" in training["spread"]["train__method"]
    t = _np(
        _sample(seed=9, train__method="bcs", train__pert__std=1.0, train__pert__p_active=p_active)
    )
    assert abs(t.sisu[:, 0].mean() - 0.5) < 0.05
