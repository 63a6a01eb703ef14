"""The input-driven scans (`ntdyn.models.scans`): the same states and gradients as stepping
the cell in a plain `lax.scan` (the straightforward reference, kept here), for every cell
kind, with and without the hidden noise, mapped over a batch and over both directions."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.models.cells import TanhRNNCell
from ntdyn.models.generators import LinearCell, NeuralODECell
from ntdyn.models.scans import gru_sequence, input_share, scan_both_ways, scan_inputs


def reference_scan(cell, xs, h0, noise=None):
    """The cell stepped as it is, the noise added after each step."""
    noise = jnp.zeros((xs.shape[0], h0.shape[0])) if noise is None else noise

    def step(h, x_xi):
        h = cell(x_xi[0], h) + x_xi[1]
        return h, h

    return jax.lax.scan(step, h0, (xs, noise))[1]


def _close(a, b, tol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        scale = max(1.0, float(jnp.max(jnp.abs(y))))
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=tol * scale)


def _cells(key, n_in, n_h):
    k = jax.random.split(key, 4)
    return {
        "gru": eqx.nn.GRUCell(n_in, n_h, key=k[0]),
        "gru_no_bias": eqx.nn.GRUCell(n_in, n_h, use_bias=False, key=k[1]),
        "rnn": TanhRNNCell(n_in, n_h, key=k[2]),
        "lds": LinearCell(n_in, n_h, key=k[3]),
        "node": NeuralODECell(n_in, n_h, width=8, depth=2, dt=0.1, key=k[3]),
    }


@pytest.mark.parametrize("kind", ["gru", "gru_no_bias", "rnn", "lds", "node"])
@pytest.mark.parametrize("unroll", [1, 4])
def test_states_and_gradients_are_the_plain_scans(kind, unroll):
    key = jax.random.PRNGKey(0)
    n_t, n_in, n_h, batch = 9, 3, 5, 4
    cell = _cells(key, n_in, n_h)[kind]
    xs = jax.random.normal(jax.random.PRNGKey(1), (batch, n_t, n_in))
    h0 = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (batch, n_h))
    target = jax.random.normal(jax.random.PRNGKey(3), (batch, n_t, n_h))

    def loss(c, h0, scan):
        hs = jax.vmap(lambda x, h: scan(c, x, h))(xs, h0)
        return jnp.mean((hs - target) ** 2) + jnp.mean(hs[:, -1] ** 3)

    fast = lambda c, x, h: scan_inputs(c, x, h, unroll=unroll)  # noqa: E731
    _close(jax.vmap(lambda x, h: fast(cell, x, h))(xs, h0),
           jax.vmap(lambda x, h: reference_scan(cell, x, h))(xs, h0))  # fmt: skip
    got = eqx.filter_grad(loss)(cell, h0, fast), jax.grad(loss, 1)(cell, h0, fast)
    want = (
        eqx.filter_grad(loss)(cell, h0, reference_scan),
        jax.grad(loss, 1)(cell, h0, reference_scan),
    )
    _close(got, want)


def test_a_sources_hidden_noise_is_added_after_each_step_and_differentiated():
    cell = eqx.nn.GRUCell(2, 4, key=jax.random.PRNGKey(0))
    xs = jax.random.normal(jax.random.PRNGKey(1), (7, 2))
    noise = 0.1 * jax.random.normal(jax.random.PRNGKey(2), (7, 4))
    h0 = jnp.zeros(4)

    def loss(c, xi, scan):
        return jnp.sum(jnp.sin(scan(c, xi)))

    fast = lambda c, xi: gru_sequence(c, input_share(c, xs), h0, xi, unroll=1)  # noqa: E731
    slow = lambda c, xi: reference_scan(c, xs, h0, xi)  # noqa: E731
    _close(fast(cell, noise), slow(cell, noise))
    assert not np.allclose(fast(cell, noise), fast(cell, 0 * noise))  # the noise counts
    _close(eqx.filter_grad(loss)(cell, noise, fast), eqx.filter_grad(loss)(cell, noise, slow))
    _close(jax.grad(loss, 1)(cell, noise, fast), jax.grad(loss, 1)(cell, noise, slow))


def test_both_directions_in_one_loop_are_two_plain_scans():
    k = jax.random.split(jax.random.PRNGKey(4), 3)
    fwd, bwd = eqx.nn.GRUCell(3, 5, key=k[0]), eqx.nn.GRUCell(3, 5, key=k[1])
    xs = jax.random.normal(k[2], (8, 3))

    def plain(cells):
        f = reference_scan(cells[0], xs, jnp.zeros(5))
        b = reference_scan(cells[1], xs[::-1], jnp.zeros(5))[::-1]
        return f, b

    fast = lambda cells: scan_both_ways(cells[0], cells[1], xs, unroll=2)  # noqa: E731
    _close(fast((fwd, bwd)), plain((fwd, bwd)))
    loss = lambda scan: lambda c: jnp.sum(scan(c)[0] ** 2) - jnp.sum(jnp.cos(scan(c)[1]))  # noqa: E731
    _close(eqx.filter_grad(loss(fast))((fwd, bwd)), eqx.filter_grad(loss(plain))((fwd, bwd)))
    with pytest.raises(ValueError, match="one shape"):
        scan_both_ways(fwd, eqx.nn.GRUCell(3, 6, key=k[0]), xs)


@settings(max_examples=5, deadline=None)
@given(n_t=st.integers(1, 9), n_h=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_gru_gradient_matches_autodiff_for_any_length_and_size(n_t, n_h, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    cell = eqx.nn.GRUCell(2, n_h, key=keys[0])
    xs = 2 * jax.random.normal(keys[1], (n_t, 2))
    weights = jax.random.normal(keys[2], (n_t, n_h))

    def loss(c, scan):
        return jnp.sum(weights * jnp.tanh(scan(c)))

    fast = lambda c: scan_inputs(c, xs, jnp.zeros(n_h), unroll=1)  # noqa: E731
    slow = lambda c: reference_scan(c, xs, jnp.zeros(n_h))  # noqa: E731
    _close(eqx.filter_grad(loss)(cell, fast), eqx.filter_grad(loss)(cell, slow))


@pytest.mark.parametrize("kind", ["sae_gru", "sae_rnn", "sae_lds", "lfads"])
def test_the_models_give_the_same_loss_and_gradient_either_way(kind, monkeypatch):
    # NTDYN_WRITTEN_GRADIENTS=1 puts the CPU on the accelerators' path
    from ntdyn.models.data_trained import data_model_from_hyperparams
    from ntdyn.models.flipflop import FlipFlopRNN

    hp = {"model__kind": kind, "data__n_held_in": 4, "data__n_held_out": 2, "data__n_inputs": 2,
          "model__encoder_size": 5, "model__latent_size": 6, "model__factor_size": 3,
          "model__controller_size": 3, "model__n_inferred_inputs": 0}  # fmt: skip
    sae = data_model_from_hyperparams(hp, jax.random.PRNGKey(0))
    source = FlipFlopRNN(2, 5, key=jax.random.PRNGKey(1))
    spikes = jax.random.poisson(jax.random.PRNGKey(2), 1.0, (3, 11, 4)).astype(jnp.float32)
    inputs = jax.random.normal(jax.random.PRNGKey(3), (3, 11, 2))
    keys = jax.random.split(jax.random.PRNGKey(4), 3)

    def loss(models):
        m, s = models
        out = jax.vmap(m)(spikes, inputs, keys)
        y, h = jax.vmap(lambda x, k: s(x, k, 0.1))(inputs, keys)
        return jnp.mean(jnp.exp(out.log_rates)) + out.kl.mean() + jnp.mean(y**2) + h.std()

    grads = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("NTDYN_WRITTEN_GRADIENTS", flag)
        grads[flag] = eqx.filter_value_and_grad(loss)((sae, source))
    _close(grads["1"], grads["0"])
    monkeypatch.setenv("NTDYN_WRITTEN_GRADIENTS", "yes")
    with pytest.raises(ValueError, match="NTDYN_WRITTEN_GRADIENTS"):
        loss((sae, source))


def test_the_default_is_per_backend_and_the_variable_decides_when_set(monkeypatch):
    from ntdyn.models import scans

    monkeypatch.delenv("NTDYN_WRITTEN_GRADIENTS", raising=False)
    assert not scans.written_gradients()  # this CPU: the plain scan
    monkeypatch.setattr(scans.jax, "default_backend", lambda: "gpu")
    assert scans.written_gradients()  # measured faster on a GPU
    assert not scans.written_gradients(on_accelerators=False)  # not measured yet: asked only
    monkeypatch.setenv("NTDYN_WRITTEN_GRADIENTS", "1")
    assert scans.written_gradients(on_accelerators=False)
    monkeypatch.setenv("NTDYN_WRITTEN_GRADIENTS", "0")
    assert not scans.written_gradients()
