"""What a run is doing while it runs, for the person watching: in a terminal a live line, rewritten in place,
with the requirement being judged, requests sent of the planned total, requirements judged and elapsed time;
in a pipe or CI log one line per area (AUTH, HDR, VAL, ..., the prefix of the requirement ID) with its
result counts as the area completes, and a line every HEARTBEAT seconds while nothing completes (a property
test at 1-2 s per request must not look like a hang).

`--sgp-progress auto|live|lines|off` (the CLI passes auto; as a plain pytest plugin it is off). While it
is on, pytest's own progress (the dots and `[71/89]`) is left out; everything else pytest prints stays.
The counts shown are for display: conformance.json and the summary decide the statuses.

Under pytest-xdist the workers attach their request count to each report (`sgp_sent`, an attribute that
xdist carries to the controller; it is no user property, so JUnit never sees it) and the controller shows
the sum; the planned total is the controller's to know only without workers.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from typing import Any, TextIO

import pytest

from conformance.contract import catalogue
from conformance.report.outcomes import NOT_JUDGED, NOT_RUN

MODES = ("auto", "live", "lines", "off")
PLUGIN_NAME = "sgp-conformance-progress"
# seconds between two lines of a pipe when no area completes, and between two redraws of the live line
HEARTBEAT = 30.0
TICK = 0.25
# the requirement ID a test judges is its parameter id: test_x[RESP-001]
NODE_ID = re.compile(r"\[([A-Z]+(?:-[A-Z]+)*)-(\d+)\]$")
# the outcome model's words (report.outcomes), worst first, as the banner and the reports say them
STATUS_ORDER = ("fail", "error", "stale", "known", "observed", "pass", NOT_JUDGED, NOT_RUN)
# the statuses the banner counts as judged ("51 of 102 requirements judged"): the live line counts the same
JUDGED = frozenset({"fail", "stale", "known", "observed", "pass"})


def requirement_in(nodeid: str) -> str | None:
    found = NODE_ID.search(nodeid)
    return f"{found.group(1)}-{found.group(2)}" if found else None


def area_of(nodeid: str) -> str:
    """AUTH for test_x[AUTH-001]; `other` for a test that judges no requirement."""
    found = NODE_ID.search(nodeid)
    return found.group(1) if found else "other"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = getattr(report, "longrepr", None)
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(getattr(report, "longreprtext", ""))
    return reason.removeprefix("Skipped: ")


def status_of(report: pytest.TestReport) -> str | None:
    """The status one report gives its test in the outcome model's words (what the banner and the reports
    say), or None when it says nothing new (a passing setup). A SHOULD failure that JUnit shows as a skip or
    a pass (--junit-should) is a fail here; an INFO finding shown as a pass is observed."""
    xfail = hasattr(report, "wasxfail")
    properties = dict(getattr(report, "user_properties", None) or [])
    if report.skipped:
        if xfail:
            return "known"
        reason = _skip_reason(report)
        if reason.startswith("SHOULD not met"):
            return "fail"
        return NOT_JUDGED if reason.startswith(f"{NOT_JUDGED}:") else NOT_RUN
    if report.failed:
        if report.when != "call":
            return "error"
        return "stale" if str(report.longreprtext).startswith("[XPASS(strict)]") else "fail"
    if report.when == "call":
        if xfail:
            return "stale"
        if "observation" in properties:
            return "observed"
        return "fail" if "should_not_met" in properties else "pass"
    return None


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counts_text(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s]) or "nothing judged"


def _terminal_stream() -> tuple[TextIO, bool]:
    """A stream onto the terminal (or pipe) stdout is now, which pytest's output capture, switched on around
    each test, does not redirect: a duplicate of file descriptor 1. Falls back to sys.stdout itself."""
    try:
        # what was printed before (buffered when stdout is a pipe) comes out before the first live line
        sys.stdout.flush()
        fd = os.dup(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return sys.stdout, False
    stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
    return stream, True


class NoPytestCounts:
    """Leaves out pytest's words for outcomes where the suite prints its own: the progress letters (dots, s, F)
    and the closing count ("51 passed, 51 skipped, 3 deselected"), which the summary banner replaces in the
    outcome model's words. Everything else pytest prints stays."""

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Generator[
            None, Any, Any]:
        """pytest's category for its closing counts, without its letter or word: no dots, no [71/89]."""
        result = yield
        if result and result[0]:
            return result[0], "", ""
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # at this verbosity pytest leaves its closing count out, and nothing else it would print here
        session.config.option.verbose = min(session.config.option.verbose, -2)


