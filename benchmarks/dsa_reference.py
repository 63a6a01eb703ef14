"""Our DSA against the reference implementation (PyPI `dsa-metric`) on the same inputs and CPU.

Three pairs of 128-unit systems, each 64 trials x 500 steps, compared with
20 delays, rank 50, 1500 Procrustes iterations and learning rate 0.01:

1. rotated: x from the random leaky tanh network of `benchmarks/dsa.py` and
   y = x with its units in a random orthogonal basis (seeded as there with
   `--same-trajectories`). The right answer is 0, but the case is weak: HAVOK's
   coordinates are the left singular vectors of the delay embedding, which a
   rotation of the units leaves unchanged up to sign, so the two DMD matrices
   differ only by sign flips (`rotation_mixing` ~ 0 below).
2. rotated_dynamics_copy: the same x against a copy of the same dynamics in a
   random orthogonal basis Q, run from other initial states and noise
   (`benchmarks/dsa.py`'s default y: h <- 0.8 h + 0.2 Q tanh(W Q^T h + noise)).
   The tanh network's Jacobians (random W) are non-normal and the two sets of
   trajectories differ, so the DMD coordinates differ by a rotation that mixes
   them (`rotation_mixing` well above 0). The right answer is 0 up to the
   sampling error of finite trajectories, so both should be small and close;
   the angular score is a minimum over rotations, so lower is the better fit.
3. flip-flop vs limit cycle: a 3-bit flip-flop (three bistable latents that
   pulses flip) against a noisy 2-D limit cycle (Hopf oscillator), each read
   out into 128 units by a random tanh map plus observation noise. The right
   answer is clearly > 0; the pair checks that both implementations rank the
   two pairs alike.

Ours (`ntdyn.analysis.dsa.dsa`) is timed twice on pair 1 (the first call
includes JAX compilation), once on the others. `rotation_mixing` is the mean
over rows of 1 - max_j C_ij^2 for our optimal rotation C (0 for a signed
permutation; computed after the timing) and `unaligned_angular` the angle
between the two DMD matrices with no rotation. The reference (`DSA.DSA(...).fit_score()`, PyTorch,
angular score, two Procrustes runs from two starts) is timed once per pair;
its Wasserstein score is computed from the same fitted DMD matrices.
Reference Wasserstein is the optimal-transport cost with squared distances
(the square of ours); `wasserstein_sqrt` puts it on our scale. The reference's
Procrustes starts from unseeded random layers, so its angular score moves a
little between runs. Load averages are recorded at start and end: above the
core count, other processes shared the CPU and the timings are contended.

dsa-metric needs PyTorch, so it lives in a separate venv (the project's stays
torch-free); without it the reference is skipped. Prints JSON:

    python3.11 -m venv .venv-dsaref
    .venv-dsaref/bin/pip install torch==2.13.0    # the local CPU wheel, never a bare `torch`
    .venv-dsaref/bin/pip install dsa-metric jax jaxlib optax equinox  # or -e '.[bench-dsa]'
    .venv-dsaref/bin/pip install -e . --no-deps
    .venv-dsaref/bin/python benchmarks/dsa_reference.py [--units 128 --trials 64 --steps 500]

`--quick` shrinks the workload to a smoke test (explicit flags still win).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time

import numpy as np
from scipy.stats import ortho_group

from dsa import rotated_copy, tanh_network  # benchmarks/dsa.py, beside this script
from ntdyn.analysis.dsa import (
    angular_distance,
    dsa,
    procrustes_similarity,
    wasserstein_eigenvalue_distance,
)

FULL = dict(units=128, trials=64, steps=500, n_delays=20, rank=50, iters=1500)
QUICK = dict(units=32, trials=16, steps=200, n_delays=20, rank=50, iters=300)


def readout(latent: np.ndarray, units: int, noise: float, seed: int) -> np.ndarray:
    """(trials, steps, units) = tanh(latent M^T + b) + noise * N(0, 1), M and b random."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(units, latent.shape[-1]))
    b = 0.5 * rng.normal(size=units)
    return np.tanh(latent @ m.T + b) + noise * rng.normal(size=(*latent.shape[:2], units))


def flip_flop(units: int, trials: int, steps: int, seed: int) -> np.ndarray:
    """A 3-bit flip-flop read out into `units` units: (trials, steps, units).

    Each latent bit follows z <- 0.8 z + 0.2 tanh(2 z + u) + 0.02 noise, with
    stable states near +-0.96; u is an 8-step pulse of +-4 (onset probability
    0.01 per step and bit) that sets the bit to the pulse's sign.
    """
    rng = np.random.default_rng(seed)
    n_bits, width = 3, 8
    u = np.zeros((trials, steps, n_bits))
    for b, t, k in np.argwhere(rng.random((trials, steps, n_bits)) < 0.01):
        u[b, t : t + width, k] = 4.0 * rng.choice([-1.0, 1.0])
    z = rng.choice([-0.96, 0.96], size=(trials, n_bits))
    lat = np.empty((trials, steps, n_bits))
    for t in range(steps):
        lat[:, t] = z
        z = 0.8 * z + 0.2 * np.tanh(2.0 * z + u[:, t]) + 0.02 * rng.normal(size=z.shape)
    return readout(lat, units, noise=0.05, seed=seed + 1)


