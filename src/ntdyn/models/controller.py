"""Network controller: a recurrent cell with a linear readout to a 2-D force."""

from __future__ import annotations

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.cells import make_cell
from ntdyn.models.stacking import stacked

N_FORCE = 2
# goal (2) + feedback [p, v] (4); the SISU input adds one.
N_BASE_INPUTS = 6


class Controller(eqx.Module):
    """h_k = cell([goal, y_k, (sisu_k)], h_{k-1}); o_k = W h_k + b (N)."""

    cell: eqx.Module
    readout: eqx.nn.Linear
    hidden_size: int = eqx.field(static=True)
    sisu_input: bool = eqx.field(static=True)

    def __init__(self, cell: str, hidden_size: int, sisu_input: bool, *, key: PRNGKeyArray):
        k_cell, k_out = jax.random.split(key)
        n_in = N_BASE_INPUTS + int(sisu_input)
        self.cell = make_cell(cell, n_in, hidden_size, key=k_cell)
        self.readout = eqx.nn.Linear(hidden_size, N_FORCE, key=k_out)
        self.hidden_size = hidden_size
        self.sisu_input = sisu_input

    def step(
        self, inputs: Float[Array, " n_in"], hidden: Float[Array, " H"]
    ) -> tuple[Float[Array, " H"], Float[Array, "2"]]:
        """Advance the hidden state one step and read out the commanded force."""
        hidden = self.cell(inputs, hidden)
        return hidden, self.readout(hidden)


def controller_from_hyperparams(hp: dict, key: PRNGKeyArray) -> Controller:
    """Build an untrained controller from flattened hyperparameters (`model__*`)."""
    if hp["model__hidden_size"] < 1:
        raise ValueError(f"model__hidden_size = {hp['model__hidden_size']}: must be >= 1")
    return Controller(
        hp["model__cell"], int(hp["model__hidden_size"]), bool(hp["model__sisu_input"]), key=key
    )


def ensemble_from_hyperparams(hp: dict, keys: PRNGKeyArray) -> Controller:
    """Controllers stacked along a leading replicate axis, one per key in `keys` (R, 2)."""
    return stacked(lambda k: controller_from_hyperparams(hp, k), keys)
