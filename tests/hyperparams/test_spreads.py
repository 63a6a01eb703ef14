"""Sweep expansion: products, zip groups, order, and each refusal."""

import pandas as pd
import pytest

from ntdyn.hyperparams import (
    SpreadError,
    expand_spread,
    flatten,
    spread_axes,
    varying_columns,
)

BASE = {
    "model": {"cell": "gru", "hidden_size": 64, "layers": [64]},
    "train": {"pert": {"type": "curl", "std": 0.0}, "seed": 0, "batch_size": 32, "method": "bcs"},
}


def picked(members, *keys):
    return [tuple(member[key] for key in keys) for member in members]


@pytest.mark.parametrize("spread", [None, {}, {"zip": []}])
def test_no_spread_gives_the_base_alone(spread):
    assert expand_spread(BASE, spread) == [flatten(BASE)]


def test_single_axis_overrides_base_value():
    members = expand_spread(BASE, {"train": {"pert": {"std": [0.5, 1.0]}}})
    assert picked(members, "train__pert__std") == [(0.5,), (1.0,)]
    assert all(member["model__hidden_size"] == 64 for member in members)
    assert members[0].keys() == flatten(BASE).keys()


def test_product_first_axis_varies_slowest():
    spread = {"model__hidden_size": [32, 64], "train": {"seed": [1, 2, 3]}}
    members = expand_spread(BASE, spread)
    assert picked(members, "model__hidden_size", "train__seed") == [
        (32, 1), (32, 2), (32, 3), (64, 1), (64, 2), (64, 3),
    ]  # fmt: skip


def test_two_stds_times_a_zip_group_of_two():
    spread = {
        "train": {"pert": {"std": [0.0, 0.5]}},
        "zip": [{"train": {"seed": [1, 2]}, "train__batch_size": [16, 8]}],
    }
    members = expand_spread(BASE, spread)
    assert picked(members, "train__pert__std", "train__seed", "train__batch_size") == [
        (0.0, 1, 16),
        (0.0, 2, 8),
        (0.5, 1, 16),
        (0.5, 2, 8),
    ]


def test_zip_group_position_sets_its_place_in_the_product():
    spread = {
        "zip": [{"train__seed": [1, 2], "train__batch_size": [16, 8]}],
        "model__cell": ["gru", "rnn"],
    }
    members = expand_spread(BASE, spread)
    assert picked(members, "train__seed", "model__cell") == [
        (1, "gru"), (1, "rnn"), (2, "gru"), (2, "rnn"),
    ]  # fmt: skip


def test_two_zip_groups_are_two_axes():
    spread = {"zip": [{"train__seed": [1, 2]}, {"model__cell": ["gru", "rnn", "gru"]}]}
    assert len(expand_spread(BASE, spread)) == 6


def test_list_valued_hyperparameter_is_swept_by_a_list_of_lists():
    members = expand_spread(BASE, {"model": {"layers": [[32], [64, 64]]}})
    assert picked(members, "model__layers") == [([32],), ([64, 64],)]


def test_members_do_not_share_mutable_values_and_base_is_untouched():
    base = {"model": {"layers": [64]}, "seed": 0}
    members = expand_spread(base, {"seed": [1, 2]})
    members[0]["model__layers"].append(1)
    assert members[1]["model__layers"] == [64]
    assert base == {"model": {"layers": [64]}, "seed": 0}


def test_spread_axes_lists_flat_names_in_axis_order():
    spread = {
        "train": {"pert": {"std": [0.0, 0.5]}},
        "zip": [{"train__seed": [1, 2], "train": {"batch_size": [16, 8]}}],
        "model__cell": ["gru"],
    }
    assert spread_axes(spread) == [
        "train__pert__std",
        "train__seed",
        "train__batch_size",
        "model__cell",
    ]
    assert spread_axes(None) == []


def test_unknown_key_names_the_key_and_its_siblings():
    with pytest.raises(SpreadError) as raised:
        expand_spread(BASE, {"train": {"pert": {"sd": [0.1]}}})
    message = str(raised.value)
    assert "'train__pert__sd'" in message
    assert "train__pert__std" in message and "train__seed" in message
    assert "model__cell" not in message


