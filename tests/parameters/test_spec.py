"""The declaration of known parameters agrees with the parts that consume them."""

import dataclasses
import inspect

import pytest

from ntdyn.analysis import experiments
from ntdyn.analysis.fixed_points import FixedPointConfig
from ntdyn.analysis.stored import VARIABLES, Keep
from ntdyn.hyperparams.tables import MEASURES_SCHEMA, TRACE_SCALARS_SCHEMA
from ntdyn.parameters import spec
from ntdyn.pipelines.experiment import EXPERIMENTS
from ntdyn.pipelines.task_vs_data.nodes import SPIKING_DEFAULTS, SPIKING_KEYS
from ntdyn.resources import ResourceBudget

FROM_THE_MODEL = {"workspace", "n_units"}  # taken from the model's hyperparameters


def test_resources_are_the_budget_fields():
    assert set(spec.RESOURCES) == {f.name for f in dataclasses.fields(ResourceBudget)}


def test_keep_is_the_keep_fields_and_its_variables():
    assert set(spec.KEEP) == {f.name for f in dataclasses.fields(Keep)}
    assert set(spec.KEEP["means"].item.choices) == set(VARIABLES)


def test_finder_is_the_fixed_point_config():
    assert set(spec.FINDER) == {f.name for f in dataclasses.fields(FixedPointConfig)}


@pytest.mark.parametrize("analysis", sorted(spec.ANALYSES))
def test_each_analysis_section_is_its_trial_builders_arguments(analysis):
    arguments = set(inspect.signature(getattr(experiments, analysis)).parameters)
    assert set(spec.ANALYSES[analysis]) - {"keep"} == arguments - FROM_THE_MODEL


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_each_experiment_declares_the_analyses_it_runs(name):
    declared = spec.PARAMETERS[name]
    assert set(declared["evaluation"]) - {"seed", "keep"} == set(EXPERIMENTS[name]["analyses"])
    assert set(declared.get("population", {})) == set(EXPERIMENTS[name].get("population", ()))


def test_measure_and_series_choices_are_table_columns():
    measures = set(spec.FIGURES["dose_measures"].item.choices)
    assert measures <= set(MEASURES_SCHEMA.columns) and len(measures) == 7
    series = spec.TRAINING_DYNAMICS["analyses"]["ar"]["series"].choices
    assert set(series) == set(TRACE_SCALARS_SCHEMA.columns) - {"step"}


def test_spiking_is_the_spiking_nodes_options():
    assert set(spec.SPIKING) == set(SPIKING_KEYS) | set(SPIKING_DEFAULTS)
    assert spec.TASK_VS_DATA["spiking"] is spec.SPIKING
