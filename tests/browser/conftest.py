"""The browser tests' Chromium (Debian's package, driven by Selenium through Debian's chromedriver) and the
place their screenshots go: SCREENSHOTS in the system's temporary directory, never the checkout."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ENSURE = Path(__file__).with_name("ensure-chromium.sh")


# a fixed place, so the pictures are found after the run (pytest's own temporary directories rotate)
SCREENSHOTS = Path(tempfile.gettempdir()) / "sgp-conformance-screenshots"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the browser tests save their pictures: SCREENSHOTS, outside the checkout."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `bash {ENSURE}` (as root) to install Debian's chromium "
                    "and chromium-driver", pytrace=False)
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[test]' (tox does)", pytrace=False)
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    # the driver and the browser are given: selenium-manager must not look for (or download) either
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
