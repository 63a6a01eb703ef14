"""Figures stage pipeline: one plot node and one record node per figure kind."""

from dataclasses import dataclass
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.figures import nodes as n


@dataclass(frozen=True)
class FigureKind:
    plot: object
    inputs: tuple[str, ...]
    evaluation: str | None  # the analysis whose record the figures come from


def _eval(a: str) -> tuple[str, ...]:
    return (f"{a}_states", f"{a}_conditions", "model_records", "sweep")


FIGURES = {
    "loss_curves": FigureKind(n.loss_curves, ("training_history", "params:figures"), None),
    "center_out": FigureKind(
        n.center_out, (*_eval("plant_perts"), "params:figures"), "plant_perts"
    ),
    "aligned_profiles": FigureKind(
        n.aligned_profiles, (*_eval("plant_perts"), "params:figures"), "plant_perts"
    ),
    "measure_distributions": FigureKind(
        n.measure_distributions, ("plant_perts_measures", "sweep"), "plant_perts"
    ),
    "measures_vs_sisu": FigureKind(
        n.measures_vs_sisu, ("plant_perts_measures", "sweep"), "plant_perts"
    ),
    "feedback_responses": FigureKind(
        n.feedback_responses, _eval("feedback_perts"), "feedback_perts"
    ),
    "sisu_pert": FigureKind(n.sisu_pert, (*_eval("sisu_pert"), "params:evaluation"), "sisu_pert"),
    "unit_response_profiles": FigureKind(
        n.unit_response_profiles,
        (*_eval("unit_perts"), "unit_perts_coefficients", "params:evaluation", "params:figures"),
        "unit_perts",
    ),
    "regression_scatter": FigureKind(
        n.regression_scatter, ("unit_perts_coefficients", "sweep"), "unit_perts"
    ),
    "fps_eigenvalues": FigureKind(
        n.fps_eigenvalues, ("fps_steady_points", "fps_steady_eigenvalues", "sweep"), "fps_steady"
    ),
    "pca_scree": FigureKind(n.pca_scree, ("pca_tangling_pca", "sweep"), "pca_tangling"),
    "pc_trajectories": FigureKind(
        n.pc_trajectories,
        (
            "pca_tangling_projections",
            "plant_perts_conditions",
            "fps_steady_points",
            "sweep",
            "params:figures",
        ),
        "pca_tangling",
    ),
    "fps_reach_pc": FigureKind(
        n.fps_reach_pc,
        ("pca_tangling_projections", "plant_perts_conditions", "fps_reach_points", "sweep"),
        "fps_reach",
    ),
    "reach_context": FigureKind(n.reach_context, ("fps_reach_context", "sweep"), "fps_reach"),
    "effective_directions": FigureKind(
        n.effective_directions, ("fps_reach_effective_directions", "sweep"), "fps_reach"
    ),
    "tangling": FigureKind(
        n.tangling_distributions, ("pca_tangling_tangling", "sweep"), "pca_tangling"
    ),
    "dose_response": FigureKind(
        n.dose_response, ("tms_tdcs_measures", "sweep", "params:figures"), "tms_tdcs"
    ),
    "hessian_spectra": FigureKind(
        n.hessian_spectra, ("steady_state_dynamics_hessian", "sweep"), "steady_state_dynamics"
    ),
    "eigvec_responses": FigureKind(
        n.eigvec_responses,
        ("steady_state_dynamics_responses", "steady_state_dynamics_eigvec_stim", "sweep"),
        "steady_state_dynamics",
    ),
    "context_influence": FigureKind(
        n.context_influence, ("steady_state_dynamics_context", "sweep"), "steady_state_dynamics"
    ),
    "ablation_ranking": FigureKind(
        n.ablation_ranking, ("unit_ablation_effects", "sweep", "params:figures"), "unit_ablation"
    ),
}


def _record(kind: str):
    bound = partial(n.record_figures, kind)
    update_wrapper(bound, n.record_figures)
    bound.__name__ = f"record_{kind}_figures"
    return bound


def _record_without_evaluation(kind: str):
    def record(figures, sweep, store):
        return n.record_figures(kind, figures, None, sweep, store)

    record.__name__ = f"record_{kind}_figures"
    return record


def figure_nodes(kind: str) -> list:
    spec = FIGURES[kind]
    plot = node(spec.plot, list(spec.inputs), f"{kind}_figures", name=f"plot_{kind}")
    if spec.evaluation is None:
        record = node(_record_without_evaluation(kind), [f"{kind}_figures", "sweep", "model_store"],
                      f"{kind}_figure_records", name=f"record_{kind}_figures")  # fmt: skip
    else:
        record = node(
            _record(kind),
            [f"{kind}_figures", f"{spec.evaluation}_record", "sweep", "model_store"],
            f"{kind}_figure_records",
            name=f"record_{kind}_figures",
        )
    return [plot, record]


def create_pipeline(kinds: tuple[str, ...] = tuple(FIGURES)) -> Pipeline:
    unknown = set(kinds) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figure kinds {sorted(unknown)}: must be among {sorted(FIGURES)}")
    return Pipeline([n for k in kinds for n in figure_nodes(k)], tags="figures")
