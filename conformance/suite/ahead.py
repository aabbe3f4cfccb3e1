"""Generated cases drawn ahead of need, in a second process.

Drawing the property tests' random cases is most of a deep run's CPU, and a run spends much of its time
waiting on the target. So, where the machine has a second core, a generator process draws them (the same
seed, strategy and preparation as `generation.draw`, so the same cases) while the hand-written tests run;
the property tests then take them ready. Where the process cannot start or fails, they are drawn
in-process as before: the cases are the same either way, only the time differs.

There is one process per mode (valid and invalid cases), so the slower invalid cases are drawn while the
valid ones are. The cases stream: a child sends them in small chunks as it draws them, so the property
tests send and judge the first cases while the later ones are still being drawn. The parent writes one
pickled `Order` to the child's stdin; the child writes pickled `(mode, [case, ...])` chunks to its stdout,
then `(mode, None)` when the mode is complete ("error" and a message instead, if it failed).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from conformance import heap
from conformance.config import Config
from conformance.contract.profiles import get_profile

# the modes, each drawn by a process of its own: PROP-001 (positive) runs first
ORDER = ("positive", "negative")
# seconds a property test waits for the generator's next chunk before drawing the cases itself
PATIENCE_S = 300.0
# cases per chunk: small enough that the first cases are sent a few dozen milliseconds after drawing starts
CHUNK = 10


@dataclass(frozen=True)
class Order:
    profile: str
    config: Config
    mode: str


# cases per property from which a generator process pays for its start (about a second of the other core's
# time, importing schemathesis): drawing 25 cases (standard depth) takes less than that, 300 (deep) far more
MIN_CASES = 100


def worth_it(config: Config) -> bool:
    """Whether a generator process would save time: a second core, and enough cases to draw."""
    return (os.cpu_count() or 1) > 1 and config.property_examples() >= MIN_CASES


class _Channel:
    """One generator process, drawing the cases of one mode, and what it has sent so far."""

    def __init__(self, order: Order, command: list[str], env: dict[str, str], arrived: threading.Condition) -> None:
        self.mode = order.mode
        self.ready: list[Any] = []
        self.complete = False
        self.failed: str | None = None
        self._arrived = arrived
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except (OSError, ValueError) as exc:
            # no process (no file descriptors left, no such interpreter): the tests draw the cases themselves
            self.process = None
            self.reader: threading.Thread | None = None
            self.failed = f"the generator process did not start: {exc}"
            return
        assert self.process.stdin is not None
        try:
            pickle.dump(order, self.process.stdin)
            self.process.stdin.close()
        except OSError as exc:
            self.failed = f"the generator process did not take its order: {exc}"
        self.reader = threading.Thread(target=self._read, name=f"sgp-generator-{self.mode}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process is not None
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while not self.complete:
                mode, payload = pickle.load(stdout)
                with self._arrived:
                    if mode == "error":
                        self.failed = str(payload)
                        break
                    if payload is None:
                        self.complete = True
                    else:
                        self.ready.extend(payload)
                    self._arrived.notify_all()
        except Exception as exc:  # a child that died or wrote garbage: the tests draw the rest themselves
            with self._arrived:
                self.failed = self.failed or f"the generator process ended early: {exc!r}"
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def case(self, index: int, patience_s: float) -> tuple[bool, Any]:
        """(True, the case at `index`) once it has arrived; (False, None) when the mode is complete before it,
        or the generator failed or kept the tests waiting longer than `patience_s`."""
        with self._arrived:
            def ready() -> bool:
                return (index < len(self.ready) or self.complete or self.failed is not None
                        or self.reader is None or not self.reader.is_alive())

            if not self._arrived.wait_for(ready, timeout=patience_s):
                self.failed = f"the generator process sent nothing for {patience_s:.0f} s"
            if index < len(self.ready):
                return True, self.ready[index]
            if self.failed is None and not self.complete:
                self.failed = "the generator process ended early"
            return False, None

    def close(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class Ahead:
    """The generator processes (one per mode, so the slower negative cases do not wait for the positive ones)
    and the cases they have sent so far."""

    def __init__(self, config: Config, profile: str, command: list[str] | None = None,
                 modes: Iterable[str] = ORDER) -> None:
        # the children need no secret: they send nothing, they only draw bodies
        settings = replace(config, api_key=None, headers=[], proxy=None)
        env = {k: v for k, v in os.environ.items() if k != "SGP_API_KEY"}
        self._arrived = threading.Condition()
        self._channels = {mode: _Channel(Order(profile, settings, mode),
                                         command or [sys.executable, "-m", "conformance.suite.ahead"], env,
                                         self._arrived)
                          for mode in modes}

    @property
    def failed(self) -> str | None:
        """Why a generator process did not deliver all its cases, if one did not."""
        return next((c.failed for c in self._channels.values() if c.failed), None)

    def cases(self, mode: str, draw_rest: Callable[[], list[Any]], patience_s: float = PATIENCE_S) -> Iterator[Any]:
        """The cases of `mode` in the order drawn, each as soon as its generator has sent it. Where the
        generator fails or stalls, `draw_rest()` (the in-process draw, the same sequence) supplies the cases
        it did not send, so the sequence is whole either way."""
        channel = self._channels.get(mode)
        if channel is None:
            # a mode nobody asked to draw ahead (the run's selection did not need it)
            yield from draw_rest()
            return
        index = 0
        while True:
            arrived, case = channel.case(index, patience_s)
            if not arrived:
                break
            yield case
            index += 1
        if channel.failed is not None:
            yield from draw_rest()[index:]
        with self._arrived:
            # what a property test has taken is not kept twice
            channel.ready = []

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


def main() -> int:
    """A generator process: an Order in on stdin, (mode, chunk) pairs out on stdout."""
    from conformance.suite.generation import draw

    # the modules of the drawing live until the process ends
    heap.settle()
    order: Order = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    # Hypothesis or a library printing to stdout would corrupt the pickles: the pickles get the real stdout
    sys.stdout = sys.stderr
    profile = get_profile(order.profile)
    chunk: list[Any] = []

    def send(case: Any) -> None:
        chunk.append(case)
        if len(chunk) >= CHUNK:
            pickle.dump((order.mode, chunk), out)
            out.flush()
            chunk.clear()

    try:
        draw(order.mode, profile, order.config, send)
        pickle.dump((order.mode, chunk), out)
        pickle.dump((order.mode, None), out)
        out.flush()
    except Exception as exc:
        pickle.dump(("error", f"drawing the cases failed: {exc!r}"), out)
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    heap.one_command_process()
    raise SystemExit(main())
