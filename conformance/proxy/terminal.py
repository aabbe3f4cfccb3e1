"""The live terminal line of one exchange, and the printer the proxy's threads share.

    #12 POST /v4/beta/chat/completions 200 openai/gpt-4o-mini stream 35.2 ms  ok
    #13 POST /v4/beta/chat/completions 200 openai/gpt-4o-mini plain 4.1 ms  FAIL RESP-001 SEM-003
    #14 GET /healthz 200 - plain 0.9 ms  forwarded (not judged)

Everything on it that came from the client or the upstream (path, model, error) has the exchange's own
credentials masked and control characters replaced, so neither a key nor an escape sequence reaches the
terminal; long parts are cut.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from conformance.contract.profiles import Profile
from conformance.pipes import silence_stdout
from conformance.proxy import recording
from conformance.proxy.judge import Judgement
from conformance.redact import Scrubber

PATH_WIDTH = 60
MODEL_WIDTH = 40
ERROR_WIDTH = 160


def printable(text: str, width: int) -> str:
    """`text` on one line without control characters, cut to `width` with an ellipsis."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def exchange_line(judgement: Judgement, profile: Profile, scrubber: Scrubber) -> str:
    """The line of one finished exchange: number, method, path, status, model, stream or not, time, result."""
    observed = judgement.observed
    path = printable(scrubber.text(observed.path), PATH_WIDTH)
    status = str(observed.status) if observed.status is not None else "---"
    if observed.status is None and observed.proxy_status is not None:
        status = f"{observed.proxy_status} by proxy"
    model = printable(scrubber.text(observed.model), MODEL_WIDTH) if observed.model else "-"
    kind = "stream" if observed.streamed else "plain"
    took = f"{observed.elapsed_ms:.1f} ms" + (" (still streaming)" if observed.still_streaming else "")
    head = f"#{observed.number} {observed.method} {path} {status} {model} {kind} {took}"
    if judgement.skipped is not None:
        why = f": {printable(scrubber.text(observed.error), ERROR_WIDTH)}" if observed.error else ""
        return f"{head}  {judgement.skipped}{why} (not judged)"
    failed = judgement.failed(profile)
    result = f"FAIL {' '.join(failed)}" if failed else "ok"
    seen = judgement.observations(profile)
    if seen:
        result += f"  observed {' '.join(seen)}"
    if observed.outcome != recording.JUDGED:
        result += f"  [{observed.outcome}; judged as far as it arrived]"
    return f"{head}  {result}"


class Printer:
    """Whole lines to one stream from any thread; the stream is fixed when the printer is made, so what
    else redirects sys.stdout meanwhile (the report session) does not take the live lines with it."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.quiet = quiet
        self._lock = threading.Lock()

    def line(self, text: str, always: bool = False) -> None:
        """Print one line (`always`: even when quiet, for what the user must see)."""
        if self.quiet and not always:
            return
        with self._lock:
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except BrokenPipeError:
                # the reader went away (`proxy | head`): the proxy goes on serving without its lines
                silence_stdout()
                self.quiet = True
            except (OSError, ValueError):
                self.quiet = True
