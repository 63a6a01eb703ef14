"""Dynamics tools on maps with known Jacobians."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.analysis import dynamics
from ntdyn.models.controller import Controller

A = np.array([[0.6, 0.2], [0.0, 0.3]])
B = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, 0.0]])


def linear(h, u):
    return jnp.asarray(A) @ h + jnp.asarray(B) @ u


def test_jacobians_along_a_linear_map_are_its_matrices():
    h = np.random.default_rng(0).normal(size=(5, 2))
    u = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(
        dynamics.jacobians_along(linear, h, u), np.broadcast_to(A, (5, 2, 2))
    )
    np.testing.assert_allclose(
        dynamics.input_jacobians(linear, h, u), np.broadcast_to(B, (5, 2, 3))
    )


def test_effective_direction_is_readout_times_jacobian():
    W = np.array([[1.0, -1.0], [0.5, 2.0]])
    jac = np.stack([A, 2 * A])
    eff = dynamics.effective_directions(W, jac)
    np.testing.assert_allclose(eff[0], W @ A)
    np.testing.assert_allclose(eff[1], W @ (2 * A))


def test_q_hessian_at_a_fixed_point_is_a_minus_i_squared():
    hess = dynamics.q_hessian(linear, np.zeros(2), np.zeros(3))
    M = A - np.eye(2)
    np.testing.assert_allclose(hess, M.T @ M, atol=1e-6)


def test_eigenvector_stimulation_decays_at_the_eigenvalue():
    vals, vecs = np.linalg.eig(A)
    W = np.eye(2)
    responses, decay = dynamics.eigvec_stimulation(linear, W, np.zeros(2), np.zeros(3),
                                                   vecs.T, 0.1, 12)  # fmt: skip
    np.testing.assert_allclose(decay, np.abs(vals), rtol=1e-4)
    # the first response is one step after the kick: A (0.1 v) = 0.1 lambda v
    np.testing.assert_allclose(responses[:, 0], 0.1 * vals[:, None] * vecs.T, atol=1e-6)


def test_controller_step_is_the_cell_at_fixed_input():
    c = Controller("gru", 4, True, key=jax.random.PRNGKey(0))
    u = dynamics.steady_state_inputs(np.array([0.2, -0.1]), sisu=1.5)
    assert u.tolist() == [0.2, -0.1, 0.2, -0.1, 0.0, 0.0, 1.5]
    h = np.linspace(-0.5, 0.5, 4)
    step = dynamics.controller_step(c)
    np.testing.assert_allclose(step(jnp.asarray(h), jnp.asarray(u)), c.cell(jnp.asarray(u), h))
    states = dynamics.autonomous_states(step, h[None], u, 3)
    np.testing.assert_allclose(states[0, 1], step(step(jnp.asarray(h), u), u), atol=1e-6)


def test_q_hessian_spectrum_at_an_exact_fixed_point_is_the_squared_singular_values():
    values, below = dynamics.q_hessian_spectrum(linear, np.zeros(2), np.zeros(3))
    expected = np.sort(np.linalg.svd(A - np.eye(2), compute_uv=False) ** 2)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    # a linear map has no curvature: only the round-off allowance remains
    assert 0 <= below <= 1e-4 * expected.max()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 1.0))
def test_q_hessian_spectrum_away_from_a_fixed_point_obeys_weyl(seed, scale):
    # a tanh network near (not at) its fixed point at the origin: the residual's
    # curvature makes the Hessian indefinite, never below the returned bound
    rng = np.random.default_rng(seed)
    W = jnp.asarray(rng.normal(size=(6, 6)) * 1.5 / np.sqrt(6))

    def tanh_net(h, u):
        return jnp.tanh(W @ h)

    h = rng.normal(size=6) * scale
    values, below = dynamics.q_hessian_spectrum(tanh_net, h, np.zeros(1))
    full = np.linalg.eigvalsh(np.asarray(dynamics.q_hessian(tanh_net, h, np.zeros(1)), float))
    np.testing.assert_allclose(values, np.sort(full), rtol=1e-5, atol=1e-6)
    assert below > 0
    assert values.min() >= -below


def test_hessian_table_refuses_an_eigenvalue_below_the_weyl_bound():
    import pandas as pd
    import pytest

    from ntdyn.hyperparams.tables import TableError, validate_table

    ok = pd.DataFrame({"hash": "a", "sisu": 0.0, "mode": [0, 1],
                       "eigenvalue": [-1e-4, 0.5], "negative_bound": 2e-4})  # fmt: skip
    validate_table("hessian", ok)
    with pytest.raises(TableError, match="negative_bound"):
        validate_table("hessian", ok.assign(negative_bound=1e-5))
