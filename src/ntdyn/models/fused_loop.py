"""The closed loop of a GRU controller as one GPU kernel per trial tile (Pallas), issue 16.

XLA runs the closed loop (`closed_loop._Loop.run`) as one kernel after another for every
time step: ~27 kernels per step forward and backward on an H200 for the whole-trial program
(README, "Training performance"), each a few microseconds of launch for a few hundred
nanoseconds of arithmetic. Here the whole trial is one kernel: every program of the grid
holds a tile of `tile` trials of one model in registers (hidden state, plant state, the
delay line) and runs the K steps in a loop inside the kernel; the backward pass is a second
kernel running the steps in reverse. So a batch costs two kernels for the recurrence instead
of ~27 per time step (~2700 per batch), plus the products that gather the weight
gradients after the loop.

The numbers are the closed loop's (`tests/models/test_fused_loop.py`: trajectories and the
gradients of weights, trials, noise and loop constants against differentiating `_Loop.run`,
to float rounding): the same step, written out

    y_k = x_{max(k - delay, 0)} + sigma_s eps_k + offset_k             (delay line)
    h_{k+1} = GRU([goal, y_k, sisu_k], h_k)                            (Equinox's GRU)
    o_k = W_out h_{k+1} + b_out;  u_k = (1 + sigma_m zeta_k) o_k + sigma_a xi_k
    f_k = phi [v_y, -v_x] + force;  x_{k+1} = Euler(x_k, u_k + f_k)     (plant.py)

and its reverse: the adjoints of the plant state, the hidden state and the pending delayed
reads (a ring of `delay line` slots: the adjoint of y_k waits there until x_{k - delay}'s
turn) are carried backwards; each step's gate gradients are written out, and every weight's
gradient is one product over all steps and trials after the kernel (as `_Loop.written`).

Layout: hidden units padded to a power of two >= 16 (padded units stay 0: their weights are
0, so r = z = 1/2 and n = 0 keep h = 0), the controller's inputs to 16 columns, the delay line
to a power of two >= 2, trials to a multiple of the tile; arrays time-major inside. Only a
GRU controller without interventions (the training loop's case): `applies` says when.
On the CPU the kernels run in Pallas's interpreter (tests); the GPU lowering is Triton's.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton
from jaxtyping import Array

FUSED_LOOP_ENV = "NTDYN_FUSED_LOOP"
FUSED_TILE_ENV = "NTDYN_FUSED_TILE"
N_IN_PAD = 16  # the controller's inputs (6 or 7) padded for the kernel's matrix products
# Triton's lowering (the loop inside the kernel, float32 dots); jnp's % lowers to a remainder
# Triton refuses, so slot indices use & on a power-of-two ring
_TRITON = pl_triton.CompilerParams(num_warps=4, num_stages=1)
HIGHEST = jax.lax.Precision.HIGHEST  # float32 products (no TF32): the XLA loop's numbers


def fused_loop_enabled() -> bool:
    """Whether the closed loop of a GRU controller runs as the fused kernels. Off unless
    NTDYN_FUSED_LOOP=1 until timed on a GPU against the XLA loop (benchmarks/fused_loop.py)."""
    value = os.environ.get(FUSED_LOOP_ENV, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{FUSED_LOOP_ENV} = {value!r}: must be 0 or 1")
    return value == "1"


def fused_tile() -> int:
    """Trials per program of the kernels: NTDYN_FUSED_TILE (a power of two >= 16), default 16."""
    value = os.environ.get(FUSED_TILE_ENV, "16")
    tile = int(value) if value.isdigit() else 0
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"{FUSED_TILE_ENV} = {value!r}: must be a power of two >= 16")
    return tile


def applies(controller, trials) -> bool:
    """The fused loop covers a GRU controller on trials without interventions."""
    return (
        isinstance(controller.cell, eqx.nn.GRUCell)
        and trials.drive_profile is None
        and trials.hidden_mask is None
    )


def _pow2(n: int, low: int) -> int:
    p = low
    while p < n:
        p *= 2
    return p


def _step_inputs(k, rows, trial_ref, sisu_ref, col, y, sisu_input):
    """The controller's input row block [goal, y_k, sisu_k, 0...] (tile, 16)."""
    net = jnp.where(col == 0, trial_ref[rows, 0][:, None], 0.0)
    net += jnp.where(col == 1, trial_ref[rows, 1][:, None], 0.0)
    for c in range(4):
        net += jnp.where(col == 2 + c, y[c][:, None], 0.0)
    if sisu_input:
        net += jnp.where(col == 6, sisu_ref[k, rows][:, None], 0.0)
    return net


