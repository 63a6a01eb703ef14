"""Run by tests/test_sharding.py in a process of its own, with 4 CPU devices (XLA_FLAGS set
before JAX starts): trains, evaluates and searches for fixed points with every device and with
one, and prints a JSON report of how the numbers compare and where the arrays lived."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import equinox as eqx  # noqa: E402

from ntdyn.analysis import experiments, fixed_points  # noqa: E402
from ntdyn.analysis.dynamics import controller_step, steady_state_inputs  # noqa: E402
from ntdyn.analysis.evaluate import _evaluate_chunk, evaluate_model  # noqa: E402
from ntdyn.analysis.fixed_points import (  # noqa: E402
    FixedPointConfig,
    Search,
    find_fixed_points,
    search_fixed_points,
)
from ntdyn.analysis.stored import Keep, open_for_writing  # noqa: E402
from ntdyn.compilations import CompilationCounter  # noqa: E402
from ntdyn.models.closed_loop import loop_params  # noqa: E402
from ntdyn.models.controller import ensemble_from_hyperparams  # noqa: E402
from ntdyn.resources import ResourceBudget  # noqa: E402
from ntdyn.sharding import Devices  # noqa: E402
from ntdyn.tasks.reaching import COST_TERMS  # noqa: E402
from ntdyn.training.core import Member, TrainingRun, run_training  # noqa: E402
from ntdyn.training.keys import KeyStreams  # noqa: E402
from ntdyn.training.loop import model_data, reaching_loss  # noqa: E402
from science_fixtures import hp as make_hp  # noqa: E402
from science_fixtures import sweep_rows  # noqa: E402

ALL, ONE = Devices("all"), Devices(1)
report: dict = {"n_devices": len(jax.devices())}


def equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                   strict=True))  # fmt: skip


def max_diff(a, b) -> float:
    """Largest absolute difference between the array leaves of a and b."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def max_sharded_devices() -> int:
    """The most devices any live array is split or copied across."""
    return max((len(x.sharding.device_set) for x in jax.live_arrays()), default=0)


# --- training: 3 models (fewer than the devices) and 6 (not a multiple of 4), each padded to
# 8 on 4 devices (one program for both), with a callback between chunks that sees the
# stacked state while it lives


def train(n_models: int, devices: Devices, seen: list):
    row = sweep_rows(n_batches=4, stds=(0.0,), train__n_replicates=n_models)[0]
    streams = KeyStreams(int(row["train__seed"]))
    model = ensemble_from_hyperparams(row, streams.init(n_models))
    params, static = eqx.partition(model, eqx.is_array)
    data = jax.tree.map(lambda x: jax.numpy.stack([x] * n_models), model_data(row))
    return run_training(
        params, static, data, streams.batches(n_models), [Member.from_hyperparams(row)],
        TrainingRun(4, 2, progress=False), n_terms=len(COST_TERMS), loss=reaching_loss,
        loss_options=(int(row["train__batch_size"]), int(row["task__n_steps"]), 1),
        learning_rates=data.learning_rate, devices=devices,
        on_chunk=lambda done, p, g: seen.append(max_sharded_devices()),
    )  # fmt: skip


during = {"one": [], "all": []}
for n_models in (3, 6):
    one, every = train(n_models, ONE, during["one"]), train(n_models, ALL, during["all"])
    report[f"train_{n_models}"] = {
        "params": equal(one.params, every.params),
        "params_diff": max_diff(one.params, every.params),
        "history": np.array_equal(one.history, every.history),
        "history_diff": max_diff(one.history, every.history),
        "step_0": np.array_equal(one.history[0], every.history[0]),
        "shape": list(every.history.shape),
    }
report["train_devices_during"] = {k: max(v) for k, v in during.items()}

