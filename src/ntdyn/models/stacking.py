"""Replicates of a model stacked along a leading axis."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray


def stacked(build: Callable[[PRNGKeyArray], eqx.Module], keys: PRNGKeyArray) -> eqx.Module:
    """`build(key)` for every key (R, 2), array leaves stacked along a new leading axis R.

    Gives the same numbers as `eqx.filter_vmap(build)(keys)`, but each replicate is
    initialised eagerly: under vmap (and under jit) the random initialisers compile
    into one large program, which took 10-15 s per model kind on a 2-core CPU; eager
    op-by-op initialisation compiles each small op once and reuses it.
    """
    models = [build(k) for k in keys]
    return jax.tree.map(lambda *xs: jnp.stack(xs) if eqx.is_array(xs[0]) else xs[0], *models)


def unstack(model: eqx.Module, replicate: int) -> eqx.Module:
    """One replicate of a model stacked along a leading axis (the inverse of `stacked`)."""
    return jax.tree.map(lambda x: x[replicate] if eqx.is_array(x) else x, model)
