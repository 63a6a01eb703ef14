"""Browser-test helpers: the project's web UIs served for real, loaded in headless Chromium.

Chromium and its driver come from the distribution's packages (`make test` installs
`chromium` and `chromium-driver` with apt-get where it can); without them these tests
are skipped with the reason. Screenshots go to data/08_reporting/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "data" / "08_reporting" / "screenshots"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--window-size=1600,1000",
)  # fmt: skip
sys.path.insert(0, str(REPO / "tests" / "pipelines"))


def _executable(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def start_chromium():
    """A headless Chromium driven by Selenium through the distribution's chromedriver."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary, driver = _executable("chromium", "chromium-browser"), _executable("chromedriver")
    if binary is None or driver is None:
        pytest.skip("Chromium or chromedriver not installed (apt-get install chromium "
                    "chromium-driver); `make test` installs them where it can")  # fmt: skip
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.binary_location = binary
    browser = webdriver.Chrome(options=options, service=Service(driver))
    browser.set_page_load_timeout(60)
    return browser


def free_port() -> int:
    """A free TCP port below 49152 (kedro-viz refuses the ephemeral range)."""
    for port in random.Random().sample(range(20000, 40000), 200):
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port in 20000-39999")


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, ready_url: str, timeout: float = 180.0):
    """Run a server command in its own process group until `ready_url` answers 200."""
    # as in an activated venv: `kedro mlflow ui` starts the `mlflow` found on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1",
                        "PATH": path}  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = cwd / f"{'-'.join(Path(c).name for c in command[:2])}-server.log"
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited: "
                                   f"{log_path.read_text()[-3000:]}")  # fmt: skip
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(ready_url, timeout=5).status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ready_url} did not answer within {timeout} s")
            time.sleep(1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def kedro(*args: str) -> list[str]:
    """`kedro …` from this interpreter's environment."""
    return [str(Path(sys.executable).with_name("kedro")), *args]


def screenshot(browser, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def rendered_texts(browser, selector: str = "svg text") -> set[str]:
    """The text of every element matching `selector`, read in one script (no stale nodes)."""
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
        selector,
    )
    return {t.strip() for t in texts if t and t.strip()}
