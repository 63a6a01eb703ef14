"""Round trips and refusals of ``flatten`` / ``unflatten``."""

import re

import pytest
from hyperparams_strategies import nested
from hypothesis import given

from ntdyn.hyperparams import SEP, flatten, unflatten


@given(nested)
def test_unflatten_inverts_flatten_exactly(params):
    restored = unflatten(flatten(params))
    assert restored == params
    # repr also compares leaf types (True vs 1) and key order.
    assert repr(restored) == repr(params)


@given(nested)
def test_flatten_is_idempotent(params):
    once = flatten(params)
    assert flatten(once) == once
    assert all(not isinstance(value, dict) or value == {} for value in once.values())


def test_flatten_joins_nested_keys_with_double_underscore():
    assert SEP == "__"
    assert flatten({"train": {"pert": {"std": 1}}, "seed": 3}) == {"train__pert__std": 1, "seed": 3}


def test_flatten_keeps_lists_as_leaves_and_turns_tuples_into_lists():
    flat = flatten({"model": {"layers": [64, 64], "shape": (2, 3), "none": None}})
    assert flat == {"model__layers": [64, 64], "model__shape": [2, 3], "model__none": None}
    assert isinstance(flat["model__shape"], list)


def test_empty_dict_is_a_leaf():
    assert flatten({"a": {}, "b": {"c": {}}}) == {"a": {}, "b__c": {}}
    assert unflatten({"a": {}, "b__c": {}}) == {"a": {}, "b": {"c": {}}}


def test_flatten_accepts_already_flat_and_mixed_keys():
    assert flatten({"a__b": 1, "a": {"c": 2}, "d": {"e__f": 3}}) == {
        "a__b": 1,
        "a__c": 2,
        "d__e__f": 3,
    }


def test_unflatten_builds_nested_dicts():
    assert unflatten({"train__pert__std": 0.5, "train__seed": 1, "name": "x"}) == {
        "train": {"pert": {"std": 0.5}, "seed": 1},
        "name": "x",
    }


def test_flatten_copies_lists():
    layers = [1, 2]
    flatten({"layers": layers})["layers"].append(3)
    assert layers == [1, 2]


@pytest.mark.parametrize("bad_key", ["", "a____b", "a___b", "_a", "b_", 3])
def test_invalid_keys_are_refused_naming_the_key(bad_key):
    with pytest.raises(ValueError, match=re.escape(repr(bad_key))):
        flatten({bad_key: 1})
    with pytest.raises(ValueError, match="must"):
        unflatten({bad_key: 1})


@pytest.mark.parametrize(
    "params",
    [
        {"a": 1, "a__b": 2},
        {"a__b": 1, "a": {"b": 2}},
        {"a": {}, "a__b": 1},
        {"a": {"b": 1}, "a__b__c": 2},
    ],
)
def test_colliding_keys_are_refused(params):
    with pytest.raises(ValueError, match="'a"):
        flatten(params)
    with pytest.raises(ValueError):
        unflatten(params)


def test_non_mapping_is_refused():
    with pytest.raises(TypeError, match="must be a mapping, got list"):
        flatten([("a", 1)])
