"""Recurrent cells: a GRU (Equinox's) and a vanilla tanh RNN, one interface."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class TanhRNNCell(eqx.Module):
    """Vanilla RNN cell h' = tanh(W_ih x + W_hh h + b)."""

    input_to_hidden: eqx.nn.Linear
    hidden_to_hidden: eqx.nn.Linear
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k_in, k_rec = jax.random.split(key)
        self.input_to_hidden = eqx.nn.Linear(input_size, hidden_size, key=k_in)
        self.hidden_to_hidden = eqx.nn.Linear(hidden_size, hidden_size, use_bias=False, key=k_rec)
        self.input_size = input_size
        self.hidden_size = hidden_size

    def __call__(self, x: Float[Array, " n_in"], h: Float[Array, " n_h"]) -> Float[Array, " n_h"]:
        return jnp.tanh(self.input_to_hidden(x) + self.hidden_to_hidden(h))


CELLS = {"gru": eqx.nn.GRUCell, "rnn": TanhRNNCell}


def make_cell(kind: str, input_size: int, hidden_size: int, *, key: PRNGKeyArray) -> eqx.Module:
    """Build a recurrent cell by name (`gru` or `rnn`)."""
    if kind not in CELLS:
        raise ValueError(f"model__cell = {kind!r}: must be one of {sorted(CELLS)}")
    return CELLS[kind](input_size, hidden_size, key=key)


def scan_unroll() -> int:
    """Steps per loop iteration for recurrent scans: 8 on accelerators, 1 on the CPU.

    A small RNN step is latency-bound on a GPU, so unrolling (fewer loop iterations,
    fused kernels) speeds it up severalfold; on the CPU it only lengthens compiles.
    Unrolling changes no numbers.
    """
    return 1 if jax.default_backend() == "cpu" else 8
