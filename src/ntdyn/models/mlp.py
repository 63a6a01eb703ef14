"""A multilayer perceptron classifier whose every layer's activity can be read out."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


class MLPClassifier(eqx.Module):
    """x (D,) -> h_1 -> ... -> logits (C,); h_l = f(W_l h_{l-1} + b_l), the last layer linear."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True)

    def __init__(self, sizes: list[int], activation: str, *, key: PRNGKeyArray):
        """sizes: [D, hidden..., C], e.g. [64, 32, 16, 10]."""
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"model__activation = {activation!r}: must be one of {sorted(ACTIVATIONS)}"
            )
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer sizes = {sizes}: need >= 2 positive sizes [D, ..., C]")
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(n_in, n_out, key=k)
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.activation = activation

    def layer_activity(self, x: Float[Array, " D"]) -> list[Array]:
        """Every layer's output: hidden activations after the nonlinearity, then the logits."""
        f = ACTIVATIONS[self.activation]
        out, h = [], x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = f(h)
            out.append(h)
        return out

    def __call__(self, x: Float[Array, " D"]) -> Float[Array, " C"]:
        return self.layer_activity(x)[-1]


def mlp_from_hyperparams(hp: dict, n_features: int, n_classes: int, key: PRNGKeyArray):
    """`model__hidden_sizes` (list), `model__activation`."""
    sizes = [n_features, *[int(s) for s in hp["model__hidden_sizes"]], n_classes]
    return MLPClassifier(sizes, hp["model__activation"], key=key)
