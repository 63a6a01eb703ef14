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
        left = grid.direction + np.pi / 2
        force = (pert_type == "constant") * amp * np.stack([np.cos(left), np.sin(left)], -1)
        curl = amp if pert_type == "curl" else 0.0
        trials.append(_block(grid, n_steps, curl=curl, force=force, sisu=s))
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
            trials.append(_block(grid, n_steps, sisu=s, feedback_offset=offset))
            tables.append(base.assign(channel=channel, impulse_amp=float(amp), sisu=float(s)))
    return _stack_trials(trials), _finish(tables)


def sisu_pert(
    *,
    sisu_start: float,
    sisu_ends: list[float],
    step_at: int,
    curl_amps: list[float],
    tasks: list[str],
    grid_n: int,
    n_directions: int,
    reach_length: float,
    n_repeats: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """SISU stepped from `sisu_start` to each of `sisu_ends` at step `step_at`, +- a curl field.

    tasks: "steady" (hold still at each centre) and/or "reach" (length
    `reach_length`). Conditions: task, curl_amp, sisu_start, sisu_end, step_at and
    the grid columns; sisu_end == sisu_start is the unperturbed control.
    """
    for task in tasks:
        _check_choice("sisu_pert.tasks", task, ("steady", "reach"))
    if not 0 <= step_at < n_steps:
        raise ValueError(f"sisu_pert.step_at = {step_at}: must lie in [0, {n_steps})")
    tables, trials = [], []
    for task in tasks:
        length = 0.0 if task == "steady" else reach_length
        grid = center_out_grid(grid_n, n_directions, length, n_repeats, workspace)
        base = _grid_table(grid)
        for amp, end in itertools.product(curl_amps, sisu_ends):
            schedule = np.where(np.arange(n_steps) < step_at, sisu_start, end)
            trials.append(_block(grid, n_steps, curl=amp, sisu=schedule))
            tables.append(
                base.assign(
                    task=task,
                    curl_amp=float(amp),
                    sisu_start=float(sisu_start),
                    sisu_end=float(end),
                    step_at=step_at,
                )  # fmt: skip
            )
    return _stack_trials(trials), _finish(tables)


def unit_perts(
    *,
    n_units: int,
    stim_amps: list[float],
    stim_start: int,
    stim_steps: int,
    curl_amps: list[float],
    sisu: list[float],
    grid_n: int,
    n_repeats: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """Steady state; one hidden unit at a time gets added drive for `stim_steps` steps.

    For every context (curl_amp x sisu) there are unstimulated baseline trials
    (unit = -1, stim_amp = 0) and, for every unit and every non-zero amplitude,
    stimulated trials. Conditions: unit, stim_amp, curl_amp, sisu, grid columns.
    """
    _check_positive_int("unit_perts.n_units", n_units)
    if not 0 <= stim_start < stim_start + stim_steps <= n_steps:
        raise ValueError(
            f"unit_perts.stim_start = {stim_start}, stim_steps = {stim_steps}: the stimulation "
            f"must lie within the {n_steps} steps"
        )
    grid = center_out_grid(grid_n, 1, 0.0, n_repeats, workspace)
    base = _grid_table(grid)
    n = len(base)
    profile = np.zeros(n_steps)
    profile[stim_start : stim_start + stim_steps] = 1.0
    stims = [(-1, 0.0)] + [(u, a) for a in stim_amps if a != 0 for u in range(n_units)]
    tables, trials = [], []
    for amp, s in itertools.product(curl_amps, sisu):
        for unit, stim_amp in stims:
            weights = np.zeros((n, n_units))
            if unit >= 0:
                weights[:, unit] = stim_amp
            trials.append(
                _block(
                    grid,
                    n_steps,
                    curl=amp,
                    sisu=s,
                    drive_profile=np.broadcast_to(profile, (n, n_steps)),
                    drive_weights=weights,
                )  # fmt: skip
            )
            tables.append(
                base.assign(unit=unit, stim_amp=float(stim_amp), curl_amp=float(amp), sisu=float(s))
            )
    return _stack_trials(trials), _finish(tables)


def unit_ablation(
    *,
    n_units: int,
    sisu: list[float],
    grid_n: int,
    n_directions: int,
    reach_length: float,
    n_repeats: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """Center-out reaches with one hidden unit clamped to 0 for the whole trial.

    ablated_unit = -1 is the intact network. Conditions: ablated_unit, sisu, grid columns.
    """
    _check_positive_int("unit_ablation.n_units", n_units)
    grid = center_out_grid(grid_n, n_directions, reach_length, n_repeats, workspace)
    base = _grid_table(grid)
    n = len(base)
    tables, trials = [], []
    for s in sisu:
        for unit in range(-1, n_units):
            mask = np.ones((n, n_units))
            if unit >= 0:
                mask[:, unit] = 0.0
            trials.append(_block(grid, n_steps, sisu=s, hidden_mask=mask))
            tables.append(base.assign(ablated_unit=unit, sisu=float(s)))
    return _stack_trials(trials), _finish(tables)


def tms_tdcs(
    *,
    n_units: int,
    tms_amps: list[float],
    tms_fraction: float,
    tms_start: int,
    tms_steps: int,
    tdcs_amps: list[float],
    seed: int,
    grid_n: int,
    n_directions: int,
    reach_length: float,
    n_repeats: int,
    n_steps: int,
    workspace: float,
) -> tuple[Trial, pd.DataFrame]:
    """Brain-stimulation analogues during center-out reaches.

    TMS: a brief strong pulse (`tms_steps` steps from `tms_start`) added to a
    random subset (`tms_fraction` of the units, drawn once from `seed`, so every
    trial and model stimulates the same units). tDCS: a weak constant bias added
    to every unit for the whole trial. Amplitude 0 is the unstimulated control.
    Conditions: protocol ("tms" | "tdcs"), amplitude, and the grid columns.
    """
    _check_positive_int("tms_tdcs.n_units", n_units)
    if not 0 < tms_fraction <= 1:
        raise ValueError(f"tms_tdcs.tms_fraction = {tms_fraction}: must be in (0, 1]")
    if not 0 <= tms_start < tms_start + tms_steps <= n_steps:
        raise ValueError(
            f"tms_tdcs.tms_start = {tms_start}, tms_steps = {tms_steps}: the pulse must lie "
            f"within the {n_steps} steps"
        )
    grid = center_out_grid(grid_n, n_directions, reach_length, n_repeats, workspace)
    base = _grid_table(grid)
    n = len(base)
    subset = np.zeros(n_units)
    chosen = np.random.default_rng(seed).choice(
        n_units, max(1, round(tms_fraction * n_units)), replace=False
    )
    subset[chosen] = 1.0
    pulse = np.zeros(n_steps)
    pulse[tms_start : tms_start + tms_steps] = 1.0
    protocols = [("tms", a, pulse, subset) for a in tms_amps]
    protocols += [("tdcs", a, np.ones(n_steps), np.ones(n_units)) for a in tdcs_amps]
    tables, trials = [], []
    for protocol, amp, profile, units in protocols:
        trials.append(
            _block(
                grid,
                n_steps,
                drive_profile=np.broadcast_to(profile, (n, n_steps)),
                drive_weights=np.broadcast_to(amp * units, (n, n_units)),
            )  # fmt: skip
        )
        tables.append(base.assign(protocol=protocol, amplitude=float(amp)))
    return _stack_trials(trials), _finish(tables)


def _block(grid, n_steps: int, *, curl=0.0, force=None, sisu=0.0, feedback_offset=None, **extra):
    """Trial fields for every trial of `grid`: scalars broadcast, absent parts zero.

    sisu: a scalar or a (K,) schedule; extra: interventions (drive_*, hidden_mask).
    """
    n = len(grid.start)
    return dict(
        start=grid.start,
        goal=grid.goal,
        curl=np.full(n, curl),
        force=np.zeros((n, 2)) if force is None else force,
        sisu=np.broadcast_to(sisu, (n, n_steps)),
        feedback_offset=np.zeros((n, n_steps, 4)) if feedback_offset is None else feedback_offset,
        **extra,
    )


def _stack_trials(parts: list[dict]) -> Trial:
    return Trial(
        **{k: jnp.asarray(np.concatenate([p[k] for p in parts]), jnp.float32) for k in parts[0]}
    )


def _finish(tables: list[pd.DataFrame]) -> pd.DataFrame:
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "trial", np.arange(len(table)))
    return table
