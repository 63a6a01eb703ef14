"""plotly.js recorded once per store as an asset run; figure HTML loads it from there."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from ntdyn.store import RecordStore
from ntdyn.store.assets import (
    ASSET,
    TAG_ASSET,
    TAG_PLOTLY_JS_VERSION,
    plotly_asset_path,
    plotly_cdn_url,
    plotly_js_version,
)
from ntdyn.store.gc import find_leftovers, local_path

SMALL_HTML = 100_000  # bytes: a small figure's page, without plotly.js (~4.8 MB)


@pytest.fixture
def store(make_store) -> RecordStore:
    return make_store("assets")


def _asset_runs(store: RecordStore):
    return store.client.search_runs([store.experiment_id], f"tags.\"ntdyn.record\" = '{ASSET}'")


def _record_two(store: RecordStore):
    return [store.record_figure(kind="k", figure=go.Figure(go.Scatter(y=[i, 2, 1])),
                                params={"i": i}, evaluation_hash=None)
            for i in range(2)]  # fmt: skip


def test_two_figures_record_plotly_js_once_and_load_it_from_there(store, tmp_path):
    figures = _record_two(store)
    (run,) = _asset_runs(store)
    version = plotly_js_version()
    assert run.info.status == "FINISHED" and run.info.run_name == "ntdyn-assets"
    assert run.data.tags[TAG_ASSET] == "plotly.js"
    assert run.data.tags[TAG_PLOTLY_JS_VERSION] == version
    assert "mlflow.parentRunId" not in run.data.tags
    bundle = store.download_artifact(store.get_record(run.info.run_id),
                                     plotly_asset_path(version), tmp_path)  # fmt: skip
    assert bundle.stat().st_size > 1_000_000 and bundle.suffix == ".mjs"

    url = (f"get-artifact?path={plotly_asset_path(version).replace('/', '%2F')}"
           f"&run_uuid={run.info.run_id}")  # fmt: skip
    for figure in figures:
        html_file = store.download_artifact(figure, "figure/figure.html", tmp_path / figure.hash)
        html = html_file.read_text(encoding="utf-8")
        assert html_file.stat().st_size < SMALL_HTML
        assert f'"{url}"' in html  # through the MLflow server, from the asset run
        assert plotly_cdn_url(version) in html  # else the CDN
        assert "Plotly.newPlot" in html and "plotly-graph-div" in html

    # a second store object on the same experiment (a later session) finds the asset
    again = RecordStore(store.tracking_uri, store.experiment)
    assert again.plotly_asset().run_id == run.info.run_id
    again.record_figure(kind="k", figure=go.Figure(), params={"i": 2}, evaluation_hash=None)
    assert len(_asset_runs(store)) == 1


def test_gc_keeps_the_asset_run_and_reports_it_without_its_bundle(store):
    _record_two(store)
    assert find_leftovers(store).empty  # the asset run is a record, not a leftover
    asset = store.plotly_asset()
    (local_path(asset.artifact_uri) / plotly_asset_path(plotly_js_version())).unlink()
    (missing,) = find_leftovers(store).records_without_files
    assert missing.record.run_id == asset.run_id
    assert missing.missing == (plotly_asset_path(plotly_js_version()),)
