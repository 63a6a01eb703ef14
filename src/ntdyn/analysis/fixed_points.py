"""Fixed points of a discrete-time map h -> F(h, u), found from many candidates at once.

Minimises q(h) = 1/2 |F(h, u) - h|^2 (Golub & Sussillo's FixedPointFinder
objective) for all candidates in one compiled program:

1. Adam (optax) with a decaying step from every candidate (cheap: one VJP per step),
   each candidate stopping on its own when q < tol_q or its improvement stalls
   (|dq| < tol_dq);
2. Levenberg-Marquardt / Newton polishing: with A = dF/dh - I and r = F(h) - h,
   delta = -(A^T A + mu I)^{-1} A^T r with mu = |r|^2 (Yamashita & Fukushima:
   quadratic convergence at a zero-residual fixed point, and nearly undamped
   Newton steps once q is small), globalised by a backtracking line search over a
   few step lengths evaluated together. Adam alone crawls near tol_q = 1e-12;
   Newton steps get there in a handful of iterations because the Jacobian is small.

Then distance outliers and duplicates are dropped, q is kept for every point
(points with q >= tol_q are labelled slow), and each point gets its Jacobian,
eigenvalues sorted by |lambda| and a stability flag (max |lambda| < 1).

Host-side work scales with the number of points, not groups: duplicates are judged for
every group at once, and the eigendecompositions (LAPACK on the host, whatever the JAX
backend) run with single-threaded BLAS, the points spread over the host's cores. A
threaded BLAS on 100 x 100 matrices is 2-20 times slower than one thread (the threads
wait on each other), which made them the largest cost of fixed points along reaches.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from scipy.spatial import cKDTree
from threadpoolctl import ThreadpoolController

from ntdyn.analysis.dynamics import jacobians_along
from ntdyn.sharding import Devices

Step = Callable[[jax.Array, jax.Array], jax.Array]  # F(h (H,), u (n_in,)) -> (H,)

# Candidates per compiled search at most: more are searched in blocks (see find_fixed_points).
# Large, because on an accelerator a search is bound by its iterations (kernel launches), not
# by its candidates: a research-scale fps_reach search (~12 600 candidates) and every
# fps_steady search (1024) stay one program, as fast as one program was; only larger searches
# are cut, and spread over several devices.
FIXED_POINT_BLOCK = 16384

# Step lengths tried together in the line search (0 keeps the point).
LINE_SEARCH = (1.0, 0.5, 0.25, 0.1, 0.03, 0.0)


@dataclass(frozen=True)
class FixedPointConfig:
    """Options of the search (defaults: docs/science.md §5.3)."""

    tol_q: float = 1e-12
    tol_dq: float = 1e-20
    max_iters: int = 5000  # Adam iterations at most
    adam_iters: int = 300  # Adam iterations before Newton polishing (when newton_iters > 0)
    newton_iters: int = 30
    learning_rate: float = 1e-2
    lr_decay_iters: float = 200.0  # lr_k = lr / (1 + k / lr_decay_iters)
    float64: bool = True
    outlier_distance: float = 10.0  # x the mean candidate distance from their centroid
    unique_tol: float = 1e-3  # per dimension
    noise_std: float = 0.0  # Gaussian jitter added to the candidates

    def __post_init__(self):
        for name in ("tol_q", "learning_rate", "outlier_distance", "unique_tol", "lr_decay_iters"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fixed_points.{name} = {getattr(self, name)}: must be > 0")
        for name in ("max_iters", "adam_iters", "newton_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"fixed_points.{name} = {getattr(self, name)}: must be >= 0")
        if self.tol_dq < 0 or self.noise_std < 0:
            raise ValueError("fixed_points.tol_dq and noise_std must be >= 0")


@dataclass
class FixedPoints:
    """Unique fixed (and slow) points; M points, H units.

    h: (M, H). q: (M,). is_fixed: q < tol_q (else a slow point). jacobian:
    (M, H, H) dF/dh. eigenvalues, eigenvectors: (M, H), (M, H, H) columns,
    sorted by |lambda| descending (eigenvectors None when the search was asked
    for none). stable: max |lambda| < 1. candidate: index of
    the candidate each point came from. `candidates_q` (N,) and
    `candidates_converged` describe every candidate before outlier and duplicate
    removal; `n_iters` (N,) the iterations each used.
    """

    h: np.ndarray
    q: np.ndarray
    is_fixed: np.ndarray
    jacobian: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    stable: np.ndarray
    candidate: np.ndarray
    candidates_q: np.ndarray
    n_iters: np.ndarray
    config: FixedPointConfig = field(default_factory=FixedPointConfig)
    group: np.ndarray | None = None  # (M,) the input group of each point, when grouped
    device: jax.Device | None = None  # where the search ran (its first block)

    @property
    def candidates_converged(self) -> np.ndarray:
        return self.candidates_q < self.config.tol_q

    def table(self) -> pd.DataFrame:
        """One row per point: q, kind, stability and its spectrum's summary."""
        mags = np.abs(self.eigenvalues)
        return pd.DataFrame(
            {
                "point": np.arange(len(self.q)),
                "q": self.q,
                "kind": np.where(self.is_fixed, "fixed", "slow"),
                "stable": self.stable,
                "max_abs_eigenvalue": mags[:, 0] if mags.size else np.zeros(0),
                "n_unstable_modes": (mags > 1).sum(axis=1),
                "candidate": self.candidate,
                "group": self.group if self.group is not None else np.zeros(len(self.q), int),
            }
        )


