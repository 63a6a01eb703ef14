"""Browser tests: one headless Chromium for the session (skipped where none is installed)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser_helpers import start_chromium  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    browser = start_chromium()
    yield browser
    browser.quit()
