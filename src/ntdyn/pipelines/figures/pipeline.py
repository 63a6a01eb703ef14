"""Figures stage pipeline."""

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.figures import nodes as n

EVAL = ["model_records", "sweep"]


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(n.loss_curves, ["training_history", "params:figures"], "loss_curves_figure",
                 name="plot_loss_curves"),
            node(n.center_out, ["plant_perts_states", "plant_perts_conditions", *EVAL,
                                "params:figures"], "center_out_figures", name="plot_center_out"),
            node(n.aligned_profiles, ["plant_perts_states", "plant_perts_conditions", *EVAL],
                 "aligned_profile_figures", name="plot_aligned_profiles"),
            node(n.measure_distributions, ["plant_perts_measures", "sweep"],
                 "measure_distribution_figures", name="plot_measure_distributions"),
            node(n.feedback_responses, ["feedback_perts_states", "feedback_perts_conditions",
                                        *EVAL], "feedback_response_figures",
                 name="plot_feedback_responses"),
            node(
                n.record_figures,
                ["loss_curves_figure", "center_out_figures", "aligned_profile_figures",
                 "measure_distribution_figures", "feedback_response_figures",
                 "plant_perts_record", "feedback_perts_record", "sweep", "model_store"],
                "figure_records",
                name="record_figures",
            ),
        ],
        tags="figures",
    )  # fmt: skip
