"""Sweep-table schema: every rule, and messages naming column, value and rule."""

import math

import pandas as pd
import pytest

from ntdyn.hyperparams import HyperparameterError, sweep_table, validate_sweep_table

VALID_MEMBER = {
    "model__cell": "gru",
    "model__hidden_size": 64,
    "task__n_steps": 100,
    "task__dt": 0.01,
    "task__mass": 1.0,
    "task__damping": 0.0,
    "task__workspace": 0.2,
    "task__feedback__delay": 0,
    "task__feedback__noise_std": 0.0,
    "task__motor__noise_std": 0.01,
    "task__motor__mult_noise_std": 0.0,
    "train__method": "pai-asf",
    "train__pert__type": "curl",
    "train__pert__std": 0.5,
    "train__pert__p_active": 1.0,
    "train__n_batches": 1000,
    "train__batch_size": 64,
    "train__n_replicates": 3,
    "train__learning_rate": 1e-3,
    "train__seed": 0,
    "train__n_std_exclude": 2.0,
    "cost__effort": 1e-4,
    "cost__position": 1.0,
}


def table_with(column, value, *, member=2, n_members=4):
    """A valid table of ``n_members`` rows, with one cell replaced."""
    table = pd.DataFrame([VALID_MEMBER] * n_members)
    # object dtype so any value fits; a column new to VALID_MEMBER starts at a valid 0.
    table[column] = pd.Series([VALID_MEMBER.get(column, 0)] * n_members, dtype=object)
    table.at[member, column] = value
    return table


def failure_message(table):
    with pytest.raises(HyperparameterError) as raised:
        validate_sweep_table(table)
    return str(raised.value)


def test_valid_table_passes_unchanged():
    table = pd.DataFrame([VALID_MEMBER] * 3)
    validated = validate_sweep_table(table)
    pd.testing.assert_frame_equal(validated, table)


def test_absent_and_extra_columns_are_allowed():
    table = pd.DataFrame(
        {"train__pert__std": [0.0, 1.0], "notes": ["x", None], "layers": [[1], []]}
    )
    assert validate_sweep_table(table) is not None


def test_negative_std_message_matches_the_documented_form():
    message = failure_message(table_with("train__pert__std", -1.0))
    assert "train__pert__std = -1.0 (sweep member 2): must be >= 0" in message
    assert message.startswith("1 invalid hyperparameter value(s)")


def test_unknown_pert_type_lists_allowed_values():
    message = failure_message(table_with("train__pert__type", "viscous", member=0))
    assert "train__pert__type = 'viscous' (sweep member 0): must be one of 'constant', 'curl'" in (
        message
    )


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("model__cell", "lstm", "must be one of 'gru', 'rnn'"),
        ("model__hidden_size", 0, "must be > 0"),
        ("model__hidden_size", 2.5, "must be an integer"),
        ("model__hidden_size", True, "must be an integer"),
        ("task__n_steps", 0, "must be > 0"),
        ("task__dt", 0.0, "must be > 0"),
        ("task__dt", "fast", "must be a finite number"),
        ("task__mass", -1.0, "must be > 0"),
        ("task__damping", -0.1, "must be >= 0"),
        ("task__workspace", 0, "must be > 0"),
        ("task__feedback__delay", -1, "must be >= 0"),
        ("task__feedback__delay", 1.5, "must be an integer"),
        ("task__feedback__noise_std", -0.5, "must be >= 0"),
        ("task__motor__noise_std", -0.5, "must be >= 0"),
        ("task__motor__mult_noise_std", -0.5, "must be >= 0"),
        ("train__method", "sgd", "must be one of 'bcs', 'dai', 'fixed', 'pai-asf'"),
        ("train__pert__std", -1.0, "must be >= 0"),
        ("train__pert__std", float("inf"), "must be a finite number"),
        ("train__pert__p_active", 1.5, "must be in [0, 1]"),
        ("train__pert__p_active", -0.1, "must be in [0, 1]"),
        ("train__n_batches", 0, "must be > 0"),
        ("train__batch_size", -8, "must be > 0"),
        ("train__n_replicates", 2.5, "must be an integer"),
        ("train__learning_rate", 0.0, "must be > 0"),
        ("train__seed", -1, "must be >= 0"),
        ("train__seed", "1", "must be an integer"),
        ("train__n_std_exclude", 0, "must be > 0"),
        ("cost__effort", -1e-4, "must be >= 0"),
        ("cost__anything_new", -3, "must be >= 0"),
        ("train__pert__std", [0.0, 0.5], "must be a finite number"),
    ],
)
def test_each_rule_names_column_value_and_what_is_allowed(column, value, rule):
    message = failure_message(table_with(column, value))
    assert f"{column} = {value!r} (sweep member 2): {rule}" in message
    assert message.count("sweep member") == 1  # only the broken cell is reported


