"""Tasks: the reaching task (trials, fields, cost, evaluation grids)."""

from ntdyn.tasks.reaching import (
    COST_TERMS,
    METHODS,
    PERT_TYPES,
    CenterOutGrid,
    CostWeights,
    PertParams,
    Trial,
    center_out_grid,
    cost_weights,
    grid_centres,
    pert_params,
    reach_cost,
    sample_field,
    sample_training_trials,
)

__all__ = [
    "COST_TERMS",
    "METHODS",
    "PERT_TYPES",
    "CenterOutGrid",
    "CostWeights",
    "PertParams",
    "Trial",
    "center_out_grid",
    "cost_weights",
    "grid_centres",
    "pert_params",
    "reach_cost",
    "sample_field",
    "sample_training_trials",
]