class Progress(NoPytestCounts):
    """The controller's display; see the module's docstring."""

    def __init__(self, run: Any, live: bool, stream: TextIO, owned: bool = False,
                 sent: Callable[[], int] | None = None) -> None:
        self.run = run
        self.live = live
        self.stream = stream
        self.owned = owned
        self.local_sent = sent or (lambda: int(run.client.stats.sent))
        self.started = time.monotonic()
        self.last_output = self.started
        self.planned_requests: int | None = None
        # the requirements that apply to the run's profile: the banner's "of 102"
        self.applicable: int | None = None
        self.expected: dict[str, set[str]] = {}
        self.total = 0
        self.done: set[str] = set()
        self.status: dict[str, str] = {}
        self.areas_shown: set[str] = set()
        self.current = ""
        self.worker_sent: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ticker: threading.Thread | None = None
        self.shown = ""
        self.broken = False

    # -- what is known ----------------------------------------------------------------------------------------

    def sent(self) -> int:
        return self.local_sent() + sum(self.worker_sent.values())

    def expect(self, nodeids: Iterable[str], planned_requests: int | None) -> None:
        for nodeid in nodeids:
            self.expected.setdefault(area_of(nodeid), set()).add(nodeid)
        self.total = sum(len(ids) for ids in self.expected.values())
        self.planned_requests = planned_requests

    def requests(self) -> str:
        """`requests 24/87`: sent of planned; a run past its plan (shrinking a failing property) says so."""
        sent, planned = self.sent(), self.planned_requests
        if not planned:
            return f"requests {sent}"
        return f"requests {sent}/{planned}" if sent <= planned else f"requests {sent} ({planned} planned)"

    def line(self) -> str:
        """The live line: elapsed time, requirement being judged, requests sent of planned, judged of all."""
        requests = self.requests()
        judged = sum(self.status.get(n) in JUDGED for n in self.done)
        of = self.applicable or self.total
        head = f"[{elapsed(time.monotonic() - self.started)}] {requests}  judged {judged}/{of}"
        req_id = requirement_in(self.current) if self.current else None
        if req_id is None:
            return head
        req = catalogue.BY_ID.get(req_id)
        return f"{head}  {req_id} {req.statement if req else ''}".rstrip()

    # -- output ------------------------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # the reader went away or the stream closed: the run goes on without its display
            self.broken = True

    def _width(self) -> int:
        return max(shutil.get_terminal_size((100, 24)).columns - 1, 20)

    def redraw(self) -> None:
        if not self.live:
            return
        with self.lock:
            text = self.line()
            width = self._width()
            if len(text) > width:
                text = text[: width - 1] + "…"
            if text != self.shown:
                self._write("\r" + text + "\x1b[K")
                self.shown = text

    def say(self, text: str) -> None:
        """A line that stays: in a terminal above the live line, which is drawn again below it."""
        with self.lock:
            if self.live and self.shown:
                self._write("\r\x1b[K")
                self.shown = ""
            self._write(text + "\n")
            self.last_output = time.monotonic()
        self.redraw()

    def heartbeat(self) -> None:
        """In a pipe, a line when nothing was printed for HEARTBEAT seconds."""
        if self.live or time.monotonic() - self.last_output < HEARTBEAT:
            return
        self.say(f"... {self.line()}")

    def area_done(self, area: str) -> None:
        counts = Counter(self.status[n] for n in self.expected.get(area, ()) if n in self.status)
        self.areas_shown.add(area)
        self.say(f"{area:<8} {counts_text(counts):<40} [{self.requests()}, {elapsed(time.monotonic() - self.started)}]")

    def finish(self) -> None:
        """Stop the ticker, clear the live line, and name the areas that never completed (an interrupted run)."""
        self.stopping.set()
        if self.ticker is not None:
            self.ticker.join(timeout=2)
        for area in self.expected:
            if area not in self.areas_shown and any(n in self.status for n in self.expected[area]):
                self.area_done(area)
        with self.lock:
            if self.live and self.shown:
                self._write("\r\x1b[K")
                self.shown = ""
        if self.owned:
            with contextlib.suppress(OSError):
                self.stream.close()

    def _tick(self) -> None:
        while not self.stopping.wait(TICK):
            self.redraw()
            self.heartbeat()

    def start_ticker(self) -> None:
        if self.ticker is None:
            self.ticker = threading.Thread(target=self._tick, name="sgp-progress", daemon=True)
            self.ticker.start()

    # -- pytest's hooks (the controller) ---------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from conformance.suite.plan import planned_scenarios, request_plan

        _rows, total = request_plan(planned_scenarios(session.items), self.run.config.property_examples(),
                                    self.run.boundaries())
        self.expect((item.nodeid for item in session.items), total)
        profile = getattr(self.run, "profile", None)
        if profile is not None:
            self.applicable = len(catalogue.for_profile(profile.name))
        self.start_ticker()
        self.redraw()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # every worker collects the same tests; requests are counted as the workers report them
        if not self.expected:
            self.expect(ids, None)
            self.start_ticker()

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.current = nodeid
        self.redraw()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        sent = getattr(report, "sgp_sent", None)
        node = getattr(report, "node", None)
        if isinstance(sent, int) and node is not None:
            self.worker_sent[str(getattr(getattr(node, "gateway", None), "id", node))] = sent
        status = status_of(report)
        if status is not None:
            old = self.status.get(report.nodeid)
            if old is None or STATUS_ORDER.index(status) < STATUS_ORDER.index(old):
                self.status[report.nodeid] = status
        if report.when != "teardown":
            return
        self.status.setdefault(report.nodeid, "pass")
        self.done.add(report.nodeid)
        area = area_of(report.nodeid)
        expected = self.expected.get(area, set())
        if area not in self.areas_shown and expected and expected <= self.done:
            self.area_done(area)
        self.redraw()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.finish()
        super().pytest_sessionfinish(session)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # a session that ended before sessionfinish (a usage error) still leaves the terminal clean
        if not self.stopping.is_set():
            self.finish()


class WorkerCount:
    """On an xdist worker: each report carries the worker's count of requests sent so far."""

    def __init__(self, run: Any) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
        report = yield
        report.sgp_sent = int(self.run.client.stats.sent)
        return report


class QuietTerminal:
    """A run that ends at its first request (the target unreachable, the key refused) judges nothing: pytest's
    lines (a skip per area, its counts, pytest-html's path) would only bury the one line `sgp-conformance run`
    prints about it. Whatever goes through pytest's terminal writer in such a session is dropped."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        if writer is not None:
            writer._file = io.StringIO()


def register(config: pytest.Config, run: Any) -> None:
    """Show progress in this session as --sgp-progress asks (off by default; the CLI passes auto)."""
    mode = config.getoption("sgp_progress", None) or "off"
    if mode == "off" or config.get_verbosity() > 0:
        return
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(WorkerCount(run), PLUGIN_NAME)
        return
    stream, owned = _terminal_stream()
    live = mode == "live" or (mode == "auto" and stream.isatty() and os.environ.get("TERM") != "dumb")
    config.pluginmanager.register(Progress(run, live, stream, owned), PLUGIN_NAME)
