"""Chunked evaluation: numbers independent of the memory budget, stored arrays read back equal."""

import jax
import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis import experiments
from ntdyn.analysis.evaluate import evaluate_model
from ntdyn.analysis.measures import MEASURES, behaviour_measures
from ntdyn.analysis.stored import (
    CONDITIONS,
    EvaluationArrays,
    Keep,
    open_for_writing,
    with_condition_index,
)
from ntdyn.models.closed_loop import loop_params, simulate_trial
from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.resources import ResourceBudget
from science_fixtures import hp as make_hp

BLOCK = (("cpu", 8), ("gpu", 8))


@pytest.fixture(scope="module")
def case():
    hp = make_hp(**{"model__sisu_input": True, "model__hidden_size": 16})
    model = ensemble_from_hyperparams(hp, jax.random.split(jax.random.PRNGKey(1), 3))
    trials, conditions = experiments.plant_perts(
        pert_type="curl", amplitudes=[0.0, 4.0], sisu=[0.0, 1.0], grid_n=1, n_directions=4,
        reach_length=0.5, n_repeats=5, n_steps=30, workspace=1.0,
    )  # fmt: skip
    return hp, model, trials, conditions


def _evaluate(case, folder, budget, keep=None, selected=1):
    hp, model, trials, conditions = case
    keep = Keep() if keep is None else keep
    root = open_for_writing(folder)
    group = root.create_group("m")
    group.attrs.update(hash="m", analysis="plant_perts", dt=0.01, seed=7)
    measures = evaluate_model(
        model, hp, trials, conditions, 7, keep=keep, budget=budget, group=group,
        selected=selected,
    )  # fmt: skip
    with_condition_index(conditions).assign(hash="m").to_parquet(folder / CONDITIONS)
    return measures, EvaluationArrays(folder)["m"], group.attrs["chunk"]


def test_chunked_and_unchunked_evaluation_are_bitwise_equal(case, tmp_path):
    whole = _evaluate(case, tmp_path / "whole", ResourceBudget(trial_block=BLOCK))
    # a budget so small that a chunk holds a few blocks of 8 trials
    tiny = _evaluate(
        case, tmp_path / "tiny", ResourceBudget(host_memory_gb=2e-3, trial_block=BLOCK)
    )
    assert whole[2] == 80 and tiny[2] <= 24  # one chunk; four chunks or more
    pd.testing.assert_frame_equal(whole[0], tiny[0])
    for name in ("state", "hidden", "control"):
        np.testing.assert_array_equal(whole[1].trials(name), tiny[1].trials(name))
        np.testing.assert_array_equal(whole[1].means(name), tiny[1].means(name))


def test_every_chunk_of_an_evaluation_runs_one_compiled_program(case, tmp_path):
    import equinox as eqx

    from ntdyn.analysis.evaluate import _evaluate_chunk

    # 80 trials, a budget for 3 blocks of 8 per chunk: 4 chunks, the last one padded
    tiny = ResourceBudget(host_memory_gb=2e-3, trial_block=BLOCK)
    start = eqx.debug.get_num_traces(_evaluate_chunk)
    _, _, chunk = _evaluate(case, tmp_path / "a", tiny)
    assert 80 / chunk > 2 and 80 % chunk != 0  # several chunks, the last one padded
    first = eqx.debug.get_num_traces(_evaluate_chunk)
    assert first - start <= 1  # one trace for all chunks (none if this shape ran before)
    _evaluate(case, tmp_path / "b", tiny)  # another evaluation, same shapes
    assert eqx.debug.get_num_traces(_evaluate_chunk) == first


def test_models_whose_best_replicates_differ_share_one_compiled_program(case, tmp_path):
    import equinox as eqx

    from ntdyn.analysis.evaluate import _evaluate_chunk

    budget = ResourceBudget(trial_block=BLOCK)
    every = _evaluate(case, tmp_path / "all", budget, Keep(replicates="all"))[1]
    start = eqx.debug.get_num_traces(_evaluate_chunk)
    _, first, _ = _evaluate(case, tmp_path / "r0", budget, selected=0)
    traced = eqx.debug.get_num_traces(_evaluate_chunk)
    assert traced - start <= 1  # one trace (none if this shape ran before)
    _, second, _ = _evaluate(case, tmp_path / "r2", budget, selected=2)
    assert eqx.debug.get_num_traces(_evaluate_chunk) == traced  # the same program
    # each stored its own best replicate, as the evaluation of every replicate has it
    for stored, r in ((first, 0), (second, 2)):
        assert stored.attrs["replicates"] == [r]
        np.testing.assert_array_equal(stored.trials("hidden", replicate=r),
                                      every.trials("hidden", replicate=r))  # fmt: skip


