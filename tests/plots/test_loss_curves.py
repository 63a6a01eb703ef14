"""The training-loss figure: exact where the history is short, bounded where it is long."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ntdyn.plots import loss_curves_figure


def _history(n_steps: int, labels=("a", "b"), n_replicates: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = [
        pd.DataFrame({"label": label, "step": np.arange(n_steps), "replicate": r,
                      "term": "total", "value": rng.uniform(0.5, 2.0, n_steps)})
        for label in labels
        for r in range(n_replicates)
    ]  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def _traces(fig, label):
    band, line = [t for t in fig.data if t.legendgroup == label]
    return band, line


def test_a_short_history_is_drawn_step_by_step():
    history = _history(50)
    fig = loss_curves_figure(history, smooth=1)
    band, line = _traces(fig, "a")
    wide = history[history["label"] == "a"].pivot_table(
        index="step", columns="replicate", values="value"
    )
    np.testing.assert_array_equal(line.x, np.arange(50))
    np.testing.assert_allclose(line.y, wide.mean(axis=1))
    np.testing.assert_allclose(band.y[:50], wide.max(axis=1))  # upper edge, then lower reversed
    np.testing.assert_allclose(band.y[50:], wide.min(axis=1)[::-1])


def test_a_long_history_is_binned_keeping_the_extremes():
    history = _history(10_000, labels=[f"m{i}" for i in range(16)], n_replicates=5)
    history.loc[(history["label"] == "m3") & (history["step"] == 4321), "value"] = 50.0
    fig = loss_curves_figure(history, smooth=1, max_points=200)
    band, line = _traces(fig, "m3")
    assert len(line.x) == 200 and line.x[-1] == 9999
    assert max(band.y) == 50.0  # the one excursion still shows in the band
    # the mean of each bin of 50 steps is the mean of its steps' means
    wide = history[history["label"] == "m3"].pivot_table(
        index="step", columns="replicate", values="value"
    )
    np.testing.assert_allclose(line.y, wide.mean(axis=1).to_numpy().reshape(200, 50).mean(1))
    assert len(fig.to_json()) < 1_000_000  # 16 members x 5 replicates x 10 000 batches


@pytest.mark.parametrize("bad", [1, 0, -5])
def test_too_few_points_are_refused(bad):
    with pytest.raises(ValueError, match="max_points"):
        loss_curves_figure(_history(10), max_points=bad)
