"""analysis_part2 end to end, and a sweep over an arbitrary hyperparameter (motor noise)."""

from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from kedro_project import (  # noqa: E402
    TINY_GLOBALS,
    TINY_PART1,
    TINY_PART2,
    make_project,
    run_pipeline,
    tracking_uri,
)

from ntdyn.datasets import EvaluationDataset
from ntdyn.store import RecordStore  # noqa: E402
from ntdyn.training import TRACE_COUNTS  # noqa: E402

pytestmark = pytest.mark.pipeline
ANALYSES = (
    "plant_perts", "feedback_perts", "sisu_pert", "unit_perts", "unit_ablation", "tms_tdcs",
)  # fmt: skip


POPULATION = ("fps_steady", "pca_tangling", "steady_state_dynamics", "fps_reach")


@pytest.fixture(scope="module")
def part2(tmp_path_factory):
    """Part 1 then part 2 in one project and one store."""
    root = make_project(tmp_path_factory.mktemp("part2"), {**TINY_PART1, **TINY_PART2})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_pipeline(root, "analysis_part1")
        counts = run_pipeline(root, "analysis_part2")
    (root / "part2_counts.json").write_text(json.dumps(counts))
    return root


def _store(root: Path) -> RecordStore:
    return RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")


def test_part2_models_take_the_sisu_input_and_each_method(part2):
    models = _store(part2).query_models(model__sisu_input=True)
    assert sorted(m.params["train__method"] for m in models) == ["bcs", "dai", "pai-asf"]
    assert {m.params["model__sisu_input"] for m in models} == {"True"}
    assert {m.params["train__pert__p_active"] for m in models} == {"0.5"}


def test_every_part2_analysis_is_recorded_with_its_tables(part2):
    store = _store(part2)
    part2_models = {m.hash for m in store.query_models(model__sisu_input=True)}
    recorded = sorted(r.tags["ntdyn.analysis"] for r in store.query_evaluations()
                      if set(r.model_hashes) == part2_models)  # fmt: skip
    assert recorded == sorted([*ANALYSES, *POPULATION])
    counts = json.loads((part2 / "part2_counts.json").read_text())
    assert counts["evaluation"] == {"recorded": len(ANALYSES)}
    assert counts["analysis"] == {"recorded": len(POPULATION)}
    # each analysis record names the records it read
    by_name = {r.tags["ntdyn.analysis"]: r for r in store.query_evaluations()
               if set(r.model_hashes) == part2_models}  # fmt: skip
    assert by_name["fps_steady"].params["pop__reads__feedback_perts"] == by_name[
        "feedback_perts"].hash  # fmt: skip
    assert by_name["steady_state_dynamics"].params["pop__reads__fps_steady"] == by_name[
        "fps_steady"].hash  # fmt: skip
    for name in ("pca_tangling", "fps_reach"):
        assert by_name[name].params["pop__reads__plant_perts"] == by_name["plant_perts"].hash
    out = part2 / "data/08_reporting/analysis_part2"
    coefs = pd.read_parquet(out / "unit_perts_coefficients.parquet")
    # 3 models x 6 hidden units x 2 responses, coefficients on both context variables
    assert len(coefs) == 3 * 6 * 2
    assert {"coef_curl_amp", "coef_sisu", "r2", "train__method"} <= set(coefs.columns)
    points = pd.read_parquet(out / "fps_steady_points.parquet")
    # every model has fixed points at both steady-state SISU values, each with its spectrum
    assert set(points.groupby("hash")["sisu"].nunique()) == {2}
    assert {"q", "kind", "stable", "max_abs_eigenvalue", "sv_position_1"} <= set(points.columns)
    assert (points.loc[points["kind"] == "fixed", "q"] < 1e-12).all()
    pca = pd.read_parquet(out / "pca_tangling_pca.parquet")
    assert pca.groupby("hash")["explained_variance_ratio"].sum().between(0.99, 1.0 + 1e-9).all()
    tangling = pd.read_parquet(
        part2 / "data/07_model_output/analysis_part2/pca_tangling/tangling.parquet"
    )
    assert (tangling["Q"] > 0).all() and {"pert_amp", "sisu", "step"} <= set(tangling.columns)
    context = pd.read_parquet(out / "steady_state_dynamics_context.parquet")
    assert set(context.groupby("hash")["sisu"].nunique()) == {2}
    assert (context[context["sisu"] == 0.0]["fp_shift"] == 0).all()  # the reference SISU
    # each point analysed is a fixed point of the steady input the analysis uses
    assert (context.loc[context["q"] < 1e-12, "q_at_input"] < 1e-12).all()
    assert (context["q"] < 1e-12).any()
    stim = pd.read_parquet(out / "steady_state_dynamics_eigvec_stim.parquet")
    assert ((stim["decay"] > 0) & (stim["abs_eigenvalue"] > 0)).all()
    reach = pd.read_parquet(out / "fps_reach_points.parquet")
    # a fixed (or slow) point per (reach, step): 2 directions x 2 SISU x 6 steps
    per_model = reach.groupby("hash")[["trial", "step"]].apply(lambda g: len(g.drop_duplicates()))
    assert set(per_model) == {24}
    directions = pd.read_parquet(
        part2 / "data/07_model_output/analysis_part2/fps_reach/effective_directions.parquet"
    )
    assert len(directions) == 3 * 24 * 6  # models x (reach, step) x units
    reach_context = pd.read_parquet(out / "fps_reach_context.parquet")
    assert (reach_context[reach_context["sisu"] == 0.0]["fp_shift"] == 0).all()
    effects = pd.read_parquet(out / "unit_ablation_effects.parquet")
    assert effects.groupby(["hash", "measure"])["unit"].nunique().eq(6).all()
    assert effects.groupby(["hash", "measure"])["rank"].min().eq(1).all()


