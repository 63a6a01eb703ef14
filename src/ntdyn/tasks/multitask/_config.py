"""Options of the MultiTask battery (defaults: the benchmark's, docs/science.md §1.3)."""

from __future__ import annotations

from dataclasses import dataclass

from ntdyn.tasks.multitask._catalogue import (
    BENCHMARK_TASK_ORDER,
    EPOCH_MS_QUANTUM,
    N_INPUTS,
    N_OUTPUTS,
    TASKS,
    longest_trial_steps,
)


@dataclass(frozen=True)
class MultiTaskConfig:
    """What a MultiTask batch looks like.

    tasks: the tasks sampled, by name (TASKS); a trial's `task` index is its position here.
    n_timesteps: steps per trial array (T); trials are shorter and zero-padded after
    their response epoch, so T must hold the longest trial the tasks can draw.
    bin_size_ms: ms per step (must divide 100 ms, the grain of the epoch durations).
    num_targets: directions on the benchmark's grid -pi + 2 pi k / num_targets.
    noise: std of the Gaussian noise added to every input channel within the trial.
    response_weight, grace_steps, ignore_first_steps: the loss mask (weight of response
    steps, the response's first steps left out, the trial's first steps left out).
    fixation_target_in_all_match_tasks: False reproduces the benchmark, whose code gives
    NonMatch2Sample, MatchCatPro and MatchCatAnti no fixation target (0 throughout);
    True gives them the fixation output 1 before the response like every other task.
    """

    tasks: tuple[str, ...] = BENCHMARK_TASK_ORDER
    n_timesteps: int = 320
    bin_size_ms: int = 20
    num_targets: int = 32
    noise: float = 0.3
    response_weight: float = 5.0
    grace_steps: int = 5
    ignore_first_steps: int = 5
    fixation_target_in_all_match_tasks: bool = False

    def __post_init__(self):
        if isinstance(self.tasks, str) or not len(self.tasks):
            raise ValueError(
                f"multitask.tasks = {self.tasks!r}: must be a non-empty list of task names"
            )
        object.__setattr__(self, "tasks", tuple(self.tasks))
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(
                f"multitask.tasks = {list(self.tasks)}: unknown {unknown}; allowed: {list(TASKS)}"
            )
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"multitask.tasks = {list(self.tasks)}: a task is listed twice")
        for name in (
            "n_timesteps",
            "bin_size_ms",
            "num_targets",
            "grace_steps",
            "ignore_first_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"multitask.{name} = {value!r}: must be an integer")
        if self.bin_size_ms < 1 or EPOCH_MS_QUANTUM % self.bin_size_ms:
            raise ValueError(
                f"multitask.bin_size_ms = {self.bin_size_ms}: must divide {EPOCH_MS_QUANTUM} "
                "(the epoch durations are multiples of it)"
            )
        if self.num_targets < 2:
            raise ValueError(f"multitask.num_targets = {self.num_targets}: must be >= 2")
        for name in ("noise", "response_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"multitask.{name} = {getattr(self, name)}: must be >= 0")
        for name in ("grace_steps", "ignore_first_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"multitask.{name} = {getattr(self, name)}: must be >= 0")
        longest = longest_trial_steps(self.tasks, self.bin_size_ms)
        if self.n_timesteps < longest:
            raise ValueError(
                f"multitask.n_timesteps = {self.n_timesteps}: must be >= {longest}, the longest "
                f"trial these tasks draw at {self.bin_size_ms} ms per step"
            )

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_inputs(self) -> int:
        return N_INPUTS

    @property
    def n_outputs(self) -> int:
        return N_OUTPUTS
