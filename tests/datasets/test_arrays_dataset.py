"""LabelledArrays and their Kedro dataset: named axes, attrs, memory-mapped loading."""

from __future__ import annotations

import numpy as np
import pytest

from ntdyn.analysis import LabelledArrays
from ntdyn.datasets import LabelledArraysDataset


def _entry(seed=0, hash_="abc123"):
    rng = np.random.default_rng(seed)
    return LabelledArrays(
        arrays={
            "state": rng.normal(size=(2, 3, 5, 4)).astype(np.float32),
            "index": np.arange(6, dtype=np.int64),
            "scalar": np.asarray(2.5),
        },
        axes={
            "state": ("replicate", "trial", "time", "state_var"),
            "index": ("trial",),
            "scalar": (),
        },  # fmt: skip
        attrs={"hash": hash_, "seed": seed, "n": [1, 2], "nested": {"a": 1.5}},
    )


def test_round_trip_memory_maps_and_keeps_axes_and_attrs(tmp_path):
    ds = LabelledArraysDataset(path=str(tmp_path / "eval"))
    assert not ds.exists()
    data = {"model_a": _entry(0), "model_b": _entry(1, "def456")}
    ds.save(data)
    assert ds.exists()
    loaded = ds.load()
    assert set(loaded) == {"model_a", "model_b"}
    for key, entry in data.items():
        got = loaded[key]
        assert isinstance(got, LabelledArrays)
        assert got.axes == entry.axes
        assert got.attrs == entry.attrs
        assert set(got.arrays) == set(entry.arrays)
        for name, arr in entry.arrays.items():
            assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
            np.testing.assert_array_equal(got[name], arr)
        assert isinstance(got["state"], np.memmap)
        assert not got["state"].flags.writeable


def test_saving_again_replaces_the_whole_entry_set(tmp_path):
    ds = LabelledArraysDataset(path=str(tmp_path / "eval"))
    ds.save({"old": _entry(0), "kept": _entry(1)})
    ds.save({"kept": _entry(2)})
    loaded = ds.load()
    assert set(loaded) == {"kept"}
    np.testing.assert_array_equal(loaded["kept"]["state"], _entry(2)["state"])
    assert not (tmp_path / "eval.tmp").exists()


@pytest.mark.parametrize("axes", [{"x": ("a",)}, {"x": ("a", "b", "c")}, {}, {"y": ("a", "b")}])
def test_wrong_axis_names_raise(axes):
    with pytest.raises(ValueError, match="axis name"):
        LabelledArrays({"x": np.zeros((2, 3))}, axes)
