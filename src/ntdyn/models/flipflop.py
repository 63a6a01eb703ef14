"""Task-trained source networks: a GRU with hidden noise and a readout (the flip-flop's, and the
MultiTask battery's with 20 inputs and 3 outputs)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.cells import scan_unroll
from ntdyn.models.scans import gru_sequence, input_share, written_gradients
from ntdyn.models.stacking import stacked
from ntdyn.tasks.multitask import N_INPUTS, N_OUTPUTS


class FlipFlopRNN(eqx.Module):
    """h_t = GRU(x_t, h_{t-1}) + sigma_h xi_t;  y_t = W h_t + b (one output per bit, or
    `n_outputs` of them: the MultiTask source)."""

    cell: eqx.nn.GRUCell
    readout: eqx.nn.Linear
    hidden_size: int = eqx.field(static=True)

    def __init__(
        self, n_bits: int, hidden_size: int, *, key: PRNGKeyArray, n_outputs: int | None = None
    ):
        k_cell, k_out = jax.random.split(key)
        self.cell = eqx.nn.GRUCell(n_bits, hidden_size, key=k_cell)
        n_out = n_bits if n_outputs is None else n_outputs
        self.readout = eqx.nn.Linear(hidden_size, n_out, key=k_out)
        self.hidden_size = hidden_size

    def __call__(
        self, inputs: Float[Array, "T N"], key: PRNGKeyArray, hidden_noise_std,
        unroll: int | None = None,
    ) -> tuple[Float[Array, "T N"], Float[Array, "T H"]]:  # fmt: skip
        """Outputs and hidden states (the latents the spiking simulator reads) for one trial.
        The trial's hidden noise is drawn before the scan. unroll (static): time steps per
        loop iteration (None: `scan_unroll()`, 8 on accelerators, 1 on the CPU)."""
        noise = hidden_noise_std * jax.random.normal(key, (inputs.shape[0], self.hidden_size))
        unroll = scan_unroll() if unroll is None else unroll
        h0 = jnp.zeros(self.hidden_size)
        if written_gradients():  # accelerators: `ntdyn.models.scans`, the same numbers
            hidden = gru_sequence(self.cell, input_share(self.cell, inputs), h0, noise, unroll)
            return jax.vmap(self.readout)(hidden), hidden

        def step(h, xs):
            x, xi = xs
            h = self.cell(x, h) + xi
            return h, h

        _, hidden = jax.lax.scan(step, h0, (inputs, noise), unroll=unroll)
        return jax.vmap(self.readout)(hidden), hidden


def flipflop_ensemble_from_hyperparams(hp: dict, keys: PRNGKeyArray) -> FlipFlopRNN:
    """Untrained flip-flop GRUs stacked along a leading replicate axis, one per key (R, 2)."""
    return stacked(
        lambda k: FlipFlopRNN(int(hp["task__n_bits"]), int(hp["model__hidden_size"]), key=k), keys
    )


def multitask_ensemble_from_hyperparams(hp: dict, keys: PRNGKeyArray) -> FlipFlopRNN:
    """Untrained MultiTask source GRUs (20 inputs, 3 outputs), stacked along a leading
    replicate axis, one per key (R, 2)."""
    return stacked(
        lambda k: FlipFlopRNN(N_INPUTS, int(hp["model__hidden_size"]), key=k,
                              n_outputs=N_OUTPUTS),
        keys,
    )  # fmt: skip
