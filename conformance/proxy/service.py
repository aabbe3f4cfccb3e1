"""The proxy as an object: start it, let traffic through, write reports, stop it. The CLI and the tests drive it.

Threads: uvicorn serves the forwarder on its own event loop in a daemon thread; the judging thread
(`worker`) judges finished exchanges; the caller's thread writes the reports (a pytest session), which may
take a second while the other two go on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import TextIO

import uvicorn

from conformance.config import Config
from conformance.config.network import ssl_context
from conformance.contract.profiles import get_profile
from conformance.proxy import reports
from conformance.proxy.forward import Forwarder, QuietUnfinished
from conformance.proxy.har import HarError, HarWriter
from conformance.proxy.judge import EVIDENCE_BUDGET_BYTES, MAX_EVIDENCE, Tally
from conformance.proxy.options import ProxyOptions
from conformance.proxy.session import ProxyReport
from conformance.proxy.terminal import Printer
from conformance.proxy.worker import MAX_QUEUE_BYTES, JudgeWorker
from conformance.server.runner import bind

# seconds an open answer (a stream) may go on after stop() before its connection is closed
GRACE_S = 2.0
_filtered = False


def _quiet_uvicorn() -> None:
    global _filtered
    if not _filtered:
        logging.getLogger("uvicorn.error").addFilter(QuietUnfinished())
        _filtered = True


class ProxyService:
    """One proxy. `settings` is the report configuration (profile, report_dir, fail_on, baseline, and the
    key stand-in as api_key); `out` gets the live lines (default stdout)."""

    def __init__(self, options: ProxyOptions, settings: Config, out: TextIO | None = None) -> None:
        self.options = options
        self.settings = settings
        self.profile = get_profile(options.profile)
        self.printer = Printer(out, quiet=options.quiet)
        self.tally = Tally(self.profile, time.time())
        self.har: HarWriter | None = None
        self.report_due = threading.Event()
        self.worker = JudgeWorker(
            self.tally,
            self.profile,
            options.max_body_bytes,
            self.printer,
            None,
            options.report_every,
            self.report_due.set,
        )
        self.forwarder = Forwarder(options.upstream, self.profile, self.worker.submit, options.max_body_bytes,
                                   verify=ssl_context(settings))
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.host = options.bind
        self.port = options.port
        self.reports_written = 0

    # -- serving ------------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Listen and serve in the background; returns once connections are accepted. OSError when the
        address cannot be bound, HarError when the --har file cannot be written (nothing is left running)."""
        sock = bind(self.options.bind, self.options.port)
        self.port = sock.getsockname()[1]
        # made now, not on the first request: its TLS trust store takes a moment to load
        _ = self.forwarder.client
        if self.options.har:
            try:
                self.har = self.worker.har = HarWriter(Path(self.options.har))
            except HarError:
                sock.close()
                raise
        _quiet_uvicorn()
        config = uvicorn.Config(
            self.forwarder,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(GRACE_S),
            server_header=False,
            date_header=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        self.worker.start()
        self._thread = threading.Thread(target=self._serve, args=(server, sock), name="sgp-proxy-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise OSError(f"the proxy on {self.options.bind}:{self.port} did not start")
            time.sleep(0.005)

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                await self.forwarder.aclose()

        try:
            asyncio.run(serve())
        finally:
            sock.close()

    @property
    def listen_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def client_base_url(self) -> str:
        """The base URL a client of the profile is given: the proxy's, with /v1 for openai."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return self.profile.base_url_template.format(host=host, port=self.port)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open answers get GRACE_S to end, then their connections are closed), judge what is
        still queued, close the HAR file."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._thread is not None:
            self.worker.stop()
        if self.har is not None:
            self.har.close(self.tally.seen.scrubber)

    # -- reports ------------------------------------------------------------------------------------------

    def limits(self) -> dict[str, int]:
        return {
            "max_body_bytes": self.options.max_body_bytes,
            "evidence_per_requirement": MAX_EVIDENCE,
            "evidence_budget_bytes": EVIDENCE_BUDGET_BYTES,
            "judging_queue_bytes": MAX_QUEUE_BYTES,
        }

    def report(self) -> ProxyReport:
        """A snapshot of the traffic so far, as the reports will show it."""
        snapshot = self.tally.snapshot()
        self.settings.model = snapshot.model()
        return ProxyReport(snapshot, self.options.upstream.url, self.listen_url, self.limits())

    def write_reports(self) -> tuple[int, str]:
        """Write the three reports from the traffic so far; (pytest's exit code, what it printed)."""
        code, printed = reports.write_reports(self.settings, self.report())
        self.reports_written += 1
        return code, printed

    def finish(self) -> tuple[int, str]:
        """Write the final reports; (the exit code, the summary to print)."""
        code, printed = self.write_reports()
        har = [Path(self.options.har)] if self.options.har else []
        return reports.finish(self.settings, Path(self.settings.report_dir), code, printed,
                              keys=self.tally.seen.secrets, also=har)
