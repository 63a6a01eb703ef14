"""Spike data for data-trained models: trials, which bins are observed, what the encoder reads.

The data set (B trials, T bins, N = N_in + N_out neurons, I task inputs) is split into
training and validation trials; the first N_in neurons are held in (read by encoders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACQUISITION_MODES = ("all_time_points", "time_aligned", "staggered_random")


@dataclass
class SpikeTrainingData:
    """spikes (B, T, N) counts, inputs (B, T, I), train / valid: trial indices; the first
    `n_held_in` neurons are held in."""

    spikes: np.ndarray
    inputs: np.ndarray
    n_held_in: int
    train: np.ndarray
    valid: np.ndarray

    def __post_init__(self):
        if self.spikes.ndim != 3 or self.inputs.shape[:2] != self.spikes.shape[:2]:
            raise ValueError(
                f"spikes must be (B, T, N) and inputs (B, T, I) with the same B, T; got "
                f"{self.spikes.shape} and {self.inputs.shape}"
            )
        if not 0 < self.n_held_in <= self.spikes.shape[-1]:
            raise ValueError(
                f"n_held_in = {self.n_held_in}: must be in [1, {self.spikes.shape[-1]}]"
            )


def acquisition_mask(mode: str, n_steps: int, n_neurons: int, time_units: int, seed: int):
    """(T, N) bool: which neuron is observed in which bin.

    all_time_points: every bin; time_aligned: every `time_units`-th bin, all neurons
    together; staggered_random: every `time_units`-th bin, each neuron at its own
    random phase.
    """
    if mode not in ACQUISITION_MODES:
        raise ValueError(f"train__acquisition = {mode!r}: must be one of {list(ACQUISITION_MODES)}")
    t = np.arange(n_steps)[:, None]
    if mode == "all_time_points":
        return np.ones((n_steps, n_neurons), bool)
    if mode == "time_aligned":
        return np.broadcast_to(t % time_units == 0, (n_steps, n_neurons)).copy()
    phase = np.random.default_rng(seed).integers(0, time_units, n_neurons)
    return (t + phase[None]) % time_units == 0


def held_observations(spikes_in: np.ndarray, mask_in: np.ndarray, smoothing: float) -> np.ndarray:
    """Causal estimate of each held-in neuron's activity (B, T, N_in) for the encoder.

    Exponential smoothing with time constant `smoothing` bins over the observed bins only;
    between observations a neuron's last estimate is held (sample and hold).
    """
    alpha = 1.0 if smoothing <= 1 else 1.0 / smoothing
    out = np.empty_like(spikes_in, dtype=np.float32)
    s = spikes_in[:, 0].astype(np.float32) * mask_in[0]
    for t in range(spikes_in.shape[1]):
        s = np.where(mask_in[t], (1 - alpha) * s + alpha * spikes_in[:, t], s)
        out[:, t] = s
    return out


def unconnected_pairs(connected: np.ndarray) -> np.ndarray:
    """(P, 2) (i, j) index pairs with connected[i, j] False: i any neuron, j a held-in neuron."""
    return np.argwhere(~np.asarray(connected, bool)).astype(np.int32)


def _mask(hp: dict, n_steps: int, n_neurons: int) -> np.ndarray:
    """(T, N) bool: the acquisition mask of the data model `hp` (every bin for the
    sequential autoencoders)."""
    if hp["model__kind"] != "latent_evolution":
        return np.ones((n_steps, n_neurons), bool)
    return acquisition_mask(
        hp["train__acquisition"],
        n_steps,
        n_neurons,
        int(hp["train__time_units"]),
        int(hp["train__seed"]),
    )
