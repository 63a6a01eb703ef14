"""Pure helpers of the store: no MLflow backend needed."""

from __future__ import annotations

import json

import pytest

from ntdyn.store.query import (
    UNSET,
    ambiguous_message,
    canonical_json,
    figure_hash,
    not_found_message,
    param_matches,
    param_to_str,
    params_match,
    sanitize_metric_name,
    varying_params,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (1.0, "1.0"),
        (1e-5, "1e-05"),
        (True, "True"),
        (None, "None"),
        ("tanh", "tanh"),
        ([1, 2], "[1, 2]"),
        ((0.5, "a"), '[0.5, "a"]'),
        ({"b": 1, "a": [None]}, '{"b": 1, "a": [null]}'),
    ],
)
def test_param_to_str(value, expected):
    assert param_to_str(value) == expected


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("1", 1),
        ("1", 1.0),
        ("1.0", 1),
        ("1.0", "1"),
        ("1e-05", 0.00001),
        ("True", True),
        ("None", None),
        ("tanh", "tanh"),
        ("[1, 2]", [1.0, 2]),
        ("[1, 2]", (1, 2)),
        ("['a', 1]", ["a", 1.0]),  # python-repr'd list, as other loggers write
        ('{"b": 1, "a": 2}', {"a": 2.0, "b": 1}),
        ("nan", float("nan")),
    ],
)
def test_param_matches(stored, query):
    assert param_matches(stored, query)


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("1", 2),
        ("1", True),
        ("True", 1),
        ("None", "none_of_these"),
        ("tanh", "Tanh"),
        ("[1, 2]", [2, 1]),
        ("0", None),
        ("abc", 0),
    ],
)
def test_param_does_not_match(stored, query):
    assert not param_matches(stored, query)


def test_params_match_requires_every_param():
    params = {"a": "1", "b": "x"}
    assert params_match(params, {})
    assert params_match(params, {"a": 1.0, "b": "x"})
    assert not params_match(params, {"a": 1, "c": None})  # lacking the param: no match


def test_canonical_json_and_figure_hash():
    assert canonical_json({"b": 1, "a": [1, True, None]}) == canonical_json(
        {"a": [1.0, True, None], "b": 1.0}
    )
    assert json.loads(canonical_json({"x": 2})) == {"x": 2.0}
    h = figure_hash("loss", {"std": 1, "seed": 0}, "ev1")
    assert h == figure_hash("loss", {"seed": 0.0, "std": 1.0}, "ev1")
    assert h != figure_hash("loss", {"std": 1, "seed": 0}, None)
    assert h != figure_hash("traj", {"std": 1, "seed": 0}, "ev1")
    assert len(h) == 64


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loss/mean", "loss/mean"),
        ("r^2 (test)", "r_2 _test_"),
        ("a//b/", "a/b"),
        ("./a/../b", "a/__/b"),
        ("", "_"),
    ],
)
def test_sanitize_metric_name(name, expected):
    assert sanitize_metric_name(name) == expected


def test_varying_params():
    plist = [
        {"seed": "2", "std": "1.0", "act": "tanh"},
        {"seed": "10", "std": "1", "act": "tanh"},
        {"seed": "0", "std": "1.0", "act": "tanh", "extra": "x"},
    ]
    assert varying_params(plist) == {"seed": ["0", "2", "10"]}
    assert varying_params(plist, include_unset=True) == {
        "extra": ["x", UNSET],
        "seed": ["0", "2", "10"],
    }


def test_messages_name_params_and_values():
    msg = ambiguous_message("model", {"train__pert__std": 1.0}, 3, {"train__seed": ["0", "1", "2"]})
    assert msg == (
        "3 models match {train__pert__std: 1.0}; they differ in: train__seed = 0 | 1 | 2. "
        "Add one of these to the query."
    )
    plist = [{"std": "1.0", "seed": "0"}, {"std": "2.0", "seed": "1"}]
    msg = not_found_message("model", {"std": 3, "sed": 0}, plist)
    assert "std = 3 not found" in msg and "1.0 | 2.0" in msg
    assert "sed" in msg and "did you mean: seed" in msg
    assert "there are no model records" in not_found_message("model", {"a": 1}, [])