def test_stored_arrays_read_back_equal_to_the_simulation(case, tmp_path):
    hp, model, trials, conditions = case
    keep = Keep(repeats=None, max_trials=None, replicates="all")
    measures, stored, _ = _evaluate(case, tmp_path / "e", ResourceBudget(1.0, 5e-3, BLOCK), keep)
    assert len(measures) == 3 * 80 and stored.attrs["replicates"] == [0, 1, 2]
    # trial i of replicate r, simulated alone with its key fold_in(PRNGKey(seed), i)
    params, key = loop_params(hp), jax.random.PRNGKey(7)
    for r in range(3):
        member = jax.tree.map(lambda x, r=r: x[r], model)
        for i in (0, 37, 79):
            trial = jax.tree.map(lambda x, i=i: x[i], trials)
            alone = simulate_trial(member, params, trial, jax.random.fold_in(key, i))
            np.testing.assert_allclose(
                stored.trials("hidden", replicate=r)[i], alone.hidden, rtol=1e-5, atol=1e-6
            )
            row = measures[(measures["replicate"] == r) & (measures["trial"] == i)]
            expected = behaviour_measures(
                np.asarray(alone.state)[None], np.asarray(alone.control)[None],
                np.asarray(trial.start)[None], np.asarray(trial.goal)[None],
                conditions["direction"].to_numpy()[[i]],
            )  # fmt: skip
            np.testing.assert_allclose(row[list(MEASURES)].to_numpy(), expected.to_numpy(),
                                       rtol=1e-4, atol=1e-6)  # fmt: skip
        # condition means: the mean of the stored single trials of each condition
        idx = with_condition_index(conditions)["condition"].to_numpy()
        singles = stored.trials("state", replicate=r)
        expected = np.stack([singles[idx == c].mean(0) for c in range(idx.max() + 1)])
        np.testing.assert_allclose(stored.means("state", replicate=r), expected, rtol=1e-5)


def test_the_kept_sample_is_bounded_and_covers_every_condition_once(case, tmp_path):
    _, stored, _ = _evaluate(case, tmp_path / "e", ResourceBudget(trial_block=BLOCK))
    kept = stored.trial_conditions
    assert (kept["repeat"] == 0).all() and kept["condition"].is_unique
    assert len(kept) == stored.means("state").shape[0] == 16
    _, capped, _ = _evaluate(
        case, tmp_path / "capped", ResourceBudget(trial_block=BLOCK), Keep(max_trials=5)
    )
    assert capped.trials("hidden").shape[0] == 5


def test_an_array_not_kept_is_refused_with_the_setting_to_change(case, tmp_path):
    _, stored, _ = _evaluate(
        case, tmp_path / "e", ResourceBudget(trial_block=BLOCK), Keep(means=("state",))
    )
    with pytest.raises(KeyError, match="keep.means"):
        stored.means("hidden")
    with pytest.raises(KeyError, match="replicate 0 .* not stored"):
        stored.trials("hidden", replicate=0)


def test_a_block_that_cannot_fit_names_the_budget(case, tmp_path):
    with pytest.raises(ValueError, match="resources.host_memory_gb = 1e-05"):
        _evaluate(case, tmp_path / "e", ResourceBudget(host_memory_gb=1e-5, trial_block=BLOCK))
    with pytest.raises(ValueError, match="resources.gpu_memory_gb = 1e-05"):
        _evaluate(case, tmp_path / "f", ResourceBudget(gpu_memory_gb=1e-5, trial_block=BLOCK))


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"means": ["hiden"]}, r"keep.means names \['hiden'\]"),
        ({"repeats": 0}, "keep.repeats = 0"),
        ({"replicates": "best"}, "keep.replicates = 'best'"),
        ({"max_trail": 3}, r"unknown key\(s\) \['max_trail'\]"),
    ],
)
def test_bad_keep_settings_are_refused(conf, message):
    with pytest.raises(ValueError, match=message):
        Keep.from_conf(conf)
