"""The HTML report at 800 and 1400 px: no horizontal overflow with every failure's evidence open (long curl
lines and bodies wrap or scroll inside their own box), nothing of pytest-html that means nothing here (raw
skip tuples, reruns, "N tests took"), and the table of tests as the page's last part, the Test log.

Saves report-800.png and report-1400.png among the screenshots (conftest.py: outside the checkout).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_runs import Outcome
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

MAX_HEIGHT = 16000
# pytest's skip report as pytest-html would print it: ('/path/to/test_x.py', 12, 'Skipped: ...')
RAW_TUPLE = re.compile(r"\(['\"][^'\"]*\.py['\"], \d+, ['\"]Skipped")


@pytest.mark.parametrize("width", [800, 1400])
def test_the_report_fits_the_window_and_shows_nothing_of_pytest_html_that_means_nothing_here(
        browser: object, broken_run: Outcome, screenshots: Path, width: int) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    driver.set_window_size(width, 1000)
    driver.get((broken_run.report_dir / "conformance.html").as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results-table tbody tr"))
    # the widest the page gets: every failure and every exchange open, every test's log shown
    driver.execute_script("document.querySelectorAll('details').forEach(function(d){d.open = true;});"
                          "document.getElementById('show_all_details').click();")

    overflow = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"page {overflow[0]} px wide in a {overflow[1]} px window"

    text = driver.execute_script("return document.body.textContent")
    assert not RAW_TUPLE.search(text), RAW_TUPLE.search(text)
    assert "skipped: not run: pass --clients" in text
    for gone in ("Expected failures", "Unexpected passes", "Reruns", "Retried"):
        assert gone not in text, gone
    assert not driver.find_element(By.CSS_SELECTOR, "p.run-count").is_displayed()
    # pytest-html's table is the Test log, last, with its filters beside it; durations in one unit
    log = driver.find_element(By.ID, "sgp-tests")
    assert log.is_displayed() and "Test log" in log.text and "Failed" in log.text
    assert driver.execute_script(
        "return document.getElementById('sgp-tests').nextElementSibling.id") == "results-table"
    durations = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results-table td.col-duration")]
    assert durations and all(re.fullmatch(r"\d+ ms", d) for d in durations), durations

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 40, MAX_HEIGHT))
    driver.execute_script("window.scrollTo(0, 0)")
    picture = screenshots / f"report-{width}.png"
    assert driver.save_screenshot(str(picture)), picture
    assert picture.stat().st_size > 10_000
