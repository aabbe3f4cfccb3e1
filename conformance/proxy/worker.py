"""The judging thread: finished exchanges in, judged one by one in the order they finished, off the event loop.

`submit` is called on the event loop and only queues. The queue is bounded by the bytes it holds
(MAX_QUEUE_BYTES): an exchange that would pass it keeps its headers and counts but not its bodies, and is
reported as `judging fell behind` instead of growing memory. For each exchange the thread judges it, adds
it to the tally, writes its HAR entry, prints its line, and says when a periodic report is due.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from conformance.contract.profiles import Profile
from conformance.proxy import recording
from conformance.proxy.har import HarWriter
from conformance.proxy.judge import Judgement, Tally, judge, requirements_for
from conformance.proxy.recording import Observed
from conformance.proxy.terminal import Printer, exchange_line, printable

MAX_QUEUE_BYTES = 64_000_000


class JudgeWorker:
    """Owns the judging thread. `report_due` is called (on that thread) after every `report_every`
    chat-completions exchanges; it must only signal, not write."""

    def __init__(
        self,
        tally: Tally,
        profile: Profile,
        limit: int,
        printer: Printer,
        har: HarWriter | None = None,
        report_every: int = 0,
        report_due: Callable[[], None] = lambda: None,
    ) -> None:
        self.tally = tally
        self.profile = profile
        self.limit = limit
        self.printer = printer
        self.har = har
        self.report_every = report_every
        self.report_due = report_due
        self.requirements = requirements_for(profile)
        self._queue: queue.SimpleQueue[Observed | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._operations = 0
        self._thread = threading.Thread(target=self._run, name="sgp-proxy-judge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, observed: Observed) -> None:
        """Queue a finished exchange (never blocks)."""
        with self._lock:
            if self._queued_bytes + observed.size > MAX_QUEUE_BYTES:
                observed.request_body = observed.response_body = b""
                observed.outcome = recording.BACKLOG
                observed.error = f"more than {MAX_QUEUE_BYTES} bytes were waiting to be judged"
            self._queued_bytes += observed.size
        self._queue.put(observed)

    def stop(self, timeout: float = 30.0) -> None:
        """Judge what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            observed = self._queue.get()
            if observed is None:
                return
            with self._lock:
                self._queued_bytes -= observed.size
            try:
                self.handle(observed)
            except Exception as exc:  # one exchange the proxy could not judge must not stop the judging
                self.printer.line(
                    f"#{observed.number} sgp-conformance proxy: could not judge this exchange: "
                    f"{type(exc).__name__}: {printable(str(exc), 200)}",
                    always=True,
                )
                with self.tally.lock:
                    self.tally.exchanges += 1
                    self.tally.outcomes[recording.PROXY_ERROR] += 1

    def handle(self, observed: Observed) -> Judgement:
        """Judge, count, record and print one exchange (the thread's work; tests call it directly)."""
        judgement = judge(observed, self.profile, self.limit, self.requirements, self.tally.seen)
        line = exchange_line(judgement, self.profile, judgement.scrubber)
        self.tally.add(judgement, line)
        if self.har is not None and judgement.kept is not None:
            self.har.add(judgement.kept, observed.started, judgement.skipped or observed.outcome,
                         judgement.scrubber)
        self.printer.line(line)
        if observed.operation and self.report_every:
            self._operations += 1
            if self._operations % self.report_every == 0:
                self.report_due()
        return judgement
