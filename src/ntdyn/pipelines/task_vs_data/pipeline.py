"""task_vs_data: train sources, simulate spikes, fit data-trained models, compare, draw.

Namespace `task_vs_data`: parameters under `params:task_vs_data.*`, datasets
`task_vs_data.<name>` (catalog.yml); the record store and the memory budget
(`params:resources`, top level) are shared.
"""

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.task_vs_data.nodes import (
    compare_systems,
    draw_figures,
    plan_task_vs_data,
    record_comparison,
    record_task_vs_data_figures,
    simulate_spiking_data,
    train_data_models,
    train_sources,
)

FIGURE_KINDS = ("tvd_latents", "tvd_rasters", "tvd_rollout_error", "tvd_fixed_points",
                "tvd_metric_bars")  # fmt: skip


def _record_node(kind: str):
    def record(figures, evaluation_record, data_model_records, figure_params, store):
        return record_task_vs_data_figures(kind, figures, evaluation_record, data_model_records,
                                           figure_params, store)  # fmt: skip

    record.__name__ = f"record_{kind}_figures"
    return node(
        record,
        [
            f"{kind}_figures",
            "comparison_record",
            "data_model_records",
            "params:figures",
            "model_store",
        ],  # fmt: skip
        f"{kind}_figure_records",
        name=f"record_{kind}_figures",
    )


def create_pipeline() -> Pipeline:
    nodes = [
        node(
            plan_task_vs_data,
            ["params:sources", "params:data_models", "params:spiking"],
            "source_plan",
            name="plan_sources",
        ),
        node(
            train_sources,
            ["source_plan", "model_store", "params:training_options", "params:sources"],
            ["source_models", "source_records"],
            name="train_sources",
        ),
        node(
            simulate_spiking_data,
            ["source_models", "params:spiking", "model_store", "params:resources",
             "params:sources"],
            ["spiking_data", "spiking_records"],
            name="simulate_spiking_data",
        ),
        node(
            train_data_models,
            ["spiking_data", "source_models", "params:data_models", "model_store",
             "params:training_options", "params:resources", "params:sources"],
            ["data_models", "data_model_records", "data_model_history"],
            name="train_data_models",
        ),
        node(
            compare_systems,
            ["source_models", "spiking_data", "data_models", "data_model_history",
             "params:comparison", "params:resources"],
            ["comparison", "rollout_error", "compared_fixed_points", "figure_inputs"],
            name="compare_systems",
        ),
        node(
            record_comparison,
            ["comparison", "rollout_error", "params:comparison", "model_store"],
            "comparison_record",
            name="record_comparison",
        ),
        node(
            draw_figures,
            ["figure_inputs", "comparison", "rollout_error", "params:figures"],
            [f"{kind}_figures" for kind in FIGURE_KINDS],
            name="draw_figures",
        ),
    ]  # fmt: skip
    nodes += [_record_node(kind) for kind in FIGURE_KINDS]
    return Pipeline(
        nodes, namespace="task_vs_data", inputs={"model_store"},
        parameters={"params:resources"}, tags="task_vs_data",
    )  # fmt: skip
