"""Training loop: one compiled program per shape, learning, reproducibility, history table.

All trainings here share one compiled program (see science_fixtures.sweep_rows); the
first one in the process is `first_sweep()`, whose trace count is what is checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.tasks import COST_TERMS  # noqa: E402
from ntdyn.training import TRACE_COUNTS, train_sweep  # noqa: E402
from science_fixtures import SWEEP_STDS, first_sweep, sweep_rows  # noqa: E402


def _leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _same_params(a, b) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


def _totals(ensemble) -> np.ndarray:
    h = ensemble.history
    return h[h.term == "total"].pivot(index="step", columns="replicate", values="value").to_numpy()


def test_a_sweep_of_four_stds_and_three_replicates_traces_train_chunk_once():
    ensembles, traces = first_sweep()
    assert traces["train_chunk"] == 1, traces
    assert traces["validation"] == 1, traces  # all members have the same number of replicates
    assert len(ensembles) == len(SWEEP_STDS)
    # results come back in the order of the rows
    assert [e.hyperparams["train__pert__std"] for e in ensembles] == list(SWEEP_STDS)
    for e in ensembles:
        assert jax.tree.leaves(e.model)[0].shape[0] == 3  # replicate axis
        assert len(e.selection.validation_loss) == 3
    # the same shapes again (other data, more batches of the same chunk size): no retrace
    before = TRACE_COUNTS["train_chunk"]
    train_sweep(sweep_rows(n_batches=50, train__seed=3, train__learning_rate=0.02), progress=False)
    assert TRACE_COUNTS["train_chunk"] == before


def test_history_table_has_one_row_per_step_replicate_and_term():
    ensembles, _ = first_sweep()
    n_batches = ensembles[0].hyperparams["train__n_batches"]
    for e in ensembles:
        h = e.history
        assert list(h.columns) == ["step", "replicate", "term", "value"]
        assert set(h.term) == set(COST_TERMS)
        assert len(h) == n_batches * 3 * len(COST_TERMS)
        assert not h.duplicated(["step", "replicate", "term"]).any()
        assert sorted(h.step.unique()) == list(range(n_batches))
        assert sorted(h.replicate.unique()) == [0, 1, 2]
        assert np.all(np.isfinite(h.value)) and np.all(h.value >= 0)
        wide = h.pivot_table(index=["step", "replicate"], columns="term", values="value")
        parts = wide[["position", "final_velocity", "control", "hidden"]].sum(axis=1)
        np.testing.assert_allclose(wide["total"], parts, rtol=1e-5)
        # replicates start from different weights
        totals = _totals(e)
        assert not np.allclose(totals[:, 0], totals[:, 1])


def test_selection_picks_the_best_kept_replicate():
    for e in first_sweep()[0]:
        sel = e.selection
        loss = np.asarray(sel.validation_loss)
        assert np.all(np.isfinite(loss))
        kept = [i for i in range(len(loss)) if i not in sel.excluded]
        assert sel.best == kept[int(np.argmin(loss[kept]))]


def test_loss_decreases():
    first_sweep()  # keep the trace count of the first training clean
    # 20 steps of 0.05 s (1 s to reach) and lr 0.03, so 150 batches learn visibly; dt and lr are
    # data, so this reuses the compiled program.
    rows = sweep_rows(n_batches=150, task__dt=0.05, train__learning_rate=0.03)
    for e in train_sweep(rows, progress=False):
        totals = _totals(e).mean(axis=1)  # mean over replicates, per batch
        n = len(totals)
        assert totals[-n // 5 :].mean() < 0.7 * totals[0], (
            e.hyperparams["train__pert__std"],
            totals,
        )


def test_same_seed_gives_identical_histories_and_parameters():
    first, _ = first_sweep()
    again = train_sweep(sweep_rows(), progress=False)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a.history, b.history)
        assert _same_params(a.model, b.model)
        assert a.selection == b.selection
        assert a.hash == b.hash


def test_different_seeds_differ():
    first, _ = first_sweep()
    other = train_sweep(sweep_rows(train__seed=1), progress=False)
    for a, b in zip(first, other, strict=True):
        assert not _same_params(a.model, b.model)
        assert not np.allclose(_totals(a), _totals(b))
        assert a.hash != b.hash


def test_members_of_one_group_do_not_mix():
    first_sweep()
    stds = (0.0, 1.5, 0.0, 1.5)
    ens = train_sweep(sweep_rows(stds=stds), progress=False)
    # identical rows give identical results wherever they sit in the group
    assert _same_params(ens[0].model, ens[2].model)
    assert _same_params(ens[1].model, ens[3].model)
    pd.testing.assert_frame_equal(ens[0].history, ens[2].history)
    # the field std is per-model data: it changes what is learnt
    assert not _same_params(ens[0].model, ens[1].model)


def test_learning_rate_is_per_model_data():
    first_sweep()
    lrs = (0.0, 0.03, 0.0, 0.03)

    def run(n_batches):
        rows = [
            {**r, "train__learning_rate": lr}
            for r, lr in zip(sweep_rows(n_batches=n_batches), lrs, strict=True)
        ]
        return train_sweep(rows, progress=False)

    short, long = run(25), run(50)
    # learning rate 0: nothing changes however long it trains
    assert _same_params(short[0].model, long[0].model)
    assert _same_params(short[2].model, long[2].model)
    # learning rate 0.03 in the same compiled program: it learns
    assert not _same_params(short[1].model, long[1].model)


@pytest.mark.parametrize("key", ["model__hidden_size", "task__n_steps", "train__batch_size"])
def test_train_group_refuses_mixed_shapes(key):
    from ntdyn.training import train_group

    rows = sweep_rows()
    rows[1] = {**rows[1], key: rows[1][key] + 1}
    with pytest.raises(ValueError, match="static signature"):
        train_group(rows, progress=False)
