"""Population analysis stage pipeline (tag `population_analysis`)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.population.nodes import (
    pca_tangling,
    reach_context_influence,
    reach_effective_directions,
    reach_fixed_points,
    record_population_analysis,
    steady_fixed_points,
    steady_state_dynamics,
)

MODELS = ["trained_models", "model_records"]


def record_node(analysis: str, table: str, **extra_tables: str):
    """Record an analysis: `table` gives its metrics; it and `extra_tables` are logged."""
    bound = partial(record_population_analysis, analysis)
    update_wrapper(bound, record_population_analysis)
    bound.__name__ = f"record_{analysis}"
    inputs = {"table": table, "population": "params:population", "sweep": "sweep",
              "store": "model_store", **extra_tables}  # fmt: skip
    return node(bound, inputs, f"{analysis}_record", name=f"record_{analysis}")


POPULATION = {
    "fps_steady": [
        node(
            steady_fixed_points,
            [*MODELS, "feedback_perts_states", "params:population"],
            ["fps_steady_points", "fps_steady_eigenvalues"],
            name="fps_steady",
        ),
        record_node("fps_steady", "fps_steady_points", eigenvalues="fps_steady_eigenvalues"),
    ],
    "pca_tangling": [
        node(
            pca_tangling,
            ["plant_perts_states", "plant_perts_conditions", "model_records", "params:population"],
            ["pca_tangling_pca", "pca_tangling_tangling", "pca_tangling_projections"],
            name="pca_tangling",
        ),
        record_node("pca_tangling", "pca_tangling_tangling", pca="pca_tangling_pca"),
    ],
    "steady_state_dynamics": [
        node(
            steady_state_dynamics,
            [*MODELS, "fps_steady_points", "params:population"],
            [
                "steady_state_dynamics_hessian",
                "steady_state_dynamics_eigvec_stim",
                "steady_state_dynamics_responses",
                "steady_state_dynamics_context",
            ],
            name="steady_state_dynamics",
        ),  # fmt: skip
        record_node(
            "steady_state_dynamics",
            "steady_state_dynamics_context",
            hessian="steady_state_dynamics_hessian",
            eigvec_stim="steady_state_dynamics_eigvec_stim",
        ),  # fmt: skip
    ],
    "fps_reach": [
        node(
            reach_fixed_points,
            [*MODELS, "plant_perts_states", "plant_perts_conditions", "params:population"],
            "fps_reach_points",
            name="fps_reach",
        ),
        node(
            reach_context_influence,
            "fps_reach_points",
            "fps_reach_context",
            name="reach_context_influence",
        ),  # fmt: skip
        node(
            reach_effective_directions,
            [*MODELS, "plant_perts_states", "plant_perts_conditions", "params:population"],
            "fps_reach_effective_directions",
            name="reach_effective_directions",
        ),
        record_node(
            "fps_reach",
            "fps_reach_points",
            context="fps_reach_context",
            effective_directions="fps_reach_effective_directions",
        ),  # fmt: skip
    ],
}


def create_pipeline(analyses: tuple[str, ...] = tuple(POPULATION)) -> Pipeline:
    unknown = set(analyses) - set(POPULATION)
    if unknown:
        raise ValueError(
            f"unknown population analyses {sorted(unknown)}: among {sorted(POPULATION)}"
        )
    return Pipeline([n for a in analyses for n in POPULATION[a]], tags="population_analysis")
