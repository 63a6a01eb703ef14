"""Recorded MLP training (docs/science.md §7): data loading, the trace tables, learning.

Tiny shapes: one hidden layer of 8 units, 60 steps recorded every 10 (300 for learning).
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import pandas as pd
import pytest

from ntdyn.hyperparams.tables import validate_table
from ntdyn.tasks.digits import load_classification_data, load_digits, load_mnist_file
from ntdyn.training.keys import STREAM_PROBE
from ntdyn.training.recording import parameter_trajectory, train_recorded

TABLES = ("scalars", "layers", "weights", "activations")
HP = {
    "data__name": "digits", "data__path": None, "data__test_fraction": 0.25, "data__seed": 0,
    "model__hidden_sizes": [8], "model__activation": "relu",
    "train__n_steps": 60, "train__batch_size": 32, "train__learning_rate": 0.01,
    "train__schedule": "cosine", "train__seed": 0, "train__record_every": 10,
    "train__probe_size": 8, "train__density_threshold": 0.01,
}  # fmt: skip


def _hp(changes: dict | None = None) -> dict:
    return HP | (changes or {})


@pytest.fixture(scope="module")
def digits():
    return load_digits(0.25, 0)


@pytest.fixture(scope="module")
def trace(digits):
    return train_recorded(_hp(), digits, progress=False)


@pytest.fixture(scope="module")
def long_trace(digits):
    return train_recorded(_hp({"train__n_steps": 300}), digits, progress=False)


def _params(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


# ----------------------------------------------------------------------------- data


def test_digits_split_is_stratified_scaled_and_seeded(digits):
    d = digits
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.n_features == d.x_train.shape[1] == d.x_test.shape[1] == 64
    assert d.n_classes == 10
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    for x in (d.x_train, d.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert d.x_train.max() == 1.0  # 16 / 16: scaled, not clipped
    assert len(d.y_test) / 1797 == pytest.approx(0.25, abs=0.01)
    for label in range(10):
        n_train, n_test = (d.y_train == label).sum(), (d.y_test == label).sum()
        assert n_train > 0 and n_test > 0, label
        assert n_test / (n_train + n_test) == pytest.approx(0.25, abs=0.02), label
    again = load_digits(0.25, 0)
    for a, b in zip(d, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = load_digits(0.25, 1)
    assert not np.array_equal(other.y_test, d.y_test)
    assert len(load_digits(0.5, 0).y_test) / 1797 == pytest.approx(0.5, abs=0.01)


def test_bad_test_fraction_and_data_name_are_refused():
    with pytest.raises(ValueError, match=r"data__test_fraction = 1\.5"):
        load_digits(1.5, 0)
    with pytest.raises(ValueError, match=r"data__name = 'cifar'"):
        load_classification_data(_hp({"data__name": "cifar"}))


def _fake_images(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    x[0, 0, 0] = 255
    x[0, 0, 1] = 0
    return x, np.arange(n, dtype=np.uint8) % 10


def test_mnist_file_in_the_keras_layout_is_kept_and_scaled(tmp_path):
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _fake_images(rng, 30), _fake_images(rng, 12)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    d = load_mnist_file(path)
    assert d.x_train.shape == (30, 784) and d.x_test.shape == (12, 784)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    np.testing.assert_allclose(d.x_train, x_train.reshape(30, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, y_test)
    assert d.n_features == 784 and d.n_classes == 10
    # through the hyperparameters too
    hp = _hp({"data__name": "mnist_file", "data__path": str(path)})
    np.testing.assert_array_equal(load_classification_data(hp).x_test, d.x_test)


def test_mnist_file_with_x_and_y_is_split_here(tmp_path):
    x, y = _fake_images(np.random.default_rng(1), 100)  # 10 images of each class
    path = tmp_path / "xy.npz"
    np.savez(path, x=x, y=y)
    d = load_mnist_file(path, test_fraction=0.2, seed=0)
    assert d.x_train.shape == (80, 784) and d.x_test.shape == (20, 784)
    assert 0.0 <= d.x_train.min() and max(d.x_train.max(), d.x_test.max()) == 1.0
    assert set(d.y_train) == set(d.y_test) == set(range(10))  # stratified


def test_missing_or_malformed_mnist_file_names_data_path(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=r"data__path = .*nope\.npz"):
        load_mnist_file(missing)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"(?s)data__path = .*wrong\.npz.*x_train.*images"):
        load_mnist_file(wrong)


# ----------------------------------------------------------------------------- the trace


def test_one_scalar_row_per_record_and_tables_validate(trace):
    assert list(trace.scalars["step"]) == [10, 20, 30, 40, 50, 60]
    for name in TABLES:
        validate_table(f"trace_{name}", getattr(trace, name))
    assert list(trace.layers["layer"].unique()) == ["hidden_1", "output"]
    assert len(trace.layers) == 6 * 2
    n_weights = (64 + 1) * 8 + (8 + 1) * 10
    assert len(trace.weights) == 6 * n_weights
    assert len(trace.activations) == 6 * 8 * (8 + 10)
    assert set(trace.activations["probe"]) == set(range(8))
    assert np.isfinite(trace.scalars.drop(columns="step").to_numpy()).all()
    # cosine schedule: the learning rate falls
    assert trace.scalars["learning_rate"].is_monotonic_decreasing


def test_last_recorded_weights_are_the_final_model_exactly(trace):
    last = trace.weights[trace.weights["step"] == 60]
    for name, layer in zip(["hidden_1", "output"], trace.model.layers, strict=True):
        w = last[last["layer"] == name]
        n_out, n_in = layer.weight.shape
        weight = w[w["input"] >= 0].sort_values(["unit", "input"])
        bias = w[w["input"] == -1].sort_values("unit")
        assert len(weight) == n_out * n_in and len(bias) == n_out
        np.testing.assert_array_equal(
            weight["value"].to_numpy().reshape(n_out, n_in), np.asarray(layer.weight)
        )
        np.testing.assert_array_equal(bias["value"].to_numpy(), np.asarray(layer.bias))
    # and the weights did change during training
    first = trace.weights[trace.weights["step"] == 10]["value"].to_numpy()
    assert not np.array_equal(first, last["value"].to_numpy())


def test_last_recorded_activations_are_the_final_model_on_the_probe(trace, digits):
    root = jax.random.PRNGKey(HP["train__seed"])
    probe_idx = np.asarray(
        jax.random.choice(
            jax.random.fold_in(root, STREAM_PROBE), len(digits.y_test), (8,), replace=False
        )
    )
    np.testing.assert_array_equal(trace.probe_labels, digits.y_test[probe_idx])
    expected = jax.vmap(trace.model.layer_activity)(digits.x_test[probe_idx])
    acts = trace.activations
    last = acts[acts["step"] == 60]
    for name, want in zip(["hidden_1", "output"], expected, strict=True):
        a = last[last["layer"] == name].sort_values(["probe", "unit"])
        got = a["value"].to_numpy().reshape(8, -1)
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)
    hidden = acts[acts["layer"] == "hidden_1"]["value"]
    assert (hidden >= 0).all() and (hidden > 0).any()  # relu
    assert (acts[acts["layer"] == "output"]["value"] < 0).any()  # logits are linear


def test_recorded_model_learns(long_trace):
    acc = long_trace.scalars["test_accuracy"].to_numpy()
    assert len(acc) == 30
    assert acc[-1] > acc[0]
    assert acc[-1] > 0.5, acc
    loss = long_trace.scalars["test_loss"].to_numpy()
    assert loss[-1] < loss[0]


def test_same_seed_gives_identical_tables(trace, digits):
    again = train_recorded(_hp(), digits, progress=False)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(trace, name))
    np.testing.assert_array_equal(again.probe_labels, trace.probe_labels)
    assert again.hash == trace.hash
    other = train_recorded(_hp({"train__seed": 1}), digits, progress=False)
    assert other.hash != trace.hash
    assert not np.array_equal(other.weights["value"], trace.weights["value"])


def test_recording_does_not_change_training(trace, digits):
    bare = train_recorded(_hp(), digits, record=False, progress=False)
    for name in TABLES:
        assert getattr(bare, name).empty, name
    for a, b in zip(_params(bare.model), _params(trace.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tables_filed_block_by_block_equal_those_of_one_block(trace, digits):
    # 6 records in blocks of 2: each block is filed while the next one trains
    blocks = train_recorded(_hp(), digits, progress=False, block_target=2)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(blocks, name), getattr(trace, name))


def test_record_every_step_keeps_each_steps_loss(digits):
    every = train_recorded(_hp({"train__record_every": 1, "train__n_steps": 4}), digits,
                           progress=False)  # fmt: skip
    assert list(every.scalars["step"]) == [1, 2, 3, 4]
    validate_table("trace_weights", every.weights)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"train__n_steps": 65}, ValueError,
         r"train__n_steps = 65: must be a multiple of train__record_every = 10"),
        ({"train__schedule": "linear"}, ValueError, r"train__schedule = 'linear'"),
        ({"model__activation": "gelu"}, ValueError, r"model__activation = 'gelu'"),
        ({"train__record_every": 0}, ValueError, r"train__record_every = 0"),
    ],
)  # fmt: skip
def test_bad_options_name_the_parameter_and_value(digits, changes, error, match):
    with pytest.raises(error, match=match):
        train_recorded(_hp(changes), digits, progress=False)


def test_parameter_trajectory_has_every_weight_and_bias_per_record(trace):
    steps, trajectory = parameter_trajectory(trace.weights)
    n_params = sum(int(np.prod(p.shape)) for p in _params(trace.model))
    assert n_params == 64 * 8 + 8 + 8 * 10 + 10
    np.testing.assert_array_equal(steps, [10, 20, 30, 40, 50, 60])
    assert trajectory.shape == (6, n_params)
    # fixed column order: layer, unit, then input with the bias (-1) first
    final = np.concatenate(
        [np.concatenate([np.asarray(l.bias)[:, None], np.asarray(l.weight)], 1).ravel()
         for l in trace.model.layers]
    )  # fmt: skip
    np.testing.assert_array_equal(trajectory[-1], final)
    # row order of the input table does not matter
    shuffled = trace.weights.sample(frac=1.0, random_state=0)
    steps2, trajectory2 = parameter_trajectory(shuffled)
    np.testing.assert_array_equal(steps2, steps)
    np.testing.assert_array_equal(trajectory2, trajectory)
