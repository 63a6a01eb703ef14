"""`.eqx` files: one JSON header line (hyperparameters, metadata), then Equinox leaves.

Loading rebuilds the model's skeleton from the header (no training, no random
numbers that matter) and fills it with the stored leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.models.data_trained import data_models_from_hyperparams
from ntdyn.models.flipflop import (
    flipflop_ensemble_from_hyperparams,
    multitask_ensemble_from_hyperparams,
)
from ntdyn.models.mlp import mlp_from_hyperparams

FORMAT_VERSION = 1

# kind -> (flat hyperparameters, n_replicates) -> model skeleton with the right shapes.
SKELETONS: dict[str, Callable[[dict, int], eqx.Module]] = {
    "reaching_controller": lambda hp, n: ensemble_from_hyperparams(
        hp, jax.random.split(jax.random.PRNGKey(0), n)
    ),
    "flipflop_rnn": lambda hp, n: flipflop_ensemble_from_hyperparams(
        hp, jax.random.split(jax.random.PRNGKey(0), n)
    ),
    "multitask_rnn": lambda hp, n: multitask_ensemble_from_hyperparams(
        hp, jax.random.split(jax.random.PRNGKey(0), n)
    ),
    "mlp_classifier": lambda hp, n: mlp_from_hyperparams(
        hp, int(hp["data__n_features"]), int(hp["data__n_classes"]), jax.random.PRNGKey(0)
    ),
    "data_model": lambda hp, n: data_models_from_hyperparams(
        hp, jax.random.split(jax.random.PRNGKey(0), n)
    ),
}


def save_model(path: str | Path, model: eqx.Module, header: dict[str, Any]) -> None:
    """Write `header` (with `kind`, `hyperparams`, `n_replicates`), then the leaves of `model`."""
    missing = {"kind", "hyperparams", "n_replicates"} - set(header)
    if missing:
        raise ValueError(f".eqx header is missing {sorted(missing)}")
    if header["kind"] not in SKELETONS:
        raise ValueError(f"model kind {header['kind']!r}: must be one of {sorted(SKELETONS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write((json.dumps({"format": FORMAT_VERSION, **header}) + "\n").encode())
        eqx.tree_serialise_leaves(f, model)


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of an `.eqx` file, without reading the leaves."""
    with Path(path).open("rb") as f:
        return json.loads(f.readline().decode())


def load_model(path: str | Path) -> tuple[eqx.Module, dict[str, Any]]:
    """Return (model, header) from an `.eqx` file written by `save_model`."""
    with Path(path).open("rb") as f:
        header = json.loads(f.readline().decode())
        build = SKELETONS[header["kind"]]
        skeleton = eqx.filter_eval_shape(build, header["hyperparams"], header["n_replicates"])
        # eval_shape leaves ShapeDtypeStructs; deserialisation needs concrete arrays.
        like = jax.tree.map(
            lambda x: (
                jax.numpy.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x
            ),
            skeleton,
        )
        model = eqx.tree_deserialise_leaves(f, like)
    return model, header
