"""Evaluation stage pipeline: for each analysis, simulate -> measure -> record."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.evaluation.nodes import (
    ANALYSES,
    measure_behaviour,
    record_evaluation,
    run_analysis,
)


def _bound(func, analysis: str):
    # Kedro names nodes after their function; keep the analysis in the name.
    bound = partial(func, analysis)
    update_wrapper(bound, func)
    bound.__name__ = f"{func.__name__}_{analysis}"
    return bound


def analysis_nodes(analysis: str) -> list:
    return [
        node(
            _bound(run_analysis, analysis),
            ["trained_models", "params:evaluation"],
            [f"{analysis}_states", f"{analysis}_conditions"],
            name=f"run_{analysis}",
        ),
        node(
            measure_behaviour,
            [f"{analysis}_states", f"{analysis}_conditions", "model_records", "sweep"],
            f"{analysis}_measures",
            name=f"measure_{analysis}",
        ),
        node(
            _bound(record_evaluation, analysis),
            [f"{analysis}_measures", "params:evaluation", "model_store"],
            [f"{analysis}_summary", f"{analysis}_record"],
            name=f"record_{analysis}",
        ),
    ]


def create_pipeline() -> Pipeline:
    return Pipeline([n for a in ANALYSES for n in analysis_nodes(a)], tags="evaluation")
