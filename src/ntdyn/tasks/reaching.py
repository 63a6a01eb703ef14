"""Reaching task: trial specifications, training-trial sampling, center-out grids, cost.

A trial is what the world holds fixed (start, goal, field) plus the time courses
an experimenter imposes (SISU, feedback offsets). Shapes are for one trial; a
batch has a leading trial axis.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

PERT_TYPES = ("curl", "constant")
METHODS = ("fixed", "bcs", "dai", "pai-asf")


class Trial(eqx.Module):
    """One reach. K = number of steps, H = hidden units.

    start, goal: (2,) m. curl: () curl amplitude phi (N s/m). force: (2,) constant
    field force (N). sisu: (K,) scalar context input per step. feedback_offset:
    (K, 4) added to the observed [p, v] (feedback impulses); zeros when unused.

    Interventions on the network (None when absent, so training pays nothing):
    drive_profile (K,) x drive_weights (H,) is added to the hidden state after
    each update (unit stimulation, TMS, tDCS); hidden_mask (H,) multiplies it
    (0 silences a unit for the whole trial).
    """

    start: Float[Array, "2"]
    goal: Float[Array, "2"]
    curl: Float[Array, ""]
    force: Float[Array, "2"]
    sisu: Float[Array, " K"]
    feedback_offset: Float[Array, "K 4"]
    drive_profile: Float[Array, " K"] | None = None
    drive_weights: Float[Array, " H"] | None = None
    hidden_mask: Float[Array, " H"] | None = None


class PertParams(NamedTuple):
    """How training fields are drawn, per model (scalars; a model axis under vmap).

    type_code: index into PERT_TYPES. method_code: index into METHODS.
    """

    type_code: Array
    method_code: Array
    std: Array
    p_active: Array


class CostWeights(NamedTuple):
    """Weights of J = sum_k (k/K)^e |p_k - p*|^2 + w_v |v_K|^2 + w_u sum|u|^2 + w_h sum|h|^2."""

    position: Array
    position_exponent: Array
    final_velocity: Array
    control: Array
    hidden: Array


def pert_params(hp: dict) -> PertParams:
    """Per-model field sampling parameters from flattened hyperparameters."""
    return PertParams(
        type_code=jnp.asarray(PERT_TYPES.index(hp["train__pert__type"]), jnp.int32),
        method_code=jnp.asarray(METHODS.index(hp["train__method"]), jnp.int32),
        std=jnp.asarray(hp["train__pert__std"], jnp.float32),
        p_active=jnp.asarray(hp["train__pert__p_active"], jnp.float32),
    )


def cost_weights(hp: dict) -> CostWeights:
    """Cost weights from flattened hyperparameters (`cost__*`)."""
    return CostWeights(
        *(jnp.asarray(hp[f"cost__{name}"], jnp.float32) for name in CostWeights._fields)
    )


def sample_field(key: PRNGKeyArray, pert: PertParams) -> tuple[Array, Array, Array]:
    """Draw one trial's field and its SISU, per docs/science.md §1.1.

    Returns (curl phi, constant force (2,), sisu). `fixed`: active with p_active,
    amplitude std*N(0,1), SISU 0 (part 1: the network is told nothing). `bcs`:
    active with p_active, SISU = 1 if active. `dai`: always active, SISU = |amp|.
    `pai-asf`: s ~ U(0,1), amp = s*std*N(0,1), SISU = s.
    """
    k_on, k_amp, k_scale, k_angle = jax.random.split(key, 4)
    z = jax.random.normal(k_amp)
    active = jax.random.bernoulli(k_on, pert.p_active).astype(jnp.float32)
    s = jax.random.uniform(k_scale)
    m = pert.method_code
    amp = jnp.select(
        [m == 0, m == 1, m == 2],
        [active * pert.std * z, active * pert.std * z, pert.std * z],
        s * pert.std * z,
    )
    sisu = jnp.select([m == 0, m == 1, m == 2], [0.0, active, jnp.abs(amp)], s)
    is_curl = pert.type_code == 0
    angle = jax.random.uniform(k_angle, minval=-jnp.pi, maxval=jnp.pi)
    curl = jnp.where(is_curl, amp, 0.0)
    force = jnp.where(is_curl, 0.0, amp) * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    return curl, force, sisu


def sample_training_trials(
    key: PRNGKeyArray, pert: PertParams, *, batch_size: int, n_steps: int, workspace: Array
) -> Trial:
    """Random reaches: start and goal uniform in [-w, w]^2, field drawn per trial.

    Returns a Trial batch with leading axis `batch_size`.
    """
    k_start, k_goal, k_field = jax.random.split(key, 3)
    start = jax.random.uniform(k_start, (batch_size, 2), minval=-workspace, maxval=workspace)
    goal = jax.random.uniform(k_goal, (batch_size, 2), minval=-workspace, maxval=workspace)
    curl, force, sisu = jax.vmap(sample_field, (0, None))(
        jax.random.split(k_field, batch_size), pert
    )
    return Trial(
        start=start,
        goal=goal,
        curl=curl,
        force=force,
        sisu=jnp.broadcast_to(sisu[:, None], (batch_size, n_steps)),
        feedback_offset=jnp.zeros((batch_size, n_steps, 4)),
    )


def reach_cost(
    pos: Float[Array, "K 2"],
    vel: Float[Array, "K 2"],
    control: Float[Array, "K 2"],
    hidden: Float[Array, "K H"],
    goal: Float[Array, "2"],
    weights: CostWeights,
) -> dict[str, Array]:
    """The four cost terms of one trial; row k of every array is step k+1 of K.

    position = w_p sum_k (k/K)^e |p_k - p*|^2, final_velocity = w_v |v_K|^2,
    control = w_u sum_k |u_k|^2, hidden = w_h sum_k |h_k|^2. Returns scalars
    per term and their sum under `total`.
    """
    n_steps = pos.shape[0]
    ramp = (jnp.arange(1, n_steps + 1) / n_steps) ** weights.position_exponent
    terms = {
        "position": weights.position * jnp.sum(ramp * jnp.sum((pos - goal) ** 2, -1)),
        "final_velocity": weights.final_velocity * jnp.sum(vel[-1] ** 2),
        "control": weights.control * jnp.sum(control**2),
        "hidden": weights.hidden * jnp.sum(hidden**2),
    }
    terms["total"] = sum(terms.values())
    return terms


COST_TERMS = ("total", "position", "final_velocity", "control", "hidden")


# ---------------------------------------------------------------- evaluation grids


class CenterOutGrid(NamedTuple):
    """Conditions of a center-out grid, one entry per trial (numpy, for tables).

    centre: (N, 2); direction: (N,) rad; start/goal: (N, 2); centre_index,
    direction_index, repeat: (N,) ints. N = grid_n^2 * n_directions * n_repeats.
    """

    centre: np.ndarray
    direction: np.ndarray
    start: np.ndarray
    goal: np.ndarray
    centre_index: np.ndarray
    direction_index: np.ndarray
    repeat: np.ndarray


def grid_centres(grid_n: int, workspace: float, reach_length: float) -> np.ndarray:
    """(grid_n^2, 2) centres evenly spaced so every reach of `reach_length` stays inside.

    One centre sits at the origin; otherwise the grid spans [-(w - L), w - L]^2.
    """
    if grid_n < 1:
        raise ValueError(f"eval_grid_n = {grid_n}: must be an integer >= 1")
    if reach_length < 0:
        raise ValueError(f"eval_reach_length = {reach_length}: must be >= 0 (0 = hold still)")
    half = workspace - reach_length
    if half < 0:
        raise ValueError(
            f"eval_reach_length = {reach_length}: must be <= the workspace half-width {workspace}"
        )
    axis = np.zeros(1) if grid_n == 1 else np.linspace(-half, half, grid_n)
    xx, yy = np.meshgrid(axis, axis, indexing="xy")
    return np.stack([xx.ravel(), yy.ravel()], -1)


def center_out_grid(
    grid_n: int, n_directions: int, reach_length: float, n_repeats: int, workspace: float
) -> CenterOutGrid:
    """Reaches of length L from each grid centre in `n_directions` evenly spaced directions.

    Length 0 means holding still at the centre; `direction` then labels the
    direction of any imposed impulse. Trials are ordered (centre, direction, repeat).
    """
    if n_directions < 1:
        raise ValueError(f"eval_n_directions = {n_directions}: must be an integer >= 1")
    if n_repeats < 1:
        raise ValueError(f"eval_n = {n_repeats}: must be an integer >= 1")
    centres = grid_centres(grid_n, workspace, reach_length)
    angles = 2 * np.pi * np.arange(n_directions) / n_directions
    ci, di, ri = np.meshgrid(
        np.arange(len(centres)), np.arange(n_directions), np.arange(n_repeats), indexing="ij"
    )
    ci, di, ri = ci.ravel(), di.ravel(), ri.ravel()
    unit = np.stack([np.cos(angles[di]), np.sin(angles[di])], -1)
    centre = centres[ci]
    return CenterOutGrid(
        centre=centre,
        direction=angles[di],
        start=centre,
        goal=centre + reach_length * unit,
        centre_index=ci,
        direction_index=di,
        repeat=ri,
    )
