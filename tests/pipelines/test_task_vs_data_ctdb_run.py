"""`kedro run --env ctdb --pipeline task_vs_data` end to end: a real Kedro session in the ctdb
environment (the benchmark's settings, conf/ctdb) with tiny sizes as runtime parameters, real
MLflow (sqlite in a temp dir)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import make_project, run_pipeline, tracking_uri  # noqa: E402

from ntdyn.hyperparams.tables import validate_table  # noqa: E402
from ntdyn.store import RecordStore  # noqa: E402

pytestmark = pytest.mark.pipeline

# Tiny sizes over conf/ctdb (as --params): every other setting is the environment's own.
_TINY_TRAIN = {"n_epochs": 2, "batch_size": 8, "validate_every": 2, "checkpoint_every": 2,
               "rollout_horizons": [1, 2, 4], "rollout_max_steps": 20}  # fmt: skip
_TINY_SAE = {"encoder_size": 6, "latent_size": 4, "factor_size": 4}
TINY_CTDB = {
    "task_vs_data": {
        "training_options": {"progress": False, "metric_every": 2},
        "sources": {
            "flipflop": {"hyperparams": {"model": {"hidden_size": 8}, "task": {"n_steps": 30},
                                         "train": {"n_batches": 20, "batch_size": 8}}},
            # two Delay tasks at 100 ms per step: the longest trial is 26 steps
            "multitask": {
                "hyperparams": {
                    "model": {"hidden_size": 8},
                    "task": {"tasks": ["DelayPro", "DelayAnti"], "n_timesteps": 26,
                             "bin_size_ms": 100},
                    "train": {"n_batches": 20, "batch_size": 8},
                },
                # its own settings (conf/ctdb: 750 / 150 trials, LFADS batch 200), tiny; its
                # SAE-GRU learning rate stays conf/ctdb's 5e-3
                "spiking": {"n_trials": 20, "n_valid": 4},
                "data_models": {"lfads": {"train": {"batch_size": 8}}},
            },
        },
        # more neurons (24) than MultiTask's 20 inputs: the benchmark's co-bps has neurons left
        "spiking": {"n_trials": 24, "n_valid": 8, "n_held_in": 20, "n_held_out": 4},
        "data_models": {
            "sae_gru": {"model": _TINY_SAE, "train": _TINY_TRAIN},
            "lfads": {"model": _TINY_SAE, "train": _TINY_TRAIN | {"kl_ramp_epochs": 2}},
            "sae_lds": {"model": _TINY_SAE, "train": _TINY_TRAIN},
            "sae_rnn": {"model": _TINY_SAE, "train": _TINY_TRAIN},
            "sae_node": {"model": _TINY_SAE | {"width": 8, "depth": 2}, "train": _TINY_TRAIN},
        },
        "comparison": {
            "n_candidates": 16,
            "fixed_points": {"max_iters": 200, "adam_iters": 50, "newton_iters": 10},
            "dsa": {"n_delays": 3, "rank": 6, "iters": 30},
        },
    }
}  # fmt: skip
CTDB_SOURCES = ("flipflop", "multitask")
CTDB_MODELS = ("sae_gru", "lfads", "sae_lds", "sae_rnn", "sae_node")


def test_kedro_run_env_ctdb_gives_the_benchmarks_table(tmp_path, monkeypatch):
    root = make_project(tmp_path / "ctdb", {})
    monkeypatch.chdir(root)
    run_pipeline(root, "task_vs_data", env="ctdb", runtime_params=TINY_CTDB)

    table = pd.read_parquet(root / "data/08_reporting/task_vs_data/comparison.parquet")
    validate_table("comparison", table)
    assert set(zip(table["source"], table["model"], strict=True)) == {
        (s, m) for s in CTDB_SOURCES for m in CTDB_MODELS
    }  # reaching and latent_evolution removed by null
    for metric in ("rate_r2", "state_r2_true_to_inferred", "co_bps", "co_bps_ctdb",
                   "cycle_consistency_r2"):  # fmt: skip
        assert np.isfinite(table[metric].to_numpy(float)).all(), metric
    # the two co-bps score different neurons (3 / 20 inputs on: held-in ones included)
    assert not np.allclose(table["co_bps"], table["co_bps_ctdb"])
    _the_table_goes_beside_the_published_one(table)

    store = RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")
    sources = pd.read_parquet(root / "data/07_model_output/task_vs_data/source_records.parquet")
    flipflop = store.find_model(sources.set_index("source").loc["flipflop", "hash"])
    assert flipflop.params["task__target_coding"] == "zero_one"
    multitask = store.find_model(sources.set_index("source").loc["multitask", "hash"])
    assert multitask.params["task__one_task_per_batch"] in (True, "True")  # grouped sampler
    assert float(flipflop.params["task__p_pulse"]) == 0.02
    assert int(float(flipflop.params["model__hidden_size"])) == 8  # the tiny override
    spiking = pd.read_parquet(root / "data/03_primary/task_vs_data/spiking_records.parquet")
    for record in store.query_evaluations(analysis="spiking_dataset"):
        assert record.params["spiking__standardise"] == "global"
    assert set(spiking["n_neurons"]) == {24}
    # per-source settings: MultiTask's own trial count and SAE-GRU learning rate (conf/ctdb)
    assert dict(zip(spiking["source"], spiking["n_trials"], strict=True)) == {
        "flipflop": 24, "multitask": 20}  # fmt: skip
    fits = pd.read_parquet(root / "data/07_model_output/task_vs_data/data_model_records.parquet")
    sae_gru = fits[fits["model"] == "sae_gru"].set_index("source")["hash"]
    learning_rates = {s: float(store.find_model(h).params["train__learning_rate"])
                      for s, h in sae_gru.items()}  # fmt: skip
    assert learning_rates == {"flipflop": 0.002, "multitask": 0.005}
    (comparison,) = store.query_evaluations(analysis="task_vs_data")
    for option in ("co_bps_ctdb", "trial_length_mask"):
        assert comparison.params[f"comparison__{option}"] in (True, "True"), option
    # MultiTask's data set knows where its trials end (Delay trials: 10 to 26 steps of 100 ms)
    arrays = np.load(root / "data/03_primary/task_vs_data/spiking/multitask.npz")
    assert arrays["trial_lengths"].shape == (20,)  # its own trial count
    assert 1 <= arrays["trial_lengths"].min() and arrays["trial_lengths"].max() <= 26
    assert not np.any(arrays["inputs"][np.arange(26)[None] >= arrays["trial_lengths"][:, None]])


def _the_table_goes_beside_the_published_one(table: pd.DataFrame) -> None:
    """benchmarks/ctdb_table.py on the run's own table: the notebook's five cells get their
    published values and differences, the other pairs none."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from ctdb_table import METRICS, PUBLISHED, compare, markdown

    rows = compare(table)
    assert len(rows) == len(CTDB_SOURCES) * len(CTDB_MODELS)
    published = {(r["source"], r["model"]): r for r in rows if r["published"] is not None}
    assert set(published) == set(PUBLISHED)
    for key, row in published.items():
        ours = table[(table["source"] == key[0]) & (table["model_kind"] == key[1])]
        assert row["ntdyn"]["state R²"] == float(ours["state_r2_true_to_inferred"].iloc[0])
        for metric in METRICS:
            want = row["ntdyn"][metric] - row["published"][metric]
            assert row["difference"][metric] == pytest.approx(want)
    text = markdown(rows)
    assert text.count("\n") == len(rows) + 1 and "| 3BFF | LFADS |" in text
    with pytest.raises(ValueError, match="co_bps_ctdb"):
        compare(table.drop(columns="co_bps_ctdb"))
