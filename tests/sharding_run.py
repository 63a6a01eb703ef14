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
from ntdyn.analysis.fixed_points import FixedPointConfig, find_fixed_points  # noqa: E402
from ntdyn.analysis.stored import Keep, open_for_writing  # noqa: E402
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

# where the searches ran: the devices of _solve's outputs, every call of find_fixed_points's
# (the real function, watched), 250 candidates in blocks of 64
solve, solved_on = fixed_points._solve, set()


def watched_solve(*args):
    out = solve(*args)
    solved_on.update(d for x in jax.tree.leaves(out) for d in x.devices())
    return out


fixed_points._solve = watched_solve
find_fixed_points(step, cands, u, cfg, devices=ALL, eigenvectors=False, block=64)
fixed_points._solve = solve
report["fixed_points_devices"] = len(solved_on)

print("REPORT " + json.dumps(report))