# --- evaluation: a chunk's trials split across the devices
hp = make_hp(**{"model__sisu_input": True, "model__hidden_size": 8})
model = ensemble_from_hyperparams(hp, jax.random.split(jax.random.PRNGKey(1), 3))
trials, conditions = experiments.plant_perts(
    pert_type="curl", amplitudes=[0.0, 4.0], sisu=[0.0, 1.0], grid_n=1, n_directions=3,
    reach_length=0.5, n_repeats=2, n_steps=12, workspace=1.0,
)  # fmt: skip
block = (("cpu", 4), ("gpu", 4))
evals = {}
with tempfile.TemporaryDirectory() as tmp:
    for name, devices in (("one", ONE), ("all", ALL)):
        group = open_for_writing(Path(tmp) / name).create_group("m")
        measures = evaluate_model(
            model, hp, trials, conditions, 7, keep=Keep(), group=group, selected=1,
            budget=ResourceBudget(trial_block=block, devices=devices),
        )  # fmt: skip
        evals[name] = (measures, np.asarray(group["means/hidden"]),
                       np.asarray(group["trials/state"]), group.attrs["chunk"])  # fmt: skip
report["evaluate"] = {
    "measures": evals["one"][0].equals(evals["all"][0]),
    "means": np.array_equal(evals["one"][1], evals["all"][1]),
    "trials": np.array_equal(evals["one"][2], evals["all"][2]),
    "chunks": [evals["one"][3], evals["all"][3]],
}

# the compiled chunk with the plan's placement: its outputs live on every device

plan = ALL.plan()
n = evals["all"][3]  # evaluate_model's chunk on 4 devices: the same compiled program
chunk = jax.tree.map(lambda x: np.asarray(x)[np.arange(n) % len(conditions)], trials)
ids = np.arange(n, dtype=np.int32)
direction = np.zeros(n, np.float32)
arrays, measures = _evaluate_chunk(
    *plan.replicate((model, loop_params(hp))), *plan.place((chunk, ids, direction)),
    jax.random.PRNGKey(7), 1, 4, (1,), plan,
)  # fmt: skip
report["evaluate_devices"] = min(
    len(x.sharding.device_set) for x in jax.tree.leaves((arrays, measures))
)

# --- fixed points: blocks of candidates spread over the devices: 30 of 8 units in blocks of
# at most 8 (4 of 8, the last padded), 250 of 32 units in blocks of at most 64 (4 of 63), and
# 3 (one block: on the first device)


