"""Training throughput at full scale: batches/s, the projected time for 10 000 batches, and the
same for a minimal reference step written in plain JAX in this file.

Presets (docs/science.md §3.2, issue 16), GRUs of 100 units, 100 steps, batch 250:
  part1: 4 training stds x 5 replicates = 20 models (fixed method, no SISU input);
  part2: 3 methods (bcs, dai, pai-asf) x 4 stds x 5 replicates = 60 models, SISU input.
All models run in one compiled program. Runs with JAX alone (no Kedro, MLflow or pandera),
so it can be timed on a GPU machine:

    PYTHONPATH=src python benchmarks/training_throughput.py --batches 1000
    PYTHONPATH=src python benchmarks/training_throughput.py --preset part2 --batches 500
    PYTHONPATH=src python benchmarks/training_throughput.py --count-kernels --trace /tmp/tr

Reported: ntdyn's compile time (first chunk minus a second, warm chunk), its rate and
projection; the reference step's rate at each unroll (1, 8, 25, the whole trial) and its
best; the ratio ntdyn / best reference. The reference is what the issue measured as "the
limit": the same point mass, curl field, GRU, cost and Adam (optax), the same model axis,
but no sensory or motor noise, no delay, no SISU input, no divergence check, no history,
no host reads between chunks. --count-kernels dumps the optimised HLO of both programs and
counts kernels per batch and per time step (benchmarks/_hlo.py); --trace writes a
jax.profiler trace of the timed ntdyn run (TensorBoard / Perfetto).

Writes benchmarks/results/training_throughput_<machine>.json (`--out` to change).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hlo import count_kernels, module_text, start_dump  # noqa: E402
from _results import add_out_option, save  # noqa: E402

PRESETS = {
    "part1": {"methods": ["fixed"], "sisu_input": False},
    "part2": {"methods": ["bcs", "dai", "pai-asf"], "sisu_input": True},
}


def reaching_hyperparams(hidden: int, steps: int, batch: int, replicates: int) -> dict:
    """Flattened part-1 hyperparameters at the given scale (docs/science.md defaults otherwise)."""
    return {
        "model__cell": "gru", "model__hidden_size": hidden, "model__sisu_input": False,
        "task__mass": 1.0, "task__damping": 10.0, "task__dt": 0.01, "task__n_steps": steps,
        "task__workspace": 1.0, "task__feedback__delay": 0, "task__feedback__noise_std": 0.01,
        "task__motor__noise_std": 0.01, "task__motor__mult_noise_std": 0.018,
        "cost__position": 1.0, "cost__position_exponent": 6, "cost__final_velocity": 1.0,
        "cost__control": 1e-5, "cost__hidden": 1e-5,
        "train__method": "fixed", "train__pert__type": "curl", "train__pert__std": 0.0,
        "train__pert__p_active": 1.0, "train__batch_size": batch, "train__learning_rate": 0.01,
        "train__n_replicates": replicates, "train__seed": 0, "train__n_std_exclude": 2.0,
    }  # fmt: skip


# ------------------------------------------------------------------ the plain-JAX reference


def reference_program(n_models: int, hidden: int, steps: int, batch: int, unroll: int):
    """(init(key) -> (params, opt states) of n_models GRU controllers, chunk(params, opt,
    keys (M, 2), first step, n_inner) -> (params, opt, mean loss per step)) in plain JAX and
    optax: a point mass (m 1 kg, k_d 10 N s/m, dt 10 ms) in a curl field of std 1 N s/m,
    driven by a GRU (PyTorch's gate layout, as Equinox's) reading [goal, position, velocity],
    the part-1 cost (position ramp^6, final velocity, 1e-5 control and hidden), Adam 0.01.
    No noise, delay, SISU, divergence check or history."""
    import functools

    import jax
    import jax.numpy as jnp
    import optax

    n_in, dt, mass, damping = 6, 0.01, 1.0, 10.0
    opt = optax.adam(0.01)

    def init_one(key):
        k = jax.random.split(key, 6)
        s = 1.0 / jnp.sqrt(hidden)
        u = lambda kk, shape: jax.random.uniform(kk, shape, minval=-s, maxval=s)  # noqa: E731
        return {"wi": u(k[0], (3 * hidden, n_in)), "wh": u(k[1], (3 * hidden, hidden)),
                "b": u(k[2], (3 * hidden,)), "bn": u(k[3], (hidden,)),
                "wo": u(k[4], (2, hidden)), "bo": u(k[5], (2,))}  # fmt: skip

    def loss(p, key):
        k_start, k_goal, k_curl = jax.random.split(key, 3)
        start = jax.random.uniform(k_start, (batch, 2), minval=-1.0, maxval=1.0)
        goal = jax.random.uniform(k_goal, (batch, 2), minval=-1.0, maxval=1.0)
        curl = jax.random.normal(k_curl, (batch, 1))
        gi_goal = goal @ p["wi"][:, :2].T + p["b"]  # the goal's input is constant over a trial

        def step(carry, _):
            x, h = carry
            gi = gi_goal + x @ p["wi"][:, 2:].T
            gh = h @ p["wh"].T
            r = jax.nn.sigmoid(gi[:, :hidden] + gh[:, :hidden])
            z = jax.nn.sigmoid(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
            n = jnp.tanh(gi[:, 2 * hidden :] + r * (gh[:, 2 * hidden :] + p["bn"]))
            h = (1.0 - z) * n + z * h
            u = h @ p["wo"].T + p["bo"]
            v = x[:, 2:]
            f = u + curl * jnp.stack([v[:, 1], -v[:, 0]], -1) - damping * v
            x = jnp.concatenate([x[:, :2] + dt * v, v + dt * f / mass], -1)
            return (x, h), (x, u, h)

        x0 = jnp.concatenate([start, jnp.zeros((batch, 2))], -1)
        _, (x, u, h) = jax.lax.scan(step, (x0, jnp.zeros((batch, hidden))), None, steps,
                                    unroll=unroll)  # fmt: skip
        ramp = (jnp.arange(1, steps + 1) / steps) ** 6
        position = jnp.sum(ramp[:, None] * jnp.sum((x[..., :2] - goal) ** 2, -1), 0)
        total = (position + jnp.sum(x[-1, :, 2:] ** 2, -1) + 1e-5 * jnp.sum(u**2, (0, 2))
                 + 1e-5 * jnp.sum(h**2, (0, 2)))  # fmt: skip
        return total.mean()

    def one_model(p, o, key):
        value, grads = jax.value_and_grad(loss)(p, key)
        updates, o = opt.update(grads, o, p)
        return optax.apply_updates(p, updates), o, value

    @functools.partial(jax.jit, static_argnums=4)
    def reference_chunk(params, opt_states, keys, first, n_inner):
        def body(carry, step):
            p, o = carry
            step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, step)
            p, o, value = jax.vmap(one_model)(p, o, step_keys)
            return (p, o), value.mean()

        (params, opt_states), values = jax.lax.scan(
            body, (params, opt_states), first + jnp.arange(n_inner)
        )
        return params, opt_states, values

    def init(key):
        params = jax.vmap(init_one)(jax.random.split(key, n_models))
        return params, jax.vmap(opt.init)(params)

    return init, reference_chunk


def time_reference(n_models, hidden, steps, batch, unroll, n_batches, chunk,
                   kernels: bool = False) -> dict:  # fmt: skip
    """Compile and time the reference at one unroll: chunks dispatched back to back, one
    wait at the end (no host reads between chunks). kernels: count its kernels too."""
    import jax

    init, chunk_fn = reference_program(n_models, hidden, steps, batch, unroll)
    params, opt = init(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), n_models)
    t0 = time.perf_counter()
    params, opt, values = jax.block_until_ready(chunk_fn(params, opt, keys, 0, chunk))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for start in range(chunk, chunk + n_batches, chunk):
        params, opt, values = chunk_fn(params, opt, keys, start, chunk)
    jax.block_until_ready(values)
    elapsed = time.perf_counter() - t0
    rate = n_batches / elapsed
    out = {"unroll": unroll, "compile_and_first_chunk_s": round(first, 2),
           "timed_s": round(elapsed, 3), "batches_per_s": round(rate, 2),
           "last_loss": float(values[-1])}  # fmt: skip
    if kernels:
        text = chunk_fn.lower(params, opt, keys, 0, chunk).compile().as_text()
        out["kernels"] = per_step(count_kernels(text), chunk, steps)
    return out


def per_step(counts: dict, n_batches: int, steps: int) -> dict:
    """Kernel counts of a chunk of n_batches, with kernels per batch and per time step."""
    counts["kernels_per_batch"] = round(counts["kernels_per_run"] / n_batches, 1)
    counts["kernels_per_time_step"] = round(counts["kernels_per_batch"] / steps, 2)
    return counts


# ------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="part1")
    ap.add_argument("--stds", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5])
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--delay", type=int, default=0, help="feedback delay (steps) of every model")
    ap.add_argument(
        "--batches",
        type=int,
        default=200,
        help="timed batches (a multiple of the chunk, 25 or its largest divisor)",
    )
    ap.add_argument(
        "--unroll",
        default="auto",
        help="ntdyn's training_options.unroll: auto or steps per loop iteration",
    )
    ap.add_argument(
        "--reference-unrolls",
        default="1,8,25,full",
        help="comma-separated unrolls of the reference ('full': the whole trial); "
        "'none' skips the reference",
    )
    ap.add_argument(
        "--count-kernels",
        action="store_true",
        help="dump the optimised HLO and count kernels per batch and time step",
    )
    ap.add_argument("--trace", default=None, help="write a jax.profiler trace of the timed run")
    add_out_option(ap)
    args = ap.parse_args()

    dump = start_dump() if args.count_kernels else None  # before JAX starts

    import jax

    from ntdyn.models.fused_loop import fused_loop_enabled
    from ntdyn.models.scans import written_gradients
    from ntdyn.models.unroll import ScanUnroll
    from ntdyn.training import TRACE_COUNTS, train_group
    from ntdyn.training.core import chunk_size

    preset = PRESETS[args.preset]
    unroll = ScanUnroll(None if args.unroll == "auto" else int(args.unroll))
    base = reaching_hyperparams(args.hidden, args.steps, args.batch, args.replicates)
    base |= {"model__sisu_input": preset["sisu_input"], "task__feedback__delay": args.delay}
    chunk = chunk_size(args.batches)
    n_models = len(preset["methods"]) * len(args.stds) * args.replicates

    def sweep(n_batches: int) -> list[dict]:
        return [dict(base, train__method=m, train__pert__std=s, train__n_batches=n_batches)
                for m in preset["methods"] for s in args.stds]  # fmt: skip

    # The first chunk compiles; a second, warm chunk measures what the first cost beyond it.
    t0 = time.perf_counter()
    train_group(sweep(chunk), progress=False, unroll=unroll)
    first_chunk = time.perf_counter() - t0
    traces = TRACE_COUNTS["train_chunk"]
    t0 = time.perf_counter()
    train_group(sweep(chunk), progress=False, unroll=unroll)
    warm_chunk = time.perf_counter() - t0

    t0 = time.perf_counter()
    if args.trace:
        with jax.profiler.trace(args.trace):
            result = train_group(sweep(args.batches), progress=False, unroll=unroll)
    else:
        result = train_group(sweep(args.batches), progress=False, unroll=unroll)
    elapsed = time.perf_counter() - t0
    assert TRACE_COUNTS["train_chunk"] == traces, "timed run recompiled"
    rate = args.batches / elapsed
    losses = result[0].history.query("term == 'total'").groupby("step")["value"].mean()

    reference = []
    if args.reference_unrolls != "none":
        for u in args.reference_unrolls.split(","):
            steps_per_iter = args.steps if u == "full" else int(u)
            reference.append(time_reference(n_models, args.hidden, args.steps, args.batch,
                                            steps_per_iter, args.batches, chunk,
                                            args.count_kernels))  # fmt: skip
    best = max(reference, key=lambda r: r["batches_per_s"]) if reference else None

    config = {
        "platform": jax.default_backend(),
        "preset": args.preset,
        "models": n_models,
        "methods": preset["methods"],
        "sisu_input": preset["sisu_input"],
        "stds": args.stds,
        "replicates": args.replicates,
        "hidden": args.hidden,
        "steps": args.steps,
        "batch": args.batch,
        "delay": args.delay,
        "unroll_option": args.unroll,
        "unroll_used": unroll.for_scan(args.steps),
        # the GRU's weight gradients gathered after the loop (NTDYN_WRITTEN_GRADIENTS, default:
        # on accelerators); time both ways with NTDYN_WRITTEN_GRADIENTS=0 / =1
        "written_gradients": written_gradients(),
        "fused_loop": fused_loop_enabled(),
        "timed_batches": args.batches,
        "chunk": chunk,
    }
    results = {
        "compile_s": round(first_chunk - warm_chunk, 2),
        "first_chunk_s": round(first_chunk, 2),
        "warm_chunk_s": round(warm_chunk, 2),
        "timed_s": round(elapsed, 2),
        "batches_per_s": round(rate, 2),
        "projected_10000_batches_s": round(10_000 / rate, 1),
        "first_loss": float(losses.iloc[0]),
        "last_loss": float(losses.iloc[-1]),
    }
    if best is not None:
        results |= {
            "reference": reference,
            "reference_best_unroll": best["unroll"],
            "reference_best_batches_per_s": best["batches_per_s"],
            "reference_projected_10000_batches_s": round(10_000 / best["batches_per_s"], 1),
            "ntdyn_over_reference": round(rate / best["batches_per_s"], 3),
        }
    if dump is not None:  # ntdyn's chunk (eqx.filter_jit) from the dump; the reference's above
        counts = per_step(count_kernels(module_text(dump, "train_chunk")), chunk, args.steps)
        results["kernels"] = counts | {"hlo_dump": dump}
    if args.trace:
        results["trace"] = args.trace
    save("training_throughput", config, results, args.out)


if __name__ == "__main__":
    main()
