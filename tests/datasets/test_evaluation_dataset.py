"""EvaluationDataset: the catalog keeps a pointer; the arrays and tables stay in the folder.

The folder is written with the writer API of `ntdyn.analysis.stored` (what an evaluation's
record holds: `arrays.zarr`, `conditions.parquet`, `measures.parquet`), tiny and by hand.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from ntdyn.analysis.stored import (
    CONDITIONS,
    EvaluationArrays,
    ModelWriter,
    open_for_writing,
    read_pointer,
    with_condition_index,
)
from ntdyn.datasets import EvaluationDataset

N_STEPS = 5
REPLICATES = [0, 2]  # stored replicates (keep.replicates: all of a 3-replicate model, say)
# 2 amplitudes x 2 directions x 2 repeats = 8 trials, 4 conditions
CONDITION_TABLE = pd.DataFrame(
    {
        "trial": np.arange(8),
        "repeat": np.tile([0, 1], 4),
        "pert_amp": np.repeat([0.0, 4.0], 4),
        "direction": np.tile(np.repeat([0.0, np.pi], 2), 2),
    }
)
KEPT = np.array([6, 0, 2, 4])  # the kept sample: repeat 0 of every condition (any order)


def _write_model(root, h: str, rng) -> dict[str, np.ndarray]:
    """One model's group, as `evaluate_model` writes it; returns what it wrote."""
    conditions = with_condition_index(CONDITION_TABLE)
    group = root.create_group(h)
    group.attrs.update(hash=h, analysis="plant_perts", dt=0.01, seed=7,
                       replicates=REPLICATES, selected=2)  # fmt: skip
    states = rng.normal(size=(len(REPLICATES), 8, N_STEPS, 4)).astype(np.float32)
    writer = ModelWriter(group, {"state": (len(REPLICATES), len(KEPT), N_STEPS, 4)}, "trials")
    writer.write("state", slice(0, 2), states[:, KEPT[:2]])  # in pieces, as chunks arrive
    writer.write("state", slice(2, 4), states[:, KEPT[2:]])
    group.create_array("trial_index", data=KEPT, dimension_names=("trial",))
    index = conditions["condition"].to_numpy()
    means = np.stack([states[:, index == c].mean(1) for c in range(index.max() + 1)], axis=1)
    ModelWriter(group, {"state": means.shape}, "means").write("state", slice(None), means)
    return {"states": states, "means": means, "conditions": conditions.assign(hash=h)}


@pytest.fixture
def evaluation(tmp_path):
    """An evaluation folder of two models, and what was written into it."""
    folder = tmp_path / "record" / "artifacts" / "evaluation"
    root = open_for_writing(folder)
    rng = np.random.default_rng(0)
    written = {h: _write_model(root, h, rng) for h in ("hash_b", "hash_a")}
    conditions = pd.concat([w["conditions"] for w in written.values()], ignore_index=True)
    conditions.to_parquet(folder / CONDITIONS, index=False)
    measures = conditions[["hash", "trial"]].assign(end_position_error=rng.random(16))
    measures.to_parquet(folder / "measures.parquet", index=False)
    return folder, written, conditions, measures


def _pointer(tmp_path, part: str) -> EvaluationDataset:
    return EvaluationDataset(path=str(tmp_path / "catalog" / "evaluation.json"), part=part)


def test_save_writes_only_a_pointer_to_the_folder(evaluation, tmp_path):
    folder, *_ = evaluation
    ds = _pointer(tmp_path, "arrays")
    assert not ds.exists()
    ds.save({"folder": folder, "hash": "e123", "run_id": "r456"})
    assert ds.exists()
    path = tmp_path / "catalog" / "evaluation.json"
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.json"]  # nothing copied
    assert json.loads(path.read_text()) == read_pointer(path) == {
        "folder": str(folder.resolve()), "hash": "e123", "run_id": "r456"
    }  # fmt: skip


