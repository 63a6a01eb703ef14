"""Data-model inference and validation over trials in chunks: the memory budget decides how
many blocks a chunk holds, never a number (bitwise, on CPU), and one program serves all."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ntdyn.analysis import chunks
from ntdyn.models.data_trained import data_model_from_hyperparams
from ntdyn.resources import ResourceBudget
from ntdyn.training.data_trained import (
    TRACE_COUNTS,
    SpikeTrainingData,
    _mask,
    held_observations,
    infer,
    infer_plan,
    inference,
    nll_per_bin,
    rollout_error,
    validation,
    validation_metrics,
)

N_IN, N_OUT, N_INPUTS, T = 6, 2, 1, 12
BLOCK = (("cpu", 2), ("gpu", 2))
# The same trial block (it fixes the numerics); a tiny host budget, with room for one block
# per chunk (the smallest that fits each kind's largest per-trial need), or the default.
TINY_GB = {"sae_gru": 6.25e-5, "lfads": 6.5e-5, "latent_evolution": 6.25e-5}
LARGE = ResourceBudget(trial_block=BLOCK)
BASE = dict(
    data__n_held_in=N_IN, data__n_held_out=N_OUT, data__n_inputs=N_INPUTS,
    train__seed=0, train__rollout_horizons=[1, 2, 4], train__rollout_max_steps=10,
    train__rollout_divergence_factor=5.0, model__latent_size=4,
)  # fmt: skip
SAE = dict(model__kind="sae_gru", model__encoder_size=8, model__factor_size=3,
           model__controller_size=4, model__n_inferred_inputs=0)  # fmt: skip
LFADS = SAE | dict(model__kind="lfads", model__n_inferred_inputs=1)
EVO = dict(
    model__kind="latent_evolution", model__width=8, model__depth=1, train__time_units=2,
    train__acquisition="staggered_random", train__encoder_smoothing=2.0,
)  # fmt: skip
KINDS = pytest.mark.parametrize("extra", [SAE, LFADS, EVO],
                                ids=["sae_gru", "lfads", "latent_evolution"])  # fmt: skip


def _spikes(b=13, seed=0):
    """Poisson counts and a task input: b trials (odd, so the last chunk is padded)."""
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(1.5, (b, T, N_IN + N_OUT)).astype(np.float32)
    inputs = rng.normal(size=(b, T, N_INPUTS)).astype(np.float32)
    return spikes, inputs


def _model(hp):
    return data_model_from_hyperparams(hp, jax.random.PRNGKey(1))


def _tiny(hp) -> ResourceBudget:
    return ResourceBudget(host_memory_gb=TINY_GB[hp["model__kind"]], trial_block=BLOCK)


@pytest.fixture
def plans(monkeypatch) -> list:
    """(what, plan) of every chunk plan made while the test runs: inference plans its chunks,
    and so do the validation metrics of their own (the NLL, the roll-outs)."""
    made, plan_trials = [], chunks.plan_trials

    def spy(*args, **kwargs):
        made.append((kwargs["what"], plan := plan_trials(*args, **kwargs)))
        return plan

    for module in (inference, validation):  # the modules that call plan_trials
        monkeypatch.setattr(module, "plan_trials", spy)
    return made


@KINDS
def test_a_tiny_budget_plans_many_chunks_and_a_large_one_a_single_chunk(extra):
    hp = BASE | extra
    tiny, large = (infer_plan(hp, 13, T, N_IN + N_OUT, N_INPUTS, b) for b in (_tiny(hp), LARGE))
    assert tiny.block == large.block == 2
    assert tiny.n_chunks == 7 and large.n_chunks == 1  # 13 trials: 6 blocks and a padded one
    with pytest.raises(ValueError, match=r"resources\.host_memory_gb = 1e-05"):
        infer_plan(hp, 13, T, N_IN + N_OUT, N_INPUTS, ResourceBudget(host_memory_gb=1e-5))


@KINDS
def test_inference_does_not_depend_on_the_budget_and_compiles_once(extra):
    hp = BASE | extra
    model, (spikes, inputs) = _model(hp), _spikes()
    before = TRACE_COUNTS["infer_chunk"]
    tiny = infer(model, hp, spikes, inputs, budget=_tiny(hp))
    assert TRACE_COUNTS["infer_chunk"] - before <= 1  # every chunk has one shape
    large = infer(model, hp, spikes, inputs, budget=LARGE)
    np.testing.assert_array_equal(tiny.log_rates, large.log_rates)
    np.testing.assert_array_equal(tiny.latents, large.latents)
    assert tiny.log_rates.shape == (13, T, N_IN + N_OUT) and tiny.latents.shape == (13, T, 4)
    assert np.isfinite(tiny.log_rates).all()
    # a trial's numbers are its own: the same trials in another order give the same rows
    order = np.random.default_rng(1).permutation(13)
    again = infer(model, hp, spikes[order], inputs[order], budget=_tiny(hp))
    np.testing.assert_array_equal(again.log_rates, tiny.log_rates[order])


@KINDS
def test_validation_metrics_do_not_depend_on_the_budget(extra, plans):
    hp = BASE | extra
    model, (spikes, inputs) = _model(hp), _spikes(b=21)
    data = SpikeTrainingData(spikes, inputs, N_IN, np.arange(8), np.arange(8, 21))
    held = held_observations(spikes[..., :N_IN], _mask(hp, T, N_IN + N_OUT)[:, :N_IN], 2.0)
    tiny = validation_metrics(model, hp, data, held, _tiny(hp))
    chunked = {what: plan.n_chunks for what, plan in plans}
    plans.clear()
    large = validation_metrics(model, hp, data, held, LARGE)
    assert {plan.n_chunks for _, plan in plans} == {1}
    # inference (and the latent-evolution roll-outs) in one chunk per block of 2 trials
    assert chunked[f"trials of {hp['model__kind']} inference"] == 7
    if extra is EVO:  # its roll-outs need less host memory per trial: several blocks a chunk
        assert chunked["trials of the roll-out error"] > 1
    assert tiny == large
    assert np.isfinite(tiny["valid_nll"])
    v = data.valid  # the roll-out error alone (for SAEs: from a new inference)
    errors = [rollout_error(model, hp, spikes[v], inputs[v], held[v], [1, 2, 4], budget=b)
              for b in (_tiny(hp), LARGE)]  # fmt: skip
    assert np.isfinite(errors[0][1:]).all()
    np.testing.assert_array_equal(*errors)


def test_the_nll_per_bin_is_the_poisson_nll_summed_over_neurons(plans):
    spikes, _ = _spikes()
    log_rates = np.random.default_rng(2).normal(size=spikes.shape).astype(np.float32)
    got = nll_per_bin(log_rates, spikes, ResourceBudget(host_memory_gb=2.5e-5, trial_block=BLOCK))
    assert plans[-1][1].n_chunks >= 4
    np.testing.assert_array_equal(got, nll_per_bin(log_rates, spikes, LARGE))
    expected = (np.exp(log_rates) - spikes * log_rates).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