def limit_cycle(units: int, trials: int, steps: int, seed: int) -> np.ndarray:
    """A noisy 2-D limit cycle read out into `units` units: (trials, steps, units).

    Hopf normal form in polar coordinates, Euler steps of dt = 0.1:
    r <- r + dt r (1 - r^2) + 0.02 noise, theta <- theta + 2 pi / 40 + 0.02 noise
    (period 40 steps), from random radii in (0, 2) and phases.
    """
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.05, 2.0, size=trials)
    theta = rng.uniform(0.0, 2 * np.pi, size=trials)
    lat = np.empty((trials, steps, 2))
    for t in range(steps):
        lat[:, t, 0], lat[:, t, 1] = r * np.cos(theta), r * np.sin(theta)
        r = np.abs(r + 0.1 * r * (1.0 - r**2) + 0.02 * rng.normal(size=trials))
        theta = theta + 2 * np.pi / 40 + 0.02 * rng.normal(size=trials)
    return readout(lat, units, noise=0.05, seed=seed + 1)


def make_pairs(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The (x, y) pairs: 'rotated' (answer 0), 'rotated_dynamics_copy' (0 up to sampling
    error) and 'flip_flop_vs_limit_cycle' (answer > 0)."""
    x = tanh_network(args.units, args.trials, args.steps, args.gain, args.seed)
    y = x @ ortho_group.rvs(args.units, random_state=args.seed + 1)  # as in benchmarks/dsa.py
    copy = rotated_copy(args.units, args.trials, args.steps, args.gain, args.seed)
    ff = flip_flop(args.units, args.trials, args.steps, args.seed + 10)
    lc = limit_cycle(args.units, args.trials, args.steps, args.seed + 20)
    return {"rotated": (x, y), "rotated_dynamics_copy": (x, copy),
            "flip_flop_vs_limit_cycle": (ff, lc)}  # fmt: skip


def run_ours(x: np.ndarray, y: np.ndarray, kw: dict, calls: int) -> tuple[dict, dict]:
    """Time `calls` calls of our `dsa(x, y, **kw)`; returns (timings and scores, last output)."""
    times, out = [], {}
    for _ in range(calls):
        t0 = time.perf_counter()
        out = dsa(x, y, **kw)
        times.append(time.perf_counter() - t0)
    names = ["first_call_s", "warm_call_s"] if calls == 2 else ["seconds"]
    report = {name: round(t, 3) for name, t in zip(names, times, strict=True)}
    report |= {"angular": out["angular"], "wasserstein": out["wasserstein"]}
    return report, out


def alignment(out: dict, kw: dict) -> dict:
    """How much our optimal rotation C mixes the DMD coordinates: mean over rows of
    1 - max_j C_ij^2 (0 for a signed permutation), and the angle with no rotation."""
    _, c = procrustes_similarity(out["dmd_x"], out["dmd_y"], iters=kw["iters"], lr=kw["lr"])
    return {
        "rotation_mixing": float(np.mean(1.0 - np.max(c**2, axis=1))),
        "unaligned_angular": angular_distance(out["dmd_x"], out["dmd_y"]),
    }


def import_reference():
    """The reference `DSA` class, or None (with a message on stderr) if dsa-metric is missing."""
    try:
        import torch  # noqa: F401
        from DSA import DSA
    except ImportError as err:
        print(
            f"reference skipped: cannot import DSA from dsa-metric ({err}). Install it in a"
            " separate venv: pip install torch==2.13.0, then pip install dsa-metric",
            file=sys.stderr,
        )
        return None
    return DSA


def run_reference(dsa_cls, x: np.ndarray, y: np.ndarray, kw: dict, ours_out: dict) -> dict:
    """Time the reference `DSA(x, y, ...).fit_score()` (angular) and score Wasserstein too.

    fit_score() is fit_dmds() then score(); they are called separately so the
    DMD matrices can be copied in between (score() normalises them in place).
    `dmd_eig_gap_*` is our Wasserstein distance between our and the reference's
    DMD eigenvalues of the same system: near 0 when both fit the same operator.
    """
    from DSA import SimilarityTransformDist

    t0 = time.perf_counter()
    ref = dsa_cls(
        x,
        y,
        n_delays=kw["n_delays"],
        rank=kw["rank"],
        iters=kw["iters"],
        lr=kw["lr"],
        score_method="angular",
        device="cpu",
    )
    ref.fit_dmds()
    t1 = time.perf_counter()
    a_x, a_y = (ref.dmds[i][0].A_v.detach().clone() for i in (0, 1))
    t2 = time.perf_counter()
    angular = float(ref.score())
    t3 = time.perf_counter()
    wasserstein = float(SimilarityTransformDist(score_method="wasserstein").fit_score(a_x, a_y))
    a_x, a_y = a_x.double().numpy(), a_y.double().numpy()
    return {
        "seconds": round((t1 - t0) + (t3 - t2), 3),
        "dmd_fit_s": round(t1 - t0, 3),
        "procrustes_s": round(t3 - t2, 3),
        "angular": angular,
        "wasserstein": wasserstein,
        "wasserstein_sqrt": float(np.sqrt(wasserstein)),
        "dmd_eig_gap_x": wasserstein_eigenvalue_distance(ours_out["dmd_x"], a_x),
        "dmd_eig_gap_y": wasserstein_eigenvalue_distance(ours_out["dmd_y"], a_y),
    }


def versions(with_reference: bool) -> dict:
    """Versions of the libraries that do the work, and the CPU."""
    names = ["jax", "numpy", "scipy"] + (["torch", "dsa-metric"] if with_reference else [])
    out = {name: importlib.metadata.version(name) for name in names}
    if with_reference:
        import torch

        out["torch_threads"] = torch.get_num_threads()
    return out | {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}


def load_avg() -> list[float]:
    """1-, 5- and 15-minute load averages: above the core count, timings are contended."""
    return [round(v, 2) for v in os.getloadavg()]


def emit(report: dict) -> None:
    """Record the load average at the end and print the report as JSON."""
    report["load_avg_end"] = load_avg()
    print(json.dumps(report, indent=2))


def parse_args() -> argparse.Namespace:
    """Command-line settings; unset sizes come from FULL, or QUICK with --quick."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in FULL:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--gain", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke-test sizes: " + str(QUICK))
    p.add_argument("--no-reference", action="store_true", help="time ours only")
    args = p.parse_args()
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main() -> None:
    args = parse_args()
    kw = dict(n_delays=args.n_delays, rank=args.rank, iters=args.iters, lr=args.lr)
    pairs = make_pairs(args)
    load_start = load_avg()
    dsa_cls = None if args.no_reference else import_reference()

    # ours first, all of it, so torch's threads are not yet around
    ours_rot, out_rot = run_ours(*pairs["rotated"], kw, calls=2)
    ours_copy, out_copy = run_ours(*pairs["rotated_dynamics_copy"], kw, calls=1)
    ours_diff, out_diff = run_ours(*pairs["flip_flop_vs_limit_cycle"], kw, calls=1)
    ours_rot |= alignment(out_rot, kw)
    ours_copy |= alignment(out_copy, kw)
    report = {"settings": vars(args) | {"versions": versions(dsa_cls is not None)}}
    report["load_avg_start"] = load_start
    report["ours"] = ours_rot
    if dsa_cls is None:
        report["reference"] = {"skipped": "dsa-metric (import DSA) not available"}
        report["copy_pair"] = {"ours": ours_copy}
        report["different_pair"] = {"ours": ours_diff}
        emit(report)
        return

    ref_rot = run_reference(dsa_cls, *pairs["rotated"], kw, out_rot)
    ref_copy = run_reference(dsa_cls, *pairs["rotated_dynamics_copy"], kw, out_copy)
    ref_diff = run_reference(dsa_cls, *pairs["flip_flop_vs_limit_cycle"], kw, out_diff)
    report["reference"] = ref_rot
    report["speedup"] = {
        "vs_warm_call": round(ref_rot["seconds"] / ours_rot["warm_call_s"], 1),
        "vs_first_call": round(ref_rot["seconds"] / ours_rot["first_call_s"], 1),
    }
    report["copy_pair"] = {"ours": ours_copy, "reference": ref_copy}
    report["different_pair"] = {"ours": ours_diff, "reference": ref_diff}
    report["checks"] = {
        "ours_rotated_angular_below_0.005": ours_rot["angular"] < 0.005,
        "ours_at_least_10x_faster_warm": report["speedup"]["vs_warm_call"] >= 10,
        "both_rank_rotated_below_different": bool(
            ours_rot["angular"] < ours_diff["angular"] and ref_rot["angular"] < ref_diff["angular"]
        ),
        "both_rank_copy_below_different": bool(
            ours_copy["angular"] < ours_diff["angular"]
            and ref_copy["angular"] < ref_diff["angular"]
        ),
        # the angular score is a minimum over rotations: a lower one is the better optimum
        "ours_copy_angular_at_most_reference": ours_copy["angular"] <= ref_copy["angular"],
    }
    emit(report)


if __name__ == "__main__":
    main()
