"""Population analysis stage pipeline (tag `population_analysis`).

Each analysis is one node: it reads its record back when every input is unchanged (the
models, the evaluations or analyses it reads, its parameters), otherwise it computes and
records (`nodes.run_population_analysis`).
"""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.population.nodes import POPULATION_ANALYSES, run_population_analysis


def analysis_node(analysis: str):
    spec = POPULATION_ANALYSES[analysis]
    bound = partial(run_population_analysis, analysis)
    update_wrapper(bound, run_population_analysis)
    bound.__name__ = analysis
    inputs = {"population": "params:population", "sweep": "sweep", "store": "model_store",
              **({"resources": "params:resources"} if spec.sharded else {}), **spec.inputs,
              **{f"read_{r}": f"{r}_record" for r in spec.reads}}  # fmt: skip
    outputs = [f"{analysis}_{name}" for name in spec.outputs] + [f"{analysis}_record"]
    return node(bound, inputs, outputs, name=analysis)


def create_pipeline(analyses: tuple[str, ...] = tuple(POPULATION_ANALYSES)) -> Pipeline:
    unknown = set(analyses) - set(POPULATION_ANALYSES)
    if unknown:
        raise ValueError(
            f"unknown population analyses {sorted(unknown)}: among {sorted(POPULATION_ANALYSES)}"
        )
    return Pipeline([analysis_node(a) for a in analyses], tags="population_analysis")
