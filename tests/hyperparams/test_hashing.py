"""Canonical forms and hashes: stable under spelling, sensitive to values."""

import hashlib

import numpy as np
import pytest
from hyperparams_strategies import nested
from hypothesis import given
from hypothesis import strategies as st

from ntdyn.hyperparams import canonical, hash_of, hyperparams_hash


def shuffled(value, rng):
    """The same mapping with every level's insertion order shuffled."""
    if not isinstance(value, dict):
        return value
    items = list(value.items())
    rng.shuffle(items)
    return {key: shuffled(item, rng) for key, item in items}


@given(nested, st.randoms(use_true_random=False))
def test_hash_ignores_key_order(params, rng):
    assert hyperparams_hash(shuffled(params, rng)) == hyperparams_hash(params)


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_int_and_equal_float_hash_equal_but_other_values_differ(number):
    as_int = {"train": {"seed": number}}
    assert hyperparams_hash(as_int) == hyperparams_hash({"train": {"seed": float(number)}})
    assert hyperparams_hash(as_int) != hyperparams_hash({"train": {"seed": number + 1}})


def test_bool_is_not_a_number():
    assert hyperparams_hash({"flag": True}) != hyperparams_hash({"flag": 1})
    assert hyperparams_hash({"flag": False}) != hyperparams_hash({"flag": 0.0})
    assert canonical(True) is True


def test_nested_and_flat_spellings_hash_equal():
    assert hyperparams_hash({"train": {"pert": {"std": 0.5}}}) == hyperparams_hash(
        {"train__pert__std": 0.5}
    )


def test_hash_length_and_format():
    digest = hyperparams_hash({"a": 1})
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert hyperparams_hash({"a": 1}, length=40).startswith(digest)
    with pytest.raises(ValueError, match="between 1 and 64"):
        hyperparams_hash({"a": 1}, length=0)


def test_canonical_forms():
    assert canonical({"b": (1, 2.5), "a": np.int64(3)}) == {"a": 3.0, "b": [1.0, 2.5]}
    assert list(canonical({"b": 1, "a": 2})) == ["a", "b"]
    assert canonical(np.float32(0.5)) == 0.5 and type(canonical(np.float32(0.5))) is float
    assert canonical(np.array([1, 2])) == [1.0, 2.0]
    assert canonical(float("nan")) == canonical(float("nan")) != "nan"
    assert canonical(float("inf")) != canonical(float("-inf"))
    assert str(canonical(-0.0)) == "0.0"
    # Too large for an exact float: stays an exact int rather than colliding with its neighbour.
    assert canonical(2**64 + 1) == 2**64 + 1 and canonical(10**400) == 10**400


def test_canonical_refuses_what_json_cannot_hold_faithfully():
    with pytest.raises(TypeError, match="non-string key 1"):
        canonical({1: "a"})
    with pytest.raises(TypeError, match="object"):
        canonical(object())


def test_numpy_scalars_hash_like_python_numbers():
    assert hyperparams_hash({"a": np.float64(0.5), "b": np.int32(2)}) == hyperparams_hash(
        {"a": 0.5, "b": 2}
    )


def test_nan_hash_is_stable():
    assert hyperparams_hash({"a": float("nan")}) == hyperparams_hash({"a": np.nan})
    assert hyperparams_hash({"a": float("nan")}) != hyperparams_hash({"a": "nan"})


def test_hash_of_is_canonical_and_order_sensitive():
    models = ["abc", "def"]
    params = {"n_trials": 10, "pert": {"std": 1}}
    assert hash_of(models, params) == hash_of(
        ("abc", "def"), {"pert": {"std": 1.0}, "n_trials": 10}
    )
    assert hash_of(models, params) != hash_of(params, models)
    assert hash_of(models, params) != hash_of(["def", "abc"], params)
    assert len(hash_of("x", length=8)) == 8


def test_hash_is_pinned():
    # Stored models are keyed by this hash: changing the canonical form orphans them.
    params = {"train": {"pert": {"std": 0.5}, "seed": 1}, "model": {"layers": [64, 64]}}
    text = b'{"model__layers":[64.0,64.0],"train__pert__std":0.5,"train__seed":1.0}'
    assert hyperparams_hash(params) == hashlib.sha256(text).hexdigest()[:16] == "4e60d7e19cad12cd"
