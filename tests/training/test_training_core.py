"""The training core on a toy family (a quadratic): divergence per replicate, the error when a
member has none left, and resuming from a finished checkpoint."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import Member, TrainingRun, run_training, select_member
from ntdyn.training.divergence import NON_FINITE, REASONS, TOO_LARGE, DivergenceError


class Point(eqx.Module):
    w: jax.Array


def quadratic(model: Point, target: jax.Array, key: jax.Array):
    """|w - target - noise|^2: a loss with a key, like the families' losses."""
    total = jnp.sum((model.w - target - 0.01 * jax.random.normal(key, model.w.shape)) ** 2)
    return total, total[None]


def _train(lrs, targets, members, n_batches=20, checkpoint=None):
    m = len(lrs)
    params, static = eqx.partition(Point(jnp.zeros((m, 3))), eqx.is_array)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(m))
    return static, run_training(
        params, static, jnp.asarray(targets, jnp.float32), keys, members,
        TrainingRun(n_batches, chunk_target=5, progress=False, checkpoint=checkpoint),
        n_terms=1, loss=quadratic, loss_options=(), learning_rates=jnp.asarray(lrs, jnp.float32),
    )  # fmt: skip


def test_a_diverging_replicate_is_frozen_and_excluded_the_others_train_on():
    member = Member("0" * 16, "toy", 3, 0.1)
    targets = np.ones((3, 3))
    targets[2, 0] = np.nan  # replicate 2: a non-finite loss from step 0
    _, result = _train([0.1, 1e12, 0.1], targets, [member])
    div = result.divergence
    assert np.asarray(div.alive).tolist() == [True, False, False]
    assert np.asarray(div.reason).tolist() == [0, TOO_LARGE, NON_FINITE]
    assert np.asarray(div.step).tolist() == [-1, 1, 0]  # lr 1e12: the loss explodes at step 1
    # the diverged replicates kept finite parameters (no NaN flowed in); the good one learned
    assert np.isfinite(np.asarray(result.params.w)).all()
    assert result.history[-1, 0, 0] < 0.2 * result.history[0, 0, 0]
    selection, diverged = select_member(np.array([0.0, -1.0, 0.5]), div, slice(0, 3), 2.0)
    assert selection.best == 0 and set(selection.excluded) == {1, 2}
    assert [(d.replicate, d.step, d.reason) for d in diverged] == [
        (1, 1, REASONS[TOO_LARGE]), (2, 0, REASONS[NON_FINITE])]  # fmt: skip


def test_a_member_whose_replicates_all_diverge_stops_training_with_a_clear_error():
    fine, lost = Member("a" * 16, "fine", 1, 0.1), Member("b" * 16, "lost", 2, 1e12)
    with pytest.raises(DivergenceError) as err:
        _train([0.1, 1e12, 1e12], np.ones((3, 3)), [fine, lost])
    assert err.value.member == f"model {'b' * 16} (lost)" and err.value.step == 1
    assert "train__learning_rate = 1e+12" in str(err.value)


def test_a_finished_checkpoint_is_resumed_to_the_same_result(tmp_path):
    member = Member("c" * 16, "toy", 2, 0.1)
    config = CheckpointConfig(tmp_path, min_interval_s=0.0, max_overhead=1.0)
    _, first = _train([0.1, 0.1], np.ones((2, 3)), [member], checkpoint=config)
    assert first.resumed_at == 0 and config.path(member.hash).is_file()
    _, again = _train([0.1, 0.1], np.ones((2, 3)), [member], checkpoint=config)
    assert again.resumed_at == 20
    assert np.array_equal(np.asarray(first.params.w), np.asarray(again.params.w))
    assert np.array_equal(first.history, again.history)
