"""Headless Chromium driven by Selenium, for the dashboard's end-to-end test.

The browser is Debian's `chromium` with its matching `chromium-driver` (`.ci/run` installs
both); Selenium is pointed at those two binaries, so it never tries to fetch a browser or a
driver of its own. A machine without them fails the test with what to install, not a skip.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BROWSER_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver", "chromium-driver")


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def headless_chromium(width: int = 1300, height: int = 1000) -> Iterator[webdriver.Chrome]:
    browser, driver = _which(BROWSER_NAMES), _which(DRIVER_NAMES)
    if browser is None or driver is None:
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver "
            f"(found browser={browser}, driver={driver}): "
            "apt-get install chromium chromium-driver (.ci/run does)",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="shoal-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        try:
            yield chrome
        finally:
            chrome.quit()
