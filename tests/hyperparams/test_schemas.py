"""Sweep-table schemas (strict): every rule, and messages naming column, value and rule."""

import math

import pandas as pd
import pytest

from ntdyn.hyperparams import HyperparameterError, sweep_table, validate_sweep_table
from ntdyn.hyperparams.kinds import HYPERPARAMETERS

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
    "train__divergence_factor": 1000.0,
    "model__sisu_input": False,
    "cost__control": 1e-4,
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


def test_absent_columns_are_allowed():
    assert validate_sweep_table(pd.DataFrame({"train__pert__std": [0.0, 1.0]})) is not None


def test_unknown_columns_are_refused_with_the_closest_known_name():
    table = pd.DataFrame([VALID_MEMBER] * 2).assign(train__lerning_rate=0.1, notes="x")
    with pytest.raises(HyperparameterError) as raised:
        validate_sweep_table(table)
    assert sorted(raised.value.problems) == [
        "notes: unknown parameter; known here: "
        + ", ".join(sorted(HYPERPARAMETERS["reaching"])[:12])
        + ", ...",
        "train__lerning_rate: unknown parameter; did you mean train__learning_rate?",
    ]


@pytest.mark.parametrize("kind", sorted(HYPERPARAMETERS))
def test_every_kind_is_strict(kind):
    with pytest.raises(
        HyperparameterError, match="train__seeds: unknown parameter; did you mean train__seed"
    ):
        validate_sweep_table(pd.DataFrame({"train__seeds": [0]}), kind)
    validate_sweep_table(pd.DataFrame({"train__seed": [0]}), kind)


def test_negative_std_message_matches_the_documented_form():
    message = failure_message(table_with("train__pert__std", -1.0))
    assert "train__pert__std = -1.0 (sweep member 2): must be a finite number >= 0" in message
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
        ("model__hidden_size", 0, "must be an integer >= 1"),
        ("model__hidden_size", 2.5, "must be an integer >= 1"),
        ("model__hidden_size", True, "must be an integer >= 1"),
        ("task__n_steps", 0, "must be an integer >= 1"),
        ("task__dt", 0.0, "must be a finite number > 0"),
        ("task__dt", "fast", "must be a finite number > 0"),
        ("task__mass", -1.0, "must be a finite number > 0"),
        ("task__damping", -0.1, "must be a finite number >= 0"),
        ("task__workspace", 0, "must be a finite number > 0"),
        ("task__feedback__delay", -1, "must be an integer >= 0"),
        ("task__feedback__delay", 1.5, "must be an integer >= 0"),
        ("task__feedback__noise_std", -0.5, "must be a finite number >= 0"),
        ("task__motor__noise_std", -0.5, "must be a finite number >= 0"),
        ("task__motor__mult_noise_std", -0.5, "must be a finite number >= 0"),
        ("train__method", "sgd", "must be one of 'bcs', 'dai', 'fixed', 'pai-asf'"),
        ("train__pert__std", -1.0, "must be a finite number >= 0"),
        ("train__pert__std", float("inf"), "must be a finite number >= 0"),
        ("train__pert__p_active", 1.5, "must be a finite number in [0, 1]"),
        ("train__pert__p_active", -0.1, "must be a finite number in [0, 1]"),
        ("train__n_batches", 0, "must be an integer >= 1"),
        ("train__batch_size", -8, "must be an integer >= 1"),
        ("train__n_replicates", 2.5, "must be an integer >= 1"),
        ("train__learning_rate", 0.0, "must be a finite number > 0"),
        ("train__seed", -1, "must be an integer >= 0"),
        ("train__seed", "1", "must be an integer >= 0"),
        ("train__n_std_exclude", 0, "must be a finite number > 0"),
        ("cost__control", -1e-4, "must be a finite number >= 0"),
        ("train__divergence_factor", 0.0, "must be a finite number > 0"),
        ("model__sisu_input", 1, "must be true or false"),
        ("train__pert__std", [0.0, 0.5], "must be a finite number >= 0"),
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
    table["cost__control"] = [0.0, 0]
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
        "model__hidden_size = 0 (sweep member 0): must be an integer >= 1",
        "model__hidden_size = -2.5 (sweep member 2): must be an integer >= 1",
        "train__pert__type = 'viscous' (sweep member 1): must be one of 'constant', 'curl'",
        "train__pert__std = -1.0 (sweep member 1): must be a finite number >= 0",
        "train__pert__std = -2.0 (sweep member 2): must be a finite number >= 0",
    ]
    assert isinstance(raised.value, ValueError)


NESTED_BASE = {
    "model": {"cell": "gru", "hidden_size": 64},
    "task": {"n_steps": 10},
    "train": {"pert": {"type": "curl", "std": 0.0}, "seed": 0},
}


def test_sweep_table_has_one_row_per_member_indexed_from_zero():
    spread = {"train": {"pert": {"std": [0.0, 0.5]}}, "zip": [{"train__seed": [1, 2]}]}
    table = sweep_table(NESTED_BASE, spread)
    assert list(table.index) == [0, 1, 2, 3]
    assert list(table.columns) == [
        "model__cell",
        "model__hidden_size",
        "task__n_steps",
        "train__pert__type",
        "train__pert__std",
        "train__seed",
    ]
    assert table["train__pert__std"].tolist() == [0.0, 0.0, 0.5, 0.5]
    assert table["train__seed"].tolist() == [1, 2, 1, 2]


def test_list_valued_hyperparameters_stay_lists():
    base = {"model": {"kind": "sae_gru"}, "train": {"rollout_horizons": [1, 5], "seed": 0}}
    table = sweep_table(base, {"train__seed": [0, 1]}, "data_model")
    assert table.at[1, "train__rollout_horizons"] == [1, 5]
    assert isinstance(table.at[1, "train__rollout_horizons"], list)


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
        "train__pert__std = -1.0 (sweep member 2): must be a finite number >= 0",
        "train__pert__std = -1.0 (sweep member 3): must be a finite number >= 0",
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
