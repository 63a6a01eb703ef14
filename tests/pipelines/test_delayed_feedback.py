"""The delayed-feedback condition end to end: analysis_part1 with delays {0, 5} in one sweep.

A real Kedro session with real MLflow (sqlite in a temp dir): both members train in one
compiled program (the delay is data on the stacked model axis), are recorded with their
delay, and the evaluation runs each with its own delay. Feedback noise is 0, so the
evaluated feedback is exactly the plant state `delay` steps earlier. The evaluation keeps
every replicate (keep.replicates: all); with one repeat per condition its kept sample of
single trials is every trial, read back from the record's zarr store.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import TINY_PART1, make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.analysis.stored import EvaluationArrays, ModelArrays, read_pointer  # noqa: E402
from ntdyn.pipelines.evaluation.nodes import EVALUATION_ARTIFACT  # noqa: E402
from ntdyn.store import RecordStore  # noqa: E402
from ntdyn.training import TRACE_COUNTS  # noqa: E402
from ntdyn.training import loop as training_loop  # noqa: E402

pytestmark = pytest.mark.pipeline

DELAY = 5
EVAL_STEPS = 15  # > DELAY + 1: the lag shows on steps 6 .. 14

# Tiny shapes; 12 training steps, so the delayed controller trains on 6 steps of stale
# feedback (the start at rest) and 6 of lagged movement. No feedback noise: exact lags.
DELAY_GLOBALS = {
    "reaching": {
        "model": {"hidden_size": 6},
        "task": {"n_steps": 12, "feedback": {"noise_std": 0.0}},
        "train": {"n_batches": 6, "batch_size": 8, "n_replicates": 2},
    }
}

_tiny = TINY_PART1["analysis_part1"]
DELAY_PART1 = {
    "analysis_part1": {
        **_tiny,
        # the base axis train__pert__std is dropped: the sweep is the delay alone
        "training": {"spread": {"train__pert__std": None, "task__feedback__delay": [0, DELAY]}},
        "training_options": {"progress": False, "metric_every": 2, "record_every": 0},
        "evaluation": {
            **_tiny["evaluation"],
            "plant_perts": {
                **_tiny["evaluation"]["plant_perts"],
                "n_steps": EVAL_STEPS,
                "keep": {"replicates": "all"},  # both replicates' single trials
            },
        },
    }
}


@pytest.fixture(scope="module")
def delayed_run(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("delay"), DELAY_PART1, DELAY_GLOBALS)
    groups: list[list] = []
    real_train_group = training_loop.train_group

    def recording_train_group(rows, **kwargs):  # the real training; notes each group's delays
        groups.append([int(r["task__feedback__delay"]) for r in rows])
        return real_train_group(rows, **kwargs)

    traces_before = TRACE_COUNTS["train_chunk"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(training_loop, "train_group", recording_train_group)
        # training and evaluation: what these tests read (no figure is checked here)
        run_pipeline(root, ["training", "evaluation"], namespaces=["analysis_part1"])
    return root, groups, TRACE_COUNTS["train_chunk"] - traces_before


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def _every_replicate(arrays: ModelArrays, name: str) -> np.ndarray:
    """(replicate, trial, time, var): the kept single trials of every stored replicate."""
    return np.stack([arrays.trials(name, replicate=r) for r in arrays.attrs["replicates"]])


def test_delays_zero_and_five_train_in_one_group_and_are_recorded(delayed_run):
    root, groups, n_traces = delayed_run
    assert groups == [[0, DELAY]]  # one group holds both members
    assert n_traces == 1  # ... and one compiled training program serves it
    store = _store(root)
    assert len(store.query_models()) == 2
    delayed = store.find_unique_model(task__feedback__delay=DELAY)
    assert delayed.params["task__feedback__delay"] == str(DELAY)
    assert store.find_unique_model(task__feedback__delay=0).hash != delayed.hash
    records = pd.read_parquet(root / "data/07_model_output/analysis_part1/model_records.parquet")
    assert set(records["status"]) == {"trained"}


def test_evaluation_runs_the_delayed_model_with_its_delay(delayed_run):
    root, _, _ = delayed_run
    store = _store(root)
    delayed = store.find_unique_model(task__feedback__delay=DELAY)
    prompt = store.find_unique_model(task__feedback__delay=0)
    (evaluation,) = store.query_evaluations(analysis="plant_perts")
    assert {r.hash for r in store.models_of_evaluation(evaluation)} == {delayed.hash, prompt.hash}
    # the arrays and tables the evaluation recorded: its MLflow artifact folder, the only copy
    folder = store.download_artifact(evaluation, EVALUATION_ARTIFACT, root / "check")
    states = EvaluationArrays(folder)
    assert set(states) == {delayed.hash, prompt.hash}
    measures = pd.read_parquet(folder / "measures.parquet")
    assert set(measures.loc[measures["hash"] == delayed.hash, "task__feedback__delay"]) == {DELAY}
    # the catalog's entry is a pointer to the same record
    pointer = read_pointer(root / "data/07_model_output/analysis_part1/plant_perts/evaluation.json")
    assert pointer["run_id"] == evaluation.run_id

    for rec, delay in ((prompt, 0), (delayed, DELAY)):
        arrays = states[rec.hash]
        assert arrays.attrs["replicates"] == [0, 1]  # keep.replicates: all
        # one repeat per condition: the kept sample is every trial, in trial order
        cond = arrays.trial_conditions
        assert cond["trial"].tolist() == list(range(len(arrays.conditions)))
        assert tuple(arrays.lazy("trials", "feedback").metadata.dimension_names) == (
            "replicate", "trial", "time", "state_var"
        )  # fmt: skip
        state = _every_replicate(arrays, "state")  # (R, N, T, 4): row k is x_{k+1}
        feedback = _every_replicate(arrays, "feedback")  # row k is y_k = x_{k - delay}
        assert state.shape[2] == EVAL_STEPS
        start = cond[["start_x", "start_y"]].to_numpy(np.float32)
        at_rest = np.concatenate([start, np.zeros_like(start)], axis=1)  # x_0 per trial
        # before the trial the plant was at rest at the start: the first delay + 1 observations
        for k in range(delay + 1):
            np.testing.assert_array_equal(
                feedback[:, :, k], np.broadcast_to(at_rest, state[:, :, 0].shape)
            )
        # then the observation is exactly the state `delay` steps back
        np.testing.assert_array_equal(
            feedback[:, :, delay + 1 :], state[:, :, : EVAL_STEPS - delay - 1]
        )
        # the condition means (of the selected replicate; one repeat per condition) are
        # those trials, so the lag holds in them too
        rows = cond.set_index("condition").index.get_indexer(arrays.mean_conditions["condition"])
        best = arrays.attrs["replicates"].index(arrays.attrs["selected"])
        np.testing.assert_array_equal(arrays.means("state"), state[best, rows])
        np.testing.assert_array_equal(arrays.means("feedback"), feedback[best, rows])

    # the delay is what each model sees: the delayed model's feedback is not the current
    # state, the prompt model's is not 5 steps old (the plant moves on every trial)
    lag = DELAY + 1
    d_state, d_feedback = (_every_replicate(states[delayed.hash], a) for a in ("state", "feedback"))
    p_state, p_feedback = (_every_replicate(states[prompt.hash], a) for a in ("state", "feedback"))
    scale = np.abs(p_state[..., 2:]).max()  # the largest speed reached
    assert np.abs(d_feedback[:, :, 1:] - d_state[:, :, :-1]).max() > 0.1 * scale
    assert np.abs(p_feedback[:, :, lag:] - p_state[:, :, :-lag]).max() > 0.1 * scale

    # Behaviour: the delayed controller reacts DELAY steps later. Pair each reach in the
    # field (curl 4) with the same reach without it (different motor noise, too): the
    # commands agree while the two plants' differences are not yet observed. They differ
    # from row 1 for delay 0 (y_1 = x_1) and from row DELAY + 1 for delay 5 (y_6 = x_1).
    for rec, onset in ((prompt, 1), (delayed, DELAY + 1)):
        arrays = states[rec.hash]
        # row i of the stored trials is row i of trial_conditions
        cond = arrays.trial_conditions.assign(row=lambda t: np.arange(len(t)))
        key = ["centre_index", "direction_index", "repeat"]
        still = cond[cond["pert_amp"] == 0.0].set_index(key)["row"]
        field = cond[cond["pert_amp"] == 4.0].set_index(key)["row"]
        assert len(still) == len(field) == 4
        command = _every_replicate(arrays, "command")  # (R, N, T, 2)
        gap = np.abs(command[:, still.to_numpy()] - command[:, field.loc[still.index].to_numpy()])
        gap = gap.max(axis=(0, 3))  # (pairs, T)
        np.testing.assert_array_equal(gap[:, :onset], 0.0)
        assert (gap[:, onset] > 0).all(), (rec.hash, gap[:, onset])