def _gates(net, h, w_ih, w_hh, bias, bias_n):
    """Equinox's GRU gates (r, z, n) and the state's candidate share W_hn h + b_n. w_ih, w_hh:
    the weights' refs, read at every step: held in registers for the whole loop they would
    not fit (3 x 128 x 128 floats for 100 units) and spill; read, they come from the cache."""
    s = [jnp.dot(net, w_ih[g], precision=HIGHEST) + bias[g] for g in range(3)]
    gh = [jnp.dot(h, w_hh[g], precision=HIGHEST) for g in range(3)]
    r = jax.nn.sigmoid(s[0] + gh[0])
    z = jax.nn.sigmoid(s[1] + gh[1])
    ghn = gh[2] + bias_n
    return r, z, jnp.tanh(s[2] + r * ghn), ghn


def _through_gates(grads, weights_t):
    """sum_g grads[g] @ weights_t[g]: three gates' gradients taken back through their weights
    (weights_t: the transposed weights' ref, (3, hp, n))."""
    return sum(jnp.dot(g, weights_t[i], precision=HIGHEST) for i, g in enumerate(grads))


def _forward_kernel(
    scal_ref, delay_ref, wih_ref, whh_ref, bias_ref, bn_ref, wout_ref, bout_ref,
    trial_ref, sisu_ref, off_ref, noise_ref,
    state_ref, hid_ref, cmd_ref, ctl_ref, fld_ref, fb_ref,
    *, n_steps, tile, hp, n_slots, sisu_input,
):  # fmt: skip
    rows = pl.ds(pl.program_id(0) * tile, tile)
    mass, damping, dt = scal_ref[0], scal_ref[1], scal_ref[2]
    fb_std, motor_std, mult_std = scal_ref[3], scal_ref[4], scal_ref[5]
    delay = delay_ref[0]
    bias = [bias_ref[g][None, :] for g in range(3)]
    bias_n = bn_ref[...][None, :]
    w_out = [wout_ref[c][None, :] for c in range(2)]
    curl = trial_ref[rows, 4]
    force = [trial_ref[rows, 5], trial_ref[rows, 6]]
    col = jax.lax.broadcasted_iota(jnp.int32, (tile, N_IN_PAD), 1)
    slot_col = jax.lax.broadcasted_iota(jnp.int32, (tile, n_slots), 1)
    zero = jnp.zeros((tile,), jnp.float32)
    x0 = [trial_ref[rows, 2], trial_ref[rows, 3], zero, zero]
    # the delay line: slot j % n_slots holds x_j; at rest (x_0) before the trial
    line0 = [jnp.broadcast_to(v[:, None], (tile, n_slots)) for v in x0]

    def step(k, carry):
        x, h, line = carry
        eps = [noise_ref[k, rows, c] for c in range(8)]
        read = (k - delay + n_slots) & (n_slots - 1)  # n_slots: a power of two
        y = [
            jnp.sum(jnp.where(slot_col == read, line[c], 0.0), axis=1)
            + fb_std * eps[c]
            + off_ref[k, rows, c]
            for c in range(4)
        ]
        net = _step_inputs(k, rows, trial_ref, sisu_ref, col, y, sisu_input)
        r, z, n, _ = _gates(net, h, wih_ref, whh_ref, bias, bias_n)
        h = n + z * (h - n)
        o = [jnp.sum(h * w_out[c], axis=1) + bout_ref[c] for c in range(2)]
        u = [(1.0 + mult_std * eps[4 + c]) * o[c] + motor_std * eps[6 + c] for c in range(2)]
        f = [curl * x[3] + force[0], -curl * x[2] + force[1]]
        acc = [(u[c] + f[c] - damping * x[2 + c]) / mass for c in range(2)]
        x = [x[0] + dt * x[2], x[1] + dt * x[3], x[2] + dt * acc[0], x[3] + dt * acc[1]]
        write = (k + 1) & (n_slots - 1)
        line = [jnp.where(slot_col == write, x[c][:, None], line[c]) for c in range(4)]
        for c in range(4):
            state_ref[k, rows, c] = x[c]
            fb_ref[k, rows, c] = y[c]
        for c in range(2):
            cmd_ref[k, rows, c] = o[c]
            ctl_ref[k, rows, c] = u[c]
            fld_ref[k, rows, c] = f[c]
        hid_ref[k, rows, :] = h
        return x, h, line

    jax.lax.fori_loop(0, n_steps, step, (x0, jnp.zeros((tile, hp), jnp.float32), line0))


