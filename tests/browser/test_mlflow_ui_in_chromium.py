"""`kedro mlflow ui` as a user meets it, after a demo-shaped `kedro run` (a two-model sweep).

The store is the run's real sqlite store, the server the real `kedro mlflow ui`, the page a
real headless Chromium: the kedro run lists a run per model named by its sweep values, a
model run shows its flattened hyperparameters and step metrics, a figure run its files.
"""

from __future__ import annotations

import pytest
from browser_helpers import free_port, kedro, screenshot, serving
from kedro_project import make_project, run_pipeline, tracking_uri

from ntdyn.store import RecordStore

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

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
    with serving(kedro("mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)), root, url):
        yield url, store


def _body(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def _wait_for_texts(browser, texts: list[str], timeout: float = 60) -> str:
    try:
        WebDriverWait(browser, timeout).until(lambda b: all(t in _body(b) for t in texts))
    except Exception:
        pass  # the caller's assertion names what is missing
    return _body(browser)


def test_the_kedro_run_lists_a_run_per_model_named_by_its_sweep_values(ui, chromium):
    url, store = ui
    chromium.get(f"{url}/#/experiments/{store.experiment_id}/runs")
    body = _wait_for_texts(chromium, ["analysis_part1"])
    assert "Training runs" in body and "analysis_part1" in body
    # the records are child runs of the kedro run: expand it as a user would
    row = chromium.find_element(By.XPATH, "//*[text()='analysis_part1']/ancestor::*[@role='row']")
    row.find_element(By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']").click()
    expected = ["model train__pert__std=0.0", "model train__pert__std=1.0",
                "evaluation plant_perts", "evaluation feedback_perts"]  # fmt: skip
    body = _wait_for_texts(chromium, expected)
    assert all(t in body for t in expected), body
    assert "figure center_out" in body and "train__pert__std=1.0" in body
    screenshot(chromium, "mlflow_ui_runs")


def test_a_model_run_shows_its_flattened_hyperparameters_and_step_metrics(ui, chromium):
    url, store = ui
    record = store.find_unique_model(train__pert__std=1.0)
    chromium.get(f"{url}/#/experiments/{store.experiment_id}/runs/{record.run_id}")
    expected = ["model train__pert__std=1.0", "train__pert__std", "model__hidden_size",
                "task__feedback__delay", "total/mean", "ntdyn.hash"]  # fmt: skip
    body = _wait_for_texts(chromium, expected)
    assert all(t in body for t in expected), body
    screenshot(chromium, "mlflow_ui_model_run")
    # its training curves: a chart section per loss term, drawn with plotly
    chromium.get(f"{url}/#/experiments/{store.experiment_id}/runs/{record.run_id}/model-metrics")
    terms = ["total", "position", "final_velocity", "control", "hidden"]
    WebDriverWait(chromium, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    body = _wait_for_texts(chromium, [f"model train__pert__std=1.0 ({terms[3]}/mean)", *terms])
    assert all(t in body.split("\n") for t in terms), body
    screenshot(chromium, "mlflow_ui_step_metrics")


def test_a_figure_run_lists_its_figure_files(ui, chromium):
    url, store = ui
    (figure,) = store.query_figures(kind="center_out", train__pert__std=1.0)
    chromium.get(f"{url}/#/experiments/{store.experiment_id}/runs/{figure.run_id}/artifacts")
    _wait_for_texts(chromium, ["figure"])
    chromium.find_element(By.XPATH, "//*[normalize-space(text())='figure']").click()
    body = _wait_for_texts(chromium, ["figure.html", "figure.json"])
    assert "figure.html" in body and "figure.json" in body, body
    screenshot(chromium, "mlflow_ui_figure_artifacts")