def test_unknown_first_segment_lists_top_level_names():
    with pytest.raises(SpreadError, match="'trian__seed'.*top-level names: model, train"):
        expand_spread(BASE, {"trian__seed": [1]})


def test_unknown_key_in_a_zip_group_is_refused():
    with pytest.raises(SpreadError, match="'train__sed'"):
        expand_spread(BASE, {"zip": [{"train__sed": [1, 2]}]})


@pytest.mark.parametrize(
    ("spread", "shown"),
    [
        ({"train": {"seed": 3}}, "'train__seed' = 3"),
        ({"train__seed": "1,2"}, "'train__seed' = '1,2'"),
        ({"train__seed": []}, "'train__seed' = []"),
        ({"train": {"pert": {}}}, "'train__pert' = {}"),
        ({"zip": [{"train__seed": 1}]}, "'train__seed' = 1"),
    ],
)
def test_axis_must_be_a_non_empty_list(spread, shown):
    with pytest.raises(SpreadError) as raised:
        expand_spread(BASE, spread)
    assert shown in str(raised.value)
    assert "non-empty list" in str(raised.value)


def test_zip_lists_of_unequal_length_name_each_key_and_length():
    spread = {"zip": [{"train__seed": [1, 2, 3], "train": {"batch_size": [16, 8]}}]}
    with pytest.raises(SpreadError) as raised:
        expand_spread(BASE, spread)
    message = str(raised.value)
    assert "zip group 0" in message
    assert "train__seed (3)" in message and "train__batch_size (2)" in message


@pytest.mark.parametrize("zip_value", [{"train__seed": [1]}, [[1, 2]], [{}], "seed"])
def test_malformed_zip_block_is_refused(zip_value):
    with pytest.raises(SpreadError, match="zip"):
        expand_spread(BASE, {"zip": zip_value})


@pytest.mark.parametrize(
    "spread",
    [
        {"train__seed": [1, 2], "zip": [{"train__seed": [3, 4], "model__cell": ["gru", "rnn"]}]},
        {"train": {"seed": [1]}, "train__seed": [2]},
        {"zip": [{"train__seed": [1]}, {"train__seed": [2]}]},
    ],
)
def test_same_key_in_two_axes_is_refused(spread):
    with pytest.raises(SpreadError, match="'train__seed' appears in two sweep axes"):
        expand_spread(BASE, spread)


def test_malformed_keys_become_spread_errors():
    with pytest.raises(SpreadError, match="'train___seed'"):
        expand_spread(BASE, {"train___seed": [1]})
    with pytest.raises(SpreadError, match="must be a mapping"):
        expand_spread(BASE, [("train__seed", [1])])


def test_varying_columns_compares_canonical_values():
    table = pd.DataFrame(
        {
            "same_list": [[1, 2], [1, 2], [1, 2]],
            "other_list": [[1, 2], [1, 2], [2, 1]],
            "int_and_float": pd.Series([1, 1.0, 1], dtype=object),
            "flag": [True, True, False],
            "label": ["a", "a", "a"],
            "nan": [float("nan")] * 3,
        }
    )
    assert varying_columns(table) == ["other_list", "flag"]


def test_varying_columns_of_an_expanded_sweep_are_its_axes():
    spread = {"train__pert__std": [0.0, 0.5], "zip": [{"train__seed": [1, 2]}]}
    table = pd.DataFrame(expand_spread(BASE, spread))
    assert varying_columns(table) == spread_axes(spread)


def test_null_axis_is_dropped_so_an_environment_can_remove_an_inherited_axis():
    base = {"train": {"pert": {"std": 0.0, "type": "curl"}}}
    spread = {
        "train__pert__std": None,
        "zip": [{"train__pert__type": ["curl", "constant"], "train__pert__std": [1.0, 0.1]}],
    }
    members = expand_spread(base, spread)
    assert [(m["train__pert__type"], m["train__pert__std"]) for m in members] == [
        ("curl", 1.0),
        ("constant", 0.1),
    ]
