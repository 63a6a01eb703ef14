"""A source's own spiking and data-model settings (`sources.<name>.spiking`, `.data_models`):
merged over the shared blocks for that source only, checked before any compute, and a source
without them keeps exactly the hashes it had before they existed."""

from __future__ import annotations

import copy

import pytest
from test_task_vs_data_ctdb import FLIPFLOP, SPIKING  # the same tiny source and spikes

from ntdyn.hyperparams import hyperparams_hash
from ntdyn.pipelines.task_vs_data.nodes import (
    _data_model_rows,
    plan_sources,
    plan_task_vs_data,
    spiking_dataset_params,
)
from ntdyn.pipelines.task_vs_data.per_source import (
    source_data_models,
    source_name,
    source_spiking,
    source_unroll,
)
from ntdyn.training.data_trained import data_model_hyperparams

pytestmark = pytest.mark.pipeline

DATA_MODELS = {
    "sae_gru": {"model": {"kind": "sae_gru", "encoder_size": 4, "latent_size": 4,
                          "factor_size": 4},
                "train": {"n_epochs": 1, "batch_size": 4, "learning_rate": 0.01,
                          "n_replicates": 1, "seed": 0}},
    "sae_lds": {"model": {"kind": "sae_lds", "encoder_size": 4, "latent_size": 4,
                          "factor_size": 4},
                "train": {"n_epochs": 1, "batch_size": 4, "learning_rate": 0.001,
                          "n_replicates": 1, "seed": 0}},
}  # fmt: skip
# The hashes these settings had before per-source settings existed (computed at 1eeab69).
SPIKING_HASH = "dfbc9584d4072d4b"
SAE_GRU_HASH = "ee04a7e8a0fc1d55"


def _sources(**own) -> dict:
    """A flip-flop source with its own blocks `own`, and a second source without any."""
    return {"flipflop": copy.deepcopy(FLIPFLOP) | own, "plain": copy.deepcopy(FLIPFLOP)}


def _model_hash(data_models: dict, name: str) -> str:
    hp = dict(_data_model_rows(data_models))[name]
    full = data_model_hyperparams(hp, n_held_in=10, n_held_out=4, n_inputs=3, dataset_hash="d0")
    return hyperparams_hash(full)


def test_a_source_without_its_own_settings_keeps_its_hashes():
    sources = _sources(spiking={"n_trials": 40}, data_models={"sae_gru": {"train": {
        "learning_rate": 0.005}}})  # fmt: skip
    for given in (None, sources):  # no `sources` at all, or another source has its own
        spiking = source_spiking(SPIKING, given, "plain")
        params = spiking_dataset_params(spiking, "flipflop", "abc")
        assert hyperparams_hash(params) == SPIKING_HASH
        assert _model_hash(source_data_models(DATA_MODELS, given, "plain"), "sae_gru") == (
            SAE_GRU_HASH
        )
    # settings spelt out at the shared values: the same data set and model
    same = _sources(spiking={"n_valid": 8}, data_models={"sae_gru": {"train": {
        "learning_rate": 0.01}}})  # fmt: skip
    params = spiking_dataset_params(source_spiking(SPIKING, same, "flipflop"), "flipflop", "abc")
    assert hyperparams_hash(params) == SPIKING_HASH
    assert _model_hash(source_data_models(DATA_MODELS, same, "flipflop"), "sae_gru") == (
        SAE_GRU_HASH
    )


def test_a_sources_own_settings_replace_only_what_they_name_for_that_source():
    sources = _sources(spiking={"n_trials": 40, "n_valid": 10},
                       data_models={"sae_gru": {"train": {"learning_rate": 0.005}}})  # fmt: skip
    spiking = source_spiking(SPIKING, sources, "flipflop")
    assert spiking == SPIKING | {"n_trials": 40, "n_valid": 10}
    params = spiking_dataset_params(spiking, "flipflop", "abc")
    assert params["spiking__n_trials"] == 40 and hyperparams_hash(params) != SPIKING_HASH
    merged = source_data_models(DATA_MODELS, sources, "flipflop")
    assert merged["sae_gru"]["train"] == DATA_MODELS["sae_gru"]["train"] | {"learning_rate": 0.005}
    assert merged["sae_gru"]["model"] == DATA_MODELS["sae_gru"]["model"]
    assert merged["sae_lds"] == DATA_MODELS["sae_lds"]  # a model it does not name
    assert _model_hash(merged, "sae_gru") != SAE_GRU_HASH
    assert DATA_MODELS["sae_gru"]["train"]["learning_rate"] == 0.01  # the shared block as it was
    assert source_spiking(SPIKING, sources, "plain") == SPIKING


