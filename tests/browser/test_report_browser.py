"""The HTML report of a failing run, opened in headless Chromium (Debian's package, driven by Selenium
through Debian's chromedriver): the summary, the matrix and a failure's evidence are really visible.

Chromium is installed by tests/browser/ensure-chromium.sh (tox runs it before the tests). Saves
browser-report.png among the screenshots (conftest.py: the system's temporary directory, not the checkout):
the page from its top to the end of the matrix, one failure expanded.
"""

from __future__ import annotations

from pathlib import Path

from cli_runs import Outcome
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

# a screenshot taller than this is cut
MAX_HEIGHT = 12000


def test_the_report_shows_summary_matrix_and_evidence_in_a_browser(
        browser: object, broken_run: Outcome, screenshots: Path) -> None:  # noqa: F811
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
    # what the contract says about the rule is there to read, with where it is in the page
    quote = evidence.find_element(By.CSS_SELECTOR, "blockquote.sgp-contract")
    assert quote.is_displayed() and "6.1 Top level" in quote.text and "`" not in quote.text
    assert quote.find_element(By.CSS_SELECTOR, "table td code").text == "id"
    assert "What the contract says" in text and "docs/contract.md#response-required" in text

    # summary, failures (one expanded) and matrix in one picture; pytest-html's own table below is left out
    bottom = driver.execute_script("return document.getElementById('sgp-matrix').getBoundingClientRect().bottom"
                                   " + window.scrollY")
    driver.set_window_size(1400, min(int(bottom) + 40, MAX_HEIGHT))
    driver.execute_script("document.getElementById('evidence-RESP-001').open = true; window.scrollTo(0, 0)")
    picture = screenshots / "browser-report.png"
    assert driver.save_screenshot(str(picture)), picture
    assert picture.stat().st_size > 10_000
