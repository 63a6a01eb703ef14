"""The benchmark's options in the task_vs_data nodes: null removes a source or data model, and an
option spelt out at its default changes no hash (sources, data sets, comparison)."""

from __future__ import annotations

import copy

import pytest

from ntdyn.hyperparams import hyperparams_hash
from ntdyn.pipelines.task_vs_data.nodes import (
    _data_model_rows,
    comparison_params,
    plan_sources,
    spiking_dataset_params,
)

pytestmark = pytest.mark.pipeline

FLIPFLOP = {
    "kind": "flipflop",
    "hyperparams": {
        "model": {"hidden_size": 8, "hidden_noise_std": 0.01},
        "task": {"n_bits": 3, "n_steps": 30, "p_pulse": 0.02, "input_noise_std": 0.15},
        "train": {"n_batches": 20, "batch_size": 8, "learning_rate": 0.01, "n_replicates": 1,
                  "seed": 0},
    },
}  # fmt: skip
SPIKING = {"n_trials": 24, "n_valid": 8, "n_held_in": 10, "n_held_out": 4, "rate_scaling": 2.0,
           "rectifier": "exp", "seed": 5}  # fmt: skip


def _with_task(**task) -> dict:
    spec = copy.deepcopy(FLIPFLOP)
    spec["hyperparams"]["task"].update(task)
    return spec


def test_null_sources_and_data_models_are_left_out():
    plan = plan_sources({"flipflop": FLIPFLOP, "reaching": None})
    assert list(plan["source"]) == ["flipflop"]
    model = {"model": {"kind": "sae_gru", "encoder_size": 4, "latent_size": 4, "factor_size": 4},
             "train": {"n_epochs": 1, "batch_size": 4, "learning_rate": 0.01,
                       "n_replicates": 1, "seed": 0}}  # fmt: skip
    assert [name for name, _ in _data_model_rows({"a": model, "b": None})] == ["a"]


def test_the_benchmark_task_options_spelt_out_at_their_defaults_keep_the_source_hash():
    plain = plan_sources({"flipflop": FLIPFLOP}).iloc[0]
    defaults = {"target_coding": "sign", "quiet_steps": 0, "transition_blind": 0,
                "ignore_first_steps": 0}  # fmt: skip
    spelt = plan_sources({"flipflop": _with_task(**defaults)})
    assert spelt.iloc[0]["hash"] == plain["hash"]
    assert spelt.iloc[0]["hp"] == plain["hp"]
    benchmark = {"target_coding": "zero_one", "quiet_steps": 3, "transition_blind": 4,
                 "ignore_first_steps": 0}  # fmt: skip
    variant = plan_sources({"flipflop": _with_task(**benchmark)})
    hp = variant.iloc[0]["hp"]
    assert hp["task__target_coding"] == "zero_one" and "task__ignore_first_steps" not in hp
    assert variant.iloc[0]["hash"] == hyperparams_hash(hp) != plain["hash"]


def test_the_benchmark_task_options_are_checked_before_any_compute():
    with pytest.raises(ValueError, match=r"task__target_coding = 'bits' .*'sign', 'zero_one'"):
        plan_sources({"flipflop": _with_task(target_coding="bits")})


def test_spiking_and_comparison_options_at_their_defaults_keep_the_hashes():
    plain = spiking_dataset_params(SPIKING, "flipflop", "abc")
    assert "spiking__standardise" not in plain
    assert (
        spiking_dataset_params(SPIKING | {"standardise": "per_neuron"}, "flipflop", "abc") == plain
    )
    changed = spiking_dataset_params(SPIKING | {"standardise": "global"}, "flipflop", "abc")
    assert changed == plain | {"spiking__standardise": "global"}
    comparison = {"seed": 3, "n_candidates": 8, "dsa": {"n_delays": 2, "rank": 4, "iters": 20}}
    off = {"co_bps_ctdb": False, "trial_length_mask": False}
    assert comparison_params(comparison | off) == comparison_params(comparison)
    on = comparison_params(comparison | {"co_bps_ctdb": True, "trial_length_mask": True})
    assert on == comparison_params(comparison) | {
        "comparison__co_bps_ctdb": True,
        "comparison__trial_length_mask": True,
    }
