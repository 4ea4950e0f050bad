"""A real browser for the web view's tests: Debian's chromium (scripts/install-services.sh
installs it), driven by Playwright for Python. Playwright's own browser download
(`playwright install`) is never used: no network, and the distribution's browser is the one
people run (HEMOSTAT_CHROMIUM names another Chromium binary). Missing chromium or Playwright
skips, or fails under HEMOSTAT_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.services import missing

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless chromium (a Playwright Browser)."""
    path = os.environ.get("HEMOSTAT_CHROMIUM") or shutil.which("chromium") or CHROMIUM
    if not os.path.isfile(path):
        missing(f"no chromium at {path}", "apt-get install chromium, as scripts/install-services.sh "
                "does, or set HEMOSTAT_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("no playwright", "pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
