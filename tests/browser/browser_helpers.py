"""Browser-test helpers: the project's web UIs served for real, loaded in headless Chromium.

Chromium and its driver come from the distribution's packages (`make test` installs
`chromium` and `chromium-driver` with apt-get where it can); without them these tests
are skipped with the reason. Screenshots go to data/08_reporting/screenshots/.

Nothing here depends on how fast the machine is: a server is used once it answers, a page
once it shows the state a test checks. `wait_for` polls for that state for up to `WAIT`
seconds (generous: a loaded 2-core machine is slow, not wrong) and, past it, fails with what
the page last showed; there is no fixed sleep.
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
WAIT = float(os.environ.get("NTDYN_BROWSER_WAIT", "120"))  # s, for each awaited state
POLL = 0.25  # s between two looks at a page or a server


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
    browser.set_page_load_timeout(WAIT)
    return browser


def free_port() -> int:
    """A free TCP port below 49152 (kedro-viz refuses the ephemeral range)."""
    for port in random.Random().sample(range(20000, 40000), 200):
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port in 20000-39999")


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, ready_url: str, timeout: float = 3 * WAIT):
    """Run a server command in its own process group until `ready_url` answers 200.

    On exit the whole group is stopped and awaited, so no server process outlives the tests.
    """
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
        deadline, last = time.monotonic() + timeout, "no answer yet"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited: "
                                   f"{log_path.read_text()[-3000:]}")  # fmt: skip
            try:
                with urllib.request.urlopen(ready_url, timeout=POLL + 10) as answer:
                    if answer.status == 200:
                        break
                    last = f"HTTP {answer.status}"
            except OSError as error:  # refused, reset, timed out, HTTP error: not ready yet
                last = repr(error)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ready_url} did not answer 200 within {timeout:.0f} s "
                                   f"(last: {last}); server log: "
                                   f"{log_path.read_text()[-3000:]}")  # fmt: skip
            time.sleep(POLL)  # the interval between two readiness checks
        yield
    finally:
        _stop_group(proc)
        log.close()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel about the group
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # after the parenthesised command: state, ppid, pgrp
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                members.append(int(stat.parent.name))
    return members


def _stop_group(proc: subprocess.Popen, grace: float = WAIT / 4) -> None:
    """SIGTERM a server's process group and wait until every member has gone (SIGKILL late ones)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=POLL)  # reaps the leader; its children are reaped by init
            if proc.poll() is not None and not _group_members(proc.pid):
                return
            if time.monotonic() > deadline:
                break
    raise RuntimeError(f"server process group {proc.pid} still running after SIGKILL: "
                       f"{_group_members(proc.pid)}")  # fmt: skip


def kedro(*args: str) -> list[str]:
    """`kedro …` from this interpreter's environment."""
    return [str(Path(sys.executable).with_name("kedro")), *args]


def screenshot(browser, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def wait_for(browser, what: str, look, ok, timeout: float = WAIT):
    """Poll `look(browser)` until `ok(seen)` holds and return `seen`; on timeout, fail the test
    with what was awaited and the last thing seen.

    A look that meets a page mid-render (an element not there yet, replaced, or covered; a
    script run during a navigation) counts as "not yet" and is retried.
    """
    from selenium.common import exceptions as sx
    from selenium.webdriver.support.ui import WebDriverWait

    not_yet = (sx.NoSuchElementException, sx.StaleElementReferenceException,
               sx.ElementClickInterceptedException, sx.ElementNotInteractableException,
               sx.JavascriptException)  # fmt: skip
    last: list = ["nothing yet"]

    def holds(b) -> bool:
        try:
            last[0] = look(b)
        except not_yet as error:
            last[0] = f"{type(error).__name__}: {error.msg}"
            return False
        return bool(ok(last[0]))

    try:
        WebDriverWait(browser, timeout, poll_frequency=POLL).until(holds)
    except sx.TimeoutException:
        pass  # failed below, outside this handler: the report shows no selenium traceback
    else:
        return last[0]
    pytest.fail(f"{what}: not seen within {timeout:.0f} s at {browser.current_url}; "
                f"last seen: {_shown(last[0])[-4000:]}")  # fmt: skip


def _shown(value) -> str:
    """`value` for a failure message, sets sorted (also inside a tuple)."""
    if isinstance(value, tuple):
        return f"({', '.join(map(_shown, value))})"
    return str(sorted(value) if isinstance(value, (set, frozenset)) else value)


def click(browser, what: str, xpath: str, timeout: float = WAIT) -> None:
    """Click the element at `xpath` once it is there and takes the click (exactly one click)."""

    def clicked(b) -> bool:
        b.find_element("xpath", xpath).click()  # raises, not clicking, until it can
        return True

    wait_for(browser, f"{what} (to click)", clicked, bool, timeout)