def test_both_experiments_record_their_own_loss_curves(part2):
    store = _store(part2)
    curves = store.query_figures(kind="loss_curves")
    assert len(curves) == 2
    by_models = {frozenset(c.tags["ntdyn.sources"].split(",")) for c in curves}
    part1 = frozenset(m.hash for m in store.query_models(model__sisu_input=False))
    part2_models = frozenset(m.hash for m in store.query_models(model__sisu_input=True))
    assert by_models == {part1, part2_models}
    counts = json.loads((part2 / "part2_counts.json").read_text())
    assert counts["figure"].get("found", 0) == 0  # nothing of part 1 stands in for part 2


def test_part2_figures_are_queryable_by_method(part2):
    store = _store(part2)
    kinds = {r.tags["ntdyn.figure_kind"] for r in store.query_figures()}
    assert {"sisu_pert", "unit_response_profiles", "regression_scatter", "ablation_ranking",
            "measures_vs_sisu", "aligned_profiles", "fps_eigenvalues", "pca_scree",
            "pc_trajectories", "tangling", "dose_response", "hessian_spectra",
            "eigvec_responses", "context_influence", "fps_reach_pc",
            "reach_context", "effective_directions"} <= kinds  # fmt: skip
    dai = store.query_figures(kind="sisu_pert", train__method="dai")
    assert len(dai) == 1
    sisu_eval = store.query_evaluations(analysis="sisu_pert")[0]
    assert dai[0].tags["ntdyn.evaluation"] == sisu_eval.hash
    assert len(list((part2 / "data/08_reporting/analysis_part2/figures/sisu_pert").glob("*"))) == 3


def _refuse(*args, **kwargs):
    raise AssertionError("recorded work was computed again instead of read back")


def _population_tables(root: Path) -> dict[str, pd.DataFrame]:
    out = root / "data/08_reporting/analysis_part2"
    return {name: pd.read_parquet(out / f"{name}.parquet")
            for name in ("fps_steady_points", "pca_tangling_pca", "steady_state_dynamics_context",
                         "fps_reach_context")}  # fmt: skip


