"""A run under a tiny memory budget (many chunks) gives the tables of the default budget."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import TINY_PART1, make_project, run_pipeline  # noqa: E402

from ntdyn.datasets import EvaluationDataset  # noqa: E402

pytestmark = pytest.mark.pipeline

# The same trial block for both budgets (it fixes the numerics); the tiny host budget leaves
# room for a few blocks per chunk only.
BUDGETS = {
    "default": {"trial_block": {"cpu": 2}},
    "tiny": {"trial_block": {"cpu": 2}, "host_memory_gb": 2e-4},
}


def _outputs(root: Path, analysis: str):
    pointer = root / f"data/07_model_output/analysis_part1/{analysis}/evaluation.json"
    states = EvaluationDataset(path=str(pointer), part="arrays").load()
    measures = EvaluationDataset(path=str(pointer), part="measures").load()
    summary = pd.read_parquet(root / f"data/08_reporting/analysis_part1/{analysis}_summary.parquet")
    return states, measures, summary


def test_a_tiny_memory_budget_computes_in_more_chunks_and_gives_the_same_tables(
    tmp_path, monkeypatch
):
    runs = {}
    for name, resources in BUDGETS.items():
        root = make_project(tmp_path / name, {**TINY_PART1, "resources": resources})
        monkeypatch.chdir(root)
        # training and evaluation (the tables compared here); figures are not compared
        run_pipeline(root, ["training", "evaluation"], namespaces=["analysis_part1"])
        runs[name] = {a: _outputs(root, a) for a in ("plant_perts", "feedback_perts")}
    default, tiny = runs["default"]["plant_perts"], runs["tiny"]["plant_perts"]
    chunks = {
        n: {h: s[h].attrs["chunk"] for h in s} for n, (s, _, _) in (("d", default), ("t", tiny))
    }
    n_trials = {h: default[0][h].attrs["n_trials"] for h in default[0]}
    assert all(chunks["d"][h] >= n_trials[h] for h in n_trials)  # one chunk each
    assert all(chunks["t"][h] < n_trials[h] for h in n_trials)  # several chunks each
    for analysis in ("plant_perts", "feedback_perts"):
        (s_d, m_d, sum_d), (s_t, m_t, sum_t) = (runs[n][analysis] for n in ("default", "tiny"))
        pd.testing.assert_frame_equal(m_d, m_t)
        pd.testing.assert_frame_equal(sum_d, sum_t)
        assert sorted(s_d) == sorted(s_t)
        for h in s_d:
            for name in ("state", "hidden", "control"):
                np.testing.assert_array_equal(s_d[h].means(name), s_t[h].means(name))
                np.testing.assert_array_equal(s_d[h].trials(name), s_t[h].trials(name))


def test_a_budget_too_small_for_one_block_is_refused_naming_it(tmp_path, monkeypatch):
    resources = {"trial_block": {"cpu": 2}, "host_memory_gb": 1e-6}
    root = make_project(tmp_path / "small", {**TINY_PART1, "resources": resources})
    monkeypatch.chdir(root)
    with pytest.raises(Exception, match=r"resources\.host_memory_gb = 1e-06"):
        run_pipeline(root)
