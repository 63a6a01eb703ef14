"""The MultiTask battery as a task_vs_data source: the nodes end to end on a tiny battery
(a GRU trained through the training core, spikes, a data-trained model, the comparison),
recorded in a real MLflow store (sqlite in a temp dir). The source has its own trial counts
and data-model learning rate (`sources.<name>.spiking`, `.data_models`), as conf/ctdb's."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis.sources import source_step
from ntdyn.hyperparams import hyperparams_hash
from ntdyn.hyperparams.tables import validate_table
from ntdyn.models.stacking import unstack
from ntdyn.pipelines.task_vs_data.nodes import (
    compare_systems,
    plan_sources,
    plan_task_vs_data,
    simulate_spiking_data,
    spiking_dataset_params,
    train_data_models,
    train_sources,
)
from ntdyn.store import RecordStore
from ntdyn.training.ensemble_io import load_trained, save_trained

pytestmark = pytest.mark.pipeline

# Two Delay tasks at 100 ms per step: the longest trial is 26 steps.
SOURCES = {
    "multitask": {
        "kind": "multitask",
        "hyperparams": {
            "model": {"hidden_size": 8, "hidden_noise_std": 0.01},
            "task": {"tasks": ["DelayPro", "DelayAnti"], "n_timesteps": 26, "bin_size_ms": 100,
                     "noise": 0.1},
            "train": {"n_batches": 40, "batch_size": 16, "learning_rate": 0.01,
                      "n_replicates": 2, "seed": 0},
        },
        # its own settings, merged over SPIKING and DATA_MODELS for this source only
        "spiking": {"n_trials": 20, "n_valid": 6},
        "data_models": {"sae_lds": {"train": {"learning_rate": 0.005}}},
    }
}  # fmt: skip
DATA_MODELS = {
    "sae_lds": {
        "model": {"kind": "sae_lds", "encoder_size": 8, "latent_size": 4, "factor_size": 4},
        "train": {"n_epochs": 2, "batch_size": 8, "learning_rate": 0.01, "n_replicates": 1,
                  "seed": 0, "validate_every": 2, "checkpoint_every": 2,
                  "rollout_horizons": [1, 2], "rollout_max_steps": 10,
                  "rollout_divergence_factor": 10.0},
    }
}  # fmt: skip
SPIKING = {"n_trials": 24, "n_valid": 8, "n_held_in": 8, "n_held_out": 2, "rate_scaling": 2.0,
           "rectifier": "exp", "seed": 5}  # fmt: skip
COMPARISON = {"seed": 3, "n_candidates": 8, "progress": False,
              "fixed_points": {"max_iters": 100, "adam_iters": 30, "newton_iters": 5},
              "dsa": {"n_delays": 2, "rank": 4, "iters": 20}}  # fmt: skip
OPTIONS = {"progress": False, "metric_every": 5, "checkpoint": None}


def test_a_multitask_source_trains_spikes_and_is_compared(tmp_path):
    store = RecordStore(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="tvd")
    plan = plan_task_vs_data(SOURCES, DATA_MODELS, SPIKING)
    # training_options.unroll reaches the source's scan (2 steps per loop iteration)
    sources, source_records = train_sources(plan, store, {**OPTIONS, "unroll": 2})
    trained = sources["multitask"]
    loss = trained.history[trained.history["term"] == "total"].groupby("step")["value"].mean()
    assert loss.iloc[-5:].mean() < loss.iloc[:5].mean()  # it learns
    assert store.find_model(trained.hash) is not None
    save_trained(tmp_path / "m.eqx", trained)  # its own model kind: the skeleton has 20 inputs
    loaded = load_trained(tmp_path / "m.eqx")
    np.testing.assert_array_equal(loaded.model.cell.weight_ih, trained.model.cell.weight_ih)
    assert loaded.model.readout.weight.shape == (2, 3, 8)

    data, spiking_records = simulate_spiking_data(sources, SPIKING, store, sources=SOURCES)
    arrays = data["multitask"]
    assert arrays["spikes"].shape == (20, 26, 10) and arrays["inputs"].shape == (20, 26, 20)
    assert arrays["latents"].shape == (20, 26, 8)
    assert len(arrays["train"]) == 14 and len(arrays["valid"]) == 6
    own = SPIKING | SOURCES["multitask"]["spiking"]
    dataset_hash = hyperparams_hash(spiking_dataset_params(own, "multitask", trained.hash))
    assert str(arrays["dataset_hash"]) == dataset_hash == spiking_records["dataset_hash"][0]
    assert spiking_records["n_trials"][0] == 20
    step = source_step("multitask", unstack(trained.model, trained.selection.best))
    assert step(np.zeros(8, np.float32), arrays["rest_input"]).shape == (8,)

    models, records, history = train_data_models(data, sources, DATA_MODELS, store, OPTIONS,
                                                 sources=SOURCES)  # fmt: skip
    assert list(records["pair"]) == ["multitask__sae_lds"]
    recorded = store.find_model(records["hash"][0]).params  # the record's params (strings)
    assert float(recorded["train__learning_rate"]) == 0.005  # the shared block says 0.01
    assert recorded["data__dataset_hash"] == dataset_hash
    table, rollout, _, _ = compare_systems(sources, data, models, history, COMPARISON)
    validate_table("comparison", table)
    assert list(zip(table["source"], table["model_kind"], strict=True)) == [
        ("multitask", "sae_lds")
    ]
    for metric in ("rate_r2", "co_bps", "state_r2_true_to_inferred", "dsa_angular"):
        assert np.isfinite(table[metric].to_numpy(float)).all(), metric
    assert set(rollout["horizon"]) == {1, 2}
    assert isinstance(source_records, pd.DataFrame) and len(source_records) == 1


def test_a_multitask_source_with_an_unknown_task_is_refused_before_training():
    bad = {"multitask": {**SOURCES["multitask"], "hyperparams": {
        **SOURCES["multitask"]["hyperparams"],
        "task": {**SOURCES["multitask"]["hyperparams"]["task"], "tasks": ["DelayPro", "Foo"]},
    }}}  # fmt: skip
    with pytest.raises(ValueError, match=r"sources\.multitask: .*unknown \['Foo'\]"):
        plan_sources(bad)
    short = {"multitask": {**SOURCES["multitask"], "hyperparams": {
        **SOURCES["multitask"]["hyperparams"],
        "task": {**SOURCES["multitask"]["hyperparams"]["task"], "n_timesteps": 20},
    }}}  # fmt: skip
    with pytest.raises(ValueError, match="n_timesteps = 20: must be >= 26"):
        plan_sources(short)


# the grouped sampler (`task.one_task_per_batch`, tests/training/test_multitask_source.py)
def _with_option(value) -> dict:
    sources = copy.deepcopy(SOURCES)
    sources["multitask"]["hyperparams"]["task"]["one_task_per_batch"] = value
    return sources


def test_the_option_at_its_default_changes_no_hash_and_set_it_names_another_source():
    plain = plan_sources(SOURCES)["hash"].item()
    assert plan_sources(_with_option(False))["hash"].item() == plain
    grouped = plan_sources(_with_option(True))
    assert grouped["hash"].item() != plain
    assert grouped["hp"].item()["task__one_task_per_batch"] is True


def test_a_bad_value_is_refused_naming_the_parameter():
    with pytest.raises(ValueError, match="one_task_per_batch"):
        plan_sources(_with_option("yes"))
