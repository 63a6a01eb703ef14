"""Unit stimulation and ablation: mechanics in the closed loop, reductions, regression."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis import experiments
from ntdyn.analysis.unit_stim import ablation_effects, regress_on_context, unit_force_responses
from ntdyn.models.closed_loop import LoopParams, simulate_trial
from ntdyn.models.controller import Controller
from ntdyn.models.plant import PlantParams
from ntdyn.tasks.reaching import Trial

H, K = 6, 20


def _feedforward_rnn() -> Controller:
    """Tanh RNN without recurrence or readout: h_k = tanh(W x_k + b) + interventions only."""
    c = Controller("rnn", H, False, key=jax.random.PRNGKey(0))
    c = eqx.tree_at(lambda m: m.cell.hidden_to_hidden.weight, c, jnp.zeros((H, H)))
    c = eqx.tree_at(lambda m: m.readout.weight, c, jnp.zeros((2, H)))
    return eqx.tree_at(lambda m: m.readout.bias, c, jnp.zeros(2))


def _quiet_loop() -> LoopParams:
    z = jnp.asarray(0.0)
    return LoopParams(PlantParams(jnp.asarray(1.0), jnp.asarray(10.0), jnp.asarray(0.01)),
                      jnp.asarray(0), z, z, z)  # fmt: skip


def _trial(**interventions) -> Trial:
    return Trial(
        start=jnp.array([0.1, -0.2]), goal=jnp.array([0.3, 0.2]), curl=jnp.asarray(0.0),
        force=jnp.zeros(2), sisu=jnp.zeros(K), feedback_offset=jnp.zeros((K, 4)), **interventions,
    )  # fmt: skip


def _hidden(trial: Trial) -> np.ndarray:
    out = simulate_trial(_feedforward_rnn(), _quiet_loop(), trial, jax.random.PRNGKey(1))
    return np.asarray(out.hidden)


def test_stimulation_adds_drive_only_to_the_chosen_unit_and_only_in_its_window():
    profile = jnp.zeros(K).at[5:9].set(1.0)
    weights = jnp.zeros(H).at[3].set(0.7)
    diff = _hidden(_trial(drive_profile=profile, drive_weights=weights)) - _hidden(_trial())
    expected = np.zeros((K, H))
    expected[5:9, 3] = 0.7
    np.testing.assert_allclose(diff, expected, atol=1e-6)


def test_ablation_silences_only_that_unit():
    base = _hidden(_trial())
    ablated = _hidden(_trial(hidden_mask=jnp.ones(H).at[2].set(0.0)))
    assert np.all(ablated[:, 2] == 0.0)
    assert np.abs(base[:, 2]).max() > 1e-3  # the unit was active before
    np.testing.assert_allclose(np.delete(ablated, 2, 1), np.delete(base, 2, 1), atol=1e-7)


def test_unit_perts_trials_have_baselines_and_one_stimulated_unit_each():
    trials, cond = experiments.unit_perts(
        n_units=4, stim_amps=[0.0, 1.0], stim_start=3, stim_steps=2, curl_amps=[0.0, 4.0],
        sisu=[-1.0, 1.0], grid_n=1, n_repeats=2, n_steps=10, workspace=1.0,
    )  # fmt: skip
    # per context: baseline + 4 units, 2 repeats each; 4 contexts
    assert len(cond) == trials.start.shape[0] == 4 * (1 + 4) * 2
    w = np.asarray(trials.drive_weights)
    stim = cond["unit"].to_numpy() >= 0
    assert np.all(w[~stim] == 0)
    assert np.all(w[stim, cond["unit"][stim]] == 1.0)
    assert np.all((w[stim] != 0).sum(1) == 1)
    assert np.all(np.asarray(trials.drive_profile)[:, 3:5] == 1)
    assert np.asarray(trials.drive_profile).sum(1).tolist() == [2.0] * len(cond)


def test_unit_ablation_masks_one_unit_per_condition():
    trials, cond = experiments.unit_ablation(
        n_units=3, sisu=[0.0], grid_n=1, n_directions=2, reach_length=0.5, n_repeats=1,
        n_steps=10, workspace=1.0,
    )  # fmt: skip
    mask = np.asarray(trials.hidden_mask)
    assert sorted(cond["ablated_unit"].unique()) == [-1, 0, 1, 2]
    for i, unit in enumerate(cond["ablated_unit"]):
        expected = np.ones(3)
        if unit >= 0:
            expected[unit] = 0.0
        np.testing.assert_array_equal(mask[i], expected)


def test_sisu_pert_steps_the_schedule_at_the_given_step():
    trials, cond = experiments.sisu_pert(
        sisu_start=0.0, sisu_ends=[0.0, 2.0], step_at=4, curl_amps=[0.0, 2.0],
        tasks=["steady", "reach"], grid_n=1, n_directions=3, reach_length=0.5, n_repeats=1,
        n_steps=10, workspace=1.0,
    )  # fmt: skip
    assert len(cond) == 2 * 2 * 2 * 3
    sisu = np.asarray(trials.sisu)
    assert np.all(sisu[:, :4] == 0.0)
    np.testing.assert_array_equal(
        sisu[:, 4:], np.repeat(cond["sisu_end"].to_numpy()[:, None], 6, 1)
    )
    steady = cond["task"].to_numpy() == "steady"
    np.testing.assert_array_equal(np.asarray(trials.goal)[steady], np.asarray(trials.start)[steady])


def test_force_responses_subtract_the_baseline_of_the_same_context():
    rows, forces = [], []
    for curl in (0.0, 4.0):
        for sisu in (-1.0, 1.0):
            base = np.array([curl, sisu])
            for _ in range(3):
                rows.append(dict(unit=-1, stim_amp=0.0, curl_amp=curl, sisu=sisu))
                forces.append(base)
                for unit, offset in ((0, [1.0, 0.0]), (1, [0.0, -2.0])):
                    rows.append(dict(unit=unit, stim_amp=1.0, curl_amp=curl, sisu=sisu))
                    forces.append(base + offset)
    control = np.repeat(np.asarray(forces)[:, None, :], 10, axis=1)
    control[:, :2] = 99.0  # outside the window: must be ignored
    out = unit_force_responses(control, pd.DataFrame(rows), window=(2, 10))
    assert len(out) == 2 * 4
    u0, u1 = out[out["unit"] == 0], out[out["unit"] == 1]
    np.testing.assert_allclose(u0[["dfx", "dfy"]].to_numpy(), [[1.0, 0.0]] * 4, atol=1e-12)
    np.testing.assert_allclose(u1["amplitude"], 2.0)
    np.testing.assert_allclose(u1["direction"], -np.pi / 2)


def test_regression_recovers_known_coefficients():
    rng = np.random.default_rng(1)
    curl, sisu = np.meshgrid([0.0, 2.0, 4.0], [-2.0, 0.0, 2.0])
    rows = []
    truth = {0: (0.5, 0.1, -0.3), 1: (1.0, -0.2, 0.05)}
    for unit, (b0, b_curl, b_sisu) in truth.items():
        amp = b0 + b_curl * curl.ravel() + b_sisu * sisu.ravel()
        noisy = amp + 1e-9 * rng.normal(size=amp.size)
        rows.append(
            pd.DataFrame(
                {"unit": unit, "curl_amp": curl.ravel(), "sisu": sisu.ravel(), "amplitude": noisy}
            )
        )
    coefs = regress_on_context(pd.concat(rows), "amplitude").set_index("unit")
    for unit, (b0, b_curl, b_sisu) in truth.items():
        assert coefs.at[unit, "intercept"] == pytest.approx(b0, abs=1e-6)
        assert coefs.at[unit, "coef_curl_amp"] == pytest.approx(b_curl, abs=1e-6)
        assert coefs.at[unit, "coef_sisu"] == pytest.approx(b_sisu, abs=1e-6)
        assert coefs.at[unit, "r2"] == pytest.approx(1.0, abs=1e-9)


def test_ablation_effects_rank_units_by_the_size_of_the_change():
    measures = pd.DataFrame(
        {"ablated_unit": [-1, -1, 0, 0, 1, 1, 2, 2],
         "end_position_error": [1.0, 1.0, 1.5, 1.5, 0.2, 0.2, 1.1, 1.1]}
    )  # fmt: skip
    eff = ablation_effects(measures, ("end_position_error",)).set_index("unit")
    np.testing.assert_allclose(eff.loc[[0, 1, 2], "delta"], [0.5, -0.8, 0.1])
    assert eff.loc[[0, 1, 2], "rank"].tolist() == [2, 1, 3]


def test_tms_pulses_a_fixed_subset_briefly_and_tdcs_biases_every_unit_throughout():
    trials, cond = experiments.tms_tdcs(
        n_units=10, tms_amps=[0.0, 3.0], tms_fraction=0.3, tms_start=4, tms_steps=2,
        tdcs_amps=[0.1], seed=0, grid_n=1, n_directions=2, reach_length=0.5, n_repeats=1,
        n_steps=12, workspace=1.0,
    )  # fmt: skip
    profile, weights = np.asarray(trials.drive_profile), np.asarray(trials.drive_weights)
    tms = (cond["protocol"] == "tms").to_numpy() & (cond["amplitude"] == 3.0).to_numpy()
    control = (cond["protocol"] == "tms").to_numpy() & (cond["amplitude"] == 0.0).to_numpy()
    tdcs = (cond["protocol"] == "tdcs").to_numpy()
    assert np.all(profile[tms][:, 4:6] == 1) and profile[tms].sum(1).tolist() == [2.0, 2.0]
    assert ((weights[tms] == 3.0).sum(1) == 3).all() and ((weights[tms] == 0).sum(1) == 7).all()
    assert np.array_equal(weights[tms][0], weights[tms][1])  # the same subset in every trial
    assert np.all(weights[control] == 0)
    assert np.all(profile[tdcs] == 1) and np.all(weights[tdcs] == 0.1)
