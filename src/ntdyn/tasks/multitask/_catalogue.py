"""The benchmark's MultiTask battery: its 15 tasks, their families and epoch durations.

Source: CtDB (Versteeg et al. 2024), `ctd/task_modeling/task_env/multitask.py`, after
Driscoll et al. (2024) and Yang et al. (2019). A task's *code* is its position in TASKS;
the benchmark's input vector carries the task's rule one-hot at channel 5 + code (its code
sets the channels in this order, whatever order the task list of a run has).
"""

from __future__ import annotations

import numpy as np

TASKS = (
    "DelayPro",
    "DelayAnti",
    "MemoryPro",
    "MemoryAnti",
    "ReactPro",
    "ReactAnti",
    "IntMod1",
    "IntMod2",
    "ContextIntMod1",
    "ContextIntMod2",
    "ContextIntMultimodal",
    "Match2Sample",
    "NonMatch2Sample",
    "MatchCatPro",
    "MatchCatAnti",
)

# The order of the benchmark's task-training config (env_task/MultiTask.yaml: DelayPro,
# MemoryPro, ReactPro, DelayAnti, MemoryAnti, ReactAnti, then as TASKS): the default task
# list, so task indices (its `conds`) match the benchmark's.
BENCHMARK_TASK_ORDER = tuple(TASKS[i] for i in (0, 2, 4, 1, 3, 5, *range(6, 15)))

FAMILIES = ("delay", "memory", "react", "decision", "match")
FAMILY_OF_TASK = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4], np.int32)

# Epochs of every trial, in this order; a family without an epoch gives it length 0.
EPOCHS = ("context", "stim1", "mem1", "stim2", "mem2", "response")

# Per family and epoch, the benchmark's duration range [low, high) in ms; a length is
# drawn uniformly among the whole steps in low/bin .. high/bin - 1. (0, 0): no such epoch.
EPOCH_MS = np.array(
    [
        # context     stim1        mem1         stim2        mem2        response
        [(300, 700), (200, 1500), (0, 0), (0, 0), (0, 0), (300, 700)],  # delay
        [(300, 700), (200, 1600), (200, 1600), (0, 0), (0, 0), (300, 700)],  # memory
        [(500, 2500), (0, 0), (0, 0), (0, 0), (0, 0), (300, 1700)],  # react
        [(200, 600), (200, 1600), (200, 1600), (200, 1600), (100, 300), (300, 700)],  # decision
        [(200, 600), (200, 1600), (200, 1600), (0, 0), (0, 0), (300, 700)],  # match
    ],
    np.int64,
)

# Every bound above is a multiple of this, so a bin that divides it keeps them whole steps.
EPOCH_MS_QUANTUM = 100

# Coherences of the decision tasks' two stimuli (the stimulus magnitudes are
# mean +- coherence, mean ~ U(0.8, 1.2) per modality).
COHERENCE_HUNDREDTHS = (8, 16, 32)  # 0.08, 0.16, 0.32
STIMULUS_MEAN_RANGE = (0.8, 1.2)

N_STIMULUS_CHANNELS = 4  # (cos, sin) of modality 1, then of modality 2
N_INPUTS = 1 + N_STIMULUS_CHANNELS + len(TASKS)  # fixation, stimuli, rule one-hot = 20
N_OUTPUTS = 3  # fixation, response (cos, sin)
RULE_CHANNEL0 = 1 + N_STIMULUS_CHANNELS


def epoch_steps(bin_size_ms: int) -> np.ndarray:
    """EPOCH_MS in steps of `bin_size_ms` (shape (families, epochs, 2), [low, high))."""
    return EPOCH_MS // bin_size_ms


def longest_trial_steps(tasks: tuple[str, ...], bin_size_ms: int) -> int:
    """Steps of the longest trial any of `tasks` can draw (each epoch at high - 1)."""
    steps = epoch_steps(bin_size_ms)
    families = {int(FAMILY_OF_TASK[TASKS.index(name)]) for name in tasks}
    return max(int(np.maximum(steps[f, :, 1] - 1, 0).sum()) for f in families)
