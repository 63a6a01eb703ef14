"""Run trained ensembles on evaluation trials: all replicates in one compiled call."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from ntdyn.analysis.arrays import LabelledArrays
from ntdyn.models.closed_loop import (
    LoopParams,
    check_feedback_delays,
    delay_buffer_for,
    loop_params,
    simulate_batch,
)
from ntdyn.models.controller import Controller
from ntdyn.tasks.reaching import Trial

TRAJECTORY_AXES = {
    "state": ("replicate", "trial", "time", "state_var"),
    "hidden": ("replicate", "trial", "time", "unit"),
    "command": ("replicate", "trial", "time", "force_dim"),
    "control": ("replicate", "trial", "time", "force_dim"),
    "field": ("replicate", "trial", "time", "force_dim"),
    "feedback": ("replicate", "trial", "time", "state_var"),
}


@eqx.filter_jit
def _simulate_replicates(
    ensemble: Controller, params: LoopParams, trials: Trial, key, delay_buffer
):
    # Same trials and same noise for every replicate: differences are the networks'.
    return eqx.filter_vmap(
        lambda m: simulate_batch(m, params, trials, key, delay_buffer=delay_buffer)
    )(ensemble)


def simulate_ensemble(
    ensemble: Controller,
    hyperparams: dict,
    trials: Trial,
    seed: int,
    *,
    delay_buffer: int | None = None,
) -> LabelledArrays:
    """Trajectories of every replicate on `trials`, with the evaluation seed `seed`.

    Returns arrays with axes (replicate, trial, time, ...); noise levels and delay
    are the model's own (from its hyperparameters). delay_buffer: the state-history
    length (static: one program per value); default 1 + the model's delay. A caller
    evaluating several models can pass one buffer covering all their delays
    (`closed_loop.delay_buffer_for`) so they share one program. A delay the buffer
    cannot serve is refused (ValueError) before anything runs.
    """
    delay = hyperparams["task__feedback__delay"]
    if delay_buffer is None:
        delay_buffer = delay_buffer_for([delay])
    else:
        check_feedback_delays([delay], delay_buffer)
    params = loop_params(hyperparams)
    key = jax.random.PRNGKey(seed)
    traj = _simulate_replicates(ensemble, params, trials, key, int(delay_buffer))
    arrays = {name: np.asarray(getattr(traj, name)) for name in TRAJECTORY_AXES}
    return LabelledArrays(arrays, dict(TRAJECTORY_AXES), {"seed": seed})
