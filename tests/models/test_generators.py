"""The sequential autoencoders' generators: each step against its closed form."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntdyn.hyperparams.kinds import DATA_MODEL_KINDS as DECLARED_KINDS
from ntdyn.models.data_trained import DATA_MODEL_KINDS, SAE_GENERATORS, SequentialAutoencoder
from ntdyn.models.generators import LinearCell, NeuralODECell, make_generator

G, I = 4, 2
KEY = jax.random.PRNGKey(0)
H = jnp.array([0.5, -1.0, 2.0, 0.1])
U = jnp.array([0.3, -0.7])


def test_lds_step_is_linear_and_with_identity_dynamics_and_no_input_keeps_the_state():
    cell = make_generator("lds", I, G, key=KEY)
    assert isinstance(cell, LinearCell)
    a, b, c = cell.dynamics.weight, cell.input_map.weight, cell.input_map.bias
    np.testing.assert_allclose(cell(U, H), a @ H + b @ U + c, rtol=1e-6)
    still = eqx.tree_at(
        lambda c: (c.dynamics.weight, c.input_map.weight, c.input_map.bias),
        cell, (jnp.eye(G), jnp.zeros((G, I)), jnp.zeros(G)),
    )  # fmt: skip
    np.testing.assert_array_equal(still(U, H), H)


def test_node_step_is_the_state_plus_dt_times_the_vector_field():
    cell = make_generator("node", I, G, key=KEY, width=8, depth=2, dt=0.1)
    assert isinstance(cell, NeuralODECell)
    x = jnp.concatenate([H, U])
    # the MLP by hand: ReLU hidden layers, linear output
    (w0, b0), (w1, b1), (w2, b2) = ((lin.weight, lin.bias) for lin in cell.vector_field.layers)
    f = w2 @ jax.nn.relu(w1 @ jax.nn.relu(w0 @ x + b0) + b1) + b2
    np.testing.assert_allclose(cell(U, H), H + 0.1 * f, rtol=1e-5, atol=1e-6)
    # dt scales the increment linearly
    half = make_generator("node", I, G, key=KEY, width=8, depth=2, dt=0.05)
    np.testing.assert_allclose(half(U, H) - H, 0.5 * (cell(U, H) - H), rtol=1e-5, atol=1e-7)


def test_rnn_step_is_tanh_of_the_affine_map():
    cell = make_generator("rnn", I, G, key=KEY)
    w_in, b = cell.input_to_hidden.weight, cell.input_to_hidden.bias
    w_rec = cell.hidden_to_hidden.weight
    np.testing.assert_allclose(cell(U, H), np.tanh(w_rec @ H + w_in @ U + b), rtol=1e-6)


def test_bad_generators_are_refused():
    with pytest.raises(ValueError, match="generator 'lstm'"):
        make_generator("lstm", I, G, key=KEY)
    with pytest.raises(ValueError, match="model__dt > 0"):
        make_generator("node", I, G, key=KEY, width=8, depth=2, dt=0.0)


@pytest.mark.parametrize("kind", ["sae_rnn", "sae_lds", "sae_node"])
def test_the_autoencoder_runs_its_generator_from_the_inferred_initial_state(kind):
    """Latents = the generator stepped by hand from the encoder's initial state."""
    model = SequentialAutoencoder(
        3, 5, I, encoder_size=6, generator_size=G, factor_size=2, variational=False,
        n_inferred_inputs=0, controller_size=0, key=KEY, generator=SAE_GENERATORS[kind],
        node_width=8, node_depth=1, node_dt=0.1,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    spikes, inputs = jnp.asarray(rng.poisson(1.0, (7, 3)), jnp.float32), jnp.ones((7, I))
    out, h = eqx.filter_jit(lambda m, x, u: (m(x, u), m.encode(x)[1]))(model, spikes, inputs)
    step = eqx.filter_jit(lambda m, h, u: m.step(h, u))
    for t in range(7):
        h = step(model, h, inputs[t])
        np.testing.assert_allclose(out.latents[t], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.log_rates[-1], model.readout(model.to_factors(h)), rtol=1e-5)


def test_every_declared_kind_has_a_model():
    assert set(DECLARED_KINDS) == set(DATA_MODEL_KINDS)