def x64(enabled: bool = True):
    """Context in which JAX computes in float64 (a no-op when not `enabled`)."""
    if not enabled:
        return contextlib.nullcontext()
    return jax.enable_x64(True)


@dataclass(frozen=True)
class Search:
    """One fixed-point search of `search_fixed_points` (the arguments of `find_fixed_points`).

    candidates: (N, H) states, or a function of no arguments that returns them, called on
    the device the search runs on (JAX's default device there: e.g. a roll-out from sampled
    states, so that it does not queue behind the other devices' searches on the first one).
    """

    step: Step
    candidates: np.ndarray | Callable[[], np.ndarray]
    inputs: np.ndarray
    config: FixedPointConfig | None = None
    seed: int = 0
    groups: np.ndarray | None = None
    eigenvectors: bool = True


def find_fixed_points(
    step: Step,
    candidates: np.ndarray,
    inputs: np.ndarray,
    config: FixedPointConfig | None = None,
    *,
    seed: int = 0,
    groups: np.ndarray | None = None,
    eigenvectors: bool = True,
    devices: Devices | None = None,
    block: int = FIXED_POINT_BLOCK,
) -> FixedPoints:
    """Fixed points of h -> step(h, u) from `candidates` (N, H) at inputs `inputs`.

    inputs: (n_in,) shared by all candidates, or (N, n_in) one per candidate.
    groups: (N,) labels of candidates that share an input (e.g. a time step along a
    reach): all are solved in one program, duplicates are judged within each group
    (outliers against all candidates), and `FixedPoints.group` says which group a
    point is from.
    `step` is a JAX function (or an Equinox module / `eqx.Partial`, whose arrays
    are traced); the same `seed` gives the same points. eigenvectors: False computes
    the eigenvalues alone (about half the host time; `FixedPoints.eigenvectors` is None).
    block: candidates per compiled search at most; N > block are searched in
    ceil(N / block) blocks of equal size (the last padded), one after another on one
    device, in turn on several. The points depend on `block` (in the last bits, when
    N > block), never on the devices.
    devices: the local devices the blocks are spread over (default: all); each block is
    searched with the one-device program, so the points are those of one device, bitwise
    (a search of one block runs on the first device). Many searches: `search_fixed_points`.
    """
    search = Search(step, candidates, inputs, config, seed, groups, eigenvectors)
    return next(search_fixed_points([search], devices=devices, block=block))


