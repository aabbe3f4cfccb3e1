"""The concurrency probe: K requests sent one at a time, then the same K at once (CONC-001..004).

The probe is sent once a run and shared by the CONC requirements; its exchanges are paired by position.
Its K comes from `--concurrency-probe` (default by depth, conformance.config.settings.PROBE_SIZES); it is
bounded by the budget (all 2K requests or none) and paced by `--rate-limit` like every request.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.suite.run import Run
from conformance.suite.scenarios import overlap_marker, overlap_request
from conformance.transport.client import BudgetExhausted
from conformance.transport.exchange import Exchange

SHARED_KEY = "concurrency_probe"


@dataclass(frozen=True)
class Probe:
    markers: tuple[str, ...]
    # the same requests, by position: sent one at a time, then all at once
    alone: tuple[Exchange, ...]
    together: tuple[Exchange, ...]

    def pairs(self) -> list[tuple[Exchange, Exchange]]:
        return list(zip(self.alone, self.together, strict=True))


def probe(run: Run) -> Probe | None:
    """The run's probe, sent on first use; None when its size is 0. Raises BudgetExhausted (before sending
    anything) when the budget cannot pay for all 2K requests."""
    if SHARED_KEY not in run.shared:
        size = run.config.probe_size()
        if size <= 0:
            run.shared[SHARED_KEY] = None
        else:
            remaining = run.client.remaining
            if remaining < 2 * size:
                raise BudgetExhausted(f"the concurrency probe needs {2 * size} requests, {remaining} are left "
                                      "(--max-requests)")
            alone = tuple(run.client.send(overlap_request(run.context, i, "alone")) for i in range(size))
            together = tuple(run.client.send_together([overlap_request(run.context, i, "together")
                                                       for i in range(size)]))
            run.shared[SHARED_KEY] = Probe(tuple(overlap_marker(i) for i in range(size)), alone, together)
    return run.shared[SHARED_KEY]
