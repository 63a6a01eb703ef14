"""`kedro mlflow ui` as a user meets it, after a demo-shaped `kedro run` (a two-model sweep).

The store is the run's real sqlite store, the server the real `kedro mlflow ui`, the page a
real headless Chromium: the kedro run lists a run per model named by its sweep values, a
model run shows its flattened hyperparameters and step metrics, a figure run its files,
and a figure's HTML is drawn by plotly inside the UI with cdn.plot.ly out of reach.
"""

from __future__ import annotations

import browser_helpers
import pytest
from browser_helpers import click, free_port, kedro, screenshot, serving, wait_for
from kedro_project import make_project, run_pipeline, tracking_uri

from ntdyn.store import RecordStore

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("mlflow_ui"))  # part 1: train__pert__std 0, 1
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_pipeline(root, "analysis_part1")
    store = RecordStore(tracking_uri=tracking_uri(root), experiment="ntdyn")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # ready once its REST API answers from the store, which the page's first requests need
    ready = f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ntdyn"
    with serving(kedro("mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)), root, ready):
        yield url, store


def _visit(browser, url: str) -> None:
    """Load `url` as a new page: the UI's routes are `#/…` fragments, and going from one to
    another in the same page would leave the last route's text there while the new one loads."""
    browser.get("about:blank")
    browser.get(url)


def _body(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def _wait_for_texts(browser, texts: list[str]) -> str:
    """Wait until the page's text holds every one of `texts`; the text."""
    return wait_for(browser, f"the page showing {texts}", _body,
                    lambda body: all(t in body for t in texts))  # fmt: skip


def test_the_kedro_run_lists_a_run_per_model_named_by_its_sweep_values(ui, chromium):
    url, store = ui
    _visit(chromium, f"{url}/#/experiments/{store.experiment_id}/runs")
    _wait_for_texts(chromium, ["Training runs", "analysis_part1"])
    # the records are child runs of the kedro run: expand it as a user would
    click(chromium, "the kedro run's expander",
          "//*[text()='analysis_part1']/ancestor::*[@role='row']"
          "//button[contains(@data-component-id, 'runnamecellrenderer')]")  # fmt: skip
    _wait_for_texts(chromium, ["model train__pert__std=0.0", "model train__pert__std=1.0",
                               "evaluation plant_perts", "evaluation feedback_perts",
                               "figure center_out", "train__pert__std=1.0"])  # fmt: skip
    screenshot(chromium, "mlflow_ui_runs")


def test_a_model_run_shows_its_flattened_hyperparameters_and_step_metrics(ui, chromium):
    url, store = ui
    record = store.find_unique_model(train__pert__std=1.0)
    _visit(chromium, f"{url}/#/experiments/{store.experiment_id}/runs/{record.run_id}")
    _wait_for_texts(chromium, ["model train__pert__std=1.0", "train__pert__std",
                               "model__hidden_size", "task__feedback__delay", "total/mean",
                               "ntdyn.hash"])  # fmt: skip
    screenshot(chromium, "mlflow_ui_model_run")
    # its training curves: a chart section per loss term, drawn with plotly
    _visit(chromium, f"{url}/#/experiments/{store.experiment_id}/runs/{record.run_id}"
                     "/model-metrics")  # fmt: skip
    terms = ["total", "position", "final_velocity", "control", "hidden"]
    chart = f"model train__pert__std=1.0 ({terms[3]}/mean)"
    wait_for(chromium, f"plotly charts, {chart!r} and a section per term {terms}",
             lambda b: (len(b.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")), _body(b)),
             lambda s: s[0] > 0 and chart in s[1]
             and all(t in s[1].split("\n") for t in terms))  # fmt: skip
    screenshot(chromium, "mlflow_ui_step_metrics")


def test_a_figure_run_lists_its_figure_files(ui, chromium):
    url, store = ui
    (figure,) = store.query_figures(kind="center_out", train__pert__std=1.0)
    _visit(chromium, f"{url}/#/experiments/{store.experiment_id}/runs/{figure.run_id}/artifacts")
    click(chromium, "the run's artifact folder 'figure'", "//*[normalize-space(text())='figure']")
    _wait_for_texts(chromium, ["figure.html", "figure.json"])
    screenshot(chromium, "mlflow_ui_figure_artifacts")


CDN_HOST = "cdn.plot.ly"
_PLOT_STATE = """return [typeof window.Plotly,
    document.querySelectorAll('.plot-container .main-svg').length,
    Array.from(document.scripts).map(s => s.src).filter(Boolean)];"""


@pytest.fixture(scope="module")
def offline_chromium():
    """A Chromium to which cdn.plot.ly does not exist: the offline path, wherever it runs."""
    flags = (*browser_helpers.CHROMIUM_FLAGS, f"--host-resolver-rules=MAP {CDN_HOST} ~NOTFOUND")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(browser_helpers, "CHROMIUM_FLAGS", flags)
        browser = browser_helpers.start_chromium()
    yield browser
    browser.quit()


def _in_figure_frame(browser):
    """In the UI's HTML artifact iframe: (plotly loaded, number of plotly SVGs, script URLs)."""
    browser.switch_to.default_content()
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.mlflow-html-iframe")
    browser.switch_to.frame(frame)
    try:
        return tuple(browser.execute_script(_PLOT_STATE))
    finally:
        browser.switch_to.default_content()


def test_a_figure_renders_in_the_ui_without_the_cdn(ui, offline_chromium):
    """The figure's HTML loads plotly.js from the store's asset run through the MLflow
    server (cdn.plot.ly unresolvable here), and plotly draws it inside the UI's iframe."""
    url, store = ui
    (figure,) = store.query_figures(kind="center_out", train__pert__std=1.0)
    asset = store.plotly_asset()
    _visit(offline_chromium, f"{url}/#/experiments/{store.experiment_id}/runs/{figure.run_id}"
                             "/artifacts/figure/figure.html")  # fmt: skip
    *_, scripts = wait_for(
        offline_chromium, "plotly drawing the figure inside the UI's HTML artifact iframe",
        _in_figure_frame, lambda s: s[0] == "object" and s[1] > 0,
    )  # fmt: skip
    (script,) = scripts  # plotly.js from the asset run only: the CDN fallback was not needed
    assert script.startswith(f"{url}/get-artifact?") and f"run_uuid={asset.run_id}" in script
    assert CDN_HOST not in " ".join(scripts)
    screenshot(offline_chromium, "mlflow_ui_figure_offline")