# Blocks in flight per device at most in `search_fixed_points` (dispatched, not finished): two
# keep a device busy while the host finishes its previous search.
SEARCHES_PER_DEVICE = 2


def search_fixed_points(
    searches: Iterable[Search],
    *,
    devices: Devices | None = None,
    block: int = FIXED_POINT_BLOCK,
    per_device: int = SEARCHES_PER_DEVICE,
) -> Iterator[FixedPoints]:
    """The fixed points of every search (`find_fixed_points` of each), in order, the
    searches spread over the local devices.

    Each search is cut into blocks of at most `block` candidates (one block unless N >
    block) and block k of all of them, counted across the searches, runs on device k mod n
    of `devices` (default: all): search k on device k mod n when every search is one block.
    A block is the one-device program at its shape, whichever device runs it, so a search's
    numbers are those of one device, bitwise. The device work is dispatched without
    waiting (`jax.jit` returns at once) while the host finishes the searches in order
    (duplicates, Jacobians of the kept points on the search's device, spectra): at most
    per_device x n blocks are in flight (at least one search), which bounds the memory.
    `FixedPoints.device` is the device of a search's first block. `searches` is read
    lazily, as the window allows.
    """
    if not (isinstance(block, int) and block >= 1):
        raise ValueError(f"block = {block!r}: must be an integer >= 1 (candidates per search)")
    if not (isinstance(per_device, int) and per_device >= 1):
        raise ValueError(f"per_device = {per_device!r}: must be an integer >= 1 (blocks in "
                         "flight per device)")  # fmt: skip
    return _searched(iter(searches), (devices or Devices()).plan().devices, block, per_device)


def _searched(todo: Iterator[Search], devices: tuple, block: int, per_device: int):
    """`search_fixed_points`'s loop, its arguments checked."""
    limit, pending, in_flight, next_block = per_device * len(devices), deque(), 0, 0
    copies = _StepCopies()
    more = True
    while True:
        while more and (not pending or in_flight < limit):
            search = next(todo, None)
            if search is None:
                more = False
                break
            dispatched = _dispatch(search, devices, next_block, block, copies)
            next_block += len(dispatched.parts)
            in_flight += len(dispatched.parts)
            pending.append(dispatched)
        if not pending:
            return
        done = pending.popleft()
        in_flight -= len(done.parts)
        yield _finish(done)


def split_step(step: Step) -> tuple:
    """(array leaves, static part) of a step, as `_solve` takes it: the arrays as a pytree
    (None elsewhere), the rest as a hashable (treedef, leaves) pair, as `eqx.filter_jit`
    splits its arguments."""
    arrays, static = eqx.partition(step, eqx.is_array)
    leaves, treedef = jax.tree.flatten(static)
    return arrays, (treedef, tuple(leaves))


class _StepCopies:
    """The array leaves of the current search's step on each device, copied once (searches
    of one model share them), and its static part as a hashable (treedef, leaves) key of the
    compiled search: a new step drops the copies of the previous one."""

    def __init__(self):
        self.step, self.static, self.on = None, None, {}

    def __call__(self, step, device: jax.Device):
        if step is not self.step:
            self.step, self.on = step, {}
            self.arrays, self.static = split_step(step)
        if device not in self.on:
            # the step's arrays finished first: a copy waits for nothing on another device
            self.on[device] = jax.device_put(jax.block_until_ready(self.arrays), device)
        return self.on[device], self.static


@dataclass
class _Dispatched:
    """A search whose blocks are running: what its finish needs."""

    search: Search
    config: FixedPointConfig
    n: int  # candidates
    h0: jax.Array  # (N, H) the candidates searched from (noise added), on `device`
    u: jax.Array  # (N, n_in) their inputs
    parts: list  # per block: (h, q, iterations), each on its device
    device: jax.Device  # its first block's
    step: Step  # the step with its arrays on `device`


