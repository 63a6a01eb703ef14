"""Run trained ensembles on evaluation trials: all replicates in one compiled call."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from ntdyn.analysis.arrays import LabelledArrays
from ntdyn.analysis.chunks import over_blocks
from ntdyn.models.closed_loop import (
    LoopParams,
    check_feedback_delays,
    delay_buffer_for,
    loop_params,
    simulate_batch,
    simulate_trial,
)
from ntdyn.models.controller import Controller
from ntdyn.sharding import DevicePlan
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


def simulate_blocks(
    ensemble: Controller,
    params: LoopParams,
    trials: Trial,
    trial_ids: Int[Array, " chunk"],
    key: PRNGKeyArray,
    *,
    delay_buffer: int,
    block: int,
    reduce: Callable | None = None,
    extra=None,
    devices: DevicePlan | None = None,
):
    """Trajectories (replicate, chunk, time, ...) of a chunk of trials, `block` at a time.

    To be called inside a compiled function. A trial's noise comes from its number
    (fold_in(key, id)), so it does not depend on the chunk; `lax.map` over blocks runs one
    compiled block body whatever the chunk length, so a trial's numbers do not depend on
    how many blocks a chunk holds (bitwise, on CPU). chunk must be a multiple of block.
    reduce(trajectory, trials, extra) -> a pytree with axes (replicate, block, ...): applied
    to each block inside the body (so its numbers do not depend on the chunk either), and
    returned instead of the trajectories; `extra`: per-trial arrays it needs (leading axis
    chunk). devices: the devices the chunk's trials are split across (`over_blocks`).
    """

    def run_block(block_trials, ids, block_extra):
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(ids)

        def one_replicate(m):
            return jax.vmap(
                lambda t, k: simulate_trial(m, params, t, k, delay_buffer=delay_buffer)
            )(block_trials, keys)

        traj = eqx.filter_vmap(one_replicate)(ensemble)
        out = traj if reduce is None else reduce(traj, block_trials, block_extra)
        # trial axis first, for over_blocks to stack the blocks along it
        return jax.tree.map(lambda x: jnp.moveaxis(x, 1, 0), out)

    out = over_blocks(run_block, block, trials, trial_ids, extra, devices=devices)
    return jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), out)  # (replicate, chunk, ...)