def _backward_kernel(
    scal_ref, delay_ref, wih_ref, wiht_ref, whh_ref, whht_ref, bias_ref, bn_ref, wout_ref,
    trial_ref, sisu_ref, noise_ref, hid_ref, fb_ref,
    ds_ref, dh_ref, do_ref, du_ref, df_ref, dy_ref,
    gr_ref, gz_ref, gn_ref, ghn_ref, go_ref, gnet_ref, gu_ref, gf_ref, gx_ref, gx0_ref,
    *, n_steps, tile, hp, n_slots, sisu_input,
):  # fmt: skip
    """Reverse steps K-1..0. In: the outputs' cotangents (d*_ref). Out, per step: the gate
    gradients (r, z, n of the input share; n of the state share), the readout's, the
    inputs', the control's, the field's and the state's adjoints; after the loop x_0's."""
    rows = pl.ds(pl.program_id(0) * tile, tile)
    mass, damping, dt = scal_ref[0], scal_ref[1], scal_ref[2]
    mult_std = scal_ref[5]
    delay = delay_ref[0]
    bias = [bias_ref[g][None, :] for g in range(3)]
    bias_n = bn_ref[...][None, :]
    w_out = [wout_ref[c][None, :] for c in range(2)]
    curl = trial_ref[rows, 4]
    col = jax.lax.broadcasted_iota(jnp.int32, (tile, N_IN_PAD), 1)
    slot_col = jax.lax.broadcasted_iota(jnp.int32, (tile, n_slots), 1)
    zero = jnp.zeros((tile,), jnp.float32)

    def step(j, carry):
        k = n_steps - 1 - j
        gx, gh, pending = carry
        # x_{k+1} (row k): its own cotangent, step k+1's Euler, and the delayed reads of it
        slot = (k + 1) & (n_slots - 1)
        gxt = [
            ds_ref[k, rows, c] + gx[c] + jnp.sum(jnp.where(slot_col == slot, pending[c], 0.0), 1)
            for c in range(4)
        ]
        pending = [jnp.where(slot_col == slot, 0.0, p) for p in pending]
        # Euler: p' = p + dt v; v' = v + dt (u + f - k_d v) / m; f = phi [v_y, -v_x] + force
        g_acc = [gxt[2 + c] * dt / mass for c in range(2)]
        gf = [g_acc[c] + df_ref[k, rows, c] for c in range(2)]
        gu = [g_acc[c] + du_ref[k, rows, c] for c in range(2)]
        gv = [gxt[2 + c] * (1.0 - dt * damping / mass) + dt * gxt[c] for c in range(2)]
        gx = [gxt[0], gxt[1], gv[0] - curl * gf[1], gv[1] + curl * gf[0]]
        go = [gu[c] * (1.0 + mult_std * noise_ref[k, rows, 4 + c]) + do_ref[k, rows, c]
              for c in range(2)]  # fmt: skip
        gh = gh + dh_ref[k, rows, :] + go[0][:, None] * w_out[0] + go[1][:, None] * w_out[1]
        # the GRU step again, from h_k and the inputs it read
        h_prev = jnp.where(k > 0, hid_ref[jnp.maximum(k - 1, 0), rows, :], 0.0)
        y = [fb_ref[k, rows, c] for c in range(4)]
        net = _step_inputs(k, rows, trial_ref, sisu_ref, col, y, sisu_input)
        r, z, n, ghn = _gates(net, h_prev, wih_ref, whh_ref, bias, bias_n)
        g_an = gh * (1.0 - z) * (1.0 - n * n)
        g_ar = g_an * ghn * r * (1.0 - r)
        g_az = gh * (h_prev - n) * z * (1.0 - z)
        g_hn = g_an * r
        gh = gh * z + _through_gates((g_ar, g_az, g_hn), whht_ref)
        g_net = _through_gates((g_ar, g_az, g_an), wiht_ref)
        # y_k read x_{max(k - delay, 0)}: its adjoint waits for that state's turn
        read = jnp.maximum(k - delay, 0) & (n_slots - 1)
        for c in range(4):
            gy = jnp.sum(jnp.where(col == 2 + c, g_net, 0.0), axis=1) + dy_ref[k, rows, c]
            pending[c] = pending[c] + jnp.where(slot_col == read, gy[:, None], 0.0)
            gx_ref[k, rows, c] = gxt[c]
        for c in range(2):
            gu_ref[k, rows, c] = gu[c]
            gf_ref[k, rows, c] = gf[c]
            go_ref[k, rows, c] = go[c]
        gr_ref[k, rows, :] = g_ar
        gz_ref[k, rows, :] = g_az
        gn_ref[k, rows, :] = g_an
        ghn_ref[k, rows, :] = g_hn
        gnet_ref[k, rows, :] = g_net
        return gx, gh, pending

    init = ([zero] * 4, jnp.zeros((tile, hp), jnp.float32),
            [jnp.zeros((tile, n_slots), jnp.float32)] * 4)  # fmt: skip
    gx, _, pending = jax.lax.fori_loop(0, n_steps, step, init)
    for c in range(4):
        gx0_ref[rows, c] = gx[c] + jnp.sum(jnp.where(slot_col == 0, pending[c], 0.0), axis=1)


