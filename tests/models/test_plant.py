"""Point-mass plant and force fields against closed forms (docs/science.md §1.1)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.models import PlantParams, constant_force, curl_force, euler_step  # noqa: E402
from science_fixtures import euler_reference  # noqa: E402

N_STEPS = 50


def _plant(mass=1.0, damping=10.0, dt=0.01) -> PlantParams:
    return PlantParams(
        mass=jnp.asarray(mass, jnp.float32),
        damping=jnp.asarray(damping, jnp.float32),
        dt=jnp.asarray(dt, jnp.float32),
    )


def _roll(plant: PlantParams, x0, force, n_steps=N_STEPS) -> np.ndarray:
    x = jnp.asarray(x0, jnp.float32)
    out = []
    for _ in range(n_steps):
        x = euler_step(plant, x, jnp.asarray(force, jnp.float32))
        out.append(np.asarray(x))
    return np.stack(out)


@pytest.mark.parametrize(
    ("mass", "damping", "dt", "force"),
    [(1.0, 10.0, 0.01, (1.5, -0.7)), (2.5, 4.0, 0.02, (-3.0, 0.25)), (0.5, 0.0, 0.01, (2.0, 1.0))],
)
def test_constant_force_from_rest_follows_hand_written_euler(mass, damping, dt, force):
    start = np.array([0.3, -0.2])
    got = _roll(_plant(mass, damping, dt), [*start, 0.0, 0.0], force)
    want = euler_reference(
        start, [0.0, 0.0], lambda k, p, v: force, mass=mass, damping=damping, dt=dt, n_steps=N_STEPS
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_damped_velocity_matches_geometric_closed_form():
    # v_n = (F / k)(1 - (1 - dt k / m)^n), p_n = p_0 + dt sum_{j<n} v_j
    mass, damping, dt, force = 2.0, 10.0, 0.01, np.array([1.0, -2.0])
    got = _roll(_plant(mass, damping, dt), [0.0, 0.0, 0.0, 0.0], force)
    n = np.arange(1, N_STEPS + 1)[:, None]
    a = 1.0 - dt * damping / mass
    v = force / damping * (1.0 - a**n)
    v_before = np.vstack([np.zeros((1, 2)), v[:-1]])
    p = dt * np.cumsum(v_before, axis=0)
    np.testing.assert_allclose(got[:, 2:], v, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got[:, :2], p, rtol=1e-4, atol=1e-7)
    # terminal velocity F/k_d is approached, not overshot
    assert np.all(np.abs(got[:, 2:]) <= np.abs(force / damping) + 1e-6)


def test_undamped_constant_force_gives_analytic_euler_sum():
    # k_d = 0: v_n = n dt F / m, p_n = p_0 + dt^2 F/m * n (n - 1) / 2
    mass, dt, force, p0 = 1.5, 0.01, np.array([0.6, -1.2]), np.array([0.1, 0.4])
    got = _roll(_plant(mass, 0.0, dt), [*p0, 0.0, 0.0], force)
    n = np.arange(1, N_STEPS + 1)[:, None]
    np.testing.assert_allclose(got[:, 2:], n * dt * force / mass, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        got[:, :2], p0 + dt**2 * force / mass * n * (n - 1) / 2, rtol=1e-5, atol=1e-7
    )


def test_euler_step_uses_velocity_before_the_step_for_position():
    # zero-order hold: position advances by dt * v_k, not dt * v_{k+1}
    x = euler_step(_plant(1.0, 10.0, 0.1), jnp.array([0.0, 0.0, 1.0, 2.0]), jnp.array([5.0, 0.0]))
    np.testing.assert_allclose(
        np.asarray(x), [0.1, 0.2, 1.0 + 0.1 * (5.0 - 10.0), 2.0 - 2.0], atol=1e-6
    )


VELOCITIES = [(1.0, 0.0), (0.0, 1.0), (0.3, -0.8), (-2.0, 1.5)]


@pytest.mark.parametrize("vel", VELOCITIES)
@pytest.mark.parametrize("phi", [0.5, 1.0, -2.0, 4.0])
def test_curl_force_is_orthogonal_with_norm_phi_times_speed(vel, phi):
    v = np.array(vel)
    f = np.asarray(curl_force(jnp.asarray(v, jnp.float32), jnp.asarray(phi, jnp.float32)))
    assert abs(f @ v) < 1e-6
    np.testing.assert_allclose(np.linalg.norm(f), abs(phi) * np.linalg.norm(v), rtol=1e-6)
    # phi [[0, 1], [-1, 0]] v = phi [v_y, -v_x]: clockwise for phi > 0
    np.testing.assert_allclose(f, phi * np.array([v[1], -v[0]]), rtol=1e-6, atol=1e-7)
    assert np.cross(v, f) * np.sign(phi) < 0  # phi > 0 rotates v by -90 degrees


def test_curl_force_scales_linearly_and_flips_with_phi():
    v = jnp.array([0.4, -1.1])
    f1 = np.asarray(curl_force(v, jnp.asarray(1.0)))
    np.testing.assert_allclose(np.asarray(curl_force(v, jnp.asarray(3.0))), 3.0 * f1, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(curl_force(v, jnp.asarray(-1.0))), -f1, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(curl_force(v, jnp.asarray(0.0))), 0.0)
    np.testing.assert_array_equal(np.asarray(curl_force(jnp.zeros(2), jnp.asarray(5.0))), 0.0)


@pytest.mark.parametrize("amp", [0.0, 0.01, 1.0, 3.5])
@pytest.mark.parametrize("angle", [-3.0, -np.pi / 2, 0.0, 0.7, np.pi / 2, 2.9])
def test_constant_force_has_norm_lambda_and_given_angle(amp, angle):
    f = np.asarray(constant_force(jnp.asarray(amp, jnp.float32), jnp.asarray(angle, jnp.float32)))
    np.testing.assert_allclose(np.linalg.norm(f), amp, rtol=1e-6, atol=1e-7)
    if amp > 0:
        np.testing.assert_allclose(np.arctan2(f[1], f[0]), angle, atol=1e-6)


def test_negative_constant_amplitude_points_the_opposite_way():
    f = np.asarray(constant_force(jnp.asarray(-2.0), jnp.asarray(0.5)))
    np.testing.assert_allclose(f, -2.0 * np.array([np.cos(0.5), np.sin(0.5)]), rtol=1e-6)
