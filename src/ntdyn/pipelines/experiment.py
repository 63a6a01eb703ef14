"""An experiment: the stages assembled under one namespace with its own parameters.

`create_pipeline("analysis_part1")` reads `params:analysis_part1.training`, ...
and writes datasets `analysis_part1.<name>` (paths from catalog factories).
"""

from kedro.pipeline import Pipeline

from ntdyn.pipelines.evaluation.pipeline import create_pipeline as evaluation
from ntdyn.pipelines.figures.pipeline import create_pipeline as figures
from ntdyn.pipelines.training.pipeline import create_pipeline as training


def create_pipeline(name: str) -> Pipeline:
    stages = training() + evaluation() + figures()
    # The record store is shared by all experiments.
    return Pipeline(stages, namespace=name, inputs={"model_store"})