def _dispatch(search: Search, devices: tuple, first: int, block: int, copies) -> _Dispatched:
    """Prepare a search's blocks (block k of it on devices[(first + k) % n]) and start them."""
    cfg = search.config or FixedPointConfig()
    device = devices[first % len(devices)]
    candidates = search.candidates
    if callable(candidates):  # in JAX's own precision (not the search's), on the device
        with jax.default_device(device):
            candidates = candidates()
    with x64(cfg.float64), jax.default_device(device):
        candidates = np.asarray(candidates)
        if candidates.ndim != 2 or len(candidates) == 0:
            raise ValueError(f"candidates must be (N, H) with N >= 1, got shape {candidates.shape}")
        inputs = np.asarray(search.inputs)
        if inputs.ndim == 1:
            inputs = np.broadcast_to(inputs, (len(candidates), inputs.shape[0]))
        if inputs.shape[0] != len(candidates):
            raise ValueError(f"inputs must be (n_in,) or (N, n_in) with N = {len(candidates)}, "
                             f"got {inputs.shape}")  # fmt: skip
        if search.groups is not None and np.shape(search.groups) != (len(candidates),):
            raise ValueError(f"groups must be (N,) with N = {len(candidates)}")
        adam_iters = cfg.max_iters if cfg.newton_iters == 0 else min(cfg.adam_iters, cfg.max_iters)
        dtype = jnp.float64 if cfg.float64 else jnp.float32
        n = len(candidates)
        options = (adam_iters, cfg.newton_iters, cfg.tol_q, cfg.tol_dq, cfg.learning_rate,
                   cfg.lr_decay_iters)  # fmt: skip
        # One compiled search per block of at most `block` candidates (one block of N when
        # N <= block: the search as it always was), the last padded with copies of the last
        # candidate (whose search is the last one's: the loops stop no later); several
        # devices take the blocks in turn. Every block is the one-device program at the
        # same shape on every path: XLA:CPU compiles a sum over units differently above a
        # size (measured: (N, 32) float64 rows at N < 128 and N >= 128), so a block cut
        # to another number of rows would round differently.
        n_blocks = -(-n // block)
        size = -(-n // n_blocks)  # as few blocks as `block` allows, of equal size
        # A block's start points are made on the device that searches it, from the host's
        # candidates (the same program, so the same numbers, on every device): a block never
        # waits for another device's queue, and a device never copies from another one
        # while both have work in flight (with blocks copied from the first device, the
        # forced CPU devices of the sharding test hung once, every thread idle).
        starts = {}
        parts = []
        for k in range(n_blocks):
            on = devices[(first + k) % len(devices)]
            if on not in starts:
                with jax.default_device(on):
                    starts[on] = _start_points(candidates, inputs, dtype, cfg.noise_std,
                                               search.seed, n_blocks * size)  # fmt: skip
            h0_p, u_p = starts[on]
            arrays, static = copies(search.step, on)
            rows = slice(k * size, (k + 1) * size)
            parts.append(_solve(arrays, static, h0_p[rows], u_p[rows], options))
        h0, u = (x[:n] for x in starts[device])  # block 0 ran on `device`
        arrays, static = copies(search.step, device)
        step = eqx.combine(arrays, jax.tree.unflatten(*static))
    return _Dispatched(search, cfg, n, h0, u, parts, device, step)


def _start_points(
    candidates: np.ndarray, inputs: np.ndarray, dtype, noise_std: float, seed: int, rows: int
) -> tuple[jax.Array, jax.Array]:
    """(h0, u), (rows, H) and (rows, n_in) on JAX's default device: the candidates in the
    search's precision plus noise_std x N(0, 1) from PRNGKey(seed), and their inputs, both
    padded to `rows` with copies of the last row."""
    h0 = jnp.asarray(candidates, dtype)
    if noise_std > 0:
        h0 = h0 + noise_std * jax.random.normal(jax.random.PRNGKey(seed), h0.shape, dtype)
    u = jnp.asarray(inputs, dtype)
    extra = rows - len(candidates)
    if extra:
        h0, u = (jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]) for x in (h0, u))
    return h0, u


