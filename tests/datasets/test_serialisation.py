"""`.eqx` round trips of trained ensembles through `EquinoxModelDataset`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.datasets import EquinoxModelDataset  # noqa: E402
from ntdyn.models.serialisation import read_header, save_model  # noqa: E402
from science_fixtures import first_sweep  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    return first_sweep()[0][2]  # std 1.0, 3 replicates


def test_round_trip_keeps_leaves_and_header(tmp_path, trained):
    ds = EquinoxModelDataset(filepath=str(tmp_path / "models" / "m.eqx"))
    assert not ds.exists()
    ds.save(trained)
    assert ds.exists()
    loaded = ds.load()
    a_leaves, a_def = jax.tree.flatten(eqx.filter(trained.model, eqx.is_array))
    b_leaves, b_def = jax.tree.flatten(eqx.filter(loaded.model, eqx.is_array))
    assert a_def == b_def
    assert len(a_leaves) == len(b_leaves) > 0
    for x, y in zip(a_leaves, b_leaves, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert loaded.model.hidden_size == trained.model.hidden_size == 7
    assert loaded.model.sisu_input == trained.model.sisu_input
    assert loaded.hyperparams == trained.hyperparams
    assert loaded.hash == trained.hash
    assert loaded.selection == trained.selection
    assert loaded.history is None  # the history lives in its own table


def test_first_line_is_a_json_header_and_read_header_needs_no_leaves(tmp_path, trained):
    path = tmp_path / "m.eqx"
    EquinoxModelDataset(filepath=str(path)).save(trained)
    raw = path.read_bytes()
    first, rest = raw.split(b"\n", 1)
    header = json.loads(first.decode())
    assert header["kind"] == "reaching_controller"
    assert header["hash"] == trained.hash
    assert header["hyperparams"] == trained.hyperparams
    assert header["n_replicates"] == 3
    assert header["selection"]["best_replicate"] == trained.selection.best
    assert len(rest) > 0
    # a file cut after its header still gives its header
    cut = tmp_path / "cut.eqx"
    cut.write_bytes(first + b"\n")
    assert read_header(cut) == header
    assert read_header(path) == header


def test_loading_does_not_depend_on_the_global_random_state(tmp_path, trained):
    # the skeleton is rebuilt from the header; the leaves come from the file
    path = tmp_path / "m.eqx"
    EquinoxModelDataset(filepath=str(path)).save(trained)
    a = EquinoxModelDataset(filepath=str(path)).load()
    b = EquinoxModelDataset(filepath=str(path)).load()
    for x, y in zip(jax.tree.leaves(a.model), jax.tree.leaves(b.model), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"kind": "reaching_controller", "hyperparams": {}}, "missing"),
        ({"kind": "nope", "hyperparams": {}, "n_replicates": 1}, "kind"),
    ],
)
def test_save_model_refuses_bad_headers(tmp_path, trained, header, match):
    with pytest.raises(ValueError, match=match):
        save_model(tmp_path / "x.eqx", trained.model, header)