def test_boundaries_are_accepted():
    table = pd.DataFrame([VALID_MEMBER] * 2)
    table["train__pert__p_active"] = [0, 1]
    table["train__seed"] = [0, 7.0]  # integral float, as pandas upcasting produces
    table["task__feedback__delay"] = [0, 0]
    table["cost__effort"] = [0.0, 0]
    validate_sweep_table(table)


def test_missing_value_is_reported():
    message = failure_message(table_with("task__dt", None, member=1))
    assert "task__dt = None (sweep member 1): must not be missing" in message


def test_every_failing_cell_is_listed_in_table_order():
    table = pd.DataFrame([VALID_MEMBER] * 3)
    table["model__hidden_size"] = pd.Series([0, 64, -2.5], dtype=object)
    table["train__pert__type"] = ["curl", "viscous", "constant"]
    table["train__pert__std"] = [0.0, -1.0, -2.0]
    with pytest.raises(HyperparameterError) as raised:
        validate_sweep_table(table)
    assert raised.value.problems == [
        "model__hidden_size = 0 (sweep member 0): must be > 0",
        "model__hidden_size = -2.5 (sweep member 2): must be an integer; must be > 0",
        "train__pert__type = 'viscous' (sweep member 1): must be one of 'constant', 'curl'",
        "train__pert__std = -1.0 (sweep member 1): must be >= 0",
        "train__pert__std = -2.0 (sweep member 2): must be >= 0",
    ]
    assert isinstance(raised.value, ValueError)


NESTED_BASE = {
    "model": {"cell": "gru", "hidden_size": 64, "layers": [64, 64]},
    "train": {"pert": {"type": "curl", "std": 0.0}, "seed": 0},
}


def test_sweep_table_has_one_row_per_member_indexed_from_zero():
    spread = {"train": {"pert": {"std": [0.0, 0.5]}}, "zip": [{"train__seed": [1, 2]}]}
    table = sweep_table(NESTED_BASE, spread)
    assert list(table.index) == [0, 1, 2, 3]
    assert list(table.columns) == [
        "model__cell",
        "model__hidden_size",
        "model__layers",
        "train__pert__type",
        "train__pert__std",
        "train__seed",
    ]
    assert table["train__pert__std"].tolist() == [0.0, 0.0, 0.5, 0.5]
    assert table["train__seed"].tolist() == [1, 2, 1, 2]
    assert table.at[3, "model__layers"] == [64, 64]
    assert isinstance(table.at[3, "model__layers"], list)


def test_sweep_table_without_spread_is_one_row():
    table = sweep_table(NESTED_BASE, None)
    assert len(table) == 1 and table.at[0, "model__cell"] == "gru"


def test_sweep_table_reports_the_failing_member():
    spread = {"train": {"pert": {"std": [0.5, -1.0], "type": ["curl", "viscous"]}}}
    with pytest.raises(HyperparameterError) as raised:
        sweep_table(NESTED_BASE, spread)
    assert raised.value.problems == [
        "train__pert__type = 'viscous' (sweep member 1): must be one of 'constant', 'curl'",
        "train__pert__type = 'viscous' (sweep member 3): must be one of 'constant', 'curl'",
        "train__pert__std = -1.0 (sweep member 2): must be >= 0",
        "train__pert__std = -1.0 (sweep member 3): must be >= 0",
    ]


def test_nan_in_a_numeric_column_is_missing_not_a_crash():
    table = pd.DataFrame([VALID_MEMBER] * 2)
    table["task__mass"] = [1.0, math.nan]
    assert "task__mass = nan (sweep member 1): must not be missing" in failure_message(table)


def test_population_tables_are_validated_with_readable_errors():
    from ntdyn.hyperparams import TableError, validate_table

    ok = pd.DataFrame({"hash": ["a"], "q": [1e-20], "kind": ["fixed"], "stable": [True],
                       "max_abs_eigenvalue": [0.8], "n_unstable_modes": [0]})  # fmt: skip
    validate_table("fixed_points", ok)
    bad = ok.assign(q=[-1.0], kind=["bogus"])
    with pytest.raises(TableError) as err:
        validate_table("fixed_points", bad)
    assert "q = -1.0" in str(err.value) and "kind = 'bogus'" in str(err.value)
    with pytest.raises(TableError, match="Q"):
        validate_table("tangling", pd.DataFrame({"hash": ["a"], "step": [1], "Q": [float("nan")]}))