def _finish(d: _Dispatched) -> FixedPoints:
    """The host's part of a dispatched search: waits for its blocks, keeps the unique points,
    computes their Jacobians (on the search's device) and spectra."""
    cfg = d.config
    with x64(cfg.float64), jax.default_device(d.device):
        h, q, n_iters = (np.concatenate([np.asarray(part[i]) for part in d.parts])[: d.n]
                         for i in range(3))  # fmt: skip
        h0, inputs = np.asarray(d.h0), np.asarray(d.u)
        if d.search.groups is None:
            kept, group_of = _kept(h, q, h0, cfg), None
        else:
            groups = np.asarray(d.search.groups)
            kept = _kept_in_groups(h, q, h0, groups, cfg)
            group_of = groups[kept]
        # Jacobians of the kept points only, in the search's precision
        jac = _point_jacobians(d.step, h[kept], inputs[kept])
    points = _with_spectra(h, q, n_iters, jac, kept, cfg, eigenvectors=d.search.eigenvectors)
    points.group = group_of
    points.device = d.device
    return points


def _q(step: Step, h, u):
    r = step(h, u) - h
    return 0.5 * jnp.sum(r**2)


# `jax.jit`, not `eqx.filter_jit`: filter_jit waits for its outputs (to raise Equinox's
# runtime errors), which would run the searches of several devices one after another. So
# the step comes split: its arrays (traced) and its static part as a hashable (treedef,
# leaves) pair, as filter_jit splits it (the same program).
@functools.partial(jax.jit, static_argnums=(1, 4))
def _solve(step_arrays, step_static, h0, u, options):
    step = eqx.combine(step_arrays, jax.tree.unflatten(*step_static))
    adam_iters, newton_iters, tol_q, tol_dq, lr, lr_decay = options
    n, dim = h0.shape
    q_and_grad = jax.vmap(jax.value_and_grad(_q, argnums=1), (None, 0, 0))
    q_of = jax.vmap(_q, (None, 0, 0))

    # Adam on every candidate at once, its step decaying as lr / (1 + k / lr_decay); the
    # moments see every candidate's gradient, but only the active ones move.
    optimiser = optax.chain(
        optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-12),
        optax.scale_by_learning_rate(lambda k: lr / (1 + k / lr_decay)),
    )

    def adam(state):
        k, h, opt_state, q_prev, active, iters = state
        q, g = q_and_grad(step, h, u)
        active = active & (q >= tol_q) & (jnp.abs(q_prev - q) >= tol_dq)
        dh, opt_state = optimiser.update(g, opt_state)
        h = jnp.where(active[:, None], h + dh, h)
        return k + 1, h, opt_state, q, active, iters + active

    state = (0, h0, optimiser.init(h0), jnp.full(n, jnp.inf, h0.dtype), jnp.ones(n, bool),
             jnp.zeros(n, jnp.int32))  # fmt: skip
    state = jax.lax.while_loop(lambda s: (s[0] < adam_iters) & s[4].any(), adam, state)
    _, h, *_, iters = state

    eye = jnp.eye(dim, dtype=h0.dtype)
    alphas = jnp.asarray(LINE_SEARCH, h0.dtype)

    def newton_step(h_i, u_i):
        r = step(h_i, u_i) - h_i
        a = jax.jacfwd(step)(h_i, u_i) - eye
        mu = jnp.sum(r**2)  # |r|^2; |r| damps too much: 100+ iterations instead of ~10
        delta = -jnp.linalg.solve(a.T @ a + mu * eye, a.T @ r)
        trial = h_i + alphas[:, None] * delta
        q_trial = jax.vmap(lambda x: _q(step, x, u_i))(trial)
        best = jnp.argmin(q_trial)
        return trial[best], q_trial[best], 0.5 * jnp.sum(r**2)

    def newton(state):
        k, h, active, iters, _ = state
        h_new, q_new, q_old = jax.vmap(newton_step)(h, u)
        improving = (q_old >= tol_q) & (q_old - q_new >= tol_dq)
        active = active & improving
        h = jnp.where(active[:, None], h_new, h)
        # Another iteration can only move a candidate that stepped and is still above
        # tol_q: one that reached it would stop there (its q_old < tol_q), unmoved. Without
        # this the loop would run one whole iteration more just to find that out.
        more = (active & (q_new >= tol_q)).any()
        return k + 1, h, active, iters + active, more

    state = (0, h, jnp.ones(n, bool), iters, jnp.asarray(True))
    _, h, _, iters, _ = jax.lax.while_loop(lambda s: (s[0] < newton_iters) & s[4], newton, state)
    # No Jacobian per candidate here: (N, H, H) is the largest array of the search, and
    # only the unique points need theirs (`_point_jacobians`).
    return h, q_of(step, h, u), iters


