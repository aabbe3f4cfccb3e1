"""The progress display of `sgp-conformance run`: a line per area in a pipe, a live line in a terminal that
moves while a property test sends its generated cases, and none of pytest's dots."""

from __future__ import annotations

import io
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_runs import CLI, Outcome, clean_environment
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

from conformance.contract import catalogue
from conformance.suite import progress
from conformance.suite.progress import Progress, area_of, requirement_in, status_of

AREA_LINE = re.compile(
    r"^([A-Z]+|other)\s+((?:\d+ (?:pass|fail|error|stale|known|observed|not judged|not run)(?:, )?)+)\s+\[requests \d+")
PYTEST_DOTS = re.compile(r"^[.sFExX]+\s*(\[\s*\d+/\d+\])?\s*$")


def areas(profile: str) -> set[str]:
    return {r.id.rsplit("-", 1)[0] for r in catalogue.for_profile(profile)}


def test_a_pipe_gets_one_line_per_area_and_no_dots(broken_run: Outcome) -> None:  # noqa: F811
    lines = broken_run.stdout.splitlines()
    shown = {m.group(1): m.group(2) for line in lines if (m := AREA_LINE.match(line))}
    assert set(shown) == areas("sgp"), shown
    # one fault, one failure: the generated cases find the RESP fault too, and RESP reports it alone
    assert "1 fail" in shown["RESP"] and "fail" not in shown["PROP"]
    # the outcome model's words, as the banner says them; never pytest's "skip"
    assert re.fullmatch(r"\d+ not run", shown["CLIENT"]), shown["CLIENT"]
    assert not any(" skip" in line for line in lines)
    # pytest's own closing count is left out: the banner says what was judged
    assert not any(re.search(r"\d+ (passed|skipped|deselected)", line) for line in lines)
    assert not [line for line in lines if PYTEST_DOTS.match(line)]
    assert "\r" not in broken_run.stdout  # no live line in a pipe


def test_live_mode_rewrites_one_line(tmp_path: Path) -> None:
    env = clean_environment()
    # bytes: text mode would turn every carriage return into a new line
    done = subprocess.run([*CLI, "run", "--depth", "smoke", "-k", "AUTH", "--sgp-progress", "live",
                           "--report-dir", str(tmp_path / "reports")], capture_output=True, timeout=240, env=env)
    out = done.stdout.decode()
    assert done.returncode == 0, out[-2000:] + done.stderr.decode()[-2000:]
    assert "\r[0:0" in out and "\x1b[K" in out
    assert re.search(r"judged \d+/\d+  AUTH-00\d ", out)
    # an area's line stays above the live line, which is cleared before pytest's and our summaries
    assert re.search(r"\r\x1b\[KAUTH +\d+ (not run|pass)", out)
    tail = out.rsplit("\r", 1)[-1]
    # -k AUTH left the other requirements out: the verdict says partial
    assert tail.startswith("\x1b[K\n") and "PARTIAL" in tail
    assert not re.search(r"judged \d+/\d+", tail)
    # the live line's last count is the banner's: requirements judged of those that apply
    last = re.findall(r"judged (\d+)/(\d+)", out)[-1]
    assert f"{last[0]} of {last[1]} requirements judged" in tail, (last, tail)


# -- the display's parts, without a run ----------------------------------------------------------------------------


def test_ids_areas_and_statuses() -> None:
    assert requirement_in("test_auth.py::test_missing_key_refused[AUTH-001]") == "AUTH-001"
    assert area_of("test_x.py::test_y[RESP-012]") == "RESP" and area_of("test_x.py::test_y") == "other"

    def report(when: str, outcome: str, **extra: Any) -> Any:
        return SimpleNamespace(when=when, outcome=outcome, passed=outcome == "passed", failed=outcome == "failed",
                               skipped=outcome == "skipped", longreprtext=extra.pop("text", ""), **extra)

    assert status_of(report("setup", "passed")) is None
    assert status_of(report("call", "passed")) == "pass"
    assert status_of(report("call", "failed")) == "fail"
    assert status_of(report("setup", "failed")) == "error"
    assert status_of(report("setup", "skipped")) == "not run"
    assert status_of(report("call", "skipped", longrepr=("f.py", 1, "Skipped: not judged: no usage"))) == "not judged"
    assert status_of(report("call", "skipped", longrepr=("f.py", 1, "SHOULD not met: x"))) == "fail"
    assert status_of(report("call", "passed", user_properties=[("observation", "x")])) == "observed"
    assert status_of(report("call", "skipped", wasxfail="accepted")) == "known"
    assert status_of(report("call", "failed", text="[XPASS(strict)] accepted")) == "stale"


class FakeRun:
    def __init__(self) -> None:
        self.client = SimpleNamespace(stats=SimpleNamespace(sent=0))


def display(live: bool) -> tuple[Progress, io.StringIO, FakeRun]:
    stream = io.StringIO()
    run = FakeRun()
    shown = Progress(run, live=live, stream=stream)
    shown.expect(["test_properties.py::test_generated_valid_requests[PROP-001]"], planned_requests=25)
    shown.current = "test_properties.py::test_generated_valid_requests[PROP-001]"
    return shown, stream, run


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        done.wait(0.05)
    return condition()


def test_the_live_line_moves_while_a_property_sends_its_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "TICK", 0.01)
    shown, stream, run = display(live=True)
    shown.start_ticker()
    try:
        # the property test is still running: only the client's counter moves, no hook is called
        for sent in (3, 11, 25):
            run.client.stats.sent = sent
            assert wait_for(lambda sent=sent: f"requests {sent}/25" in stream.getvalue()), stream.getvalue()
    finally:
        shown.finish()
    assert "PROP-001 " in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_a_pipe_hears_from_a_long_property_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "HEARTBEAT", 0.0)
    shown, stream, run = display(live=False)
    run.client.stats.sent = 7
    shown.heartbeat()
    line = stream.getvalue()
    assert line.startswith("... [0:00] requests 7/25  judged 0/1  PROP-001 ") and line.endswith("\n")
    assert "\r" not in line


def test_sent_past_the_plan_is_named_so() -> None:
    shown, _stream, run = display(live=False)
    run.client.stats.sent = 31
    assert shown.requests() == "requests 31 (25 planned)"
