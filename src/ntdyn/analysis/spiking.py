"""Simulated spiking from a network's latent states (as in the Computation-Through-Dynamics
benchmark): a permuted one-latent-per-neuron readout, standardised, scaled, rectified,
Poisson-sampled.

The spikes are made over trials in chunks that fit the memory budget (`ntdyn.analysis.chunks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ntdyn.analysis.chunks import plan_trials
from ntdyn.resources import ResourceBudget

RECTIFIERS = {"exp": np.exp, "softplus": lambda x: np.log1p(np.exp(x))}
# per_neuron: each neuron z-scored by its own latent's mean and std (ntdyn); global: one mean and
# one std over every neuron, trial and bin together (the benchmark's
# `np.mean(activity, keepdims=True)` in ctd/task_modeling/simulator/neural_simulator.py).
STANDARDISATIONS = ("per_neuron", "global")

# ----------------------------------------------------------------------------- spikes


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
    budget: ResourceBudget | None = None,
    standardise: str = "per_neuron",
) -> SpikingData:
    """Spikes from latents (B, T, L): neuron i reads latent perm[i], z-scored, / scaling, rectified.

    With more neurons than latents the permutation wraps around (latents are reused). Each
    latent's mean and standard deviation are taken over every trial and bin; with
    `standardise="global"` every neuron is z-scored by the one mean and standard deviation of
    all neurons' values together (population std), made from the same per-latent moments. The
    rates and spikes are then made in chunks of trials sized from `budget`, in trial order from
    one random stream, so they do not depend on the budget.
    """
    if rectifier not in RECTIFIERS:
        raise ValueError(f"rectifier = {rectifier!r}: must be one of {sorted(RECTIFIERS)}")
    if standardise not in STANDARDISATIONS:
        raise ValueError(f"standardise = {standardise!r}: must be one of {list(STANDARDISATIONS)}")
    if not rate_scaling > 0:
        raise ValueError(f"rate_scaling = {rate_scaling}: must be > 0")
    rng = np.random.default_rng(seed)
    n_trials, n_steps, n_latents = latents.shape
    n_neurons = n_held_in + n_held_out
    reps = -(-n_neurons // n_latents)
    readout = np.concatenate([rng.permutation(n_latents) for _ in range(reps)])[:n_neurons]
    # a neuron's statistics are its latent's
    mean = latents.mean(axis=(0, 1))[readout]
    std = np.maximum(latents.std(axis=(0, 1))[readout], 1e-12)
    if standardise == "global":
        # every neuron has as many values (B T), so the pooled mean is the mean of the neurons'
        # means and the pooled variance the mean of their second moments less its square
        m = mean.astype(np.float64)
        second = latents.var(axis=(0, 1), dtype=np.float64)[readout] + m**2
        pooled = m.mean()
        mean = np.full(n_neurons, pooled, mean.dtype)
        std = np.full(n_neurons, max(np.sqrt(max(second.mean() - pooled**2, 0.0)), 1e-12),
                      std.dtype)  # fmt: skip
    rect = RECTIFIERS[rectifier]
    rate_dtype = np.result_type(latents.dtype, mean.dtype, np.float32)
    rates = np.empty((n_trials, n_steps, n_neurons), rate_dtype)
    spikes = np.empty((n_trials, n_steps, n_neurons), np.float64)
    itemsize = np.dtype(rate_dtype).itemsize
    plan = plan_trials(
        n_trials, n_steps * n_neurons * (4 * itemsize + 16), budget,
        reserved_bytes=rates.nbytes + spikes.nbytes, what="trials of simulated spikes",
    )  # fmt: skip
    for start, stop in plan.bounds():
        x = latents[start:stop][..., readout]
        r = rect(((x - mean) / std) / rate_scaling)
        rates[start:stop] = r
        spikes[start:stop] = rng.poisson(r)
    return SpikingData(
        spikes=spikes, rates=rates, latents=latents, inputs=inputs, readout=readout,
        held_in=np.arange(n_held_in), held_out=np.arange(n_held_in, n_neurons),
    )  # fmt: skip
