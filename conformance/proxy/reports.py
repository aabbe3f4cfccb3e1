"""Writing a proxy's reports (the pytest session of `session.py`), and the summary and exit code at its end.

The session runs in the proxy's process while the traffic goes on: pytest's own output is kept off the
terminal (the live lines go on there), and `--capture=no` leaves the file descriptors alone, so nothing the
other threads print ends up in a report. Exit codes are `run`'s: 0 conformant at --fail-on, 1 not (or a
secret found in a written report), 2 a report directory or file that cannot be written, 4 nothing judged.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from conformance.config import Config
from conformance.config.secrets import config_secrets
from conformance.proxy.session import ProxyReport, ProxyReportPlugin
from conformance.redact import Scrubber
from conformance.report.folder import JUNIT_SUITE_NAME
from conformance.report.summary import (
    EXIT_FAIL,
    EXIT_USAGE,
    PYTEST_USAGE,
    REPORT_FILES,
    exit_code,
    leaked_files,
    render,
)

SESSION = Path(__file__).with_name("session.py")
# the installed pytest plugins a report session has no use for (not loading them halves its first run), and
# pytest's log capture: it would take the log lines of the proxy's other threads into the reports
NOT_NEEDED = [
    arg
    for name in ("schemathesis", "hypothesispytest", "anyio", "xdist", "xdist.looponfail", "timeout", "logging")
    for arg in ("-p", f"no:{name}")
]
_RERUN = re.compile(r"  \(rerun: --only [A-Z]+-\d{3}( --seed \d+)?\)$")


def pytest_args(report_dir: Path) -> list[str]:
    return [
        str(SESSION),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faulthandler",
        *NOT_NEEDED,
        "--capture=no",
        "--rootdir",
        str(SESSION.parent),
        "-q",
        "--no-header",
        "-rN",
        "--tb=no",
        "--assert=plain",
        "-o",
        "junit_family=xunit1",
        "-o",
        f"junit_suite_name={JUNIT_SUITE_NAME}",
        f"--junitxml={report_dir / 'junit.xml'}",
        f"--html={report_dir / 'conformance.html'}",
        "--self-contained-html",
    ]


def write_reports(settings: Config, report: ProxyReport) -> tuple[int, str]:
    """Write conformance.json, junit.xml and conformance.html to settings.report_dir; (pytest's exit code,
    what pytest printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = pytest.main(pytest_args(Path(settings.report_dir)), plugins=[ProxyReportPlugin(settings, report)])
    return int(code), printed.getvalue()


def load(report_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def summary(settings: Config, report_dir: Path, doc: dict[str, Any]) -> tuple[int, str]:
    """(exit code, the summary to print) of the final reports: `run`'s summary, its rerun hints dropped
    (the proxy sends no request of its own), with the traffic counts under it."""
    code, line = exit_code(doc, settings.fail_on)
    lines = [_RERUN.sub("", text) for text in render(doc, line, report_dir, settings.fail_on).splitlines()]
    proxy = doc.get("proxy") or {}
    exchanges = proxy.get("exchanges") or {}
    # the other ends an exchange came to (a client gone, an upstream reset ...); "judged" is counted already
    outcomes = ", ".join(f"{n} {name}" for name, n in (proxy.get("outcomes") or {}).items() if name != "judged")
    traffic = (
        f"proxied: {exchanges.get('total', 0)} exchange(s), {exchanges.get('chat_completions', 0)} "
        f"chat completion(s), {exchanges.get('judged', 0)} judged" + (f" ({outcomes})" if outcomes else "")
    )
    lines.insert(len(lines) - 1, traffic)
    return code, "\n".join(lines)


def finish(settings: Config, report_dir: Path, pytest_code: int, printed: str, keys: Iterable[str] = (),
           also: Iterable[Path] = ()) -> tuple[int, str]:
    """(exit code, text for the terminal) once the final reports are written. `keys`: every key a client
    sent through the proxy, looked for like the configuration's secrets in the reports and in `also` (the
    HAR file)."""
    written = [*(report_dir / name for name in REPORT_FILES), *also]
    leaks = leaked_files(report_dir, settings, written, neutralise=True, extra=keys)
    if leaks:
        names = ", ".join(str(p) for p in leaks)
        return EXIT_FAIL, (
            f"sgp-conformance proxy: SECRET LEAK: a key was found in {names} (now masked there): "
            "report this as a bug of sgp-conformance"
        )
    doc = load(report_dir)
    if pytest_code == PYTEST_USAGE or doc is None:
        detail = " ".join(printed.split())[-400:]
        return EXIT_USAGE, f"sgp-conformance proxy: the reports could not be written to {report_dir}: {detail}"
    code, text = summary(settings, report_dir, doc)
    return code, Scrubber([*config_secrets(settings), *keys]).text(text)
