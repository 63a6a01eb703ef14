"""The benchmark's NBFF variant (`FlipFlopVariant`): {0, 1} targets, quiet first steps and the
loss mask of its NBFFLoss, on hand-made trials with known answers; the defaults draw the same
trials as before the variant existed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.hyperparams.kinds import DEFAULTS, without_defaults
from ntdyn.tasks.flipflop import (
    FlipFlopVariant,
    flipflop_loss_mask,
    last_pulse_sign,
    sample_flipflop,
)


def test_zero_one_targets_are_set_by_plus_one_reset_by_minus_one_and_start_at_zero():
    key = jax.random.PRNGKey(4)
    sign = sample_flipflop(key, batch_size=8, n_steps=60, n_bits=3, p_pulse=0.2)
    ones = sample_flipflop(key, batch_size=8, n_steps=60, n_bits=3, p_pulse=0.2,
                           target_coding="zero_one")  # fmt: skip
    np.testing.assert_array_equal(ones.inputs, sign.inputs)  # same trials
    np.testing.assert_array_equal(ones.targets, (np.asarray(sign.targets) > 0).astype(float))
    # by hand: +1 at step 1, -1 at step 3, -1 again at 4 (no change), +1 at 5
    pulses = jnp.array([[0], [1], [0], [-1], [-1], [1]], jnp.float32)
    coded = (last_pulse_sign(pulses) > 0).astype(jnp.float32)
    np.testing.assert_array_equal(coded[:, 0], [0, 1, 1, 0, 0, 1])


def test_quiet_steps_remove_pulses_but_not_noise_and_change_nothing_after():
    key = jax.random.PRNGKey(1)
    plain = sample_flipflop(key, batch_size=16, n_steps=30, n_bits=2, p_pulse=0.5)
    quiet = sample_flipflop(key, batch_size=16, n_steps=30, n_bits=2, p_pulse=0.5,
                            quiet_steps=3)  # fmt: skip
    assert not np.any(np.asarray(quiet.pulses[:, :3]))
    assert np.any(np.asarray(plain.pulses[:, :3]))  # the test could fail
    np.testing.assert_array_equal(quiet.pulses[:, 3:], plain.pulses[:, 3:])
    noise = np.asarray(quiet.inputs - quiet.pulses)[:, :3]
    np.testing.assert_allclose(noise, np.asarray(plain.inputs - plain.pulses)[:, :3], atol=1e-6)
    assert np.all(noise != 0)


def test_the_defaults_draw_exactly_the_trials_of_the_plain_task():
    key = jax.random.PRNGKey(9)
    a = sample_flipflop(key, batch_size=4, n_steps=20, n_bits=3, p_pulse=0.3)
    b = sample_flipflop(key, batch_size=4, n_steps=20, n_bits=3, p_pulse=0.3,
                        target_coding="sign", quiet_steps=0)  # fmt: skip
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_loss_mask_blinds_the_steps_after_each_change_and_the_first_steps():
    # channel 0 changes at steps 3 and 8, channel 1 at step 2 (0 -> 1) only
    targets = jnp.array([[0, 0], [0, 0], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1],
                         [0, 1], [0, 1], [0, 1], [0, 1]], jnp.float32)  # fmt: skip
    mask = np.asarray(flipflop_loss_mask(targets, transition_blind=2, ignore_first_steps=1))
    # as NBFFLoss: the step of the change counts, the next `transition_blind` do not
    np.testing.assert_array_equal(mask[:, 0], [0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(mask[:, 1], [0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    batch = jnp.stack([targets, targets[::-1]])
    np.testing.assert_array_equal(
        flipflop_loss_mask(batch, 2, 1)[1], flipflop_loss_mask(targets[::-1], 2, 1)
    )
    assert np.all(np.asarray(flipflop_loss_mask(targets, 0, 0)) == 1)


def _nbff_loss_mask_reference(targets: np.ndarray, blind: int, first: int) -> np.ndarray:
    """NBFFLoss's mask (ctd/task_modeling/task_env/loss_func.py) written in numpy: shifted
    copies of the transition marks, a column of ones in front, the first steps zeroed."""
    transitions = np.diff(targets, axis=1) != 0
    mask = np.ones_like(transitions, dtype=float)
    for i in range(1, blind + 1):
        shifted = np.concatenate([np.zeros_like(transitions[:, :i]), transitions[:, :-i]], 1)
        mask = mask * (1 - shifted)
    final = np.concatenate([np.ones_like(mask[:, :1]), mask], axis=1)
    final[:, :first] = 0.0
    return final


# A few trial lengths (shorter than, within and beyond the blind window): run op by op, every
# new shape compiles each op again, and 40 random lengths took 40 s.
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), blind=st.integers(0, 6), first=st.integers(0, 8),
       n_steps=st.sampled_from((2, 5, 25)))  # fmt: skip
def test_loss_mask_matches_the_benchmarks_construction(seed, blind, first, n_steps):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, (3, n_steps, 2)).astype(np.float32)
    np.testing.assert_array_equal(
        flipflop_loss_mask(jnp.asarray(targets), blind, first),
        _nbff_loss_mask_reference(targets, blind, first),
    )


def test_bad_variant_values_are_refused_naming_the_parameter():
    with pytest.raises(ValueError, match=r"task.target_coding = 'binary': must be one of "
                                         r"\['sign', 'zero_one'\]"):  # fmt: skip
        FlipFlopVariant(target_coding="binary")
    with pytest.raises(ValueError, match=r"task.quiet_steps = -1: must be an integer >= 0"):
        FlipFlopVariant(quiet_steps=-1)
    with pytest.raises(ValueError, match=r"task.transition_blind = 2.5"):
        FlipFlopVariant.from_hyperparams({"task__transition_blind": 2.5})
    with pytest.raises(ValueError, match="target_coding"):
        sample_flipflop(jax.random.PRNGKey(0), batch_size=1, target_coding="bits")


def test_variant_from_hyperparams_and_defaults_agree_with_the_declaration():
    hp = {"task__target_coding": "zero_one", "task__quiet_steps": 3.0,
          "task__transition_blind": np.int64(4), "task__ignore_first_steps": 5}  # fmt: skip
    assert FlipFlopVariant.from_hyperparams(hp) == FlipFlopVariant("zero_one", 3, 4, 5)
    assert FlipFlopVariant.from_hyperparams({}) == FlipFlopVariant()
    default = FlipFlopVariant()
    assert dict(DEFAULTS["flipflop"]) == {
        f"task__{name}": getattr(default, name) for name in default.__dataclass_fields__
    }
    assert without_defaults({"a": 1, **DEFAULTS["flipflop"]}, "flipflop") == {"a": 1}
    assert without_defaults({"task__quiet_steps": 3}, "flipflop") == {"task__quiet_steps": 3}
