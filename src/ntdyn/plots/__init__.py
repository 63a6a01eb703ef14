"""Plotly figure builders: data in, `go.Figure` out; no I/O, no Kedro."""

from ntdyn.plots.learning import (
    ar_forecast_figure,
    ccm_figure,
    correlation_weight_figure,
    learning_curves_figure,
    learning_states_figure,
    parameter_trajectory_figure,
    power_spectra_figure,
    unit_tsne_figure,
)
from ntdyn.plots.part2 import (
    ablation_ranking_figure,
    measures_vs_sisu_figure,
    regression_scatter_figure,
    sisu_pert_figure,
    unit_response_profiles_figure,
)
from ntdyn.plots.population import (
    context_influence_figure,
    dose_response_figure,
    effective_directions_figure,
    eigenvalue_polar_figure,
    eigvec_responses_figure,
    hessian_spectra_figure,
    pc_trajectories_figure,
    reach_context_figure,
    scree_figure,
    tangling_figure,
)
from ntdyn.plots.reaching import (
    aligned_profiles_figure,
    center_out_figure,
    feedback_response_figure,
    measure_distributions_figure,
)
from ntdyn.plots.task_vs_data import (
    aligned_fixed_points_figure,
    metric_bars_figure,
    raster_rates_figure,
    rollout_error_figure,
    shared_pc_latents_figure,
)
from ntdyn.plots.training import loss_curves_figure

__all__ = [
    "ablation_ranking_figure",
    "aligned_fixed_points_figure",
    "aligned_profiles_figure",
    "ar_forecast_figure",
    "ccm_figure",
    "center_out_figure",
    "context_influence_figure",
    "correlation_weight_figure",
    "dose_response_figure",
    "effective_directions_figure",
    "eigenvalue_polar_figure",
    "eigvec_responses_figure",
    "feedback_response_figure",
    "hessian_spectra_figure",
    "learning_curves_figure",
    "learning_states_figure",
    "loss_curves_figure",
    "measure_distributions_figure",
    "measures_vs_sisu_figure",
    "metric_bars_figure",
    "parameter_trajectory_figure",
    "pc_trajectories_figure",
    "power_spectra_figure",
    "raster_rates_figure",
    "reach_context_figure",
    "regression_scatter_figure",
    "rollout_error_figure",
    "scree_figure",
    "shared_pc_latents_figure",
    "sisu_pert_figure",
    "tangling_figure",
    "unit_response_profiles_figure",
    "unit_tsne_figure",
]

# The version of the figure code, part of every figure record's identity: bump FIGURE_VERSION
# when the builders change what every figure shows, or a kind's entry in KIND_VERSIONS when
# one builder changes; the next run then records those figures anew instead of finding the
# old ones.
FIGURE_VERSION = 1
# tangling, measure_distributions, measures_vs_sisu 1: boxes drawn from their statistics
# (`boxes.box_trace`), not from every value. fps_eigenvalues 1: a sample of points by rank of
# spectral radius; pc_trajectories 1: at most 500 lines, 60 000 points, 2000 fixed points;
# td_* 1: at most 1000 records per line (plots.learning.MAX_POINTS); loss_curves 1: at most
# 1000 bins per line (plots.training.MAX_POINTS).
KIND_VERSIONS: dict[str, int] = {
    "tangling": 1, "measure_distributions": 1, "measures_vs_sisu": 1, "fps_eigenvalues": 1,
    "pc_trajectories": 1, "td_learning_curves": 1, "td_pca": 1, "td_psd": 1, "td_ar": 1,
    "td_states": 1, "loss_curves": 1,
}  # fmt: skip


def figure_version(kind: str) -> str:
    """The version string recorded with (and hashed into) every figure of `kind`."""
    return f"{FIGURE_VERSION}.{KIND_VERSIONS.get(kind, 0)}"
