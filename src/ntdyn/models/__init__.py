"""Controllers (GRU, vanilla RNN), the point-mass plant and the closed loop."""

from ntdyn.models.closed_loop import (
    LoopParams,
    Trajectory,
    loop_params,
    simulate_batch,
    simulate_trial,
)
from ntdyn.models.controller import (
    Controller,
    controller_from_hyperparams,
    ensemble_from_hyperparams,
)
from ntdyn.models.plant import PlantParams, constant_force, curl_force, euler_step

__all__ = [
    "Controller",
    "LoopParams",
    "PlantParams",
    "Trajectory",
    "constant_force",
    "controller_from_hyperparams",
    "curl_force",
    "ensemble_from_hyperparams",
    "euler_step",
    "loop_params",
    "simulate_batch",
    "simulate_trial",
]
