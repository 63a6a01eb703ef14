"""The generators a sequential autoencoder can run (docs/science.md §2.6): one step
h' = cell(u, h) of the latent state h (G,) driven by the input u (I,), one interface.

- `gru`: Equinox's GRU cell (SAE-GRU, LFADS).
- `rnn`: a vanilla tanh RNN, h' = tanh(W h + U u + b) (`ntdyn.models.cells.TanhRNNCell`).
- `lds`: a linear dynamical system, h' = A h + B u + b (`LinearCell`).
- `node`: a neural ODE integrated by one explicit Euler step per bin,
  h' = h + dt · MLP([h, u]) with ReLU hidden layers (`NeuralODECell`).

The CtDB's SAE zoo has these four generators (Versteeg et al. 2024); its NODE scales the
vector field by dt = 0.1 per bin.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.cells import TanhRNNCell

GENERATORS = ("gru", "rnn", "lds", "node")


class LinearCell(eqx.Module):
    """h' = A h + B u + b: A (G, G) `dynamics`, B (G, I) and b (G,) `input_map`."""

    dynamics: eqx.nn.Linear
    input_map: eqx.nn.Linear
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k_a, k_b = jax.random.split(key)
        self.dynamics = eqx.nn.Linear(hidden_size, hidden_size, use_bias=False, key=k_a)
        self.input_map = eqx.nn.Linear(input_size, hidden_size, key=k_b)
        self.hidden_size = hidden_size

    def __call__(self, u: Float[Array, " I"], h: Float[Array, " G"]) -> Float[Array, " G"]:
        return self.dynamics(h) + self.input_map(u)


class NeuralODECell(eqx.Module):
    """h' = h + dt · f([h, u]), f an MLP with `depth` ReLU hidden layers of `width` units.

    dt (bins, static) is the Euler step: the vector field f is per unit time, so a smaller dt
    keeps early roll-outs near the identity map while f is still random.
    """

    vector_field: eqx.nn.MLP
    dt: float = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(
        self, input_size: int, hidden_size: int, *, width: int, depth: int, dt: float,
        key: PRNGKeyArray,
    ):  # fmt: skip
        self.vector_field = eqx.nn.MLP(hidden_size + input_size, hidden_size, width, depth,
                                       jax.nn.relu, key=key)  # fmt: skip
        self.dt = float(dt)
        self.hidden_size = hidden_size

    def __call__(self, u: Float[Array, " I"], h: Float[Array, " G"]) -> Float[Array, " G"]:
        return h + self.dt * self.vector_field(jnp.concatenate([h, u]))


def make_generator(
    kind: str, input_size: int, hidden_size: int, *, key: PRNGKeyArray, width: int = 0,
    depth: int = 0, dt: float = 0.0,
) -> eqx.Module:  # fmt: skip
    """A generator cell by name; width, depth and dt are the NODE's (ignored by the others)."""
    if kind == "gru":
        return eqx.nn.GRUCell(input_size, hidden_size, key=key)
    if kind == "rnn":
        return TanhRNNCell(input_size, hidden_size, key=key)
    if kind == "lds":
        return LinearCell(input_size, hidden_size, key=key)
    if kind == "node":
        if not (width >= 1 and depth >= 1 and dt > 0):
            raise ValueError(f"the NODE generator needs model__width >= 1, model__depth >= 1 "
                             f"and model__dt > 0; got {width}, {depth}, {dt}")  # fmt: skip
        return NeuralODECell(input_size, hidden_size, width=width, depth=depth, dt=dt, key=key)
    raise ValueError(f"generator {kind!r}: must be one of {list(GENERATORS)}")


def generator_width(kind: str, hidden_size: int, width: int = 0, depth: int = 0) -> int:
    """float32 values per step a generator holds beyond its state (memory planning): a GRU's
    gates, the NODE's hidden layers."""
    return {"gru": 3 * hidden_size, "rnn": hidden_size, "lds": hidden_size,
            "node": width * depth + hidden_size}[kind]  # fmt: skip
