"""Training-trace analyses (ntdyn.analysis.learning) on data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ntdyn.analysis.learning import (
    ARForecast,
    LearningStates,
    ParameterPCA,
    ar_forecast,
    ccm_direction,
    convergent_cross_mapping,
    correlation_weight_relation,
    cross_correlation,
    learning_states,
    morlet_amplitudes,
    parameter_pca,
    power_spectra,
    strongest_pairs,
    unit_correlations,
    unit_features,
    unit_tsne,
)

# --- parameter PCA -----------------------------------------------------------------------------


def _planted_trajectory(n_params: int, n_records: int = 200, seed: int = 0):
    """(S, P) trajectory along 3 orthonormal directions with amplitudes 10, 3, 1.

    The time courses are cosines with 1, 2, 3 full cycles: zero-mean and mutually orthogonal
    over the S records, so the variances are exactly in the ratio 100 : 9 : 1.
    """
    rng = np.random.default_rng(seed)
    directions, _ = np.linalg.qr(rng.normal(size=(n_params, 3)))
    t = np.arange(n_records) / n_records
    courses = np.column_stack([a * np.cos(2 * np.pi * k * t) for a, k in ((10, 1), (3, 2), (1, 3))])
    offset = rng.normal(size=n_params)
    return courses @ directions.T + offset, directions.T, courses, offset


@pytest.mark.parametrize("n_params", [500, 40], ids=["gram_P>S", "svd_P<S"])
def test_parameter_pca_recovers_planted_directions(n_params):
    trajectory, directions, courses, offset = _planted_trajectory(n_params)
    pca = parameter_pca(trajectory, 3)
    assert isinstance(pca, ParameterPCA)
    assert pca.scores.shape == (200, 3) and pca.components.shape == (3, n_params)
    np.testing.assert_allclose(pca.explained_variance_ratio, np.array([100, 9, 1]) / 110, atol=1e-9)
    np.testing.assert_allclose(pca.mean, offset, atol=1e-9)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(np.abs(np.sum(pca.components * directions, 1)), 1.0, atol=1e-9)
    # scores are the planted time courses up to sign; they rebuild the trajectory
    np.testing.assert_allclose(np.abs(pca.scores), np.abs(courses), atol=1e-8)
    np.testing.assert_allclose(pca.scores @ pca.components + pca.mean, trajectory, atol=1e-8)
    assert np.all(pca.components[np.arange(3), np.abs(pca.components).argmax(1)] > 0)


def test_parameter_pca_gram_and_svd_paths_agree_and_clip():
    rng = np.random.default_rng(3)
    wide = rng.normal(size=(30, 60))  # P > S: Gram path
    gram = parameter_pca(wide, 5)
    x = wide - wide.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(gram.explained_variance_ratio, s[:5] ** 2 / (s**2).sum(), atol=1e-12)
    np.testing.assert_allclose(np.abs(gram.components), np.abs(vt[:5]), atol=1e-8)
    # 30 centred records have rank 29: the 30th component has no variance and is a zero row
    full = parameter_pca(wide, 100)
    assert full.components.shape == (30, 60)
    assert full.explained_variance_ratio[-1] < 1e-20
    np.testing.assert_array_equal(full.components[-1], 0.0)
    np.testing.assert_allclose(full.explained_variance_ratio.sum(), 1.0)


def test_parameter_pca_validates():
    with pytest.raises(ValueError, match="n_components must be >= 1, got 0"):
        parameter_pca(np.zeros((5, 3)), 0)
    with pytest.raises(ValueError, match="trajectory must be 2-D"):
        parameter_pca(np.zeros(5), 1)
    with pytest.raises(ValueError, match=">= 2 recorded steps"):
        parameter_pca(np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match="NaN"):
        parameter_pca(np.full((4, 3), np.nan), 1)


# --- power spectra -----------------------------------------------------------------------------


def test_power_spectra_peak_at_planted_frequency_in_cycles_per_step():
    step_interval, n_records = 10, 400
    t = np.arange(n_records)
    # 0.05 and 0.125 cycles per record = 0.005 and 0.0125 cycles per training step, riding
    # on drifts that the linear detrending must remove
    scores = np.column_stack(
        [
            np.sin(2 * np.pi * 0.05 * t) + 0.05 * t,
            0.5 * np.cos(2 * np.pi * 0.125 * t) - 0.02 * t,
            np.random.default_rng(0).normal(size=n_records),
        ]
    )
    table = power_spectra(scores, step_interval, n_components=2)
    assert list(table.columns) == ["component", "frequency", "power"]
    assert sorted(table["component"].unique()) == [0, 1]
    assert table["frequency"].min() > 0
    np.testing.assert_allclose(table["frequency"].min(), 1 / (n_records * step_interval))
    np.testing.assert_allclose(table["frequency"].max(), 0.5 / step_interval)
    peaks = table.loc[table.groupby("component")["power"].idxmax()]
    np.testing.assert_allclose(peaks["frequency"], [0.005, 0.0125], atol=1e-12)
    # the drift is gone: the lowest frequency carries far less power than the peak
    low = table[table["frequency"] == table["frequency"].min()].set_index("component")["power"]
    assert np.all(low.to_numpy() < 1e-3 * peaks["power"].to_numpy())
    assert len(power_spectra(scores, 1)["component"].unique()) == 3


def test_power_spectra_validates():
    with pytest.raises(ValueError, match="step_interval must be >= 1"):
        power_spectra(np.zeros((10, 2)), 0)
    with pytest.raises(ValueError, match="n_components must be in 1..2"):
        power_spectra(np.zeros((10, 2)), 1, n_components=3)


# --- units: features and t-SNE -----------------------------------------------------------------


def _two_unit_types(n_records: int = 30, seed: int = 0):
    """Two layers whose units are of two types: rising activity and small weights, or
    falling activity and large weights. Layer 0 has 12 units (fan-in 20), layer 1 10 (fan-in
    12). Returns (weights, activations, type per unit)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, n_records)
    weights, activations, types = [], [], []
    for n_out, n_in in ((12, 20), (10, 12)):
        kind = np.arange(n_out) % 2
        scale = np.where(kind == 0, 0.2, 2.0)[:, None]
        weights.append(rng.normal(size=(n_out, n_in)) * scale)
        trend = np.where(kind == 0, 1.0, -1.0)[None, :] * ramp[:, None]
        act = trend[:, None, :] + 0.3 * rng.normal(size=(n_records, 16, n_out))
        activations.append(act)
        types.append(kind)
    return weights, activations, np.concatenate(types)


