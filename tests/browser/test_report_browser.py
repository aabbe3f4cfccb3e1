"""The HTML report of a failing run, opened in headless Chromium (Debian's package, driven by Selenium
through Debian's chromedriver): the summary, the matrix and a failure's evidence are really visible.

Chromium is installed by tests/browser/ensure-chromium.sh (tox runs it before the tests). Saves
reports/browser-report.png: the page from its top to the end of the matrix, one failure expanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import Outcome
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ENSURE = Path(__file__).with_name("ensure-chromium.sh")
SCREENSHOT = Path(__file__).resolve().parents[2] / "reports" / "browser-report.png"
# a screenshot taller than this is cut
MAX_HEIGHT = 12000


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


def test_the_report_shows_summary_matrix_and_evidence_in_a_browser(
        browser: object, broken_run: Outcome) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    page = broken_run.report_dir / "conformance.html"
    driver.get(page.as_uri())
    # pytest-html renders its own results table with script: wait for it, so the page is complete
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results-table tbody tr"))

    summary = driver.find_element(By.ID, "sgp-summary")
    assert summary.is_displayed()
    assert "NOT CONFORMANT" in summary.text and broken_run.doc["run"]["target"] in summary.text
    assert "Requests sent" in summary.text and "MUST" in summary.text

    matrix = driver.find_element(By.ID, "sgp-matrix")
    assert matrix.is_displayed()
    row = driver.find_element(By.ID, "req-RESP-001")
    assert row.is_displayed() and "fail" in row.text and "MUST" in row.text
    assert len(matrix.find_elements(By.CSS_SELECTOR, "tbody tr")) == len(broken_run.doc["results"])

    # evidence is collapsed until asked for; the matrix's link opens it
    evidence = driver.find_element(By.ID, "evidence-RESP-001")
    curl = evidence.find_element(By.CSS_SELECTOR, "pre.curl")
    assert evidence.is_displayed() and not curl.is_displayed()
    link = row.find_element(By.LINK_TEXT, "evidence")
    driver.execute_script("arguments[0].click()", link)
    WebDriverWait(driver, 10).until(lambda d: curl.is_displayed())
    assert evidence.get_attribute("open") is not None
    text = evidence.text
    assert "missing required field 'id'" in text and "schema excerpt" in text
    assert '"${SGP_API_KEY}"' in curl.text and "response 200" in text

    # summary, failures (one expanded) and matrix in one picture; pytest-html's own table below is left out
    bottom = driver.execute_script("return document.getElementById('sgp-matrix').getBoundingClientRect().bottom"
                                   " + window.scrollY")
    driver.set_window_size(1400, min(int(bottom) + 40, MAX_HEIGHT))
    driver.execute_script("document.getElementById('evidence-RESP-001').open = true; window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