def ulps(x, y) -> float:
    """Largest difference in units of the last place (float64) of the larger magnitude."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return float("inf")
    scale = np.spacing(np.maximum(np.abs(x), np.abs(y)).astype(np.float64))
    return float(np.max(np.abs(x - y) / scale)) if x.size else 0.0


def first_controller(hidden: int):
    hp = make_hp(**{"model__sisu_input": True, "model__hidden_size": hidden})
    ensemble = ensemble_from_hyperparams(hp, jax.random.split(jax.random.PRNGKey(1), 3))
    return jax.tree.map(lambda x: x[0] if isinstance(x, jax.Array) else x, ensemble)


u = steady_state_inputs(np.zeros(2), 0.5)
cfg = FixedPointConfig(max_iters=100, adam_iters=60, newton_iters=5)
report["fixed_points"] = {}
for hidden, n_candidates, block in ((8, 30, 8), (8, 3, 8), (32, 250, 64)):
    step = controller_step(first_controller(hidden))
    cands = np.random.default_rng(0).normal(size=(n_candidates, hidden))
    a, b = (find_fixed_points(step, cands, u, cfg, devices=d, eigenvectors=False, block=block)
            for d in (ONE, ALL))  # fmt: skip
    report["fixed_points"][f"{n_candidates}x{hidden}"] = {
        "candidate": np.array_equal(a.candidate, b.candidate),
        "n_iters": np.array_equal(a.n_iters, b.n_iters),
        "h": np.array_equal(a.h, b.h),
        "candidates_q": np.array_equal(a.candidates_q, b.candidates_q),
        "jacobian": np.array_equal(a.jacobian, b.jacobian),
        "eigenvalues": np.array_equal(a.eigenvalues, b.eigenvalues),
        "h_ulps": ulps(a.h, b.h),
        "q_ulps": ulps(a.candidates_q, b.candidates_q),
        "n_points": len(a.h),
    }

# --- many searches (`search_fixed_points`): 5 searches of two models at two inputs, of 3 to
# 30 candidates in blocks of at most 16 (30 and 20 in two blocks each: 7 blocks), one with
# groups, one with noise and eigenvectors, on 4 devices and on 1. The devices of each
# block's outputs are watched on `_solve` (the real function, called by the module).
controllers = [first_controller(8), first_controller(8)]
controllers[1] = jax.tree.map(lambda x: 0.9 * x if eqx.is_inexact_array(x) else x, controllers[1])
steps = [controller_step(c) for c in controllers]
u_other = steady_state_inputs(np.array([0.1, -0.1]), 1.5)
rng = np.random.default_rng(1)
noisy = FixedPointConfig(max_iters=100, adam_iters=60, newton_iters=5, noise_std=0.05)
lazy = rng.normal(size=(7, 8))  # the last search's candidates, given as a function
many = [
    Search(steps[0], rng.normal(size=(3, 8)), u, cfg, eigenvectors=False),
    Search(steps[0], rng.normal(size=(30, 8)), u_other, cfg, groups=np.repeat(np.arange(3), 10),
           eigenvectors=False),
    Search(steps[1], rng.normal(size=(12, 8)), u, noisy, seed=4),
    Search(steps[1], rng.normal(size=(20, 8)), u_other, cfg, eigenvectors=False),
    Search(steps[0], lambda: lazy, u, cfg, eigenvectors=False),
]  # fmt: skip
solve, solved_on = fixed_points._solve, []


def watched_solve(*args):
    out = solve(*args)
    devices = sorted({d.id for x in jax.tree.leaves(out) for d in x.devices()})
    solved_on.append([int(args[2].shape[0]), devices])  # the block's candidates, its devices
    return out


fixed_points._solve = watched_solve
one_many = list(search_fixed_points(many, devices=ONE, block=16))
solved_on_one, solved_on = solved_on, []
programs = solve._cache_size()  # compiled programs of `_solve` (one per shape and device)
with CompilationCounter() as compiled:
    all_many = list(search_fixed_points(many, devices=ALL, block=16))
solved_on_all, solved_on = solved_on, []
# one search of 250 candidates of 32 units (the last above) in blocks of at most 64
find_fixed_points(step, cands, u, cfg, devices=ALL, eigenvectors=False, block=64)
fixed_points._solve = solve
report["fixed_points_blocks"] = solved_on
fields = ("h", "q", "candidate", "candidates_q", "n_iters", "jacobian", "eigenvalues",
          "eigenvectors", "group", "stable")  # fmt: skip
report["many_searches"] = {
    "equal": {
        f: all(
            np.array_equal(getattr(a, f), getattr(b, f), equal_nan=False)
            if getattr(a, f) is not None
            else getattr(b, f) is None
            for a, b in zip(one_many, all_many, strict=True)
        )
        for f in fields
    },
    "n_points": [len(x.h) for x in all_many],
    "eigenvectors": [x.eigenvectors is not None for x in all_many],
    "block_devices_one": solved_on_one,
    "block_devices_all": solved_on_all,
    "search_devices_one": [x.device.id for x in one_many],
    "search_devices_all": [x.device.id for x in all_many],
    # `_solve` programs compiled by the run on 4 devices (those of device 0 were compiled by
    # the run on one), and every compilation of that run (searches, Jacobians, copies)
    "solve_programs_on_four": solve._cache_size() - programs,
    "compilations_on_four": compiled.count,
}

print("REPORT " + json.dumps(report))
