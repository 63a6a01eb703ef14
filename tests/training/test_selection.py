"""Replicate selection (docs/science.md §3.6): best validation loss, outliers excluded."""

from __future__ import annotations

import numpy as np
import pytest

from ntdyn.training import ReplicateSelection, select_replicate


@pytest.mark.parametrize(
    ("loss", "best"), [([3.0, 1.0, 2.0], 1), ([0.5], 0), ([2.0, 2.3, 1.9, 2.1], 2)]
)
def test_best_is_the_argmin_when_nothing_is_excluded(loss, best):
    sel = select_replicate(np.array(loss), 2.0)
    assert sel.best == best
    assert sel.excluded == ()
    assert sel.validation_loss == tuple(loss)


def test_an_outlier_is_excluded_and_recorded():
    loss = [1.0, 1.1, 0.9, 1.0, 50.0]
    sel = select_replicate(np.array(loss), 1.5)
    # median 1.0, robust std 1.4826 * MAD = 0.148: 50 is 331 robust stds above the median
    assert sel.excluded == (4,)
    assert sel.best == 2
    assert sel.n_std_exclude == 1.5
    assert sel.as_dict() == {
        "validation_loss": loss,
        "best_replicate": 2,
        "excluded_replicates": [4],
        "n_std_exclude": 1.5,
        "diverged_replicates": [],
    }


def test_a_low_outlier_is_the_best_not_excluded():
    sel = select_replicate(np.array([1.0, 1.1, 0.9, 1.0, 0.01]), 1.0)
    assert sel.best == 4
    assert 4 not in sel.excluded


def test_threshold_matters():
    # median 1.0, MAD 0.1: 1.3 is 0.3 / 0.14826 = 2.02 robust stds above the median
    loss = np.array([1.0, 1.1, 0.9, 1.0, 1.3])
    assert select_replicate(loss, 1.9).excluded == (4,)
    assert select_replicate(loss, 2.1).excluded == ()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_losses_are_excluded(bad):
    sel = select_replicate(np.array([1.0, bad, 0.5, 0.7]), 2.0)
    assert 1 in sel.excluded
    assert sel.best == 2
    # the finite ones set the statistics: nothing else is thrown out
    assert sel.excluded == (1,)


def test_nan_is_never_best_even_when_lowest_index():
    sel = select_replicate(np.array([np.nan, 3.0, 2.0]), 1.0)
    assert sel.best == 2
    assert 0 in sel.excluded


@pytest.mark.parametrize("n_std", [0.0, -1.0, np.nan])
def test_bad_n_std_exclude_raises(n_std):
    with pytest.raises(ValueError, match="n_std_exclude"):
        select_replicate(np.array([1.0, 2.0]), n_std)


@pytest.mark.parametrize("loss", [np.array([]), np.ones((2, 2))])
def test_bad_loss_shape_raises(loss):
    with pytest.raises(ValueError, match="validation_loss"):
        select_replicate(loss, 2.0)


def test_selection_is_a_frozen_record():
    sel = select_replicate(np.array([1.0, 2.0]), 2.0)
    assert isinstance(sel, ReplicateSelection)
    with pytest.raises(AttributeError):
        sel.best = 1  # type: ignore[misc]


def test_a_diverged_replicate_is_excluded_at_the_default_threshold():
    sel = select_replicate(np.array([1.0, 1.01, 0.99, 1.0, 1000.0]), 2.0)
    assert sel.excluded == (4,)
    assert sel.best == 2


def test_two_replicates_exclude_only_non_finite_losses():
    # With R = 2 neither replicate has a reference distribution: no statistical exclusion.
    assert select_replicate(np.array([1.0, 1000.0]), 2.0).excluded == ()
    assert select_replicate(np.array([1.0, np.nan]), 2.0).excluded == (1,)


def test_all_non_finite_losses_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="non-finite"):
        select_replicate(np.array([np.nan, np.inf]), 2.0)
