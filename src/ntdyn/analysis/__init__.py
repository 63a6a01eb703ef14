"""Analyses: evaluation experiments, rollouts, behaviour measures, labelled arrays."""

from ntdyn.analysis.arrays import LabelledArrays
from ntdyn.analysis.experiments import feedback_perts, plant_perts
from ntdyn.analysis.measures import (
    MEASURES,
    aligned_trajectories,
    behaviour_measures,
    rotate_to_direction,
)
from ntdyn.analysis.rollout import TRAJECTORY_AXES, simulate_ensemble

__all__ = [
    "MEASURES",
    "TRAJECTORY_AXES",
    "LabelledArrays",
    "aligned_trajectories",
    "behaviour_measures",
    "feedback_perts",
    "plant_perts",
    "rotate_to_direction",
    "simulate_ensemble",
]
