"""`kedro viz run` as a user meets it: every pipeline renders, figures and tables preview.

The project is a tiny copy that has run `training_dynamics` (so its datasets exist); the
server is the real `kedro viz run`, the page a real headless Chromium.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from browser_helpers import free_port, kedro, screenshot, serving, wait_for
from kedro_project import TINY_TD, make_project, run_pipeline

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.pipeline

# a first visit, less the product tour, with large pipelines drawn without asking first
FIRST_VISIT = json.dumps({"showFeatureHints": False, "flags": {"sizewarning": False}})


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
        yield url, root


def _api(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/{path}", timeout=60) as r:
        return json.load(r)


def _visit(browser, url: str, query: str) -> None:
    """Open `/?query` as a first visit would. kedro-viz keeps the last pipeline and whether it
    was expanded in localStorage: a remembered pipeline is drawn before the one in `?pid=`
    (once, on a loaded machine, still 4 s later), and a remembered expansion outlives a query
    without `expandAllPipelines`. The storage is reset from a page of the server's origin that
    runs no app, so nothing writes it back before the page loads."""
    browser.get(f"{url}/api/main")
    browser.execute_script("localStorage.clear(); localStorage.setItem('KedroViz', arguments[0])",
                           FIRST_VISIT)  # fmt: skip
    browser.get(f"{url}/?{query}")


def _page_state(browser) -> tuple[str | None, set[str]]:
    """The pipeline selector's text and every drawn label, read together in one script."""
    selector, labels = browser.execute_script(
        "const s = document.querySelector('.pipeline-list');"
        "return [s && s.innerText, Array.from(document.querySelectorAll('svg text'),"
        " e => e.textContent)]"
    )
    return selector, {t.strip() for t in labels if t and t.strip()}


def _labels(graph: dict, expanded: bool) -> set[str]:
    """The labels kedro-viz draws for a pipeline (parameters hidden, as by default)."""
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    if expanded:
        return {n["name"] for n in graph["nodes"] if n["type"] in ("task", "data")}
    root = graph["modular_pipelines"]["__root__"]["children"]
    return {c["id"] if c["type"] == "modularPipeline" else names[c["id"]]
            for c in root if c["type"] in ("modularPipeline", "task", "data")}  # fmt: skip


def _await_pipeline(browser, pid: str, expected: set[str], foreign: set[str]) -> None:
    """Wait until the page has applied `?pid=`: its selector shows `pid` and the graph drawn is
    `pid`'s (`expected` drawn, and none of the labels that only other pipelines draw)."""
    wait_for(
        browser, f"pipeline {pid} selected and drawn with {sorted(expected)}", _page_state,
        lambda s: s[0] is not None and pid in s[0] and expected <= s[1] and not foreign & s[1],
    )  # fmt: skip


def test_every_registered_pipeline_renders_with_its_names(viz, chromium):
    from ntdyn.pipeline_registry import register_pipelines

    url, _ = viz
    pipelines = [p["id"] for p in _api(url, "main")["pipelines"]]
    assert set(pipelines) == set(register_pipelines())
    graphs = {pid: _api(url, f"pipelines/{pid}") for pid in pipelines}
    everything = set().union(*(_labels(g, expanded=False) for g in graphs.values()))
    for pid, graph in sorted(graphs.items(), key=lambda item: item[0] == "__default__"):
        names = {n["id"]: n["name"] for n in graph["nodes"]}
        root = graph["modular_pipelines"]["__root__"]["children"]
        # what the collapsed view draws: top-level modular pipelines and top-level tasks
        expected = {c["id"] for c in root if c["type"] == "modularPipeline"}
        expected |= {names[c["id"]] for c in root if c["type"] == "task"}
        assert expected, pid
        _visit(chromium, url, f"pid={pid}")
        _await_pipeline(chromium, pid, expected, everything - _labels(graph, expanded=False))
    screenshot(chromium, "kedro_viz_default")  # the last one drawn: __default__


def test_a_pipeline_expanded_shows_its_node_names(viz, chromium):
    url, _ = viz
    graph = _api(url, "pipelines/training_dynamics")
    tasks = {n["name"] for n in graph["nodes"] if n["type"] == "task"}
    assert {"pca", "psd", "tsne", "ccm", "states", "draw_figures"} <= tasks
    pipelines = [p["id"] for p in _api(url, "main")["pipelines"]]
    everything = set().union(*(_labels(_api(url, f"pipelines/{p}"), True) for p in pipelines))
    _visit(chromium, url, "pid=training_dynamics&expandAllPipelines=true")
    _await_pipeline(chromium, "training_dynamics", tasks, everything - _labels(graph, True))
    screenshot(chromium, "kedro_viz_training_dynamics")


def _node_id(url: str, name: str) -> str:
    graph = _api(url, "pipelines/training_dynamics")
    return next(n["id"] for n in graph["nodes"] if n["name"] == name)


def _metadata(browser, inner: str) -> tuple[str, str]:
    """The texts of the node metadata panel and of an element `inner` in it (must be there)."""
    panel = browser.find_element(By.CSS_SELECTOR, ".pipeline-metadata")
    return panel.text, panel.find_element(By.CSS_SELECTOR, inner).text


def test_figure_datasets_preview_their_plotly_figure(viz, chromium):
    url, root = viz
    name = "training_dynamics.td_learning_curves_figures"
    folder = root / "data/08_reporting/training_dynamics/figures/td_learning_curves"
    first = json.loads(sorted(folder.glob("*.json"))[0].read_text())
    title = first["layout"]["title"]["text"]
    _visit(chromium, url, f"pid=training_dynamics&expandAllPipelines=true"
                          f"&sid={_node_id(url, name)}&sn={name}")  # fmt: skip
    wait_for(chromium, f"{name}'s metadata: PlotlyFiguresDataset, a plotly figure titled {title!r}",
             lambda b: _metadata(b, ".js-plotly-plot"),
             lambda s: "PlotlyFiguresDataset" in s[0] and title in s[1])  # fmt: skip
    screenshot(chromium, "kedro_viz_figure_preview")


def test_table_datasets_preview_their_rows(viz, chromium):
    url, _ = viz
    name = "training_dynamics.trace_scalars"
    columns = {"step", "train_loss", "test_loss", "test_accuracy", "grad_norm"}
    _visit(chromium, url, f"pid=training_dynamics&expandAllPipelines=true"
                          f"&sid={_node_id(url, name)}&sn={name}")  # fmt: skip
    wait_for(chromium, f"{name}'s metadata: a table with columns {sorted(columns)}",
             lambda b: {th.text for th in b.find_elements(By.CSS_SELECTOR,
                                                          ".pipeline-metadata table th")},
             lambda header: columns <= header)  # fmt: skip
    screenshot(chromium, "kedro_viz_table_preview")
