"""Recurrent scans over a given input sequence, built for a latency-bound GPU (issue 16).

A cell h' = f(W x + b, h) driven by inputs x_1..x_T that do not depend on its state (the
spikes an encoder reads, the task inputs a generator is fed) is run here with two changes
to the program, none to the numbers (`tests/models/test_scans.py`: the same states and
gradients as stepping the cell, to float rounding):

1. **The input's share, W x_t + b, is computed for all t before the time loop**: one matrix
   product over (T, I) instead of T products inside the loop (`input_share`).
2. **The GRU's gradient is written out** (`gru_sequence`, a `jax.custom_vjp`): the reverse
   loop carries only dL/dh and keeps each step's gate gradients, and the weight gradients
   are one product over all T after the loop. Differentiating the plain scan instead
   accumulates dW_hh (and dW_ih) inside the reverse loop: two more matrix products per step.

On a GPU a small recurrent step runs one kernel after another for T dependent steps, so each
kernel taken out of the loop body is saved T times, forward and backward. Cells with a
separable input share: Equinox's GRU (both changes), `TanhRNNCell` and `LinearCell` (the
LDS; the first change); any other cell (the NODE, whose MLP reads [h, u] together) is
stepped as it is. `gru_sequence` has a reverse-mode rule only (no `jax.jvp` through it):
forward-mode derivatives (fixed points, Jacobians) go through the models' one-step `step`.
"""

from __future__ import annotations

import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ntdyn.models.cells import TanhRNNCell, scan_unroll
from ntdyn.models.generators import LinearCell

# The written-out scans pay on accelerators; on the CPU (SAE-GRU training at the benchmark's
# 3BFF size, benchmarks/results/data_model_scans_cpu.json) they run 0.20 steps/s against the
# plain scan's 0.46, whose small per-step products cost little there: the CPU keeps it.
WRITTEN_GRADIENTS_ENV = "NTDYN_WRITTEN_GRADIENTS"


def written_gradients(on_accelerators: bool = True) -> bool:
    """Whether the models run their recurrences with the gradient written out (here:
    `scan_inputs`, `scan_both_ways`, `gru_sequence`; the closed loop: `closed_loop._Loop.
    written`) rather than by differentiating the plain cell scan. NTDYN_WRITTEN_GRADIENTS=1 or
    0 decides (timing both ways, e.g. `benchmarks/data_model_scans.py`); unset: on GPU/TPU
    when `on_accelerators` (a way measured faster there), never on the CPU. Read when a
    program is traced: the numbers are the same either way, to float rounding."""
    value = os.environ.get(WRITTEN_GRADIENTS_ENV)
    if value is not None:
        if value not in ("0", "1"):
            raise ValueError(f"{WRITTEN_GRADIENTS_ENV} = {value!r}: must be 0 or 1 (or unset: "
                             "on accelerators only)")  # fmt: skip
        return value == "1"
    return on_accelerators and jax.default_backend() != "cpu"


def input_share(cell: eqx.Module, xs: Float[Array, "T I"]) -> Float[Array, "T K"] | None:
    """The input's share of every step (T, K) for a cell that has one, else None.

    GRU: W_ih x + b (T, 3H), the reset, update and candidate gates' input parts; tanh RNN:
    U x + b (T, H); LDS: B x + b (T, G)."""
    if isinstance(cell, eqx.nn.GRUCell):
        share = xs @ cell.weight_ih.T
        return share + cell.bias if cell.use_bias else share
    if isinstance(cell, TanhRNNCell):
        return jax.vmap(cell.input_to_hidden)(xs)
    if isinstance(cell, LinearCell):
        return jax.vmap(cell.input_map)(xs)
    return None


def gru_gates(share, hg, bias_n):
    """Reset r, update z and candidate n of Equinox's GRU from the input share W_ih x + b and
    the state's share hg = W_hh h (both (..., 3H)); its update is `gru_update`."""
    s0, s1, s2 = jnp.split(share, 3, axis=-1)
    g0, g1, g2 = jnp.split(hg, 3, axis=-1)
    r = jax.nn.sigmoid(s0 + g0)
    z = jax.nn.sigmoid(s1 + g1)
    n = jnp.tanh(s2 + r * (g2 + bias_n))
    return r, z, n


def gru_update(share, hg, bias_n, h):
    """Equinox's GRU step h' = n + z (h - n) from the two shares (`gru_gates`)."""
    _, z, n = gru_gates(share, hg, bias_n)
    return n + z * (h - n)


def _gru_forward(weight_hh, bias_n, share, h0, noise, unroll):
    def step(h, xs):
        s, xi = xs
        h = gru_update(s, weight_hh @ h, bias_n, h) + xi
        return h, h

    return jax.lax.scan(step, h0, (share, noise), unroll=unroll)[1]


# unroll (static, a Python int) is not differentiated: nondiff_argnums
@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _gru_sequence(weight_hh, bias_n, share, h0, noise, unroll):
    return _gru_forward(weight_hh, bias_n, share, h0, noise, unroll)


def _gru_sequence_fwd(weight_hh, bias_n, share, h0, noise, unroll):
    hs = _gru_forward(weight_hh, bias_n, share, h0, noise, unroll)
    return hs, (weight_hh, bias_n, share, h0, hs)