class _Layout(NamedTuple):
    """The kernels' padded weights and sizes for one model."""

    w_ih: Array  # (3, 16, hp): gate g's input weights, inputs x rows
    w_hh: Array  # (3, hp, hp): gate g's state weights, h @ w_hh[g]
    bias: Array  # (3, hp)
    bias_n: Array  # (hp,)
    w_out: Array  # (2, hp)
    b_out: Array  # (2,)
    hidden: int
    hp: int
    n_slots: int


def _layout(weights: tuple[Array, ...], delay_buffer: int) -> _Layout:
    w_ih, w_hh, bias, bias_n, w_out, b_out = weights
    n_h, n_in = w_hh.shape[1], w_ih.shape[1]
    hp = _pow2(n_h, 16)
    pad = hp - n_h
    return _Layout(
        jnp.pad(w_ih.reshape(3, n_h, n_in).transpose(0, 2, 1),
                ((0, 0), (0, N_IN_PAD - n_in), (0, pad))),
        jnp.pad(w_hh.reshape(3, n_h, n_h).transpose(0, 2, 1), ((0, 0), (0, pad), (0, pad))),
        jnp.pad(bias.reshape(3, n_h), ((0, 0), (0, pad))),
        jnp.pad(bias_n, (0, pad)),
        jnp.pad(w_out, ((0, 0), (0, pad))),
        b_out,
        n_h,
        hp,
        _pow2(delay_buffer, 2),
    )  # fmt: skip


def _time_major(a: Array, n_rows: int) -> Array:
    """(B, K, ...) -> (K, n_rows, ...), trials padded with zeros to n_rows."""
    a = jnp.swapaxes(a, 0, 1)
    return jnp.pad(a, ((0, 0), (0, n_rows - a.shape[1])) + ((0, 0),) * (a.ndim - 2))


