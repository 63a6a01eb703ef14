"""task_vs_data over trials in chunks: the sources and the spikes of the simulated data sets
do not depend on the memory budget (bitwise, on CPU); the budget reaches the nodes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import ntdyn.analysis.sources as sources
import ntdyn.analysis.spiking as spiking
from ntdyn.analysis.chunks import plan_trials as _plan_trials
from ntdyn.analysis.sources import flipflop_activity, reaching_activity
from ntdyn.models.controller import ensemble_from_hyperparams
from ntdyn.models.flipflop import flipflop_ensemble_from_hyperparams
from ntdyn.models.stacking import unstack
from ntdyn.pipelines.task_vs_data.pipeline import create_pipeline
from ntdyn.resources import ResourceBudget

BLOCK = (("cpu", 2), ("gpu", 2))
LARGE = ResourceBudget(trial_block=BLOCK)
FLIPFLOP = dict(model__hidden_size=5, model__hidden_noise_std=0.05, task__n_bits=2,
                task__n_steps=15, task__p_pulse=0.2, task__input_noise_std=0.1)  # fmt: skip
REACHING = dict(
    model__cell="gru", model__hidden_size=4, model__sisu_input=True, task__mass=1.0,
    task__damping=10.0, task__dt=0.01, task__n_steps=10, task__workspace=1.0,
    task__feedback__delay=2, task__feedback__noise_std=0.1, task__motor__noise_std=0.1,
    task__motor__mult_noise_std=0.0, train__method="fixed", train__pert__type="curl",
    train__pert__std=1.0, train__pert__p_active=1.0,
)  # fmt: skip
N_TRIALS = 9  # odd: the last chunk is padded


@pytest.fixture
def plans(monkeypatch) -> list:
    """Every chunk plan made while the test runs."""
    made = []

    def spy(*args, **kwargs):
        made.append(plan := _plan_trials(*args, **kwargs))
        return plan

    for module in (sources, spiking):
        monkeypatch.setattr(module, "plan_trials", spy)
    return made


def _flipflop():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    return unstack(flipflop_ensemble_from_hyperparams(FLIPFLOP, keys), 1)


def _controller():
    return unstack(
        ensemble_from_hyperparams(REACHING, jax.random.split(jax.random.PRNGKey(1), 1)), 0
    )


@pytest.mark.parametrize(
    ("chunked", "model", "hp", "tiny_gb"),
    [
        (flipflop_activity, _flipflop, FLIPFLOP, 3e-5),
        (reaching_activity, _controller, REACHING, 4.4e-5),
    ],
    ids=["flipflop", "reaching"],
)
def test_sources_in_chunks_do_not_depend_on_the_budget(chunked, model, hp, tiny_gb, plans):
    model = model()
    tiny = chunked(
        model, hp, N_TRIALS, 7, ResourceBudget(host_memory_gb=tiny_gb, trial_block=BLOCK)
    )
    assert plans[-1].block == 2 and plans[-1].n_chunks == 5  # one block per chunk
    large = chunked(model, hp, N_TRIALS, 7, LARGE)
    assert plans[-1].n_chunks == 1
    for name in ("latents", "inputs", "rest_input"):
        np.testing.assert_array_equal(getattr(tiny, name), getattr(large, name), err_msg=name)
    # (tests/analysis/test_sources_comparison.py checks the latents against the cell itself)
    assert np.abs(np.diff(tiny.latents, axis=0)).max() > 0.01  # trials differ


@pytest.mark.parametrize("rectifier", ["exp", "softplus"])
def test_simulated_spikes_do_not_depend_on_the_budget(rectifier, plans):
    rng = np.random.default_rng(0)
    latents = (2.0 * rng.normal(size=(N_TRIALS, 30, 4)) + 1.0).astype(np.float32)
    inputs = np.zeros((N_TRIALS, 30, 1), np.float32)
    kw = dict(n_held_in=6, n_held_out=3, rate_scaling=1.5, rectifier=rectifier, seed=5)
    tiny = spiking.simulate_spikes(
        latents, inputs, **kw, budget=ResourceBudget(host_memory_gb=4.5e-4, trial_block=BLOCK)
    )
    assert plans[-1].n_chunks >= 3
    large = spiking.simulate_spikes(latents, inputs, **kw, budget=LARGE)
    assert plans[-1].n_chunks == 1
    for name in ("spikes", "rates", "readout"):
        np.testing.assert_array_equal(getattr(tiny, name), getattr(large, name), err_msg=name)
    assert tiny.rates.dtype == np.float32 and tiny.spikes.dtype == np.float64
    # neuron i reads latent readout[i], z-scored over every trial and bin
    x = latents[..., tiny.readout].astype(np.float64)
    z = (x - x.mean((0, 1))) / x.std((0, 1))
    np.testing.assert_allclose(tiny.rates, spiking.RECTIFIERS[rectifier](z / 1.5), rtol=1e-4)


def test_the_pipeline_reads_the_shared_memory_budget():
    pipe = create_pipeline()
    assert "params:resources" in pipe.inputs()
    users = {n.name.split(".")[-1] for n in pipe.nodes if "params:resources" in n.inputs}
    assert users == {"simulate_spiking_data", "train_data_models", "compare_systems"}
