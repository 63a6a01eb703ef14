"""The benchmark's MultiTask battery (CtDB; Driscoll et al. 2024; Yang et al. 2019).

15 cognitive tasks sharing one input layout (fixation, two (cos, sin) stimulus
modalities, a rule one-hot) and one output layout (fixation, response (cos, sin)),
sampled as fixed-length batches with the benchmark's loss mask; docs/science.md §1.3.
"""

from ntdyn.tasks.multitask._batch import MultiTaskBatch, loss_mask, sample_multitask
from ntdyn.tasks.multitask._catalogue import (
    BENCHMARK_TASK_ORDER,
    EPOCHS,
    N_INPUTS,
    N_OUTPUTS,
    TASKS,
)
from ntdyn.tasks.multitask._config import MultiTaskConfig
from ntdyn.tasks.multitask._loss import multitask_loss
from ntdyn.tasks.multitask._performance import multitask_performance, trial_correct
from ntdyn.tasks.multitask._ring import (
    angular_distance,
    direction_angle,
    direction_vector,
    target_angles,
)

__all__ = [
    "BENCHMARK_TASK_ORDER",
    "EPOCHS",
    "N_INPUTS",
    "N_OUTPUTS",
    "TASKS",
    "MultiTaskBatch",
    "MultiTaskConfig",
    "angular_distance",
    "direction_angle",
    "direction_vector",
    "loss_mask",
    "multitask_loss",
    "multitask_performance",
    "sample_multitask",
    "target_angles",
    "trial_correct",
]
