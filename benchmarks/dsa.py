"""Wall time of Dynamical Similarity Analysis between two 128-unit systems.

x: trajectories of a random leaky tanh network (GRU-like, fixed update gate)
driven by weak noise from random initial states; y: a copy of the same
dynamics in a random orthogonal basis Q, i.e. the network
h <- 0.8 h + 0.2 Q tanh(W Q^T h + noise), run from *other* initial states and
noise. DSA should call them nearly identical: the answer is 0 up to the
sampling error of two finite sets of trajectories. (Rotating the units of the
*same* trajectories, y = x Q, would test much less: HAVOK's coordinates are the
left singular vectors of the delay embedding, which a rotation of the units
leaves unchanged up to sign, so the Procrustes step would only have to flip
signs; `--same-trajectories` times that case.) Times `dsa` twice (the first
call includes compilation) and prints JSON:

    PYTHONPATH=src python benchmarks/dsa.py [--units 128 --trials 64 --steps 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import ortho_group

from _results import add_out_option, save
from ntdyn.analysis.dsa import dsa


def tanh_network(
    units: int, trials: int, steps: int, gain: float, seed: int, state_seed: int | None = None
) -> np.ndarray:
    """(trials, steps, units) of h <- (1 - a) h + a tanh(g W h + noise), a = 0.2.

    W comes from `seed`; the initial states and the noise too unless `state_seed`
    is given (then other trajectories of the same network).
    """
    rng = np.random.default_rng(seed)
    w = gain * rng.normal(size=(units, units)) / np.sqrt(units)
    if state_seed is not None:
        rng = np.random.default_rng(state_seed)
    h = rng.normal(size=(trials, units))
    x = np.empty((trials, steps, units))
    for t in range(steps):
        x[:, t] = h
        h = 0.8 * h + 0.2 * np.tanh(h @ w.T + 0.05 * rng.normal(size=h.shape))
    return x


def rotated_copy(units: int, trials: int, steps: int, gain: float, seed: int) -> np.ndarray:
    """The network of `tanh_network(..., seed)` in the basis Q = ortho_group(seed + 1), run from
    other initial states and noise (seed + 2): Q h' for other trajectories h' of it."""
    q = ortho_group.rvs(units, random_state=seed + 1)
    return tanh_network(units, trials, steps, gain, seed, state_seed=seed + 2) @ q.T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--n-delays", type=int, default=20)
    p.add_argument("--rank", type=int, default=50)
    p.add_argument("--iters", type=int, default=1500)
    p.add_argument("--gain", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--same-trajectories", action="store_true", help="y = x Q (units rotated) instead"
    )
    add_out_option(p)
    args = p.parse_args()
    x = tanh_network(args.units, args.trials, args.steps, args.gain, args.seed)
    if args.same_trajectories:
        y = x @ ortho_group.rvs(args.units, random_state=args.seed + 1)
    else:
        y = rotated_copy(args.units, args.trials, args.steps, args.gain, args.seed)
    kw = dict(n_delays=args.n_delays, rank=args.rank, iters=args.iters)
    times, out = [], None
    for _ in range(2):  # first call compiles the Procrustes scan
        t0 = time.perf_counter()
        out = dsa(x, y, **kw)
        times.append(time.perf_counter() - t0)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    name = "dsa" + ("_same_trajectories" if args.same_trajectories else "")
    results = {
        "first_call_s": round(times[0], 3),
        "warm_call_s": round(times[1], 3),
        "angular": out["angular"],
        "wasserstein": out["wasserstein"],
    }
    save(name, config, results, args.out)


if __name__ == "__main__":
    main()
