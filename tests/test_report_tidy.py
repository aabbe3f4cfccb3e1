"""What the reports leave out: the machine's hostname (JUnit's <testsuite>, pytest-metadata's environment)
and its install paths (raw skip tuples, tracebacks); and what pytest-html shows in the suite's words."""

from __future__ import annotations

import html
import json
import re
import socket
import sys
from pathlib import Path

from cli_runs import Outcome
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

from conformance.report.files import drop_hostname
from conformance.report.html import duration, strip_local_paths, table_log, tidy_environment, tidy_outcomes

ROOT = Path(__file__).resolve().parents[1]


def machine_words() -> list[str]:
    """What would identify this machine or its installation in a report."""
    words = [str(ROOT), sys.prefix, sys.base_prefix, str(Path.home())]
    return [w for w in words if len(w) > 1]


def names_host(text: str) -> bool:
    host = socket.gethostname()
    short = host.split(".")[0]
    return any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) for name in {host, short} if name)


def test_junit_names_no_host(broken_run: Outcome) -> None:  # noqa: F811
    text = (broken_run.report_dir / "junit.xml").read_text(encoding="utf-8")
    assert "hostname=" not in text
    assert '<testsuite name="sgp-conformance"' in text and "timestamp=" in text  # the rest as pytest wrote it


def test_the_html_report_names_no_host_and_no_install_path(broken_run: Outcome) -> None:  # noqa: F811
    page = (broken_run.report_dir / "conformance.html").read_text(encoding="utf-8")
    blob = html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1))  # type: ignore[union-attr]
    for text in (page, blob):
        for word in machine_words():
            assert word not in text, word
        assert not names_host(text)
    data = json.loads(blob)
    assert set(data["environment"]) <= {"Python", "Platform", "Packages", "Plugins"}
    skipped = [t for tests in data["tests"].values() for t in tests if t["result"] == "Skipped"]
    assert skipped and all(t["log"].startswith("skipped: ") for t in skipped), skipped[:1]


def test_drop_hostname_touches_nothing_else(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    original = ('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" '
                'errors="0" tests="1" time="0.1" timestamp="2026-11-30T10:15:00+00:00" hostname="build-17.corp">'
                '<testcase name="t" hostname-ish="keep"/></testsuite></testsuites>')
    junit.write_text(original, encoding="utf-8")
    drop_hostname(junit)
    assert junit.read_text(encoding="utf-8") == original.replace(' hostname="build-17.corp"', "")
    drop_hostname(tmp_path / "missing.xml")  # nothing to do, no error


def test_pytest_html_parts_in_the_suites_words() -> None:
    outcomes = {name: {"label": name.title(), "value": 0} for name in
                ("failed", "passed", "skipped", "xfailed", "xpassed", "error", "rerun", "retried")}
    outcomes["passed"]["value"] = 3
    tidy_outcomes(outcomes)
    assert list(outcomes) == ["failed", "passed", "skipped", "error"]
    with_known = {"xfailed": {"label": "Expected failures", "value": 2}, "rerun": {"label": "Reruns", "value": 0}}
    tidy_outcomes(with_known)
    assert with_known == {"xfailed": {"label": "Known (baseline)", "value": 2}}

    env = {"Python": "3.11", "Platform": "Linux", "Packages": {}, "Plugins": {}, "JENKINS_URL": "http://ci.corp/",
           "NODE_NAME": "build-17", "BITBUCKET_CLONE_DIR": "/home/ci/src"}
    assert tidy_environment(env) == {"Python": "3.11", "Platform": "Linux", "Packages": {}, "Plugins": {}}

    assert duration(0.0361) == "36 ms" and duration(75.2) == "75200 ms"


def test_skips_and_tracebacks_lose_local_paths() -> None:
    suite_file = str(ROOT / "conformance" / "suite" / "test_clients.py")

    class Report:
        skipped = True
        longrepr = (suite_file, 38, "Skipped: not run: pass --clients to drive the official SDKs")

    assert table_log(Report(), [html.escape(str(Report.longrepr))]) == [
        "skipped: not run: pass --clients to drive the official SDKs\n"]
    trace = f'File "{suite_file}", line 38\nFile "{sys.prefix}/lib/python3.11/site-packages/_pytest/main.py"'
    tidy = strip_local_paths(trace)
    assert str(ROOT) not in tidy and sys.prefix not in tidy
    assert 'File "conformance/suite/test_clients.py", line 38' in tidy
