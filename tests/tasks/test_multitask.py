"""MultiTask battery (docs/science.md §1.4): trial logic per task, encodings, mask, loss,
performance, determinism and the config's checks, against the benchmark's definition."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.tasks.multitask import (
    BENCHMARK_TASK_ORDER,
    TASKS,
    MultiTaskConfig,
    angular_distance,
    direction_angle,
    direction_vector,
    multitask_loss,
    multitask_performance,
    sample_multitask,
    target_angles,
    trial_correct,
)

CONFIG = MultiTaskConfig()
PER_TASK = 40
# The benchmark's epoch ranges in 20 ms steps, [low, high) per epoch
# (context, stim1, mem1, stim2, mem2, response); None: the family has no such epoch.
RANGES = {
    "Delay": [(15, 35), (10, 75), None, None, None, (15, 35)],
    "Memory": [(15, 35), (10, 80), (10, 80), None, None, (15, 35)],
    "React": [(25, 125), None, None, None, None, (15, 85)],
    "Int": [(10, 30), (10, 80), (10, 80), (10, 80), (5, 15), (15, 35)],
    "Match": [(10, 30), (10, 80), (10, 80), None, None, (15, 35)],
}


def _family(name):
    return next(f for f in ("Delay", "Memory", "React", "Match", "Int") if f in name)


@pytest.fixture(scope="module")
def batch():
    sample = jax.jit(lambda k: sample_multitask(k, batch_size=PER_TASK * 15, config=CONFIG))
    return jax.tree.map(np.asarray, sample(jax.random.PRNGKey(3)))


def _trials(batch, name):
    """(index, epochs) of every trial of task `name` in the batch."""
    idx = np.flatnonzero(batch.task == CONFIG.tasks.index(name))
    assert len(idx) == PER_TASK
    return [(i, batch.epochs[i]) for i in idx]


def _angle(v):
    return float(np.arctan2(v[1], v[0]))


def _upper_half(angle):
    k = int(np.round((angle + np.pi) / (2 * np.pi / 32))) % 32
    return k >= 16


def _close_angle(a, b, tol=1e-4):
    return float(angular_distance(jnp.float32(a), jnp.float32(b))) < tol


# ------------------------------------------------------------------ shapes, keys


def test_shapes_dtypes_and_defaults_are_the_benchmarks(batch):
    b, t = PER_TASK * 15, 320
    assert batch.inputs.shape == batch.true_inputs.shape == (b, t, 20)
    assert batch.targets.shape == (b, t, 3) and batch.mask.shape == (b, t)
    assert batch.task.shape == (b,) and batch.epochs.shape == (b, 7)
    assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == np.float32
    assert batch.task.dtype == batch.epochs.dtype == np.int32
    assert CONFIG.tasks == BENCHMARK_TASK_ORDER and set(CONFIG.tasks) == set(TASKS)
    # env_task/MultiTask.yaml's order, and the rule channels its code sets
    assert CONFIG.tasks[:7] == (
        "DelayPro",
        "MemoryPro",
        "ReactPro",
        "DelayAnti",
        "MemoryAnti",
        "ReactAnti",
        "IntMod1",
    )
    channel = {"DelayAnti": 6, "MemoryPro": 7, "ReactPro": 9, "IntMod1": 11, "MatchCatAnti": 19}
    for name, ch in channel.items():
        i = int(np.flatnonzero(batch.task == CONFIG.tasks.index(name))[0])
        assert batch.true_inputs[i, 0, ch] == 1 and batch.true_inputs[i, 0, 5:].sum() == 1, name
    assert (CONFIG.n_inputs, CONFIG.n_outputs, CONFIG.n_tasks) == (20, 3, 15)
    # equal numbers per task, as in the benchmark's data set
    np.testing.assert_array_equal(np.bincount(batch.task, minlength=15), PER_TASK)


def test_same_key_same_batch_and_different_keys_differ():
    sample = jax.jit(lambda k: sample_multitask(k, batch_size=32, config=CONFIG))
    a, b, c = (
        sample(jax.random.PRNGKey(7)),
        sample(jax.random.PRNGKey(7)),
        sample(jax.random.PRNGKey(8)),
    )
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a.epochs), np.asarray(c.epochs))
    assert not np.array_equal(np.asarray(a.inputs), np.asarray(c.inputs))


def test_task_argument_draws_one_task_even_when_traced():
    for i in (0, 11):
        got = sample_multitask(jax.random.PRNGKey(0), batch_size=6, config=CONFIG, task=i)
        np.testing.assert_array_equal(np.asarray(got.task), i)
    traced = jax.jit(lambda k, i: sample_multitask(k, batch_size=4, config=CONFIG, task=i))
    np.testing.assert_array_equal(np.asarray(traced(jax.random.PRNGKey(0), jnp.int32(5)).task), 5)
    with pytest.raises(ValueError, match="task = 15: must index config.tasks"):
        sample_multitask(jax.random.PRNGKey(0), batch_size=4, config=CONFIG, task=15)


# ------------------------------------------------------------ epochs and layout


def test_epoch_lengths_lie_in_the_benchmarks_ranges(batch):
    for name in TASKS:
        ranges = RANGES[_family(name)]
        lengths = np.array([np.diff(b) for _, b in _trials(batch, name)])
        for e, r in enumerate(ranges):
            if r is None:
                assert (lengths[:, e] == 0).all(), (name, e)
            else:
                assert (lengths[:, e] >= r[0]).all() and (lengths[:, e] < r[1]).all(), (name, e)
                assert len(np.unique(lengths[:, e])) > 3, (name, e)  # drawn, not fixed


def test_rule_fixation_inputs_and_padding(batch):
    for name in TASKS:
        code = TASKS.index(name)
        for i, b in _trials(batch, name):
            x, end, go = batch.true_inputs[i], b[6], b[5]
            rule = np.zeros(15)
            rule[code] = 1
            np.testing.assert_array_equal(x[:end, 5:], np.tile(rule, (end, 1)))
            # React and match tasks: the fixation input stays on; others: off at the go time
            fix_end = end if _family(name) in ("React", "Match") else go
            np.testing.assert_array_equal(x[:end, 0], np.arange(end) < fix_end)
            # after the trial nothing is shown, not even noise
            assert not batch.inputs[i, end:].any() and not batch.targets[i, end:].any()


def test_noise_is_the_configured_std_inside_the_trial(batch):
    inside = np.arange(320)[None, :] < batch.epochs[:, 6:7]
    noise = (batch.inputs - batch.true_inputs)[inside]
    assert abs(noise.std() - CONFIG.noise) < 0.003 and abs(noise.mean()) < 0.003


def test_fixation_target_is_one_before_the_response_and_zero_in_it(batch):
    no_fixation = ("NonMatch2Sample", "MatchCatPro", "MatchCatAnti")  # the benchmark's code
    for name in TASKS:
        for i, b in _trials(batch, name):
            want = np.zeros(320)
            if name not in no_fixation:
                want[: b[5]] = 1
            np.testing.assert_array_equal(batch.targets[i, :, 0], want)
            assert not batch.targets[i, : b[5], 1:].any()  # no response before the go time
    config = MultiTaskConfig(tasks=no_fixation, fixation_target_in_all_match_tasks=True)
    got = sample_multitask(jax.random.PRNGKey(1), batch_size=9, config=config)
    go = np.asarray(got.epochs[:, 5:6])
    np.testing.assert_array_equal(np.asarray(got.targets[..., 0]), np.arange(320)[None] < go)


# --------------------------------------------------------------- per-task rules


@pytest.mark.parametrize(
    "name", ["DelayPro", "DelayAnti", "MemoryPro", "MemoryAnti", "ReactPro", "ReactAnti"]
)
def test_pro_tasks_respond_toward_the_stimulus_and_anti_tasks_away(batch, name):
    grid = np.asarray(target_angles(32))
    for i, b in _trials(batch, name):
        x, y = batch.true_inputs[i], batch.targets[i]
        shown = {"Delay": (b[1], b[6]), "Memory": (b[1], b[2]), "React": (b[5], b[6])}[
            _family(name)
        ]
        stim = x[shown[0] : shown[1], 1:3]
        np.testing.assert_allclose(stim, np.tile(stim[0], (len(stim), 1)))
        assert not np.delete(x[:, 1:5], np.arange(*shown), axis=0).any()  # shown only then
        assert not x[:, 3:5].any()  # modality 2 is silent
        theta = _angle(stim[0])
        assert float(jnp.min(angular_distance(grid, theta))) < 1e-5  # on the 32-target grid
        want = theta + (np.pi if "Anti" in name else 0.0)
        response = y[b[5] : b[6], 1:]
        np.testing.assert_allclose(
            response, np.tile(direction_vector(want), (len(response), 1)), atol=1e-6
        )


def test_memory_stimulus_is_gone_before_the_response(batch):
    for i, b in _trials(batch, "MemoryPro"):
        assert b[3] - b[2] >= 10  # a memory epoch of at least 200 ms
        assert not batch.true_inputs[i, b[2] :, 1:5].any()


@pytest.mark.parametrize(
    "name", ["IntMod1", "IntMod2", "ContextIntMod1", "ContextIntMod2", "ContextIntMultimodal"]
)
def test_decision_tasks_report_the_stronger_stimulus(batch, name):
    for i, b in _trials(batch, name):
        x = batch.true_inputs[i]
        m1 = (x[b[1], 1:3], x[b[3], 1:3])  # modality 1: stimulus 1, stimulus 2
        m2 = (x[b[1], 3:5], x[b[3], 3:5])
        for s, (on, off) in enumerate([(b[1], b[2]), (b[3], b[4])]):
            np.testing.assert_allclose(x[on:off, 1:3], np.tile(m1[s], (off - on, 1)))
            np.testing.assert_allclose(x[on:off, 3:5], np.tile(m2[s], (off - on, 1)))
        assert not x[b[2] : b[3], 1:5].any() and not x[b[4] :, 1:5].any()
        theta = [_angle(m1[0] if m1[0].any() else m2[0]), _angle(m1[1] if m1[1].any() else m2[1])]
        gap = np.rad2deg(np.mod(theta[1] - theta[0], 2 * np.pi))
        assert 90 - 1e-3 <= gap <= 270 + 1e-3
        n1, n2 = [np.linalg.norm(v, axis=1) for v in (np.array(m1), np.array(m2))]
        if name == "IntMod1":
            assert not n2.any()
            strength = n1
        elif name == "IntMod2":
            assert not n1.any()
            strength = n2
        else:
            strength = {
                "ContextIntMod1": n1,
                "ContextIntMod2": n2,
                "ContextIntMultimodal": n1 + n2,
            }[name]
        for n in (n1, n2):  # magnitudes mean +- coherence, mean in [0.8, 1.2]
            if n.any():
                assert np.isclose(abs(n[0] - n[1]) / 2, [0.08, 0.16, 0.32], atol=1e-5).any()
        # exact cancellation (multimodal only) answers stimulus 1
        winner = 0 if strength[0] - strength[1] > -1e-5 else 1
        response = batch.targets[i, b[5] : b[6], 1:]
        np.testing.assert_allclose(response[0], direction_vector(theta[winner]), atol=1e-5)


@pytest.mark.parametrize("name", ["Match2Sample", "NonMatch2Sample", "MatchCatPro", "MatchCatAnti"])
def test_match_tasks_respond_toward_the_test_stimulus_only_when_the_rule_holds(batch, name):
    responded = []
    for i, b in _trials(batch, name):
        x = batch.true_inputs[i]
        sample, test = _angle(x[b[1], 1:3]), _angle(x[b[5], 1:3])
        assert not x[b[2] : b[5], 1:5].any() and not x[:, 3:5].any()
        same = _close_angle(sample, test)
        opposite = _close_angle(sample + np.pi, test)
        if name == "Match2Sample":
            rule = same
        elif name == "NonMatch2Sample":
            rule = opposite
        else:  # categories: the grid's halves [-pi, 0) and [0, pi); atan2 gives -pi as pi
            same_half = _upper_half(sample) == _upper_half(test)
            rule = same_half if name == "MatchCatPro" else not same_half
        response = batch.targets[i, b[5] : b[6], 1:]
        if rule:
            np.testing.assert_allclose(response[-1], direction_vector(test), atol=1e-5)
        else:
            assert not response.any()
        responded.append(rule)
    assert 0.2 < np.mean(responded) < 0.8  # both kinds of trial occur


# ----------------------------------------------------------------- mask, loss


def test_loss_mask_ignores_the_start_and_the_grace_period_and_weights_the_response(batch):
    for i in range(0, len(batch.task), 7):
        go, end = batch.epochs[i, 5], batch.epochs[i, 6]
        want = np.ones(320)
        want[:5] = 0
        want[go:end] = 5
        want[go : go + 5] = 0
        want[end:] = 0
        np.testing.assert_array_equal(batch.mask[i], want)


def test_loss_is_zero_at_the_targets_and_the_masked_sum_otherwise(batch):
    assert float(multitask_loss(jnp.asarray(batch.targets), batch)) == 0.0
    rng = np.random.default_rng(0)
    out = rng.normal(size=batch.targets.shape).astype(np.float32)
    terms = []  # per (trial, output): sum over steps of mask * squared error
    for b in range(0, 600, 60):
        for o in range(3):
            err = [(out[b, t, o] - batch.targets[b, t, o]) ** 2 for t in range(320)]
            terms.append(sum(batch.mask[b, t] * err[t] for t in range(320)))
    want = np.mean(terms)
    sub = jax.tree.map(lambda a: a[::60], batch)
    np.testing.assert_allclose(float(multitask_loss(jnp.asarray(out[::60]), sub)), want, rtol=1e-5)


# ---------------------------------------------------------------- performance


def test_targets_score_perfectly_and_silence_only_on_no_response_trials(batch):
    np.testing.assert_array_equal(
        np.asarray(multitask_performance(batch.targets, batch, CONFIG)), 1.0
    )
    zero = np.asarray(multitask_performance(np.zeros_like(batch.targets), batch, CONFIG))
    for k, name in enumerate(CONFIG.tasks):
        idx = batch.task == k
        silent = ~np.abs(batch.targets[idx, :, 1:]).any(axis=(1, 2))
        assert zero[k] == pytest.approx(silent.mean()), name
        if _family(name) != "Match":
            assert zero[k] == 0.0
    strict = np.asarray(
        multitask_performance(np.zeros_like(batch.targets), batch, CONFIG, fixation_threshold=0.5)
    )
    assert strict[CONFIG.tasks.index("Match2Sample")] == 0.0  # silence breaks fixation


def test_tolerance_is_pi_over_ten_and_anti_answers_fail(batch):
    def rotated(angle):
        c, s = np.cos(angle), np.sin(angle)
        y = batch.targets.copy()
        y[..., 1], y[..., 2] = c * y[..., 1] - s * y[..., 2], s * y[..., 1] + c * y[..., 2]
        return y

    responds = np.abs(batch.targets[:, :, 1:]).any(axis=(1, 2))
    for angle, want in [(0.9 * np.pi / 10, True), (1.1 * np.pi / 10, False), (np.pi, False)]:
        got = np.asarray(trial_correct(rotated(angle), batch))
        assert (got[responds] == want).all(), angle
        assert got[~responds].all()  # still silent where no response is asked
    assert (
        np.isnan(
            np.asarray(
                multitask_performance(
                    batch.targets[:3], jax.tree.map(lambda a: a[:3], batch), CONFIG
                )
            )
        ).sum()
        == 12
    )


# --------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tasks=("DelayPro", "Foo")), r"multitask.tasks = .*unknown \['Foo'\]; allowed"),
        (dict(tasks=("DelayPro", "DelayPro")), "listed twice"),
        (dict(tasks=()), "non-empty list"),
        (dict(tasks="DelayPro"), "non-empty list"),
        (dict(n_timesteps=300), r"n_timesteps = 300: must be >= 314"),
        (dict(n_timesteps=320.0), r"n_timesteps = 320.0: must be an integer"),
        (dict(bin_size_ms=30), r"bin_size_ms = 30: must divide 100"),
        (dict(num_targets=1), r"num_targets = 1: must be >= 2"),
        (dict(noise=-0.1), r"noise = -0.1: must be >= 0"),
        (dict(noise=float("nan")), r"noise = nan: must be >= 0"),
        (dict(response_weight=-1.0), r"response_weight = -1.0: must be >= 0"),
        (dict(grace_steps=-1), r"grace_steps = -1: must be >= 0"),
    ],
)
def test_config_refuses_bad_values_naming_field_value_and_rule(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiTaskConfig(**kwargs)


def test_shorter_task_lists_and_finer_bins_change_the_limits():
    assert MultiTaskConfig(tasks=["DelayPro"], n_timesteps=142).tasks == (
        "DelayPro",
    )  # 34 + 74 + 34
    with pytest.raises(ValueError, match=">= 142"):
        MultiTaskConfig(tasks=["DelayPro"], n_timesteps=141)
    fine = MultiTaskConfig(tasks=("ReactPro",), bin_size_ms=10, n_timesteps=420)
    got = sample_multitask(jax.random.PRNGKey(0), batch_size=64, config=fine)
    context = np.asarray(got.epochs[:, 1])
    assert context.min() >= 50 and context.max() < 250 and context.max() > 125  # 500-2500 ms


# ------------------------------------------------------------------ encoding


@settings(max_examples=200, deadline=None)
@given(
    theta=st.floats(-20.0, 20.0, allow_nan=False),
    magnitude=st.floats(0.05, 5.0, allow_nan=False),
)
def test_encoded_direction_decodes_to_itself(theta, magnitude):
    decoded = direction_angle(magnitude * direction_vector(jnp.float32(theta)))
    assert float(angular_distance(decoded, jnp.float32(theta))) < 1e-4


@settings(max_examples=200, deadline=None)
@given(a=st.floats(-10.0, 10.0), b=st.floats(-10.0, 10.0), turns=st.integers(-3, 3))
def test_angular_distance_is_a_wrapped_symmetric_distance(a, b, turns):
    # float32 arithmetic on angles up to ~30 rad: tolerances of a few 1e-6
    d = float(angular_distance(jnp.float32(a), jnp.float32(b)))
    assert 0 <= d <= np.pi + 1e-6
    assert d == pytest.approx(float(angular_distance(jnp.float32(b), jnp.float32(a))), abs=1e-5)
    assert d == pytest.approx(
        float(angular_distance(jnp.float32(a + 2 * np.pi * turns), jnp.float32(b))), abs=2e-5
    )
    assert d == pytest.approx(
        min(abs(a - b) % (2 * np.pi), 2 * np.pi - abs(a - b) % (2 * np.pi)), abs=2e-5
    )
