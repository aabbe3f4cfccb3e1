"""Output to a reader that may go away: `sgp-conformance list | head -1` ends quietly, with its usual exit code.

Once the reader of stdout has closed the pipe, every later write would raise BrokenPipeError, the
interpreter's final flush included (which prints "Exception ignored ..."). `silence_stdout` points stdout
at /dev/null instead, so what is still written, by us or by pytest, goes nowhere without a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def silence_stdout() -> None:
    """Send whatever is written to stdout from now on to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        # stdout is no file (a test's capture): nothing to redirect
        pass


def write_lines(lines: Iterable[str]) -> bool:
    """Print the lines and flush; False (and stdout silenced) when the reader went away."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return False
    return True
