"""Wall time of Dynamical Similarity Analysis between two 128-unit systems.

x: trajectories of a random leaky tanh network (GRU-like, fixed update gate)
driven by weak noise from random initial states; y: the same trajectories in a
randomly rotated basis (DSA should call them identical). Times `dsa` twice
(first call includes compilation) and prints JSON:

    PYTHONPATH=src python benchmarks/dsa.py [--units 128 --trials 64 --steps 500]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import ortho_group

from ntdyn.analysis.dsa import dsa


def tanh_network(units: int, trials: int, steps: int, gain: float, seed: int) -> np.ndarray:
    """(trials, steps, units) of h <- (1 - a) h + a tanh(g W h + noise), a = 0.2."""
    rng = np.random.default_rng(seed)
    w = gain * rng.normal(size=(units, units)) / np.sqrt(units)
    h = rng.normal(size=(trials, units))
    x = np.empty((trials, steps, units))
    for t in range(steps):
        x[:, t] = h
        h = 0.8 * h + 0.2 * np.tanh(h @ w.T + 0.05 * rng.normal(size=h.shape))
    return x


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
    args = p.parse_args()

    x = tanh_network(args.units, args.trials, args.steps, args.gain, args.seed)
    y = x @ ortho_group.rvs(args.units, random_state=args.seed + 1)
    kw = dict(n_delays=args.n_delays, rank=args.rank, iters=args.iters)
    times, out = [], None
    for _ in range(2):  # first call compiles the Procrustes scan
        t0 = time.perf_counter()
        out = dsa(x, y, **kw)
        times.append(time.perf_counter() - t0)
    report = {
        **vars(args),
        "first_call_s": round(times[0], 3),
        "warm_call_s": round(times[1], 3),
        "angular": out["angular"],
        "wasserstein": out["wasserstein"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
