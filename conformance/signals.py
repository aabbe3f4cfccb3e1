"""Ctrl-C and SIGTERM in a CLI process's first moments, before the run has set the previous reports aside.

Python starts, imports the CLI and reads the configuration before a run can move the previous run's reports
out of the way (conformance.report.folder.set_aside). A signal in that window used to kill the process with
the previous `conformant` conformance.json still in place, reading as this run's verdict, or to print an
import traceback. While `defer()` is in force the first SIGINT or SIGTERM is only recorded; `release()` ends
the deferral (the run then ends as interrupted, having set the reports aside). A second signal acts at once,
so a process stuck in that window can always be stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

PENDING: list[str] = []
_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _defer(signum: int, frame: FrameType | None) -> None:
    if PENDING:
        # the second signal: act as if never deferred
        signal.signal(signum, _DEFAULTS.get(signum, signal.SIG_DFL))
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)
        return
    PENDING.append(_NAMES.get(signum, "SIGTERM"))


def is_cli_process() -> bool:
    """Whether this process is the `sgp-conformance` command (the console script, or python -m
    conformance.cli), never a process that merely imports the package (a user's tests, pytest)."""
    first = sys.argv[0] if sys.argv else ""
    return os.path.basename(first) == "sgp-conformance" or first.endswith(os.path.join("conformance", "cli.py"))


def defer() -> None:
    """Record the first SIGINT or SIGTERM instead of acting on it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _NAMES:
        signal.signal(signum, _defer)


def release() -> str | None:
    """End the deferral: the default handlers again, and the name of the signal that arrived meanwhile."""
    if threading.current_thread() is threading.main_thread():
        for signum, handler in _DEFAULTS.items():
            if signal.getsignal(signum) is _defer:
                signal.signal(signum, handler)
    return PENDING[0] if PENDING else None


if is_cli_process():
    defer()
