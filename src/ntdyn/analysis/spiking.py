"""Simulated spiking from a network's latent states (as in the Computation-Through-Dynamics
benchmark): a permuted one-latent-per-neuron readout, standardised, scaled, rectified,
Poisson-sampled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECTIFIERS = {"exp": np.exp, "softplus": lambda x: np.log1p(np.exp(x))}


@dataclass
class SpikingData:
    """Simulated recordings. B trials, T bins, L latents, I inputs.

    spikes: (B, T, n_held_in + n_held_out) counts; rates: same shape, expected counts
    per bin; latents: (B, T, L); inputs: (B, T, I); readout: (n_neurons,) index of
    the latent each neuron reads; held_in / held_out: neuron indices.
    """

    spikes: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    inputs: np.ndarray
    readout: np.ndarray
    held_in: np.ndarray
    held_out: np.ndarray


def simulate_spikes(
    latents: np.ndarray,
    inputs: np.ndarray,
    *,
    n_held_in: int = 50,
    n_held_out: int = 10,
    rate_scaling: float = 2.0,
    rectifier: str = "exp",
    seed: int = 0,
) -> SpikingData:
    """Spikes from latents (B, T, L): neuron i reads latent perm[i], z-scored, / scaling, rectified.

    With more neurons than latents the permutation wraps around (latents are reused).
    """
    if rectifier not in RECTIFIERS:
        raise ValueError(f"rectifier = {rectifier!r}: must be one of {sorted(RECTIFIERS)}")
    if not rate_scaling > 0:
        raise ValueError(f"rate_scaling = {rate_scaling}: must be > 0")
    rng = np.random.default_rng(seed)
    n_latents, n_neurons = latents.shape[-1], n_held_in + n_held_out
    reps = -(-n_neurons // n_latents)
    readout = np.concatenate([rng.permutation(n_latents) for _ in range(reps)])[:n_neurons]
    x = latents[..., readout]
    x = (x - x.mean(axis=(0, 1))) / np.maximum(x.std(axis=(0, 1)), 1e-12)
    rates = RECTIFIERS[rectifier](x / rate_scaling)
    spikes = rng.poisson(rates).astype(np.float64)
    return SpikingData(
        spikes=spikes, rates=rates, latents=latents, inputs=inputs, readout=readout,
        held_in=np.arange(n_held_in), held_out=np.arange(n_held_in, n_neurons),
    )  # fmt: skip