def test_second_part2_run_reuses_models_evaluations_and_analyses(part2, caplog, monkeypatch):
    store = _store(part2)
    before = len(store.client.search_runs([store.experiment_id], max_results=5000))
    tables = _population_tables(part2)
    monkeypatch.chdir(part2)
    # everything must come back from the records: simulating and fixed-point searches refuse
    monkeypatch.setattr("ntdyn.pipelines.evaluation.nodes.evaluate_model", _refuse)
    monkeypatch.setattr("ntdyn.pipelines.population.nodes.search_fixed_points", _refuse)
    monkeypatch.setattr("ntdyn.pipelines.population.nodes.fit_pca", _refuse)
    with caplog.at_level(logging.INFO, logger="ntdyn"):
        counts = run_pipeline(part2, "analysis_part2")
    assert caplog.text.count("cache hit") == 3
    assert caplog.text.count("reusing evaluation") == len(ANALYSES)
    assert counts["model"] == {"reused": 3}
    assert counts["evaluation"] == {"reused": len(ANALYSES)}
    assert counts["analysis"] == {"reused": len(POPULATION)}
    assert set(counts["figure"]) == {"found"}
    after = len(store.client.search_runs([store.experiment_id], max_results=5000))
    assert after == before + 1  # only the kedro-mlflow run of the session itself
    for name, table in _population_tables(part2).items():
        pd.testing.assert_frame_equal(table, tables[name], obj=name)


def test_a_changed_evaluation_recomputes_exactly_the_analyses_that_read_it(part2, monkeypatch):
    """plant_perts changes: pca_tangling and fps_reach (which read it) are computed and
    recorded anew; fps_steady and steady_state_dynamics (feedback_perts) are read back."""
    store = _store(part2)
    params = copy.deepcopy({**TINY_PART1, **TINY_PART2})
    params["analysis_part2"]["evaluation"]["plant_perts"]["n_repeats"] = 2
    local = part2 / "conf/local/parameters_tiny.yml"
    original = local.read_text()
    local.write_text(yaml.safe_dump(params))
    monkeypatch.chdir(part2)
    try:
        counts = run_pipeline(part2, "analysis_part2")
    finally:
        local.write_text(original)
    assert counts["evaluation"] == {"recorded": 1, "reused": len(ANALYSES) - 1}
    assert counts["analysis"] == {"recorded": 2, "reused": 2}
    part2_models = {m.hash for m in store.query_models(model__sisu_input=True)}
    records = [r for r in store.query_evaluations() if set(r.model_hashes) == part2_models]
    per_analysis = pd.Series([r.tags["ntdyn.analysis"] for r in records]).value_counts()
    assert per_analysis.to_dict() == {
        **{a: 1 for a in ANALYSES}, "plant_perts": 2,
        "fps_steady": 1, "steady_state_dynamics": 1, "pca_tangling": 2, "fps_reach": 2,
    }  # fmt: skip
    # the new analyses read the new evaluation (twice the repeats)
    new_plant = [r for r in records if r.tags["ntdyn.analysis"] == "plant_perts"
                 and r.params["eval__n_repeats"] == "2"]  # fmt: skip
    assert len(new_plant) == 1
    for name in ("pca_tangling", "fps_reach"):
        reads = {r.params["pop__reads__plant_perts"] for r in records
                 if r.tags["ntdyn.analysis"] == name}  # fmt: skip
        assert new_plant[0].hash in reads and len(reads) == 2


def test_a_spread_over_motor_noise_trains_evaluates_and_plots_without_code_changes(
    tmp_path, monkeypatch
):
    params = copy.deepcopy(TINY_PART1)
    # null drops the std axis inherited from conf/base (configs merge softly)
    spread = {"train__pert__std": None, "task__motor__noise_std": [0.01, 0.05]}
    params["analysis_part1"]["training"] = {"spread": spread}
    shapes = copy.deepcopy(TINY_GLOBALS)
    shapes["reaching"]["model"]["hidden_size"] = 5  # a shape no other test compiles
    root = make_project(tmp_path / "noise", params, shapes)
    monkeypatch.chdir(root)
    traces = TRACE_COUNTS["train_chunk"]
    run_pipeline(root, "analysis_part1")
    assert TRACE_COUNTS["train_chunk"] == traces + 1  # both noise levels: one compiled program
    store = _store(root)
    assert len(store.query_models()) == 2
    pointer = root / "data/07_model_output/analysis_part1/plant_perts/evaluation.json"
    measures = EvaluationDataset(path=str(pointer), part="measures").load()
    assert sorted(measures["task__motor__noise_std"].unique()) == [0.01, 0.05]
    assert len(store.query_figures(kind="center_out", task__motor__noise_std=0.05)) == 1
    dist = store.query_figures(kind="measure_distributions")
    assert len(dist) == 7
    fig = store.load_figure(dist[0])
    assert fig.layout.xaxis.title.text == "task__motor__noise_std"