def _gru_sequence_bwd(unroll, residuals, d_hs):
    weight_hh, bias_n, share, h0, hs = residuals
    h_prev = jnp.concatenate([h0[None], hs[:-1]])  # (T, H): each step's incoming state
    hg = h_prev @ weight_hh.T  # (T, 3H), one product off the sequential path
    r, z, n = gru_gates(share, hg, bias_n)
    g2 = jnp.split(hg, 3, axis=-1)[2] + bias_n

    def step(dh_next, xs):
        d_out, r_t, z_t, n_t, g2_t, hp_t = xs
        dh = d_out + dh_next  # dL/dh_t: its own output's and the later steps'
        da_n = dh * (1 - z_t) * (1 - n_t**2)
        da_r = da_n * g2_t * r_t * (1 - r_t)
        da_z = dh * (hp_t - n_t) * z_t * (1 - z_t)
        d_hg = jnp.concatenate([da_r, da_z, da_n * r_t])
        d_share = jnp.concatenate([da_r, da_z, da_n])
        return dh * z_t + d_hg @ weight_hh, (d_share, d_hg, dh)

    d_h0, (d_share, d_hg, d_h) = jax.lax.scan(
        step, jnp.zeros_like(h0), (d_hs, r, z, n, g2, h_prev), reverse=True, unroll=unroll
    )
    d_weight_hh = d_hg.T @ h_prev  # the sum over t of d(W_hh h_{t-1}) h_{t-1}^T: one product
    d_bias_n = jnp.split(d_hg, 3, axis=-1)[2].sum(0)  # b_n sits beside W_hh h in the candidate
    # h_t = GRU(...) + noise_t: the noise's cotangent is dL/dh_t itself
    return d_weight_hh, d_bias_n, d_share, d_h0, d_h


_gru_sequence.defvjp(_gru_sequence_fwd, _gru_sequence_bwd)


def gru_sequence(
    cell: eqx.nn.GRUCell, share: Float[Array, "T 3H"], h0: Float[Array, " H"],
    noise: Float[Array, "T H"] | None = None, unroll: int | None = None,
) -> Float[Array, "T H"]:  # fmt: skip
    """States h_1..h_T of Equinox's GRU `cell` from the input's share (`input_share`) and h0,
    with `noise` (T, H) added to each new state when given (a source's hidden noise), by the
    written-out gradient (module docstring). unroll: steps per loop iteration (None:
    `scan_unroll()`)."""
    bias_n = cell.bias_n if cell.use_bias else jnp.zeros(cell.hidden_size, share.dtype)
    noise = jnp.zeros((share.shape[0], cell.hidden_size), share.dtype) if noise is None else noise
    unroll = scan_unroll() if unroll is None else unroll
    return _gru_sequence(cell.weight_hh, bias_n, share, h0, noise, unroll)


def scan_inputs(
    cell: eqx.Module, xs: Float[Array, "T I"], h0: Float[Array, " H"], unroll: int | None = None
) -> Float[Array, "T H"]:
    """States h_1..h_T of `cell` driven by xs from h0 (unroll: steps per loop iteration, None:
    `scan_unroll()`)."""
    unroll = scan_unroll() if unroll is None else unroll
    if isinstance(cell, eqx.nn.GRUCell):
        return gru_sequence(cell, input_share(cell, xs), h0, unroll=unroll)
    share = input_share(cell, xs)
    if share is None:

        def plain(h, x):
            h = cell(x, h)
            return h, h

        return jax.lax.scan(plain, h0, xs, unroll=unroll)[1]
    if isinstance(cell, TanhRNNCell):
        rec = cell.hidden_to_hidden
        step = lambda h, s: (h := jnp.tanh(s + rec(h)), h)  # noqa: E731
    else:  # LinearCell
        step = lambda h, s: (h := cell.dynamics(h) + s, h)  # noqa: E731
    return jax.lax.scan(step, h0, share, unroll=unroll)[1]


def scan_both_ways(
    fwd: eqx.nn.GRUCell, bwd: eqx.nn.GRUCell, xs: Float[Array, "T I"], unroll: int | None = None
) -> tuple[Float[Array, "T E"], Float[Array, "T E"]]:
    """Forward states (T, E) and backward states (T, E, aligned to time) of a bidirectional
    GRU encoder. The directions are independent, so one loop of T steps serves both (half the
    sequential depth): `gru_sequence` mapped over a leading direction axis."""
    if fwd.hidden_size != bwd.hidden_size or fwd.use_bias != bwd.use_bias:
        raise ValueError("scan_both_ways: the two directions' cells must have one shape")
    unroll = scan_unroll() if unroll is None else unroll
    shares = jnp.stack([input_share(fwd, xs), input_share(bwd, xs[::-1])])
    e = fwd.hidden_size
    bias_n = (jnp.stack([fwd.bias_n, bwd.bias_n]) if fwd.use_bias
              else jnp.zeros((2, e), shares.dtype))  # fmt: skip
    weights = jnp.stack([fwd.weight_hh, bwd.weight_hh])
    zeros = jnp.zeros((2, e), shares.dtype)
    noise = jnp.zeros((2, xs.shape[0], e), shares.dtype)
    one = lambda w, b, s, h, xi: _gru_sequence(w, b, s, h, xi, unroll)  # noqa: E731
    both = jax.vmap(one)(weights, bias_n, shares, zeros, noise)
    return both[0], both[1][::-1]
