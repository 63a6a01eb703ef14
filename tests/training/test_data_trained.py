"""Data-trained models: known-answer checks of each option and of the training loop."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntdyn.models.data_trained import LatentEvolution, _gaussian_kl, data_model_from_hyperparams
from ntdyn.training.data_trained import (
    EvolutionOptions,
    SpikeTrainingData,
    acquisition_mask,
    connectome_penalty,
    evolution_loss,
    held_observations,
    infer,
    poisson_nll,
    rollout_error,
    rollout_stability,
    train_data_model,
)
from ntdyn.training.ensemble_io import load_trained, save_trained

N_IN, N_OUT, N_INPUTS = 6, 2, 1
BASE = dict(
    data__n_held_in=N_IN, data__n_held_out=N_OUT, data__n_inputs=N_INPUTS,
    train__n_epochs=6, train__batch_size=8, train__learning_rate=0.02, train__n_replicates=2,
    train__seed=0, train__validate_every=3, train__checkpoint_every=2,
    train__rollout_horizons=[1, 2, 4], train__rollout_max_steps=30,
    train__rollout_divergence_factor=5.0, model__latent_size=4,
)  # fmt: skip
SAE = dict(model__kind="sae_gru", model__encoder_size=8, model__factor_size=3,
           model__controller_size=4, model__n_inferred_inputs=0)  # fmt: skip
LFADS = SAE | dict(model__kind="lfads", model__n_inferred_inputs=1, train__kl_weight=0.1,
                   train__kl_ramp_epochs=2, train__coordinated_dropout=0.3)  # fmt: skip
EVO = dict(
    model__kind="latent_evolution", model__width=8, model__depth=1, train__time_units=2,
    train__evolve_multiple_steps=2, train__intermediate_loss_steps=False, train__warmup_epochs=2,
    train__acquisition="time_aligned", train__encoder_smoothing=2.0,
    train__connectome__mode="none", train__connectome__num_neurons=4,
    train__connectome__loss_coeff=0.0,
)  # fmt: skip


def _data(seed=0, b=32, t=20):
    """Spikes from two slow sinusoidal latents, 6 + 2 neurons, one task input."""
    rng = np.random.default_rng(seed)
    tt = np.arange(t)
    lat = np.sin(0.3 * tt[None, :, None] + rng.uniform(0, 6, (b, 1, 2)))
    w = rng.normal(size=(2, N_IN + N_OUT))
    rates = np.exp(0.8 * lat @ w)
    spikes = rng.poisson(rates).astype(np.float32)
    inputs = np.zeros((b, t, N_INPUTS), np.float32)
    return SpikeTrainingData(spikes, inputs, N_IN, np.arange(b - 8), np.arange(b - 8, b)), rates


def test_gaussian_kl_matches_the_closed_form():
    mean, logvar = jnp.array([0.0, 1.0]), jnp.array([0.0, np.log(2.0)])
    expected = 0.5 * ((1 + 0 - 1 - 0) + (2 + 1 - 1 - np.log(2.0)))
    assert float(_gaussian_kl(mean, logvar)) == pytest.approx(expected, rel=1e-6)
    assert float(_gaussian_kl(jnp.zeros(3), jnp.zeros(3))) == 0.0


def test_poisson_nll_is_smallest_at_the_true_rate():
    y = jnp.array([0.0, 1.0, 3.0, 2.0])
    grid = jnp.linspace(-3, 3, 601)
    best = grid[jnp.argmin(jax.vmap(lambda l: poisson_nll(l, y).sum())(grid))]
    assert float(best) == pytest.approx(np.log(y.mean()), abs=0.01)


def test_latent_evolution_starts_as_the_identity_map():
    model = LatentEvolution(N_IN, N_IN + N_OUT, N_INPUTS, latent_size=4, width=8, depth=2,
                            key=jax.random.PRNGKey(0))  # fmt: skip
    z = jnp.arange(4.0)
    np.testing.assert_array_equal(model.step(z, jnp.ones(N_INPUTS)), z)


def test_acquisition_masks():
    assert acquisition_mask("all_time_points", 6, 3, 2, 0).all()
    aligned = acquisition_mask("time_aligned", 6, 3, 2, 0)
    np.testing.assert_array_equal(aligned[:, 0], [1, 0, 1, 0, 1, 0])
    assert (aligned == aligned[:, :1]).all()
    stag = acquisition_mask("staggered_random", 12, 40, 3, 0)
    assert (stag.sum(0) == 4).all()  # every neuron every third bin ...
    assert len({tuple(c) for c in stag.T}) == 3  # ... at its own phase (all three occur)
    with pytest.raises(ValueError, match="train__acquisition = 'sometimes'"):
        acquisition_mask("sometimes", 6, 3, 2, 0)


def test_held_observations_hold_the_last_observed_value():
    spikes = np.arange(1, 7, dtype=float).reshape(1, 6, 1)
    mask = np.array([[1], [0], [0], [1], [0], [1]], bool)
    held = held_observations(spikes, mask, smoothing=1.0)
    np.testing.assert_array_equal(held[0, :, 0], [1, 1, 1, 4, 4, 6])
    smooth = held_observations(spikes, mask, smoothing=2.0)  # alpha = 1/2 at observed bins
    np.testing.assert_allclose(smooth[0, :, 0], [1, 1, 1, 2.5, 2.5, 4.25])


def _evolution_model(key=0):
    return data_model_from_hyperparams(BASE | EVO, jax.random.PRNGKey(key))


def _opts(**kw):
    base = dict(n_held_in=N_IN, time_units=2, evolve_multiple_steps=2,
                intermediate_loss_steps=False, warmup_epochs=0, aligned_starts=True,
                connectome=False, num_neurons=2, loss_coeff=0.0)  # fmt: skip
    return EvolutionOptions(**(base | kw))


def test_evolution_loss_uses_only_bins_at_multiples_of_tau_unless_intermediate():
    data, _ = _data()
    model = _evolution_model()
    # make the evolver non-trivial so roll-outs differ from the start state
    model = eqx.tree_at(lambda m: m.evolver.layers[-1].bias, model, jnp.full(4, 0.3))
    y = jnp.asarray(data.spikes[:8])
    u, s = jnp.asarray(data.inputs[:8]), jnp.asarray(data.spikes[:8, :, :N_IN])
    aux = {"mask": jnp.ones((20, N_IN + N_OUT)), "pairs": jnp.zeros((1, 2), jnp.int32)}
    key, epoch = jax.random.PRNGKey(3), jnp.asarray(5)
    # aligned starts at even bins; with tau = 2, m = 2 the loss reads t0, t0 + 2, t0 + 4
    odd = y.at[:, 1::2].set(50.0)
    base = evolution_loss(model, (y, u, s), key, epoch, _opts(), aux)[0]
    assert float(evolution_loss(model, (odd, u, s), key, epoch, _opts(), aux)[0]) == pytest.approx(
        float(base)
    )
    inter = _opts(intermediate_loss_steps=True)
    assert float(evolution_loss(model, (odd, u, s), key, epoch, inter, aux)[0]) > float(base) + 1


def test_warm_up_trains_the_reconstruction_only():
    data, _ = _data()
    model = _evolution_model()
    batch = tuple(jnp.asarray(a[:8]) for a in (data.spikes, data.inputs, data.spikes[..., :N_IN]))
    aux = {"mask": jnp.ones((20, N_IN + N_OUT)), "pairs": jnp.zeros((1, 2), jnp.int32)}
    opts = _opts(warmup_epochs=3)

    def evolver_grad(epoch):
        def loss(m):
            return evolution_loss(m, batch, jax.random.PRNGKey(0), jnp.asarray(epoch), opts, aux)[0]

        grads = eqx.filter(eqx.filter_grad(loss)(model).evolver, eqx.is_array)
        return sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(grads))

    assert evolver_grad(0) == 0.0
    assert evolver_grad(3) > 0.0


def test_connectome_penalty_is_the_squared_jacobian_entry():
    model = _evolution_model()
    model = eqx.tree_at(lambda m: m.evolver.layers[-1].weight, model,
                        0.5 * jnp.ones_like(model.evolver.layers[-1].weight))  # fmt: skip
    x, u = jnp.linspace(0.1, 1.0, N_IN), jnp.zeros(N_INPUTS)
    f = lambda v: jnp.exp(model.log_rates(model.step(model.encode(v), u)))  # noqa: E731
    jac = jax.jacfwd(f)(x)  # (N, N_in)
    pairs = jnp.array([[0, 1], [5, 3], [7, 0]])
    expected = np.mean([jac[i, j] ** 2 for i, j in np.asarray(pairs)])
    got = connectome_penalty(model, x[None], u[None], pairs)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_connectome_constraint_shrinks_the_unconnected_couplings():
    data, _ = _data(t=16)
    connected = np.zeros((N_IN + N_OUT, N_IN), bool)
    connected[:, :2] = True  # only held-in neurons 0 and 1 may drive the others
    hp = BASE | EVO | dict(train__n_epochs=8, train__n_replicates=1, train__checkpoint_every=0,
                           train__connectome__num_neurons=16)  # fmt: skip

    def unconnected_jacobian(coeff):
        mode = "unconnected_to_zero" if coeff else "none"
        trained = train_data_model(hp | dict(train__connectome__mode=mode,
                                             train__connectome__loss_coeff=coeff),
                                   data, connected=connected, progress=False)  # fmt: skip
        m = trained.replicate()
        x, u = jnp.asarray(data.spikes[0, 0, :N_IN]), jnp.zeros(N_INPUTS)
        jac = jax.jacfwd(lambda v: jnp.exp(m.log_rates(m.step(m.encode(v), u))))(x)
        return float(jnp.mean(jnp.asarray(jac)[~connected] ** 2))

    assert unconnected_jacobian(100.0) < 0.1 * unconnected_jacobian(0.0)


@pytest.mark.parametrize("extra", [SAE, LFADS, EVO], ids=["sae_gru", "lfads", "latent_evolution"])
def test_training_fits_the_data_and_records_its_options(extra):
    data, _ = _data(b=72)  # 64 training trials: tiny networks, but not so few that they overfit
    hp = BASE | extra
    hp = hp | dict(train__n_epochs=12, train__validate_every=6, train__checkpoint_every=4)
    trained = train_data_model(hp, data, progress=False)
    again = train_data_model(hp, data, progress=False)
    np.testing.assert_array_equal(trained.history["value"], again.history["value"])  # same seed
    hist = trained.history
    final = hist[(hist["term"] == "valid_nll") & (hist["replicate"] == trained.selection.best)]
    v = data.valid
    untrained = data_model_from_hyperparams(hp, jax.random.PRNGKey(0))
    start = infer(untrained, hp, data.spikes[v], data.inputs[v]).log_rates
    start_nll = float(poisson_nll(jnp.asarray(start), data.spikes[v]).mean())
    assert final["value"].iloc[-1] < start_nll
    assert sorted(trained.checkpoints) == [4, 8, 12]
    assert {"rollout_error_h1", "rollout_error_h4", "rollout_steps_stable"} <= set(hist["term"])
    inf = infer(trained.replicate(), hp, data.spikes[v], data.inputs[v])
    assert inf.log_rates.shape == (8, 20, N_IN + N_OUT) and inf.latents.shape == (8, 20, 4)
    # better than the mean-rate model on held-out trials
    y = data.spikes[v]
    mean_nll = poisson_nll(jnp.log(y.mean((0, 1))), y).mean()
    assert float(poisson_nll(jnp.asarray(inf.log_rates), y).mean()) < float(mean_nll)


@pytest.mark.parametrize("extra", [SAE, LFADS, EVO], ids=["sae_gru", "lfads", "latent_evolution"])
def test_infer_returns_the_inputs_the_controller_fed_the_generator(extra):
    data, _ = _data(b=5)
    hp = BASE | extra
    model = data_model_from_hyperparams(hp, jax.random.PRNGKey(3))
    inf = infer(model, hp, data.spikes, data.inputs)
    n_u = 1 if extra is LFADS else 0  # only LFADS's controller infers inputs
    assert inf.inferred_inputs.shape == (5, 20, n_u)
    if extra is EVO:
        return
    # the generator driven by the task inputs and these inferred inputs from the posterior-mean
    # initial state gives back the inferred latents, step by step
    for trial in range(5):
        _, ic = model.encode(jnp.asarray(data.spikes[trial, :, :N_IN]))
        h = ic[: model.generator_size]
        for t in range(20):
            u = np.concatenate([data.inputs[trial, t], inf.inferred_inputs[trial, t]])
            h = model.generator(jnp.asarray(u), h)
            np.testing.assert_allclose(inf.latents[trial, t], h, rtol=1e-4, atol=1e-5)
    if n_u:
        assert np.abs(inf.inferred_inputs).max() > 1e-3  # not the zeros of "no inferred input"


def test_sequential_autoencoder_rollout_error_is_the_error_at_each_time(tmp_path):
    data, _ = _data()
    hp = BASE | SAE
    trained = train_data_model(hp | dict(train__n_epochs=1), data, progress=False)
    m, v = trained.replicate(), data.valid
    inf = infer(m, hp, data.spikes[v], data.inputs[v])
    per_t = np.asarray(poisson_nll(jnp.asarray(inf.log_rates), data.spikes[v])).mean((0, 2))
    err = rollout_error(m, hp, data.spikes[v], data.inputs[v], None, [1, 4, 19, 25])
    np.testing.assert_allclose(err[:3], per_t[[1, 4, 19]], rtol=1e-5)
    assert np.isnan(err[3])  # beyond the trial
    # saved and loaded back: same numbers
    save_trained(tmp_path / "m.eqx", trained)
    loaded = load_trained(tmp_path / "m.eqx")
    again = infer(loaded.replicate(), hp, data.spikes[v], data.inputs[v])
    np.testing.assert_array_equal(again.log_rates, inf.log_rates)


def test_rollout_stability_counts_steps_before_divergence():
    data, _ = _data()
    hp = BASE | EVO
    model = _evolution_model()
    held = held_observations(data.spikes[..., :N_IN], np.ones((20, N_IN), bool), 2.0)
    args = (hp, data.spikes[:4], data.inputs[:4], held[:4], 30, 5.0)
    assert rollout_stability(model, *args) == 30.0  # identity evolver: never leaves
    # a constant push of 1 per step along every latent leaves a ball of radius 5 max|z| quickly
    push = eqx.tree_at(lambda m: m.evolver.layers[-1].bias, model, jnp.full(4, 10.0))
    assert rollout_stability(push, *args) < 30.0


def test_bad_options_are_refused_before_training():
    data, _ = _data()
    with pytest.raises(ValueError, match="model__kind = 'lstm'"):
        train_data_model(BASE | SAE | {"model__kind": "lstm"}, data, progress=False)
    with pytest.raises(ValueError, match="train__time_units x train__evolve_multiple_steps = 20"):
        train_data_model(BASE | EVO | {"train__time_units": 10}, data, progress=False)
    with pytest.raises(ValueError, match="needs the known connectivity"):
        train_data_model(BASE | EVO | {"train__connectome__mode": "unconnected_to_zero"}, data,
                         progress=False)  # fmt: skip


# The SAE variants: the CtDB's other generators behind the same encoder, loss and readout.
VARIANTS = {
    "sae_rnn": dict(model__kind="sae_rnn", model__encoder_size=8, model__factor_size=3),
    "sae_lds": dict(model__kind="sae_lds", model__encoder_size=8, model__factor_size=3),
    "sae_node": dict(model__kind="sae_node", model__encoder_size=8, model__factor_size=3,
                     model__width=8, model__depth=2, model__dt=0.1),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(VARIANTS))
def test_sae_variants_train_through_the_same_core_and_records(kind, tmp_path):
    data, _ = _data(b=40)
    hp = BASE | VARIANTS[kind] | dict(train__n_epochs=4, train__validate_every=2,
                                      train__checkpoint_every=2)  # fmt: skip
    trained = train_data_model(hp, data, progress=False)
    hist = trained.history
    total = hist[hist["term"] == "total"].groupby("step")["value"].median()
    assert total.iloc[-4:].mean() < total.iloc[:4].mean()  # the loss goes down
    valid = hist[(hist["term"] == "valid_nll") & (hist["replicate"] == trained.selection.best)]
    v = data.valid
    untrained = data_model_from_hyperparams(hp, jax.random.PRNGKey(0))
    start = infer(untrained, hp, data.spikes[v], data.inputs[v]).log_rates
    assert valid["value"].iloc[-1] < float(poisson_nll(jnp.asarray(start), data.spikes[v]).mean())
    assert sorted(trained.checkpoints) == [2, 4]
    assert {"rollout_error_h1", "rollout_error_h4", "rollout_steps_stable"} <= set(hist["term"])
    # saved and loaded back (the skeleton from the hyperparameters): the same numbers
    save_trained(tmp_path / "m.eqx", trained)
    loaded = load_trained(tmp_path / "m.eqx")
    a = infer(trained.replicate(), hp, data.spikes[v], data.inputs[v])
    b = infer(loaded.replicate(), hp, data.spikes[v], data.inputs[v])
    np.testing.assert_array_equal(a.log_rates, b.log_rates)
    assert a.latents.shape == (8, 20, 4) and a.inferred_inputs.shape == (8, 20, 0)


def test_the_hash_differs_by_generator_and_by_the_node_options():
    from ntdyn.training.core import Member

    hashes = {kind: Member.from_hyperparams(BASE | extra).hash
              for kind, extra in (VARIANTS | {"sae_gru": SAE}).items()}  # fmt: skip
    assert len(set(hashes.values())) == len(hashes)
    node = BASE | VARIANTS["sae_node"]
    for name, value in (("model__dt", 0.05), ("model__width", 16), ("model__depth", 3)):
        assert Member.from_hyperparams(node | {name: value}).hash != hashes["sae_node"], name


def test_a_node_without_its_vector_field_options_is_refused_before_training():
    data, _ = _data()
    hp = BASE | VARIANTS["sae_node"]
    del hp["model__dt"]
    with pytest.raises(ValueError, match=r"model__kind = 'sae_node' needs \['model__dt'\]"):
        train_data_model(hp, data, progress=False)
    with pytest.raises(ValueError, match="model__width = 0: must be > 0"):
        train_data_model(hp | {"model__dt": 0.1, "model__width": 0}, data, progress=False)
