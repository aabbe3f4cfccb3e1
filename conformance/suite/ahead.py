"""Generated cases drawn ahead of need, in a second process.

Drawing the property tests' random cases is most of a deep run's CPU, and a run spends much of its time
waiting on the target. So, where the machine has a second core, a generator process draws them (the same
seed, strategy and preparation as `generation.draw`, so the same cases) while the hand-written tests run;
the property tests then take them ready. Where the process cannot start or fails, they are drawn
in-process as before: the cases are the same either way, only the time differs.

The parent writes one pickled `Order` to the child's stdin; the child writes one pickled
`(mode, cases)` pair per mode to its stdout ("error" and a message instead, if it failed).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from typing import Any

from conformance.config import Config
from conformance.contract.profiles import get_profile

# the order the modes are drawn in: PROP-001 (positive) runs first
ORDER = ("positive", "negative")
# seconds a property test waits for the generator before drawing the cases itself
PATIENCE_S = 300.0


@dataclass(frozen=True)
class Order:
    profile: str
    config: Config


# cases per property from which a generator process pays for its start (about a second of the other core's
# time, importing schemathesis): drawing 25 cases (standard depth) takes less than that, 300 (deep) far more
MIN_CASES = 100


def worth_it(config: Config) -> bool:
    """Whether a generator process would save time: a second core, and enough cases to draw."""
    return (os.cpu_count() or 1) > 1 and config.property_examples() >= MIN_CASES


class Ahead:
    """A generator process and the cases it has sent so far."""

    def __init__(self, config: Config, profile: str, command: list[str] | None = None) -> None:
        # the child needs no secret: it sends nothing, it only draws bodies
        order = Order(profile, replace(config, api_key=None, headers=[], proxy=None))
        env = {k: v for k, v in os.environ.items() if k != "SGP_API_KEY"}
        self._process = subprocess.Popen(command or [sys.executable, "-m", "conformance.suite.ahead"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         env=env)
        self._ready: dict[str, list[Any]] = {}
        self._arrived = threading.Condition()
        self.failed: str | None = None
        assert self._process.stdin is not None
        try:
            pickle.dump(order, self._process.stdin)
            self._process.stdin.close()
        except OSError as exc:
            self.failed = f"the generator process did not take its order: {exc}"
        self._reader = threading.Thread(target=self._read, name="sgp-generator-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            for _ in ORDER:
                mode, payload = pickle.load(stdout)
                with self._arrived:
                    if mode == "error":
                        self.failed = str(payload)
                        break
                    self._ready[mode] = payload
                    self._arrived.notify_all()
        except Exception as exc:  # a child that died or wrote garbage: the tests draw the cases themselves
            with self._arrived:
                self.failed = self.failed or f"the generator process ended early: {exc!r}"
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def cases(self, mode: str, patience_s: float = PATIENCE_S) -> list[Any] | None:
        """The cases of `mode` once the generator has sent them; None when it failed or took too long."""
        with self._arrived:
            self._arrived.wait_for(lambda: mode in self._ready or self.failed is not None
                                   or not self._reader.is_alive(), timeout=patience_s)
            return self._ready.pop(mode, None)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def main() -> int:
    """The generator process: an Order in on stdin, (mode, cases) pairs out on stdout."""
    from conformance.suite.generation import draw

    order: Order = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    # Hypothesis or a library printing to stdout would corrupt the pickles: the pickles get the real stdout
    sys.stdout = sys.stderr
    profile = get_profile(order.profile)
    try:
        for mode in ORDER:
            pickle.dump((mode, draw(mode, profile, order.config)), out)
            out.flush()
    except Exception as exc:
        pickle.dump(("error", f"drawing the cases failed: {exc!r}"), out)
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