def test_unit_features_shape_and_blocks():
    weights, activations, _ = _two_unit_types()
    features = unit_features(weights, activations)
    assert features.shape == (22, 12 + 30)
    # activation block: each unit's profile is z-scored over records, then scaled by 1/sqrt(S)
    profile = features[:, 12:] * np.sqrt(30)
    np.testing.assert_allclose(profile.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(profile.std(1), 1.0, atol=1e-12)
    # a unit whose activation never changes gets a zero profile, not NaN
    activations[0][:, :, 3] = 0.7
    np.testing.assert_array_equal(unit_features(weights, activations)[3, 12:], 0.0)


def test_unit_features_weight_summary_is_fan_in_free():
    # two layers, fan-in 20 and 300, each with dense (Gaussian) and sparse (90% zero) units:
    # the weight features must group units by the shape of their weights, not by fan-in
    rng = np.random.default_rng(1)
    weights, sparse = [], []
    for fan_in in (20, 300):
        w = rng.normal(size=(8, fan_in))
        is_sparse = np.arange(8) % 2 == 1
        w[is_sparse] *= rng.uniform(size=(4, fan_in)) < 0.1
        weights.append(w)
        sparse.append(is_sparse)
    acts = [np.zeros((5, 2, 8)), np.zeros((5, 2, 8))]
    features = unit_features(weights, acts)[:, :12]
    sparse = np.concatenate(sparse)
    dist = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_array_equal(sparse[dist.argmin(1)], sparse)
    # unlike units are further apart than like units of different fan-in
    like_across_layers = dist[:8, 8:][sparse[:8, None] == sparse[None, 8:]]
    assert dist[sparse][:, ~sparse].min() > like_across_layers.max()


def test_unit_features_validates():
    w = [np.zeros((4, 3))]
    with pytest.raises(ValueError, match="same layers"):
        unit_features(w, [])
    with pytest.raises(ValueError, match=r"activations\[0\] must be \(S, n_probe, 4\)"):
        unit_features(w, [np.zeros((5, 2, 3))])
    with pytest.raises(ValueError, match=r"activations\[1\] has 6 records"):
        unit_features(w * 2, [np.zeros((5, 2, 4)), np.zeros((6, 2, 4))])


def test_unit_tsne_is_deterministic_and_separates_unit_types():
    weights, activations, types = _two_unit_types()
    features = unit_features(weights, activations)
    emb = unit_tsne(features, perplexity=5.0, seed=0)
    assert emb.shape == (22, 2)
    np.testing.assert_array_equal(emb, unit_tsne(features, perplexity=5.0, seed=0))
    # every unit's nearest neighbour on the map is of its own type
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_array_equal(types[dist.argmin(1)], types)
    # and the groups are further apart than they are wide
    centres = np.array([emb[types == k].mean(0) for k in (0, 1)])
    spread = max(np.linalg.norm(emb[types == k] - centres[k], axis=1).max() for k in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > spread
    # perplexity beyond U is clipped rather than refused
    assert unit_tsne(features[:6], perplexity=50.0).shape == (6, 2)
    with pytest.raises(ValueError, match="perplexity must be > 0"):
        unit_tsne(features, perplexity=0.0)


# --- unit-unit correlations --------------------------------------------------------------------


def test_unit_correlations_match_pearson_and_constant_unit_is_zero():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(200, 5))
    acts[:, 1] = 2 * acts[:, 0] + 0.1 * rng.normal(size=200)
    acts[:, 4] = 3.0  # a dead unit
    corr = unit_correlations(acts)
    assert corr.shape == (5, 5)
    assert not np.any(np.isnan(corr))
    np.testing.assert_array_equal(corr[4], 0.0)
    np.testing.assert_array_equal(corr[:, 4], 0.0)
    np.testing.assert_allclose(corr[:4, :4], np.corrcoef(acts[:, :4].T), atol=1e-12)
    assert corr[0, 1] > 0.99


def test_cross_correlation_layout_and_strongest_pairs_find_planted_pair():
    rng = np.random.default_rng(1)
    pre = rng.normal(size=(300, 6))
    post = rng.normal(size=(300, 4))
    post[:, 2] = -pre[:, 5] + 0.2 * rng.normal(size=300)  # post 2 follows pre 5 (inverted)
    post[:, 0] = 0.5 * pre[:, 1] + rng.normal(size=300)  # weaker: post 0 with pre 1
    corr = cross_correlation(pre, post)
    assert corr.shape == (4, 6)
    np.testing.assert_allclose(corr[2, 5], np.corrcoef(post[:, 2], pre[:, 5])[0, 1], atol=1e-12)
    weights = rng.normal(size=(4, 6))
    pairs = strongest_pairs(corr, weights, 2)
    assert list(pairs.columns) == ["post", "pre", "correlation", "weight"]
    assert pairs[["post", "pre"]].values.tolist() == [[2, 5], [0, 1]]
    assert pairs["correlation"].iloc[0] < -0.9
    assert pairs["weight"].iloc[0] == weights[2, 5]
    assert len(strongest_pairs(corr, weights, 100)) == 24
    with pytest.raises(ValueError, match="n must be >= 1"):
        strongest_pairs(corr, weights, 0)
    with pytest.raises(ValueError, match=r"weights \(6, 4\)"):
        strongest_pairs(corr, weights.T, 3)
    with pytest.raises(ValueError, match="same samples"):
        cross_correlation(pre, post[:10])


def test_correlation_weight_relation_is_spearman():
    rng = np.random.default_rng(2)
    corr = rng.uniform(-1, 1, size=(5, 7))
    assert correlation_weight_relation(corr, corr) == pytest.approx(1.0)
    # ranks only: any increasing map of the correlation gives 1, a decreasing one -1
    assert correlation_weight_relation(corr, np.exp(3 * corr)) == pytest.approx(1.0)
    assert correlation_weight_relation(corr, -(corr**3)) == pytest.approx(-1.0)
    assert abs(correlation_weight_relation(corr, rng.normal(size=(5, 7)))) < 0.5
    assert np.isnan(correlation_weight_relation(corr, np.ones((5, 7))))
    with pytest.raises(ValueError, match="same shape"):
        correlation_weight_relation(corr, corr.T)


# --- convergent cross mapping ------------------------------------------------------------------


def _logistic_maps(n: int, beta_xy: float, beta_yx: float):
    """Coupled logistic maps of Sugihara et al. 2012: beta_yx is the effect of x on y."""
    x, y = np.empty(n), np.empty(n)
    x[0], y[0] = 0.4, 0.2
    for t in range(n - 1):
        x[t + 1] = x[t] * (3.8 - 3.8 * x[t] - beta_xy * y[t])
        y[t + 1] = y[t] * (3.5 - 3.5 * y[t] - beta_yx * x[t])
    return x, y


@pytest.fixture(scope="module")
def one_way():
    """x drives y (beta_yx = 0.1), y does not affect x."""
    return _logistic_maps(1000, beta_xy=0.0, beta_yx=0.1)


def test_ccm_detects_one_way_drive(one_way):
    x, y = one_way
    sizes = [10, 25, 50, 100, 200, 400, 990]
    table = convergent_cross_mapping(x, y, embedding_dim=2, library_sizes=sizes, sample=30)
    assert list(table.columns) == ["library_size", "x_xmap_y", "y_xmap_x"]
    assert table["library_size"].tolist() == sizes
    # x drives y: x is recovered from y's shadow manifold, better with more library
    drive = table["y_xmap_x"].to_numpy()
    assert drive[-1] > 0.9
    assert drive[-1] > drive[0] + 0.4
    assert np.all(np.diff(drive) > -0.02)
    # y does not drive x: y cannot be recovered from x's manifold
    assert table["x_xmap_y"].iloc[-1] < 0.2
    summary = ccm_direction(table)
    assert summary["direction"] == "x->y"
    assert summary["x_drives_y"] == drive[-1]
    assert summary["x_drives_y"] - summary["y_drives_x"] > 0.7
    assert summary["x_drives_y_gain"] > 0.4
    # swapping the arguments swaps the verdict (the column semantics are not symmetric)
    swapped = convergent_cross_mapping(y, x, embedding_dim=2, library_sizes=sizes, sample=30)
    assert ccm_direction(swapped)["direction"] == "y->x"
    np.testing.assert_allclose(swapped["x_xmap_y"], table["y_xmap_x"], atol=0.05)


def test_ccm_is_deterministic_and_default_library_sizes(one_way):
    x, y = one_way[0][:200], one_way[1][:200]
    first = convergent_cross_mapping(x, y, sample=10, seed=3)
    pd.testing.assert_frame_equal(first, convergent_cross_mapping(x, y, sample=10, seed=3))
    assert first["library_size"].iloc[0] == 5 and first["library_size"].iloc[-1] == 200
    assert len(first) == 8


def test_ccm_validates_and_direction_logic():
    x = np.linspace(0, 1, 50)
    with pytest.raises(ValueError, match="same length"):
        convergent_cross_mapping(x, x[:40])
    with pytest.raises(ValueError, match="tau must be >= 1"):
        convergent_cross_mapping(x, x, tau=0)
    with pytest.raises(ValueError, match=r"library_sizes must be non-empty, each in 5..50"):
        convergent_cross_mapping(x, x, library_sizes=[3, 20])
    table = pd.DataFrame(
        {"library_size": [10, 100], "x_xmap_y": [0.2, 0.9], "y_xmap_x": [0.1, 0.3]}
    )
    assert ccm_direction(table)["direction"] == "y->x"
    # higher but not converging (falls with library size): no verdict
    table["x_xmap_y"] = [0.95, 0.9]
    assert ccm_direction(table)["direction"] == "undetermined"
    # within the margin: no verdict
    table["x_xmap_y"] = [0.2, 0.35]
    assert ccm_direction(table)["direction"] == "undetermined"
    with pytest.raises(ValueError, match="lacks columns"):
        ccm_direction(table.drop(columns="y_xmap_x"))


# --- autoregressive baseline -------------------------------------------------------------------


def _ar2(n: int = 3000, seed: int = 0) -> np.ndarray:
    """x_t = 0.5 + 1.6 x_{t-1} - 0.9 x_{t-2} + N(0, 1): a noisy damped oscillation."""
    noise = np.random.default_rng(seed).normal(size=n)
    x = np.full(n, 0.5 / (1 - 1.6 + 0.9))
    for t in range(2, n):
        x[t] = 0.5 + 1.6 * x[t - 1] - 0.9 * x[t - 2] + noise[t]
    return x


def test_ar_forecast_recovers_ar2_and_beats_naive():
    x = _ar2()
    fit = ar_forecast(x, order=2, n_train=2500)
    assert isinstance(fit, ARForecast)
    np.testing.assert_allclose(fit.coefficients, [1.6, -0.9], atol=0.02)
    assert fit.intercept == pytest.approx(0.5, abs=0.1)
    assert fit.forecast.shape == (500,)
    assert fit.rmse == pytest.approx(np.sqrt(np.mean((fit.forecast - x[2500:]) ** 2)))
    assert fit.naive_rmse == pytest.approx(np.sqrt(np.mean((x[2499] - x[2500:]) ** 2)))
    # 5-step forecasts from 20 starting points: the AR model follows the oscillation
    fits = [ar_forecast(x[: start + 5], 2, start) for start in range(1000, 3000, 100)]
    rmse = np.mean([f.rmse for f in fits])
    naive = np.mean([f.naive_rmse for f in fits])
    assert rmse < 0.6 * naive


def test_ar_forecast_iterates_its_own_predictions():
    # noise-free AR(1) around 2: x_t - 2 = 0.9 (x_{t-1} - 2); the forecast must follow exactly
    x = 2 + 5 * 0.9 ** np.arange(60)
    fit = ar_forecast(x, order=1, n_train=40)
    np.testing.assert_allclose(fit.coefficients, [0.9], atol=1e-10)
    assert fit.intercept == pytest.approx(0.2, abs=1e-9)
    np.testing.assert_allclose(fit.forecast, x[40:], atol=1e-9)
    assert fit.rmse < 1e-9 < fit.naive_rmse


def test_ar_forecast_validates():
    x = np.arange(20.0)
    with pytest.raises(ValueError, match="order must be >= 1, got 0"):
        ar_forecast(x, 0, 10)
    with pytest.raises(ValueError, match=r"n_train must be in 7..19 .* got 5"):
        ar_forecast(x, 3, 5)
    with pytest.raises(ValueError, match="got 20"):
        ar_forecast(x, 3, 20)


# --- behavioural mapping -----------------------------------------------------------------------


def test_morlet_amplitude_reads_sinusoid_amplitude_at_its_frequency():
    t = np.arange(400)
    series = 2.5 * np.sin(2 * np.pi * 0.1 * t + 0.3)
    amp = morlet_amplitudes(series, np.array([0.025, 0.1, 0.4]))
    assert amp.shape == (400, 3)
    middle = amp[100:300]
    np.testing.assert_allclose(middle[:, 1], 2.5, rtol=0.03)
    assert np.all(middle[:, 0] < 0.1) and np.all(middle[:, 2] < 0.1)


def _two_regimes(n_records: int = 300, seed: int = 0) -> np.ndarray:
    """(S, 2) scores rotating at 0.05 cycles per record, then at 0.2, plus small noise."""
    t = np.arange(n_records)
    freq = np.where(t < n_records // 2, 0.05, 0.2)
    phase = 2 * np.pi * freq * t
    clean = np.column_stack([np.sin(phase), 0.5 * np.cos(phase)])
    return clean + 0.05 * np.random.default_rng(seed).normal(size=(n_records, 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_learning_states_separate_two_regimes(seed):
    scores = _two_regimes(seed=seed)
    # sigma in bins: ~300 records need a wider kernel than the default, which splits each
    # regime's stretch of the map into many small states
    states = learning_states(scores, step_interval=10, sigma=6.0, seed=seed)
    assert isinstance(states, LearningStates)
    assert states.embedding.shape == (300, 2) and states.state.shape == (300,)
    assert states.density.shape == (64, 64) and states.labels_map.shape == (64, 64)
    assert states.edges_x.shape == (65,) and states.edges_y.shape == (65,)
    assert states.density.sum() == pytest.approx(1.0)
    assert np.issubdtype(states.state.dtype, np.integer)
    assert states.n_states >= 2
    assert set(np.unique(states.labels_map)) == set(range(states.n_states))
    np.testing.assert_allclose(states.frequencies, np.geomspace(2 / 300, 0.5, 8) / 10)
    first, second = states.state[:150], states.state[150:]
    majority = [np.bincount(half).argmax() for half in (first, second)]
    assert majority[0] != majority[1]
    assert np.mean(first == majority[0]) >= 0.8
    assert np.mean(second == majority[1]) >= 0.8


def test_learning_states_deterministic_and_validated():
    scores = _two_regimes(n_records=120)
    a = learning_states(scores, 1, perplexity=10.0, grid=32, seed=4)
    b = learning_states(scores, 1, perplexity=10.0, grid=32, seed=4)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    np.testing.assert_array_equal(a.state, b.state)
    # each record's state is the label of the bin its embedding point falls in
    ix = np.searchsorted(a.edges_x, a.embedding[:, 0], side="right") - 1
    iy = np.searchsorted(a.edges_y, a.embedding[:, 1], side="right") - 1
    np.testing.assert_array_equal(a.state, a.labels_map[ix, iy])
    with pytest.raises(ValueError, match="step_interval must be >= 1"):
        learning_states(scores, 0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        learning_states(scores, 1, sigma=0.0)
    with pytest.raises(ValueError, match=">= 8 recorded steps"):
        learning_states(scores[:5], 1)