def test_every_member_of_a_spread_gets_its_sources_settings():
    spread = copy.deepcopy(FLIPFLOP) | {"spread": {"model__hidden_noise_std": [0.01, 0.1]},
                                        "spiking": {"n_trials": 40}}  # fmt: skip
    sources = {"flip": spread, "flipflop": copy.deepcopy(FLIPFLOP), "gone": None}
    labels = list(plan_sources(sources)["source"])
    assert len(labels) == 3 and all(label.startswith("flip[") for label in labels[:2])
    assert [source_name(label, sources) for label in labels] == ["flip", "flip", "flipflop"]
    assert [source_spiking(SPIKING, sources, label)["n_trials"] for label in labels] == [
        40, 40, 24]  # fmt: skip
    with pytest.raises(KeyError, match="'other' is none of task_vs_data.sources"):
        source_name("other", sources)


@pytest.mark.parametrize(
    ("own", "message"),
    [
        ({"spiking": {"n_trial": 40}},
         r"task_vs_data\.sources\.flipflop\.spiking\.n_trial: unknown spiking option; allowed: "
         r"\['n_trials', .*'standardise'\]"),
        ({"spiking": [40]},
         r"task_vs_data\.sources\.flipflop\.spiking = \[40\]: must be a mapping"),
        ({"spiking": {"n_valid": 30}},
         r"task_vs_data\.sources\.flipflop\.spiking\.n_valid = 30: must be < n_trials = 24 "
         r"\(task_vs_data\.spiking\.n_trials;"),
        ({"spiking": {"standardise": "zscore"}},
         r"task_vs_data\.sources\.flipflop\.spiking\.standardise = 'zscore': must be one of"),
        ({"data_models": {"lfads": {"train": {"learning_rate": 0.005}}}},
         r"task_vs_data\.sources\.flipflop\.data_models\.lfads: not a data model of "
         r"task_vs_data\.data_models; allowed: \['sae_gru', 'sae_lds'\]"),
        ({"data_models": {"sae_gru": 0.005}},
         r"task_vs_data\.sources\.flipflop\.data_models\.sae_gru = 0\.005: must be a mapping"),
        ({"data_models": {"sae_gru": {"train": {"lerning_rate": 0.005}}}},
         r"(?s)task_vs_data\.sources\.flipflop\.data_models\.sae_gru \(merged over "
         r"task_vs_data\.data_models\.sae_gru\): .*train__lerning_rate: unknown parameter; "
         r"did you mean train__learning_rate\?"),
        ({"data_models": {"sae_gru": {"train": {"learning_rate": -1.0}}}},
         r"(?s)task_vs_data\.sources\.flipflop\.data_models\.sae_gru \(merged over .*\): "
         r".*train__learning_rate = -1\.0"),
    ],
)  # fmt: skip
def test_a_sources_own_settings_are_checked_before_any_training(own, message):
    with pytest.raises(ValueError, match=message):
        plan_task_vs_data(_sources(**own), DATA_MODELS, SPIKING)


def test_a_data_model_the_shared_block_removes_cannot_be_set_per_source():
    own = _sources(data_models={"sae_lds": {"train": {"learning_rate": 0.01}}})
    with pytest.raises(ValueError, match=r"data_models\.sae_lds: not a data model .*\['sae_gru'\]"):
        plan_task_vs_data(own, DATA_MODELS | {"sae_lds": None}, SPIKING)
    plan = plan_task_vs_data(own, DATA_MODELS, SPIKING)  # with it there, accepted
    assert list(plan["source"]) == ["flipflop", "plain"]


def test_a_sources_own_unroll_comes_before_the_shared_one_and_names_no_record():
    sources = {"ff": {**FLIPFLOP, "unroll": 4}, "other": FLIPFLOP}
    shared = {"unroll": 2}
    assert source_unroll(shared, sources, "ff") == 4
    assert source_unroll(shared, sources, "other") == 2
    assert source_unroll({}, sources, "other") is None  # the model's default
    assert source_unroll({"unroll": None}, None, "x") is None
    # how the program runs, not what it computes: the plan (the hashes) is the same
    plain = plan_sources({"ff": FLIPFLOP})
    assert list(plan_sources({"ff": sources["ff"]})["hash"]) == list(plain["hash"])
