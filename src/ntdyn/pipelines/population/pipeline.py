"""Population analysis stage pipeline (tag `population_analysis`)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.population.nodes import (
    pca_tangling,
    reach_context_influence,
    reach_effective_directions,
    reach_fixed_points,
    record_population_analysis,
    record_steady_state_dynamics,
    steady_fixed_points,
    steady_state_dynamics,
)


def _record(analysis: str):
    bound = partial(record_population_analysis, analysis)
    update_wrapper(bound, record_population_analysis)
    bound.__name__ = f"record_{analysis}"
    return bound


POPULATION = {
    "fps_reach": [
        node(
            reach_fixed_points,
            [
                "trained_models",
                "model_records",
                "plant_perts_states",
                "plant_perts_conditions",
                "params:population",
            ],
            "fps_reach_points",
            name="fps_reach",
        ),  # fmt: skip
        node(
            reach_context_influence,
            "fps_reach_points",
            "fps_reach_context",
            name="reach_context_influence",
        ),  # fmt: skip
        node(
            reach_effective_directions,
            [
                "trained_models",
                "model_records",
                "plant_perts_states",
                "plant_perts_conditions",
                "params:population",
            ],
            "fps_reach_effective_directions",
            name="reach_effective_directions",
        ),  # fmt: skip
        node(
            _record("fps_reach"),
            ["fps_reach_points", "params:population", "sweep", "model_store"],
            "fps_reach_record",
            name="record_fps_reach",
        ),
    ],
    "steady_state_dynamics": [
        node(
            steady_state_dynamics,
            ["trained_models", "model_records", "fps_steady_points", "params:population"],
            [
                "steady_state_dynamics_hessian",
                "steady_state_dynamics_eigvec_stim",
                "steady_state_dynamics_responses",
                "steady_state_dynamics_context",
            ],
            name="steady_state_dynamics",
        ),  # fmt: skip
        node(
            record_steady_state_dynamics,
            [
                "steady_state_dynamics_context",
                "steady_state_dynamics_hessian",
                "steady_state_dynamics_eigvec_stim",
                "params:population",
                "sweep",
                "model_store",
            ],
            "steady_state_dynamics_record",
            name="record_steady_state_dynamics",
        ),  # fmt: skip
    ],
    "pca_tangling": [
        node(
            pca_tangling,
            ["plant_perts_states", "plant_perts_conditions", "model_records", "params:population"],
            ["pca_tangling_pca", "pca_tangling_tangling", "pca_tangling_projections"],
            name="pca_tangling",
        ),
        node(
            _record("pca_tangling"),
            ["pca_tangling_tangling", "params:population", "sweep", "model_store"],
            "pca_tangling_record",
            name="record_pca_tangling",
        ),
    ],
    "fps_steady": [
        node(
            steady_fixed_points,
            ["trained_models", "model_records", "feedback_perts_states", "params:population"],
            ["fps_steady_points", "fps_steady_eigenvalues"],
            name="fps_steady",
        ),
        node(
            _record("fps_steady"),
            ["fps_steady_points", "params:population", "sweep", "model_store"],
            "fps_steady_record",
            name="record_fps_steady",
        ),
    ],
}


def create_pipeline(analyses: tuple[str, ...] = tuple(POPULATION)) -> Pipeline:
    unknown = set(analyses) - set(POPULATION)
    if unknown:
        raise ValueError(
            f"unknown population analyses {sorted(unknown)}: among {sorted(POPULATION)}"
        )
    return Pipeline([n for a in analyses for n in POPULATION[a]], tags="population_analysis")