def test_arrays_load_lazily_and_read_back_what_was_written(evaluation, tmp_path):
    folder, written, *_ = evaluation
    ds = _pointer(tmp_path, "arrays")
    ds.save({"folder": str(folder), "hash": "e123", "run_id": "r456"})
    arrays = ds.load()
    assert isinstance(arrays, EvaluationArrays)
    assert list(arrays) == ["hash_a", "hash_b"] and len(arrays) == 2
    for h, w in written.items():
        model = arrays[h]
        assert model.attrs["dt"] == 0.01 and model.attrs["replicates"] == REPLICATES
        # unread: the zarr array with its named dimensions
        lazy = model.lazy("trials", "state")
        assert tuple(lazy.metadata.dimension_names) == ("replicate", "trial", "time", "state_var")
        assert lazy.shape == (2, 4, N_STEPS, 4)
        assert tuple(model.lazy("means", "state").metadata.dimension_names)[1] == "condition"
        # trials: the kept sample of the selected replicate (2: row 1), in trial_index order
        np.testing.assert_array_equal(model.trials("state"), w["states"][1, KEPT])
        np.testing.assert_array_equal(model.trials("state", replicate=0), w["states"][0, KEPT])
        assert model.trial_conditions["trial"].tolist() == KEPT.tolist()
        # means: every condition, in the order of mean_conditions
        np.testing.assert_array_equal(model.means("state"), w["means"][1])
        assert model.mean_conditions["condition"].tolist() == [0, 1, 2, 3]
        expected = w["states"][1, CONDITION_TABLE["pert_amp"].to_numpy() == 4.0].mean(0)
        np.testing.assert_allclose(
            model.means("state")[model.mean_conditions["pert_amp"].to_numpy() == 4.0].mean(0),
            expected, rtol=1e-6,
        )  # fmt: skip
    with pytest.raises(KeyError, match="replicate 1 .* not stored"):
        arrays["hash_a"].trials("state", replicate=1)
    with pytest.raises(KeyError, match="keep.trials"):
        arrays["hash_a"].trials("hidden")


@pytest.mark.parametrize("part", ["conditions", "measures"])
def test_tables_load_from_the_same_folder(evaluation, tmp_path, part):
    folder, _, conditions, measures = evaluation
    ds = _pointer(tmp_path, part)
    ds.save({"folder": folder, "hash": "e123", "run_id": "r456"})
    expected = conditions if part == "conditions" else measures
    pd.testing.assert_frame_equal(ds.load(), expected)


def test_the_catalog_entries_share_one_pointer(evaluation, tmp_path):
    folder, _, conditions, measures = evaluation
    path = str(tmp_path / "catalog" / "evaluation.json")
    catalog = DataCatalog.from_config(
        {
            f"plant_perts_{name}": {"type": "ntdyn.datasets.EvaluationDataset", "path": path,
                                    "part": part}
            for name, part in (("states", "arrays"), ("conditions", "conditions"),
                               ("measures", "measures"))
        }
    )  # fmt: skip
    catalog.save("plant_perts_states", {"folder": folder, "hash": "e123", "run_id": "r456"})
    assert set(catalog.load("plant_perts_states")) == {"hash_a", "hash_b"}
    pd.testing.assert_frame_equal(catalog.load("plant_perts_conditions"), conditions)
    pd.testing.assert_frame_equal(catalog.load("plant_perts_measures"), measures)


def test_a_pointer_to_a_folder_that_is_gone_names_it(evaluation, tmp_path):
    folder, *_ = evaluation
    _pointer(tmp_path, "arrays").save({"folder": folder, "hash": "e123", "run_id": "r456"})
    shutil.rmtree(folder)  # the record was deleted (or the store moved)
    for part in ("arrays", "conditions", "measures"):
        with pytest.raises(DatasetError, match="run the evaluation again") as err:
            _pointer(tmp_path, part).load()
        assert str(folder.resolve()) in str(err.value)
        assert str(tmp_path / "catalog" / "evaluation.json") in str(err.value)


@pytest.mark.parametrize("part", ["states", "Arrays", ""])
def test_an_unknown_part_is_refused(tmp_path, part):
    with pytest.raises(ValueError, match=rf"part = '{part}': must be one of \['arrays', "):
        _pointer(tmp_path, part)
    # the catalog builds its datasets when first used: the entry is refused there, named
    catalog = DataCatalog.from_config(
        {"x": {"type": "ntdyn.datasets.EvaluationDataset", "path": "x.json", "part": part}}
    )
    with pytest.raises(DatasetError, match=f"(?s)part = '{part}'.*dataset 'x'"):
        catalog.load("x")
