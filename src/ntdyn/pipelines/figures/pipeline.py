"""Figures stage pipeline: one plot node and one record node per figure kind."""

from dataclasses import dataclass
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.figures import nodes as n


@dataclass(frozen=True)
class FigureKind:
    """A figure kind: its plot node, and what its figures are drawn from.

    `evaluation`: the evaluation or analysis whose record the figures come from (None for
    loss curves, drawn from the models' histories); `sources`: the other records (or
    `model_records`) it reads; `options`: the keys of `params:figures` it uses. All of
    them, with the figure code's version, make a figure's identity.
    """

    plot: object
    inputs: tuple[str, ...]
    evaluation: str | None
    sources: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def _eval(a: str) -> tuple[str, ...]:
    # An evaluation's stored arrays carry each model's conditions and selected replicate.
    return (f"{a}_states", "sweep")


FIGURES = {
    "loss_curves": FigureKind(
        n.loss_curves,
        ("training_history", "params:figures"),
        None,
        ("model_records",),
        ("loss_smoothing",),
    ),  # fmt: skip
    "center_out": FigureKind(
        n.center_out,
        (*_eval("plant_perts"), "params:figures"),
        "plant_perts",
        options=("n_plot_directions",),
    ),  # fmt: skip
    "aligned_profiles": FigureKind(
        n.aligned_profiles,
        (*_eval("plant_perts"), "params:figures"),
        "plant_perts",
        options=("aligned_profiles",),
    ),  # fmt: skip
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
        options=("n_profile_units",),
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
        ("pca_tangling_projections", "fps_steady_points", "sweep", "params:figures"),
        "pca_tangling",
        ("fps_steady",),
        ("pc_colour_by",),
    ),
    "fps_reach_pc": FigureKind(
        n.fps_reach_pc,
        ("pca_tangling_projections", "plant_perts_states", "fps_reach_points", "sweep"),
        "fps_reach",
        ("pca_tangling",),
    ),
    "reach_context": FigureKind(n.reach_context, ("fps_reach_context", "sweep"), "fps_reach"),
    "effective_directions": FigureKind(
        n.effective_directions, ("fps_reach_effective_directions", "sweep"), "fps_reach"
    ),
    "tangling": FigureKind(
        n.tangling_distributions, ("pca_tangling_tangling", "sweep"), "pca_tangling"
    ),
    "dose_response": FigureKind(
        n.dose_response,
        ("tms_tdcs_measures", "sweep", "params:figures"),
        "tms_tdcs",
        options=("dose_measures",),
    ),  # fmt: skip
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
        n.ablation_ranking,
        ("unit_ablation_effects", "sweep", "params:figures"),
        "unit_ablation",
        options=("n_ablation_units", "ablation_measures"),
    ),  # fmt: skip
}


def _record(kind: str):
    spec = FIGURES[kind]
    bound = partial(n.record_figures, kind, spec.options, spec.evaluation is not None)
    update_wrapper(bound, n.record_figures)
    bound.__name__ = f"record_{kind}_figures"
    return bound


def _record_name(source: str) -> str:
    # `model_records` is the table of the models; any other source is an analysis' record
    return source if source == "model_records" else f"{source}_record"


def figure_nodes(kind: str) -> list:
    spec = FIGURES[kind]
    plot = node(spec.plot, list(spec.inputs), f"{kind}_figures", name=f"plot_{kind}")
    records = [_record_name(s) for s in ([spec.evaluation] if spec.evaluation else [])]
    records += [_record_name(s) for s in spec.sources]
    record = node(
        _record(kind),
        [f"{kind}_figures", "sweep", "params:figures", "model_store", *records],
        f"{kind}_figure_records",
        name=f"record_{kind}_figures",
    )
    return [plot, record]


def create_pipeline(kinds: tuple[str, ...] = tuple(FIGURES)) -> Pipeline:
    unknown = set(kinds) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figure kinds {sorted(unknown)}: must be among {sorted(FIGURES)}")
    return Pipeline([n for k in kinds for n in figure_nodes(k)], tags="figures")
