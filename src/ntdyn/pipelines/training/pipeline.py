"""Training stage pipeline."""

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.training.nodes import plan_sweep, train_models


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(plan_sweep, "params:training", "sweep", name="plan_sweep"),
            node(
                train_models,
                ["sweep", "model_store", "params:training_options", "params:resources"],
                ["trained_models", "training_history", "model_records"],
                name="train_models",
            ),
        ],
        tags="training",
    )
