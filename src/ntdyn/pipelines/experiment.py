"""Experiments: the stages assembled under one namespace with their own parameters.

`create_pipeline("analysis_part1")` reads `params:analysis_part1.training`, ...
and writes datasets `analysis_part1.<name>` (paths from catalog factories).
Each experiment lists the analyses it evaluates and the figure kinds it draws.
"""

from kedro.pipeline import Pipeline

from ntdyn.pipelines.evaluation.pipeline import create_pipeline as evaluation
from ntdyn.pipelines.figures.pipeline import create_pipeline as figures
from ntdyn.pipelines.population.pipeline import create_pipeline as population
from ntdyn.pipelines.training.pipeline import create_pipeline as training

EXPERIMENTS = {
    "analysis_part1": {
        "analyses": ("plant_perts", "feedback_perts"),
        "figures": (
            "loss_curves", "center_out", "aligned_profiles", "measure_distributions",
            "feedback_responses",
        ),
    },
    "analysis_part2": {
        "analyses": (
            "plant_perts", "feedback_perts", "sisu_pert", "unit_perts", "unit_ablation",
            "tms_tdcs",
        ),
        "figures": (
            "loss_curves", "center_out", "aligned_profiles", "measures_vs_sisu",
            "feedback_responses", "sisu_pert", "unit_response_profiles", "regression_scatter",
            "ablation_ranking", "fps_eigenvalues", "pca_scree", "pc_trajectories", "tangling",
            "dose_response", "hessian_spectra", "eigvec_responses", "context_influence",
            "fps_reach_pc", "reach_context", "effective_directions",
        ),
        "population": ("fps_steady", "pca_tangling", "steady_state_dynamics", "fps_reach"),
    },
}  # fmt: skip


def create_pipeline(name: str) -> Pipeline:
    spec = EXPERIMENTS[name]
    stages = training() + evaluation(spec["analyses"]) + figures(spec["figures"])
    if spec.get("population"):
        stages += population(spec["population"])
    # The record store is shared by all experiments.
    return Pipeline(stages, namespace=name, inputs={"model_store"}, parameters={"params:resources"})
