"""What the browser tests share: one headless Chromium per test module (``browser``)."""

from __future__ import annotations

import os
import tempfile

import pytest

from bookpipe.layout import CHROMEDRIVER, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for all pages, driven through Debian's chromedriver (no Selenium
    Manager)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} missing: `python3 pipeline.py test` installs them "
            "(apt-get install -y chromium chromium-driver)"
        )
    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "1"  # never let Selenium Manager download a driver or a browser
    profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile.name}",
        "--window-size=1280,1000",
        # No network: every host name but 127.0.0.1 fails to resolve, so a page that needs the
        # internet (a CDN MathJax, a web font) shows it here.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = None
    try:
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(CHROMEDRIVER))
        )
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        profile.cleanup()
        if previous is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = previous