# Points per compiled Jacobian call at most: more are computed in blocks of this size.
JACOBIAN_BLOCK = 1024


def _point_jacobians(step, h: np.ndarray, u: np.ndarray) -> np.ndarray:
    """dF/dh at the M points h (M, H) with inputs u (M, n_in): (M, H, H).

    Padded to the next power of two up to JACOBIAN_BLOCK points, and in blocks of
    JACOBIAN_BLOCK beyond, so a few compiled shapes serve every number of points found
    (in the dtype of `h`: call it inside the search's precision context).
    """
    m, dim = h.shape
    if m == 0:
        return np.zeros((0, dim, dim), h.dtype)
    size = min(1 << (m - 1).bit_length(), JACOBIAN_BLOCK)
    out = np.empty((m, dim, dim), h.dtype)
    for start in range(0, m, size):
        idx = np.minimum(np.arange(start, start + size), m - 1)
        out[start : start + size] = jacobians_along(step, h[idx], u[idx])[: m - start]
    return out


def _inliers(h, q, cloud, cfg: FixedPointConfig) -> np.ndarray:
    """Finite q and no farther from the centroid of `cloud` than outlier_distance x the
    mean distance of `cloud` from it."""
    centroid = cloud.mean(axis=0)
    scale = np.linalg.norm(cloud - centroid, axis=1).mean()
    inlier = np.linalg.norm(h - centroid, axis=1) <= cfg.outlier_distance * max(scale, 1e-12)
    return inlier & np.isfinite(q)


def _kept(h, q, h0, cfg: FixedPointConfig, cloud=None) -> np.ndarray:
    """Indices of the candidates kept: no distance outliers, no duplicates (of each set of
    duplicates the lowest q), in order of q.

    Outliers are judged against `cloud` (default: these candidates), the states the
    candidates were sampled from.
    """
    inlier = _inliers(h, q, h0 if cloud is None else cloud, cfg)
    order = np.flatnonzero(inlier)[np.argsort(q[inlier], kind="stable")]
    # Greedy in order of q: keep a candidate no kept point is near (|x - y| < unique_tol in
    # every dimension), then drop every candidate near it, found by a k-d tree in the max
    # norm: one query per kept point. Comparing each candidate with every kept point
    # (O(N^2 H)) was the largest host cost of fps_steady once trained networks had many
    # distinct slow points. The radius is just below unique_tol because the tree counts
    # distance <= r as near.
    points = h[order]
    tree = cKDTree(points)
    radius = np.nextafter(cfg.unique_tol, 0)
    kept_rank, dropped = np.zeros(len(order), bool), np.zeros(len(order), bool)
    for rank in range(len(order)):
        if not dropped[rank]:
            kept_rank[rank] = True
            dropped[tree.query_ball_point(points[rank], radius, p=np.inf)] = True
    return order[kept_rank].astype(int)


