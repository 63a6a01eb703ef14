"""Evaluation stage pipeline: for each analysis, simulate -> measure -> record (+ extras)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.evaluation.nodes import (
    ANALYSES,
    run_analysis,
    unit_ablation_effects,
    unit_context_regression,
    unit_responses,
)


def _bound(func, analysis: str):
    # Kedro names nodes after their function; keep the analysis in the name.
    bound = partial(func, analysis)
    update_wrapper(bound, func)
    bound.__name__ = f"{func.__name__}_{analysis}"
    return bound


def analysis_nodes(analysis: str) -> list:
    a = analysis
    nodes = [
        node(_bound(run_analysis, a),
             ["trained_models", "model_records", "sweep", "params:evaluation",
              "params:resources", "model_store"],
             [f"{a}_states", f"{a}_conditions", f"{a}_measures", f"{a}_summary", f"{a}_record"],
             name=f"run_{a}"),
    ]  # fmt: skip
    if a == "unit_perts":
        nodes += [
            node(unit_responses, [f"{a}_states", "sweep", "params:evaluation"],
                 f"{a}_responses", name="unit_responses"),
            node(unit_context_regression, f"{a}_responses", f"{a}_coefficients",
                 name="unit_context_regression"),
        ]  # fmt: skip
    if a == "unit_ablation":
        nodes.append(
            node(unit_ablation_effects, f"{a}_measures", f"{a}_effects", name="ablation_effects")
        )
    return nodes


def create_pipeline(analyses: tuple[str, ...] = tuple(ANALYSES)) -> Pipeline:
    unknown = set(analyses) - set(ANALYSES)
    if unknown:
        raise ValueError(f"unknown analyses {sorted(unknown)}: must be among {sorted(ANALYSES)}")
    return Pipeline([n for a in analyses for n in analysis_nodes(a)], tags="evaluation")
