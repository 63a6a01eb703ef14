"""Evaluate one trained ensemble on a trial set in chunks that fit the memory budget.

Each chunk of trials is simulated (every replicate) and reduced on the device to the
behaviour measures of every trial; only the stored replicates' trajectories come back,
where they are added to the running sums of the condition means and the single trials the
evaluation keeps are written to the zarr store; then the chunk is dropped. Memory is bounded
by the chunk, the condition means and the per-trial measures, not by the trajectories of
every trial.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import zarr
from jaxtyping import Array, Float, Int, PRNGKeyArray
from tqdm.auto import tqdm

from ntdyn.analysis.measures import measure_arrays
from ntdyn.analysis.rollout import simulate_blocks
from ntdyn.analysis.stored import VARIABLES, Keep, ModelWriter, with_condition_index
from ntdyn.models.closed_loop import LoopParams, delay_buffer_for, loop_params
from ntdyn.models.controller import Controller
from ntdyn.resources import ResourceBudget, plan_chunks
from ntdyn.sharding import DevicePlan
from ntdyn.tasks.reaching import Trial

# On the device: every replicate's outputs of a chunk, their stacking across blocks and the
# stored replicates' copy (see benchmarks/evaluation_memory.py for measured peaks).
DEVICE_COPIES = 4
# On the host: the stored replicates' arrays of two chunks (one being computed while the
# other is reduced and written) and the temporaries of the reductions.
HOST_COPIES = 4


def _widths(hidden_size: int) -> dict[str, int]:
    return {"state": 4, "hidden": hidden_size, "command": 2, "control": 2, "field": 2,
            "feedback": 4}  # fmt: skip


# assert_max_traces(max_traces=None) only counts traces: tests check one per shape.
@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _evaluate_chunk(
    ensemble: Controller,
    params: LoopParams,
    trials: Trial,
    trial_ids: Int[Array, " chunk"],
    direction: Float[Array, " chunk"],
    key: PRNGKeyArray,
    delay_buffer: int,
    block: int,
    stored: Int[Array, " stored"],
    devices: DevicePlan | None = None,
) -> tuple[dict[str, Float[Array, "stored chunk time var"]], dict[str, Float[Array, "rep chunk"]]]:
    """Simulate a chunk (every replicate), reduce each block on the device to the behaviour
    measures of every (replicate, trial), and keep only the stored replicates' trajectories.
    stored: the stored replicates' indices, an array (traced, not static: models whose best
    replicates differ share one program). devices: the devices the chunk's trials are split
    across (`over_blocks`)."""
    rows = jnp.asarray(stored)

    def reduce(traj, block_trials, block_direction):
        measures = jax.vmap(
            lambda state, control: measure_arrays(
                state, control, block_trials.start, block_trials.goal, block_direction, xp=jnp
            )
        )(traj.state, traj.control)
        return {name: getattr(traj, name)[rows] for name in VARIABLES}, measures

    return simulate_blocks(
        ensemble, params, trials, trial_ids, key, delay_buffer=delay_buffer, block=block,
        reduce=reduce, extra=direction, devices=devices,
    )  # fmt: skip


def evaluate_model(
    model: Controller,
    hyperparams: dict,
    trials: Trial,
    conditions: pd.DataFrame,
    seed: int,
    *,
    keep: Keep,
    budget: ResourceBudget,
    group: zarr.Group,
    selected: int,
    desc: str = "evaluation",
) -> pd.DataFrame:
    """Simulate every replicate of `model` on `trials` (evaluation seed `seed`), in chunks.

    conditions: one row per trial (`trial` = 0..N-1, `repeat`, condition columns). Writes
    into `group` the kept single trials (`trials/<name>`, `trial_index`) and the condition
    means (`means/<name>`) of the replicates `keep` names (`selected`: the best one).
    Trial i's noise is drawn from fold_in(PRNGKey(seed), i), so results do not depend on
    the chunking. Each chunk's trials are split across `budget.devices` (every device
    simulates whole blocks of trials, as one device would: the same numbers). Returns the
    behaviour measures: one row per (replicate, trial), columns replicate, trial and the
    measures.
    """
    conditions = with_condition_index(conditions.sort_values("trial").reset_index(drop=True))
    n_trials, n_steps = len(conditions), int(np.shape(trials.sisu)[1])
    if not np.array_equal(conditions["trial"].to_numpy(), np.arange(n_trials)):
        raise ValueError("conditions must number the trials 0..N-1 in a `trial` column")
    n_rep = int(jax.tree.leaves(model)[0].shape[0])
    stored = (int(selected),) if keep.replicates == "selected" else tuple(range(n_rep))
    widths = _widths(int(model.hidden_size))
    n_cond = int(conditions["condition"].max()) + 1
    sample = keep.trial_sample(conditions)

    per_trial = n_steps * sum(widths.values()) * 4  # float32 outputs of one replicate
    accum_bytes = len(stored) * n_cond * n_steps * sum(widths[n] for n in keep.means) * 8
    devices = budget.devices.plan()
    plan = plan_chunks(
        n_trials, block=budget.block_for(jax.default_backend()),
        device_bytes_per_item=DEVICE_COPIES * n_rep * per_trial,
        host_bytes_per_item=HOST_COPIES * len(stored) * per_trial,
        budget=budget, host_reserved_bytes=accum_bytes, what=f"trials of {desc}",
        n_devices=devices.n,
    )  # fmt: skip

    sums = {name: np.zeros((len(stored), n_cond, n_steps, widths[name])) for name in keep.means}
    counts = np.bincount(conditions["condition"], minlength=n_cond)
    writer = ModelWriter(
        group, {n: (len(stored), len(sample), n_steps, widths[n]) for n in keep.trials}, "trials"
    )
    group.create_array("trial_index", data=sample.astype(np.int64), dimension_names=("trial",))
    cond_index = conditions["condition"].to_numpy()
    direction = conditions["direction"].to_numpy(np.float32)
    params, key = loop_params(hyperparams), jax.random.PRNGKey(seed)
    buffer = delay_buffer_for([hyperparams["task__feedback__delay"]])
    host = jax.tree.map(np.asarray, trials)
    model, params = devices.replicate((model, params))
    sharded = devices if devices.active else None  # one program for the default device
    rows = np.asarray(stored, np.int32)  # traced: one program whichever replicate is the best

    def compute(start: int, stop: int):
        # the last chunk is padded with its last real trial (outputs dropped): one shape
        index = np.minimum(np.arange(start, start + plan.chunk), stop - 1)
        chunk = jax.tree.map(lambda x: x[index], host)
        ids = np.arange(start, start + plan.chunk, dtype=np.int32)
        chunk, ids, chunk_direction = devices.place((chunk, ids, direction[index]))
        arrays, measures = _evaluate_chunk(
            model, params, chunk, ids, chunk_direction, key, buffer, plan.block, rows, sharded
        )
        n = stop - start
        return {k: np.asarray(v)[:, :n] for k, v in arrays.items()}, {
            k: np.asarray(v)[:, :n] for k, v in measures.items()
        }

    tables = []
    bar = tqdm(total=n_trials, desc=desc, unit="trial", leave=False)
    bounds = plan.bounds()
    # one chunk computed on the device while the previous one is reduced and written
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(compute, *bounds[0])
        for k, (start, stop) in enumerate(bounds):
            arrays, measures = pending.result()
            if k + 1 < len(bounds):
                pending = pool.submit(compute, *bounds[k + 1])
            bar.set_postfix_str(f"chunk {k + 1}/{plan.n_chunks} of {plan.chunk} trials")
            n = stop - start
            m = pd.DataFrame({name: v.reshape(-1) for name, v in measures.items()})
            m.insert(0, "trial", np.tile(np.arange(start, stop), n_rep))
            m.insert(0, "replicate", np.repeat(np.arange(n_rep), n))
            tables.append(m)
            _add_condition_sums(sums, arrays, cond_index[start:stop])
            lo, hi = np.searchsorted(sample, [start, stop])
            if hi > lo:
                for name in keep.trials:
                    writer.write(name, slice(lo, hi), arrays[name][:, sample[lo:hi] - start])
            bar.update(n)
    bar.close()

    for name, total in sums.items():
        mean = total / counts[None, :, None, None]
        group.create_array(
            f"means/{name}", data=mean.astype(np.float32),
            dimension_names=("replicate", "condition", "time", VARIABLES[name]),
        )  # fmt: skip
    group.attrs.update(replicates=list(stored), selected=int(selected), n_trials=n_trials,
                       chunk=plan.chunk, block=plan.block)  # fmt: skip
    measures = pd.concat(tables, ignore_index=True)
    return measures.sort_values(["replicate", "trial"], kind="stable", ignore_index=True)


def _add_condition_sums(sums: dict, arrays: dict, cond_index: np.ndarray) -> None:
    """Add a chunk's trials to the running per-condition sums (float64), in trial order.

    Trials of one condition are usually contiguous (repeats innermost), so one reduceat over
    runs of equal condition does it; a run's sum is added to the condition's running sum.
    """
    starts = np.flatnonzero(np.r_[True, cond_index[1:] != cond_index[:-1]])
    runs = cond_index[starts]
    for name, total in sums.items():
        run_sums = np.add.reduceat(arrays[name].astype(np.float64), starts, axis=1)
        np.add.at(total, (slice(None), runs), run_sums)
