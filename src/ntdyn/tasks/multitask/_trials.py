"""One MultiTask trial as fixed-length arrays: epochs, noiseless inputs, targets.

Follows the trial logic of CtDB's `MultiTask.generate_trial` (docs/science.md §1.3),
written with `jnp.where` over the task code so that one program serves every task and
`vmap` draws a batch of mixed tasks. Times are in steps of `bin_size_ms`; angles in
radians.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ntdyn.tasks.multitask._catalogue import (
    COHERENCE_HUNDREDTHS,
    EPOCHS,
    FAMILY_OF_TASK,
    STIMULUS_MEAN_RANGE,
    TASKS,
    epoch_steps,
)
from ntdyn.tasks.multitask._config import MultiTaskConfig
from ntdyn.tasks.multitask._ring import direction_vector, target_angles

_CODE = {name: i for i, name in enumerate(TASKS)}
_DELAY, _MEMORY, _REACT, _DECISION, _MATCH = range(5)


def draw_epochs(
    key: PRNGKeyArray, family: Int[Array, ""], config: MultiTaskConfig
) -> Int[Array, " 7"]:
    """Epoch boundaries (steps): epoch e of EPOCHS spans [b[e], b[e+1]); b[0] = 0.

    Each length is uniform over the whole steps in [low, high) of the family's range;
    epochs the family lacks have length 0.
    """
    table = jnp.asarray(epoch_steps(config.bin_size_ms), jnp.int32)[family]
    low, high = table[:, 0], table[:, 1]
    # floor(u (high - low)) is uniform over 0 .. high - low - 1 and 0 for an absent epoch.
    u = jax.random.uniform(key, (len(EPOCHS),))
    lengths = low + jnp.floor(u * (high - low)).astype(jnp.int32)
    return jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(lengths)])


def _between(t: Array, start: Array, end: Array) -> Array:
    return ((t >= start) & (t < end)).astype(jnp.float32)


def draw_trial(
    key: PRNGKeyArray, code: Int[Array, ""], config: MultiTaskConfig
) -> tuple[Float[Array, "T 20"], Float[Array, "T 3"], Int[Array, " 7"]]:
    """One trial of task TASKS[code]: (noiseless inputs, targets, epoch boundaries).

    Inputs: channel 0 fixation, 1-2 modality 1 (cos, sin), 3-4 modality 2, 5 + code the
    rule. Targets: fixation, response (cos, sin). Everything is 0 after the response.
    """
    T = config.n_timesteps
    t = jnp.arange(T)
    family = jnp.asarray(FAMILY_OF_TASK)[code]
    k_epochs, k_t1, k_t2, k_flag, k_deg, k_diff, k_mean, k_coh, k_sign = jax.random.split(key, 9)
    b = draw_epochs(k_epochs, family, config)
    stim1_on, stim1_off, stim2_on, stim2_off, go, end = b[1], b[2], b[3], b[4], b[5], b[6]

    grid = target_angles(config.num_targets)
    theta1 = grid[jax.random.randint(k_t1, (), 0, config.num_targets)]
    theta_grid2 = grid[jax.random.randint(k_t2, (), 0, config.num_targets)]
    flag = jax.random.bernoulli(k_flag)  # Match2Sample: matched; NonMatch2Sample: opposite
    offset = jnp.deg2rad(jax.random.randint(k_deg, (), 10, 350).astype(jnp.float32))
    decision_gap = jnp.deg2rad(jax.random.uniform(k_diff, minval=90.0, maxval=270.0))
    theta2 = jnp.select(
        [family == _DECISION, code == _CODE["Match2Sample"], code == _CODE["NonMatch2Sample"]],
        [
            theta1 + decision_gap,
            jnp.where(flag, theta1, theta1 + offset),
            jnp.where(flag, theta1 + jnp.pi, theta1 + jnp.pi + offset),
        ],
        theta_grid2,  # the category tasks; ignored by the families with one stimulus
    )

    # Decision stimuli: magnitude mean +- sign * coherence, per modality (A: 1, B: 2).
    mean = jax.random.uniform(
        k_mean, (2,), minval=STIMULUS_MEAN_RANGE[0], maxval=STIMULUS_MEAN_RANGE[1]
    )
    coh_index = jax.random.randint(k_coh, (2,), 0, len(COHERENCE_HUNDREDTHS))
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (2,)), 1.0, -1.0)
    evidence = (
        jnp.asarray(COHERENCE_HUNDREDTHS, jnp.float32)[coh_index] / 100 * sign
    )  # > 0: stimulus 1
    magnitudes = mean[:, None] + evidence[:, None] * jnp.array([1.0, -1.0])  # (modality, stimulus)
    is_context = (code >= _CODE["ContextIntMod1"]) & (code <= _CODE["ContextIntMultimodal"])
    mod1_amp = jnp.select(
        [family != _DECISION, code == _CODE["IntMod2"]], [jnp.ones(2), jnp.zeros(2)], magnitudes[0]
    )
    mod2_amp = jnp.select(
        [family != _DECISION, code == _CODE["IntMod2"], is_context],
        [jnp.zeros(2), magnitudes[0], magnitudes[1]],
        jnp.zeros(2),
    )

    # When each stimulus is shown: Delay keeps stimulus 1 on to the end, React shows it
    # at the go time, the match tasks show stimulus 2 in the response epoch.
    first = jnp.select(
        [family == _DELAY, family == _REACT],
        [_between(t, stim1_on, end), _between(t, go, end)],
        _between(t, stim1_on, stim1_off),
    )
    second = jnp.select(
        [family == _DECISION, family == _MATCH],
        [_between(t, stim2_on, stim2_off), _between(t, go, end)],
        jnp.zeros(T),
    )
    u1, u2 = direction_vector(theta1), direction_vector(theta2)
    modality1 = first[:, None] * mod1_amp[0] * u1 + second[:, None] * mod1_amp[1] * u2
    modality2 = first[:, None] * mod2_amp[0] * u1 + second[:, None] * mod2_amp[1] * u2

    # React and the match tasks keep the fixation input on for the whole trial (the
    # stimulus is the go cue); the others turn it off at the response.
    fix_off = jnp.where((family == _REACT) | (family == _MATCH), end, go)
    in_trial = _between(t, 0, end)
    rule = jax.nn.one_hot(code, len(TASKS)) * in_trial[:, None]
    inputs = jnp.concatenate([_between(t, 0, fix_off)[:, None], modality1, modality2, rule], axis=1)

    response_angle, respond = _response(code, family, theta1, theta2, flag, coh_index, sign)
    in_response = _between(t, go, end)
    response = (respond * in_response)[:, None] * direction_vector(response_angle)
    has_fixation_target = jnp.asarray(True)
    if not config.fixation_target_in_all_match_tasks:
        has_fixation_target = (code == _CODE["Match2Sample"]) | (family != _MATCH)
    fixation = has_fixation_target * _between(t, 0, go)
    targets = jnp.concatenate([fixation[:, None], response], axis=1)
    return inputs, targets, b


def _response(code, family, theta1, theta2, flag, coh_index, sign):
    """(direction to report, whether to report at all) of a trial."""
    anti = (
        (code == _CODE["DelayAnti"]) | (code == _CODE["MemoryAnti"]) | (code == _CODE["ReactAnti"])
    )
    # Stimulus 1 is the larger when its magnitude mean + evidence beats mean - evidence,
    # i.e. when the evidence is positive. The multimodal task sums both modalities; equal
    # coherences of opposite signs cancel exactly, and there the benchmark decides by the
    # rounding of its float sums while ntdyn takes numpy argmax's tie rule (stimulus 1).
    # Integer hundredths keep that sum exact.
    evidence = jnp.asarray(COHERENCE_HUNDREDTHS)[coh_index] * sign.astype(jnp.int32)
    first_larger = jnp.select(
        [code == _CODE["ContextIntMod2"], code == _CODE["ContextIntMultimodal"]],
        [evidence[1] > 0, evidence.sum() >= 0],
        evidence[0] > 0,
    )
    same_category = (theta1 >= 0) == (theta2 >= 0)  # the grid's halves [-pi, 0) and [0, pi)
    respond = jnp.select(
        [
            family != _MATCH,
            code == _CODE["Match2Sample"],
            code == _CODE["NonMatch2Sample"],
            code == _CODE["MatchCatPro"],
        ],
        [True, flag, flag, same_category],
        ~same_category,
    )
    angle = jnp.select(
        [family == _DECISION, family == _MATCH, anti],
        [jnp.where(first_larger, theta1, theta2), theta2, theta1 + jnp.pi],
        theta1,
    )
    return angle, respond.astype(jnp.float32)
