"""Project pipelines.

Stage pipelines (`training`, `evaluation`, `figures`) are the union of that
stage over every experiment; an experiment (`analysis_part1`) is its stages
assembled under its own namespace and parameters. `task_vs_data` and
`training_dynamics` are namespaced pipelines of their own. `__default__` runs
all of them at demo scale.
"""

from kedro.pipeline import Pipeline

from ntdyn.pipelines import experiment
from ntdyn.pipelines.task_vs_data.pipeline import create_pipeline as task_vs_data
from ntdyn.pipelines.training_dynamics.pipeline import create_pipeline as training_dynamics

STAGES = ("training", "evaluation", "figures", "population_analysis")


def register_pipelines() -> dict[str, Pipeline]:
    experiments = {name: experiment.create_pipeline(name) for name in experiment.EXPERIMENTS}
    pipelines: dict[str, Pipeline] = dict(experiments)
    for stage in STAGES:
        pipelines[stage] = sum(
            (p.only_nodes_with_tags(stage) for p in experiments.values()), Pipeline([])
        )
    pipelines["task_vs_data"] = task_vs_data()
    pipelines["training_dynamics"] = training_dynamics()
    standalone = ("task_vs_data", "training_dynamics")
    pipelines["__default__"] = sum(
        (pipelines[n] for n in (*experiments, *standalone)), Pipeline([])
    )
    return pipelines