def make_fused_loop(delay_buffer: int, sisu_input: bool, *, tile: int = 16, interpret=None):
    """The fused closed loop for one model: a function
    (weights, constants, delay, start, goal, curl, force, sisu, offset, noise) ->
    (state, hidden, command, control, field, feedback), each (B, K, ...), differentiable in
    reverse mode in every float argument. weights: the GRU's and readout's
    (W_ih (3H, n_in), W_hh (3H, H), b (3H), b_n (H), W_out (2, H), b_out (2));
    constants: (mass, damping, dt, sigma_s, sigma_a, sigma_m); delay: int32 (). vmap adds a
    model axis (a grid axis of the kernels). tile: trials per program (a power of two >= 16);
    interpret: run the kernels in Pallas's interpreter (default: on the CPU)."""
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"tile = {tile}: must be a power of two >= 16 (the kernels' products)")
    interpret = jax.default_backend() == "cpu" if interpret is None else interpret

    def forward(weights, consts, delay, start, goal, curl, force, sisu, offset, noise):
        n_trials, n_steps = sisu.shape
        lay = _layout(weights, delay_buffer)
        rows = -(-n_trials // tile) * tile
        trial = jnp.concatenate([goal, start, curl[:, None], force, jnp.zeros((n_trials, 1))], 1)
        trial = jnp.pad(trial, ((0, rows - n_trials), (0, 0)))
        shapes = [jax.ShapeDtypeStruct((n_steps, rows, n), jnp.float32)
                  for n in (4, lay.hp, 2, 2, 2, 4)]  # fmt: skip
        kernel = functools.partial(_forward_kernel, n_steps=n_steps, tile=tile, hp=lay.hp,
                                   n_slots=lay.n_slots, sisu_input=sisu_input)  # fmt: skip
        outs = pl.pallas_call(kernel, out_shape=shapes, grid=(rows // tile,), interpret=interpret,
                              compiler_params=_TRITON)(
            jnp.pad(consts, (0, 2)), delay[None], lay.w_ih, lay.w_hh, lay.bias, lay.bias_n,
            lay.w_out, lay.b_out, trial, _time_major(sisu, rows), _time_major(offset, rows),
            _time_major(noise, rows),
        )  # fmt: skip
        return outs, lay, trial

    def batch_major(outs, lay, n_trials):
        state, hidden, command, control, field, feedback = (
            jnp.swapaxes(o[:, :n_trials], 0, 1) for o in outs
        )
        return state, hidden[..., : lay.hidden], command, control, field, feedback

    @jax.custom_vjp
    def loop(weights, consts, delay, start, goal, curl, force, sisu, offset, noise):
        outs, lay, _ = forward(
            weights, consts, delay, start, goal, curl, force, sisu, offset, noise
        )
        return batch_major(outs, lay, sisu.shape[0])

    def loop_fwd(weights, consts, delay, start, goal, curl, force, sisu, offset, noise):
        outs, lay, trial = forward(
            weights, consts, delay, start, goal, curl, force, sisu, offset, noise
        )
        residuals = (weights, consts, delay, start, goal, sisu, noise, outs, trial)
        return batch_major(outs, lay, sisu.shape[0]), residuals

    def loop_bwd(residuals, cotangents):
        weights, consts, delay, start, goal, sisu, noise, outs, trial = residuals
        n_trials, n_steps = sisu.shape
        lay = _layout(weights, delay_buffer)
        rows, n_h, hp = trial.shape[0], lay.hidden, lay.hp
        d_state, d_hidden, d_command, d_control, d_field, d_feedback = cotangents
        d_hidden = jnp.pad(d_hidden, ((0, 0), (0, 0), (0, hp - n_h)))
        step_shape = lambda n: jax.ShapeDtypeStruct((n_steps, rows, n), jnp.float32)  # noqa: E731
        shapes = [step_shape(hp)] * 4 + [step_shape(2), step_shape(N_IN_PAD), step_shape(2),
                                         step_shape(2), step_shape(4),
                                         jax.ShapeDtypeStruct((rows, 4), jnp.float32)]  # fmt: skip
        kernel = functools.partial(_backward_kernel, n_steps=n_steps, tile=tile, hp=hp,
                                   n_slots=lay.n_slots, sisu_input=sisu_input)  # fmt: skip
        tm = functools.partial(_time_major, n_rows=rows)
        state_t, hid_t, cmd_t, ctl_t, fld_t, fb_t = outs
        *per_step, g_x0 = pl.pallas_call(
            kernel, out_shape=shapes, grid=(rows // tile,), interpret=interpret,
            compiler_params=_TRITON,
        )(
            jnp.pad(consts, (0, 2)), delay[None], lay.w_ih, jnp.swapaxes(lay.w_ih, 1, 2),
            lay.w_hh, jnp.swapaxes(lay.w_hh, 1, 2), lay.bias, lay.bias_n, lay.w_out, trial,
            tm(sisu), tm(noise), hid_t, fb_t, tm(d_state), tm(d_hidden), tm(d_command),
            tm(d_control), tm(d_field), tm(d_feedback),
        )  # fmt: skip
        cut = lambda a: a[:, :n_trials]  # noqa: E731
        g_r, g_z, g_n, g_hn, g_o, g_net, g_u, g_f, g_x = map(cut, per_step)
        hidden, state, command, control, field, feedback = map(
            cut, (hid_t[..., :n_h], state_t, cmd_t, ctl_t, fld_t, fb_t)
        )
        # the weights' gradients: one product over all steps and trials each
        h_prev = jnp.concatenate([jnp.zeros_like(hidden[:1]), hidden[:-1]])  # h_0 = 0
        inputs = [jnp.broadcast_to(goal, (n_steps, n_trials, 2)), feedback]
        if sisu_input:
            inputs.append(jnp.swapaxes(sisu, 0, 1)[..., None])
        inputs = jnp.concatenate(inputs, -1)
        unpad = lambda *gs: jnp.concatenate([g[..., :n_h] for g in gs], -1)  # noqa: E731
        g_share, g_state = unpad(g_r, g_z, g_n), unpad(g_r, g_z, g_hn)
        d_weights = (
            jnp.einsum("kbg,kbi->gi", g_share, inputs),
            jnp.einsum("kbg,kbh->gh", g_state, h_prev),
            g_share.sum((0, 1)),
            g_hn[..., :n_h].sum((0, 1)),
            jnp.einsum("kbc,kbh->ch", g_o, hidden),
            g_o.sum((0, 1)),
        )
        # the data's and constants' gradients (elementwise: free when nobody asks for them)
        eps = jnp.swapaxes(noise, 0, 1)
        g_y = g_net[..., 2:6] + jnp.swapaxes(d_feedback, 0, 1)
        x0 = jnp.concatenate([start, jnp.zeros((n_trials, 2))], 1)
        v = jnp.concatenate([x0[None], state[:-1]])[..., 2:]  # the velocity each step starts at
        mass, damping, dt, fb_std, motor_std, mult_std = consts
        acc = control + field - damping * v
        d_consts = jnp.stack([
            jnp.sum(g_x[..., 2:] * (-dt * acc / mass**2)),
            jnp.sum(g_x[..., 2:] * (-dt * v / mass)),
            jnp.sum(g_x[..., :2] * v) + jnp.sum(g_x[..., 2:] * acc / mass),
            jnp.sum(g_y * eps[..., :4]),
            jnp.sum(g_u * eps[..., 6:]),
            jnp.sum(g_u * eps[..., 4:6] * command),
        ])  # fmt: skip
        d_curl = jnp.sum(g_f[..., 0] * v[..., 1] - g_f[..., 1] * v[..., 0], 0)
        d_noise = jnp.concatenate([fb_std * g_y, mult_std * g_u * command, motor_std * g_u], -1)
        d_sisu = g_net[..., 6].T if sisu_input else jnp.zeros_like(sisu)
        return (
            d_weights, d_consts, np.zeros(delay.shape, jax.dtypes.float0), g_x0[:n_trials, :2],
            g_net[..., 0:2].sum(0), d_curl, g_f.sum(0), d_sisu, jnp.swapaxes(g_y, 0, 1),
            jnp.swapaxes(d_noise, 0, 1),
        )  # fmt: skip

    loop.defvjp(loop_fwd, loop_bwd)
    return loop
