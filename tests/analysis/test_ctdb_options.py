"""The benchmark's options of the spiking simulator and the comparison, on known answers:
one global mean and std (`standardise="global"`), and its co-bps over the neurons after the
first n_inputs (`co_bps_ctdb`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.analysis.comparison import co_bps, co_bps_ctdb
from ntdyn.analysis.spiking import STANDARDISATIONS, simulate_spikes
from ntdyn.parameters.spec import TASK_VS_DATA


def test_global_standardisation_uses_one_mean_and_std_of_every_neuron_together():
    # two latents of different scale: latent 0 in {0, 2}, latent 1 in {10, 14}
    lat = np.zeros((2, 2, 2))
    lat[..., 0] = [[0, 2], [0, 2]]
    lat[..., 1] = [[10, 14], [10, 14]]
    data = simulate_spikes(lat, np.zeros((2, 2, 1)), n_held_in=1, n_held_out=1, seed=0,
                           rate_scaling=2.0, standardise="global")  # fmt: skip
    x = lat[..., data.readout]
    # values 0, 2, 10, 14 (each 4 times): mean 6.5, population std sqrt(32.75)
    z = (x - 6.5) / np.sqrt(32.75)
    np.testing.assert_allclose(data.rates, np.exp(z / 2.0), rtol=1e-12)
    np.testing.assert_allclose(data.rates, np.exp((x - x.mean()) / x.std() / 2.0), rtol=1e-12)
    per_neuron = simulate_spikes(lat, np.zeros((2, 2, 1)), n_held_in=1, n_held_out=1, seed=0)
    assert not np.allclose(per_neuron.rates, data.rates)  # the option changes the rates
    np.testing.assert_array_equal(per_neuron.readout, data.readout)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_latents=st.integers(1, 5), n_neurons=st.integers(2, 12))
def test_global_statistics_are_those_of_the_read_neurons_even_when_latents_repeat(
    seed, n_latents, n_neurons
):
    rng = np.random.default_rng(seed)
    lat = rng.normal(size=(3, 7, n_latents)) * rng.uniform(0.1, 5, n_latents) + rng.normal(
        size=n_latents
    )
    data = simulate_spikes(lat, np.zeros((3, 7, 1)), n_held_in=n_neurons - 1, n_held_out=1,
                           seed=seed, standardise="global")  # fmt: skip
    x = lat[..., data.readout]  # the benchmark's activity: the neurons' values
    np.testing.assert_allclose(data.rates, np.exp((x - x.mean()) / x.std() / 2.0), rtol=1e-9)


def test_an_unknown_standardisation_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"standardise = 'zscore': must be one of "
                                         r"\['per_neuron', 'global'\]"):  # fmt: skip
        simulate_spikes(np.ones((2, 3, 2)), np.zeros((2, 3, 1)), n_held_in=1, n_held_out=1,
                        standardise="zscore")  # fmt: skip
    assert TASK_VS_DATA["spiking"]["standardise"].choices == STANDARDISATIONS


def test_ctdb_co_bps_scores_the_neurons_from_the_number_of_inputs_on():
    rng = np.random.default_rng(0)
    spikes = rng.poisson(2.0, (4, 6, 5)).astype(float)
    rates = rng.uniform(0.5, 3.0, (4, 6, 5))
    assert co_bps_ctdb(spikes, rates, 2) == co_bps(spikes[..., 2:], rates[..., 2:])
    assert co_bps_ctdb(spikes, rates, 0) == co_bps(spikes, rates)
    # known answer: one neuron, rates equal to the truth of a two-level signal
    y = np.array([[[0.0], [2.0], [0.0], [2.0]]])
    lam = np.array([[[0.5], [1.5], [0.5], [1.5]]])
    both = np.concatenate([np.ones_like(y), y], -1)  # neuron 0 (an "input" neuron) is dropped
    gain = (2 * (2 * np.log(1.5) - 1.5) + 2 * (-0.5)) - 4 * (y.mean() * np.log(1.0) - 1.0)
    expected = gain / (4.0 * np.log(2))
    assert co_bps_ctdb(both, np.concatenate([np.ones_like(lam), lam], -1), 1) == pytest.approx(
        expected, rel=1e-12
    )


def test_ctdb_co_bps_refuses_a_slice_without_neurons():
    with pytest.raises(ValueError, match=r"n_inputs = 3: .* must be in \[0, 3\)"):
        co_bps_ctdb(np.ones((1, 2, 3)), np.ones((1, 2, 3)), 3)


def _pair_trials(rng, n_trials, n_steps):
    from ntdyn.analysis.task_vs_data import PairTrials

    def arr(d):
        return rng.normal(size=(n_trials, n_steps, d))

    return PairTrials(true_latents=arr(3), true_rates=np.exp(arr(4)), spikes=arr(4) ** 2,
                      true_inputs=arr(2), inferred_latents=arr(5), inferred_log_rates=arr(4),
                      inferred_inputs=arr(0))  # fmt: skip


def test_cut_to_lengths_keeps_each_trials_bins_in_order_and_drops_the_padding():
    from ntdyn.analysis.task_vs_data import cut_to_lengths

    trials = _pair_trials(np.random.default_rng(0), 3, 5)
    cut = cut_to_lengths(trials, np.array([2, 5, 1]))
    expected = np.concatenate([trials.true_latents[0, :2], trials.true_latents[1],
                               trials.true_latents[2, :1]])[None]  # fmt: skip
    np.testing.assert_array_equal(cut.true_latents, expected)
    assert cut.spikes.shape == (1, 8, 4) and cut.inferred_inputs.shape == (1, 8, 0)
    for bad in (np.array([2, 6, 1]), np.array([0, 1, 1]), np.array([1, 1])):
        with pytest.raises(ValueError, match="trial lengths .* must be one per trial"):
            cut_to_lengths(trials, bad)


def test_metrics_on_cut_trials_ignore_whatever_the_padding_holds():
    from dataclasses import replace

    from ntdyn.analysis.task_vs_data import cut_to_lengths, fitted_metrics

    rng = np.random.default_rng(1)
    train, test = _pair_trials(rng, 6, 7), _pair_trials(rng, 4, 7)
    lengths_train, lengths_test = rng.integers(2, 8, 6), rng.integers(2, 8, 4)
    base = fitted_metrics(cut_to_lengths(train, lengths_train), cut_to_lengths(test, lengths_test))

    def garbage_after(trials, lengths):
        after = np.arange(7)[None, :, None] >= lengths[:, None, None]
        return replace(trials, **{name: np.where(after, 1e3, getattr(trials, name))
                                  for name in ("true_latents", "inferred_latents",
                                               "inferred_log_rates")})  # fmt: skip

    noisy = fitted_metrics(
        cut_to_lengths(garbage_after(train, lengths_train), lengths_train),
        cut_to_lengths(garbage_after(test, lengths_test), lengths_test),
    )
    for name, value in base.items():
        np.testing.assert_equal(noisy[name], value)
    whole = fitted_metrics(garbage_after(train, lengths_train), garbage_after(test, lengths_test))
    assert whole["state_r2_true_to_inferred"] != base["state_r2_true_to_inferred"]
