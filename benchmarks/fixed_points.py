"""Fixed points of a 100-unit GRU from 1024 candidates to tol_q 1e-12 in float64.

Candidates are states sampled from the network's own trajectories (random
initial states, constant input), plus a little noise, as FixedPointFinder is
used. The recurrent weights are scaled by `--gain` so the map has several fixed
points (a trained controller's landscape). Runs with JAX alone:

    PYTHONPATH=src python benchmarks/fixed_points.py [--gain 5]

Writes benchmarks/results/fixed_points_<machine>.json (with the options that differ from
the defaults in the name, e.g. fixed_points_gain5_cpu.json; `--out` to change).
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from _results import add_out_option, save
from ntdyn.analysis.fixed_points import FixedPointConfig, find_fixed_points


def gru_step(cell: eqx.nn.GRUCell, h, u):
    return cell(u, h)


def make_problem(hidden: int, n_inputs: int, gain: float, n_candidates: int, seed: int):
    key_cell, key_h0, key_pick = jax.random.split(jax.random.PRNGKey(seed), 3)
    cell = eqx.nn.GRUCell(n_inputs, hidden, key=key_cell)
    cell = eqx.tree_at(lambda c: c.weight_hh, cell, gain * cell.weight_hh)
    u = jnp.full(n_inputs, 0.1)
    h0 = jax.random.uniform(key_h0, (256, hidden), minval=-1, maxval=1)

    def run(h):
        return jax.lax.scan(lambda h, _: (cell(u, h), cell(u, h)), h, None, length=50)[1]

    states = jax.vmap(run)(h0).reshape(-1, hidden)
    pick = jax.random.choice(key_pick, states.shape[0], (n_candidates,), replace=False)
    return cell, np.asarray(states[pick]), np.asarray(u)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=1024)
    ap.add_argument("--gain", type=float, default=3.0)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--float32", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="warm calls timed after the first")
    add_out_option(ap)
    args = ap.parse_args()

    cell, candidates, u = make_problem(args.hidden, 6, args.gain, args.candidates, seed=0)
    cfg = FixedPointConfig(noise_std=args.noise, float64=not args.float32)
    step = eqx.Partial(gru_step, cell)
    times, cpu_times = [], []  # wall, and this process's CPU time (all threads)
    for _ in range(1 + args.repeats):  # the first call compiles
        t0, c0 = time.perf_counter(), time.process_time()
        fps = find_fixed_points(step, candidates, u, cfg)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    table = fps.table()
    config = {
        "hidden": args.hidden,
        "inputs": 6,
        "candidates": args.candidates,
        "gain": args.gain,
        "noise_std": args.noise,
        "dtype": "float32" if args.float32 else "float64",
        "tol_q": cfg.tol_q,
        "seed": 0,
        "warm_repeats": args.repeats,
    }
    results = {
        "first_call_s": round(times[0], 3),
        "warm_call_s": round(float(np.median(times[1:])), 3),  # median of the warm calls
        "warm_calls_s": [round(t, 3) for t in times[1:]],
        "warm_call_process_cpu_s": round(float(np.median(cpu_times[1:])), 3),
        "candidates_converged": int(fps.candidates_converged.sum()),
        "unique_fixed_points": int((table["kind"] == "fixed").sum()),
        "unique_slow_points": int((table["kind"] == "slow").sum()),
        "stable_fixed_points": int((table["stable"] & (table["kind"] == "fixed")).sum()),
        "unstable_fixed_points": int((~table["stable"] & (table["kind"] == "fixed")).sum()),
        "median_iterations": float(np.median(fps.n_iters)),
        "max_q_converged_points": float(fps.q[fps.is_fixed].max()) if fps.is_fixed.any() else None,
    }
    defaults = ap.parse_args([])
    variant = "".join(
        f"_{k}{'' if v is True else format(v, 'g')}"
        for k, v in vars(args).items()
        if k not in ("out", "repeats") and v != getattr(defaults, k)
    )
    save(f"fixed_points{variant}", config, results, args.out)


if __name__ == "__main__":
    main()
