"""The closed loop's value and gradient, XLA's loop against the fused kernels (issue 16).

Times `closed_loop.simulate_batch_with_noise` under a loss that reads its trajectory, with
its gradient for every model (vmap over the model axis, as training does), jitted: the XLA
loop at the unrolls asked (`--unrolls`) and the fused Pallas kernels (`ntdyn.models.
fused_loop`) at the trial tiles asked (`--tiles`). Reports compile time, milliseconds per
call and the largest relative difference of the value and gradients from the first way.
No optimiser, sampling or recording: the recurrence alone, where the launches are.

    PYTHONPATH=src python benchmarks/fused_loop_probe.py                 # 20 models, H200 size
    PYTHONPATH=src python benchmarks/fused_loop_probe.py --models 3 --batch 20 --steps 10 \\
        --hidden 20 --iters 2 --out -                                   # CPU: the interpreter
"""

from __future__ import annotations

import argparse
import os
import time

from _results import add_out_option, save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--delay", type=int, default=5, help="feedback delay (steps); buffer 8")
    ap.add_argument("--unrolls", default="1,10", help="the XLA loop's unrolls, comma-separated")
    ap.add_argument("--tiles", default="16,32,64", help="the kernels' trial tiles")
    ap.add_argument("--iters", type=int, default=30, help="timed calls per way")
    add_out_option(ap)
    args = ap.parse_args()

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from ntdyn.models import closed_loop
    from ntdyn.models.controller import Controller
    from ntdyn.models.fused_loop import FUSED_LOOP_ENV
    from ntdyn.models.plant import PlantParams
    from ntdyn.models.stacking import stacked
    from ntdyn.tasks import Trial

    m, b, k, n_h, buffer = args.models, args.batch, args.steps, args.hidden, 8
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    models = stacked(lambda key: Controller("gru", n_h, True, key=key),
                     jax.random.split(keys[0], m))  # fmt: skip
    f32 = lambda v: jnp.full((m,), v, jnp.float32)  # noqa: E731
    params = closed_loop.LoopParams(PlantParams(f32(1.0), f32(0.1), f32(0.01)),
                                    jnp.full((m,), args.delay, jnp.int32), f32(0.01), f32(0.02),
                                    f32(0.05))  # fmt: skip
    trials = Trial(
        start=0.1 * jax.random.normal(keys[1], (m, b, 2)),
        goal=0.1 * jax.random.normal(keys[2], (m, b, 2)),
        curl=jax.random.normal(keys[3], (m, b)), force=jnp.zeros((m, b, 2)),
        sisu=jax.random.uniform(keys[4], (m, b, k)), feedback_offset=jnp.zeros((m, b, k, 4)),
    )  # fmt: skip
    noise = jax.random.normal(keys[5], (m, b, k, closed_loop.N_NOISE))

    def compiled(unroll):
        # a new function per way: the loop's choice is read when the program is traced
        def loss(model, p, t, n):
            traj = closed_loop.simulate_batch_with_noise(
                model, p, t, n, delay_buffer=buffer, unroll=unroll, host_checked=True
            )
            reach = jnp.mean((traj.state[..., :2] - t.goal[:, None]) ** 2)
            return reach + 1e-3 * jnp.mean(traj.hidden**2) + 1e-4 * jnp.mean(traj.control**2)

        return eqx.filter_jit(jax.vmap(eqx.filter_value_and_grad(loss)))

    ways = [(f"xla_unroll{u}", "0", int(u), None) for u in args.unrolls.split(",") if u]
    ways += [(f"fused_tile{t}", "1", 1, int(t)) for t in args.tiles.split(",") if t]
    results, first = {}, None
    for name, flag, unroll, tile in ways:
        os.environ[FUSED_LOOP_ENV] = flag
        if tile is not None:
            os.environ["NTDYN_FUSED_TILE"] = str(tile)
        try:
            fn = compiled(unroll)
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(models, params, trials, noise))
            compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(args.iters):
                out = fn(models, params, trials, noise)
            jax.block_until_ready(out)
            ms = (time.perf_counter() - t0) / args.iters * 1e3
            first = out if first is None else first
            pairs = zip(jax.tree.leaves(out), jax.tree.leaves(first), strict=True)
            diff = max(float(jnp.max(jnp.abs(x - y)) / (1e-6 + jnp.max(jnp.abs(y))))
                       for x, y in pairs)  # fmt: skip
            results[name] = {"compile_s": round(compile_s, 2), "ms_per_call": round(ms, 3),
                             "max_rel_diff_from_first": diff}  # fmt: skip
        except Exception as err:  # a lowering the backend refuses: reported, the rest go on
            results[name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
        print(name, results[name], flush=True)
    config = {"models": m, "batch": b, "steps": k, "hidden": n_h, "delay": args.delay,
              "delay_buffer": buffer, "iters": args.iters}  # fmt: skip
    save("fused_loop_probe", config, results, args.out)


if __name__ == "__main__":
    main()
