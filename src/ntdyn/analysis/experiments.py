"""Evaluation experiments as deterministic trial sets with a condition table.

Each builder returns (trials, conditions): a `Trial` batch with leading axis N
and a DataFrame of N rows (one per trial) whose columns name the condition.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ntdyn.tasks.reaching import PERT_TYPES, Trial, center_out_grid


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} = {value!r}: must be one of {list(allowed)}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} = {value!r}: must be an integer >= 1")


def _grid_table(grid) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "centre_index": grid.centre_index,
            "direction_index": grid.direction_index,
            "repeat": grid.repeat,
            "direction": grid.direction,
            "start_x": grid.start[:, 0],
            "start_y": grid.start[:, 1],
            "goal_x": grid.goal[:, 0],
            "goal_y": grid.goal[:, 1],
        }
    )


def plant_perts(
    *,
    pert_type: str,
    amplitudes: list[float],
    sisu: list[float],
    grid_n: int,
    n_directions: int,
    reach_length: float,
    n_repeats: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """Center-out reaches under a fixed field, for every (amplitude, SISU).

    curl: phi = amplitude. constant: a force of `amplitude` N orthogonal to the
    reach, to its left. Conditions: pert_amp, sisu, and the grid columns.
    """
    _check_choice("plant_perts.pert_type", pert_type, PERT_TYPES)
    _check_positive_int("plant_perts.n_steps", n_steps)
    grid = center_out_grid(grid_n, n_directions, reach_length, n_repeats, workspace)
    base = _grid_table(grid)
    tables, trials = [], []
    for amp, s in itertools.product(amplitudes, sisu):
        n = len(base)
        left = grid.direction + np.pi / 2
        force = (pert_type == "constant") * amp * np.stack([np.cos(left), np.sin(left)], -1)
        trials.append(
            dict(
                start=grid.start,
                goal=grid.goal,
                curl=np.full(n, amp if pert_type == "curl" else 0.0),
                force=force,
                sisu=np.full((n, n_steps), s),
                feedback_offset=np.zeros((n, n_steps, 4)),
            )
        )
        tables.append(base.assign(pert_type=pert_type, pert_amp=float(amp), sisu=float(s)))
    return _stack_trials(trials), _finish(tables)


FEEDBACK_CHANNELS = {"position": (0, 1), "velocity": (2, 3)}


def feedback_perts(
    *,
    amplitudes: dict[str, list[float]],
    sisu: list[float],
    grid_n: int,
    n_directions: int,
    n_repeats: int,
    impulse_start: int,
    impulse_steps: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """Hold still at steady state; an impulse is added to one feedback channel.

    amplitudes: channel ("position" | "velocity") -> impulse amplitudes (m or
    m/s), added along the trial's direction for `impulse_steps` steps from step
    `impulse_start`. Conditions: channel, impulse_amp, sisu and the grid columns.
    """
    for ch in amplitudes:
        _check_choice("feedback_perts.amplitudes channel", ch, FEEDBACK_CHANNELS)
    _check_positive_int("feedback_perts.n_steps", n_steps)
    if not 0 <= impulse_start < impulse_start + impulse_steps <= n_steps:
        raise ValueError(
            f"feedback_perts.impulse_start = {impulse_start}, impulse_steps = {impulse_steps}: "
            f"the impulse must lie within the {n_steps} steps"
        )
    grid = center_out_grid(grid_n, n_directions, 0.0, n_repeats, workspace)
    base = _grid_table(grid)
    unit = np.stack([np.cos(grid.direction), np.sin(grid.direction)], -1)
    tables, trials = [], []
    for channel, amps in amplitudes.items():
        for amp, s in itertools.product(amps, sisu):
            n = len(base)
            offset = np.zeros((n, n_steps, 4))
            cols = list(FEEDBACK_CHANNELS[channel])
            window = slice(impulse_start, impulse_start + impulse_steps)
            offset[:, window, cols[0]] = amp * unit[:, None, 0]
            offset[:, window, cols[1]] = amp * unit[:, None, 1]
            trials.append(
                dict(
                    start=grid.start,
                    goal=grid.goal,
                    curl=np.zeros(n),
                    force=np.zeros((n, 2)),
                    sisu=np.full((n, n_steps), s),
                    feedback_offset=offset,
                )
            )
            tables.append(base.assign(channel=channel, impulse_amp=float(amp), sisu=float(s)))
    return _stack_trials(trials), _finish(tables)


def _stack_trials(parts: list[dict]) -> Trial:
    return Trial(
        **{k: jnp.asarray(np.concatenate([p[k] for p in parts]), jnp.float32) for k in parts[0]}
    )


def _finish(tables: list[pd.DataFrame]) -> pd.DataFrame:
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "trial", np.arange(len(table)))
    return table
