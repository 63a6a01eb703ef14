"""`kedro viz run` as a user meets it: every pipeline renders, figures and tables preview.

The project is a tiny copy that has run `training_dynamics` (so its datasets exist); the
server is the real `kedro viz run`, the page a real headless Chromium.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from browser_helpers import free_port, kedro, rendered_texts, screenshot, serving
from kedro_project import TINY_TD, make_project, run_pipeline

pytest.importorskip("selenium")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def viz(tmp_path_factory, chromium):
    root = make_project(tmp_path_factory.mktemp("viz"), TINY_TD)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_pipeline(root, "training_dynamics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = kedro("viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port))
    with serving(command, root, f"{url}/api/main"):
        chromium.get(url)
        # no product tour, and large pipelines drawn without asking first
        chromium.execute_script(
            "localStorage.setItem('KedroViz', JSON.stringify("
            "{showFeatureHints: false, flags: {sizewarning: false}}))"
        )
        yield url, root


def _api(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/{path}", timeout=60) as r:
        return json.load(r)


def _open(browser, url: str, query: str, expected: set[str], timeout: float = 60) -> set[str]:
    """Load the page and wait until every expected label is drawn; returns the labels."""
    browser.get(f"{url}/?{query}")
    try:
        WebDriverWait(browser, timeout).until(lambda b: expected <= rendered_texts(b))
    except TimeoutException:
        pass  # the caller's assertion says what is missing
    return rendered_texts(browser)


def test_every_registered_pipeline_renders_with_its_names(viz, chromium):
    from ntdyn.pipeline_registry import register_pipelines

    url, _ = viz
    pipelines = [p["id"] for p in _api(url, "main")["pipelines"]]
    assert set(pipelines) == set(register_pipelines())
    for pid in pipelines:
        graph = _api(url, f"pipelines/{pid}")
        names = {n["id"]: n["name"] for n in graph["nodes"]}
        root = graph["modular_pipelines"]["__root__"]["children"]
        # what the collapsed view draws: top-level modular pipelines and top-level tasks
        expected = {c["id"] for c in root if c["type"] == "modularPipeline"}
        expected |= {names[c["id"]] for c in root if c["type"] == "task"}
        assert expected, pid
        drawn = _open(chromium, url, f"pid={pid}", expected)
        assert expected <= drawn, (pid, sorted(expected - drawn))
        selector = chromium.find_element(By.CSS_SELECTOR, ".pipeline-list").text
        assert pid in selector, (pid, selector)
    _open(chromium, url, "pid=__default__", set())
    screenshot(chromium, "kedro_viz_default")


def test_a_pipeline_expanded_shows_its_node_names(viz, chromium):
    url, _ = viz
    graph = _api(url, "pipelines/training_dynamics")
    tasks = {n["name"] for n in graph["nodes"] if n["type"] == "task"}
    assert {"pca", "psd", "tsne", "ccm", "states", "draw_figures"} <= tasks
    drawn = _open(chromium, url, "pid=training_dynamics&expandAllPipelines=true", tasks)
    assert tasks <= drawn, sorted(tasks - drawn)
    screenshot(chromium, "kedro_viz_training_dynamics")


def _node_id(url: str, name: str) -> str:
    graph = _api(url, "pipelines/training_dynamics")
    return next(n["id"] for n in graph["nodes"] if n["name"] == name)


def test_figure_datasets_preview_their_plotly_figure(viz, chromium):
    url, root = viz
    name = "training_dynamics.td_learning_curves_figures"
    folder = root / "data/08_reporting/training_dynamics/figures/td_learning_curves"
    first = json.loads(sorted(folder.glob("*.json"))[0].read_text())
    title = first["layout"]["title"]["text"]
    chromium.get(f"{url}/?pid=training_dynamics&expandAllPipelines=true"
                 f"&sid={_node_id(url, name)}&sn={name}")  # fmt: skip
    panel = WebDriverWait(chromium, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".pipeline-metadata .js-plotly-plot"))
    )
    WebDriverWait(chromium, 30).until(lambda b: title in panel.text)
    assert (
        "PlotlyFiguresDataset" in chromium.find_element(By.CSS_SELECTOR, ".pipeline-metadata").text
    )
    screenshot(chromium, "kedro_viz_figure_preview")


def test_table_datasets_preview_their_rows(viz, chromium):
    url, _ = viz
    name = "training_dynamics.trace_scalars"
    chromium.get(f"{url}/?pid=training_dynamics&expandAllPipelines=true"
                 f"&sid={_node_id(url, name)}&sn={name}")  # fmt: skip
    WebDriverWait(chromium, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".pipeline-metadata table"))
    )
    header = [th.text for th in chromium.find_elements(By.CSS_SELECTOR,
                                                        ".pipeline-metadata table th")]  # fmt: skip
    assert {"step", "train_loss", "test_loss", "test_accuracy", "grad_norm"} <= set(header)
    screenshot(chromium, "kedro_viz_table_preview")
