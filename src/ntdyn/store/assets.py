"""The web assets recorded figures load: plotly.js, stored once per store as an MLflow run.

A figure's ``figure.html`` does not carry plotly.js (4-5 MB). It loads it from the store's
asset run, recorded once per plotly.js version (run ``ntdyn-assets``, tags
``ntdyn.record=asset``, ``ntdyn.asset=plotly.js``, ``ntdyn.plotly_js_version``), through
the MLflow server that shows the page: ``get-artifact?path=<path>&run_uuid=<run id>``,
resolved against the MLflow UI's page. Where that fails (the file opened from disk, or
served by something other than the MLflow server) the CDN copy of the same version is
loaded instead.

Two details of how the MLflow server and UI (3.x) work decide the form:

- The UI shows an HTML artifact in an iframe ``sandbox="allow-scripts"`` whose source is a
  ``blob:`` URL made from the HTML (older UIs: ``srcdoc``). A relative URL does not resolve
  against a ``blob:`` document, so the loader resolves it against the UI's page, which is
  the iframe's referrer (``srcdoc`` documents resolve against it already).
- The server sends ``.js`` artifacts as ``text/plain`` with ``X-Content-Type-Options:
  nosniff``, which browsers refuse to run as a script; ``.mjs`` is sent as JavaScript
  (Python's own MIME table), so the bundle is stored as ``plotly-<version>.min.mjs``. It is
  the classic (UMD) bundle, loaded by a classic ``<script>``: only the name differs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    import plotly.graph_objects as go

ASSET = "asset"  # record kind of an asset run (tag ntdyn.record)
ASSET_RUN_NAME = "ntdyn-assets"
ASSET_ARTIFACT_DIR = "assets"
PLOTLY_JS = "plotly.js"
TAG_ASSET = "ntdyn.asset"  # which asset the run holds
TAG_PLOTLY_JS_VERSION = "ntdyn.plotly_js_version"  # the bundle's version: the asset's identity
TAG_PLOTLY_VERSION = "ntdyn.plotly_version"  # the plotly (Python) package that recorded it


def plotly_js_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def plotly_version() -> str:
    import plotly

    return plotly.__version__


def plotly_asset_hash(version: str) -> str:
    """The asset run's hash (tag ntdyn.hash): one run per plotly.js version."""
    return f"{PLOTLY_JS}-{version}"


def plotly_asset_path(version: str) -> str:
    """The bundle's artifact path in the asset run (``.mjs``: see the module docstring)."""
    return f"{ASSET_ARTIFACT_DIR}/plotly-{version}.min.mjs"


def plotly_cdn_url(version: str) -> str:
    return f"https://cdn.plot.ly/plotly-{version}.min.js"


def write_plotly_js(path: Path) -> Path:
    """Write the installed plotly package's plotly.js bundle to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import plotly

    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if bundled.is_file():
        shutil.copyfile(bundled, path)
    else:
        from plotly.offline import get_plotlyjs

        path.write_text(get_plotlyjs(), encoding="utf-8")
    return path


def plotly_asset_url(run_id: str, version: str) -> str:
    """The bundle's URL relative to the MLflow UI's page (the server's ``get-artifact``)."""
    return "get-artifact?" + urlencode({"path": plotly_asset_path(version), "run_uuid": run_id})


# Loads plotly.js from the MLflow server showing the page, synchronously (document.write of
# a parser-blocking script), so that plotly's own inline plotting script below finds it.
_LOADER = """<script>
(function () {
  // ntdyn: plotly.js __VERSION__ from the record store's asset run, through the MLflow server
  // that shows this page; else (next script) from the CDN.
  var path = __PATH__;
  try {
    var base = document.baseURI;
    if (location.protocol === "blob:") {  // the MLflow UI's iframe: resolve against the UI page
      var origin = new URL(location.href).origin, page = document.referrer;
      base = page.indexOf(origin + "/") === 0 ? page : origin + "/";
    }
    var url = new URL(path, base);
    if (url.protocol === "http:" || url.protocol === "https:") {
      document.write('<script src="' + url.href.replace(/"/g, "%22") +
                     '" charset="utf-8"><\\/script>');
    }
  } catch (e) {}
})();
</script>
<script>
  window.Plotly || document.write('<script src="__CDN__" charset="utf-8"><\\/script>');
</script>"""

_PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8" />
<style>html, body {height: 100%;}</style>
__LOADER__
</head>
<body>
__FIGURE__
</body>
</html>
"""


def plotly_loader(run_id: str, version: str) -> str:
    """The ``<script>`` elements that load plotly.js from the asset run, else the CDN."""
    return (
        _LOADER.replace("__VERSION__", version)
        .replace("__PATH__", json.dumps(plotly_asset_url(run_id, version)))
        .replace("__CDN__", plotly_cdn_url(version))
    )


def figure_html(figure: go.Figure, asset_run_id: str, version: str) -> str:
    """A full HTML page of `figure` that loads plotly.js through `plotly_loader`."""
    div = figure.to_html(include_plotlyjs=False, full_html=False)
    return _PAGE.replace("__LOADER__", plotly_loader(asset_run_id, version)).replace(
        "__FIGURE__", div
    )