def _kept_in_groups(h, q, h0, groups: np.ndarray, cfg: FixedPointConfig) -> np.ndarray:
    """`_kept` within each group, for every group at once: indices of the kept candidates,
    group by group in ascending label, each group's in order of q.

    Outliers are judged against all the candidates `h0`: a group's few nearby candidates
    say nothing about how far its fixed point may lie. Duplicates are judged within a
    group, greedily in order of q (ties: candidate order) as `_kept` does: a candidate is
    kept unless it is within unique_tol (per dimension) of one kept before it. The
    greedy pass runs over the rank within a group (a few steps for small groups), each
    step over every group at once.
    """
    idx = np.flatnonzero(_inliers(h, q, h0, cfg))
    idx = idx[np.lexsort((q[idx], groups[idx]))]  # stable: ties in q keep candidate order
    if idx.size == 0:
        return idx.astype(int)
    _, start, count = np.unique(groups[idx], return_index=True, return_counts=True)
    row = np.repeat(np.arange(len(start)), count)
    rank = np.arange(len(idx)) - start[row]
    slots = np.full((len(start), count.max()), -1)
    slots[row, rank] = idx
    valid = slots >= 0
    points = h[np.maximum(slots, 0)]  # (group, rank, H)
    kept = np.zeros_like(valid)
    kept[:, 0] = valid[:, 0]
    for j in range(1, slots.shape[1]):
        near = np.all(np.abs(points[:, :j] - points[:, j : j + 1]) < cfg.unique_tol, axis=-1)
        kept[:, j] = valid[:, j] & ~np.any(near & kept[:, :j], axis=1)
    return slots[kept].astype(int)


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _host_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# Points per thread below which the eigendecompositions run in the calling thread alone.
EIG_POINTS_PER_THREAD = 16


def _spectra(jac: np.ndarray, eigenvectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """np.linalg.eig (or eigvals) of every matrix of jac (M, H, H), with single-threaded
    BLAS and the matrices spread over the host's cores (numpy's LAPACK calls release the
    GIL). Each matrix is decomposed on its own: the results do not depend on the split."""
    solve = np.linalg.eig if eigenvectors else np.linalg.eigvals
    n_threads = min(_host_threads(), len(jac) // EIG_POINTS_PER_THREAD)
    with _blas().limit(limits=1, user_api="blas"):
        if n_threads <= 1:
            parts = [solve(jac)]
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                parts = list(pool.map(solve, np.array_split(jac, 4 * n_threads)))
    if not eigenvectors:
        return np.concatenate(parts), None
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]))  # fmt: skip


def _with_spectra(
    h, q, n_iters, jac, idx, cfg: FixedPointConfig, eigenvectors: bool = True
) -> FixedPoints:
    """The kept points `idx` with their Jacobians `jac` (M, H, H), eigendecompositions
    (sorted by |lambda|, descending; eigenvalues alone unless `eigenvectors`) and
    stability."""
    dim = h.shape[1]
    if idx.size:
        eigvals, eigvecs = _spectra(jac, eigenvectors)
    else:
        eigvals = np.zeros((0, dim), complex)
        eigvecs = np.zeros((0, dim, dim), complex) if eigenvectors else None
    order = np.argsort(-np.abs(eigvals), axis=1, kind="stable")
    eigvals = np.take_along_axis(eigvals, order, axis=1)
    if eigvecs is not None:
        eigvecs = np.take_along_axis(eigvecs, order[:, None, :], axis=2)
    return FixedPoints(
        h=h[idx],
        q=q[idx],
        is_fixed=q[idx] < cfg.tol_q,
        jacobian=jac,
        eigenvalues=eigvals,
        eigenvectors=eigvecs,
        stable=np.abs(eigvals).max(axis=1) < 1 if idx.size else np.zeros(0, bool),
        candidate=idx,
        candidates_q=q,
        n_iters=n_iters,
        config=cfg,
    )
