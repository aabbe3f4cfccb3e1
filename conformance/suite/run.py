"""One session's target: its configuration, client, cached answers per scenario and shared state.

`Run` is what every conformance test reads through the `conformance_run` fixture; `STASH_RUN` is where the
plugin keeps it on the pytest config.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conformance.config import Config
from conformance.config.secrets import config_secrets
from conformance.contract.profiles import Profile, get_profile
from conformance.contract.selection import Selection
from conformance.redact import Scrubber
from conformance.suite.ahead import Ahead
from conformance.suite.scenarios import Context, build
from conformance.transport.client import BudgetExhausted, Client
from conformance.transport.exchange import Exchange

STASH_RUN = pytest.StashKey["Run"]()


class Run:
    """Everything one session knows about its target."""

    def __init__(self, config: Config, embedded: Any = None, workers: int = 1) -> None:
        self.config = config
        self.profile: Profile = get_profile(config.profile)
        self.embedded = embedded
        self.scrubber = Scrubber(config_secrets(config), config.secret_headers)
        budget = config.max_requests
        # each of `workers` xdist workers gets its share (the session's own count: an environment inherited
        # from an outer pytest-xdist session, where the CLI runs inside a user's tests, says nothing of this one)
        if workers > 1:
            budget = max(1, budget // workers)
        self.client = Client(config, self.profile, config.base_url or "", budget=budget)
        self.context = Context(config, self.profile)
        # after requests that time out in a row, the minimal request tells a slow target from a dead one
        self.client.probe = build("basic", self.context)
        self._cache: dict[str, Exchange] = {}
        self._pending: dict[str, Future[Exchange | None]] = {}
        self._pool: ThreadPoolExecutor | None = None
        # state that several tests of this run share, such as the generated negative cases
        self.shared: dict[str, Any] = {}
        self.started = time.time()
        # set when the run stopped judging before it began (the configured key was refused): why
        self.halted: str | None = None
        # the scenarios the selected tests send (run-wide requirements judge these)
        self.planned: set[str] = set()
        # (reason, kind) of the requirements no test of this session judges, where not a selection's doing
        self.unlisted: tuple[str, str] | None = None
        # set when the run was interrupted: the signal's name (SIGINT, SIGTERM)
        self.interrupted: str | None = None
        # the previous run's reports in the report directory, removed once this run is sure to write its own
        self.stale_reports: list[Path] = []
        # the process drawing the property tests' random cases while the other tests run (ahead.py)
        self.ahead: Ahead | None = None
        # --only: the requirements (IDs, areas) this run judges; None judges all (contract.selection)
        self.only: Selection | None = None
        # the target is an embedded reference server another part of the process started (`sgp-conformance run`)
        self.embedded_elsewhere = False

    def exchange(self, scenario: str) -> Exchange:
        pending = self._pending.pop(scenario, None)
        if pending is not None and scenario not in self._cache:
            exchange = pending.result()
            if exchange is not None:
                self._cache[scenario] = exchange
        if scenario not in self._cache:
            self._cache[scenario] = self.client.send(build(scenario, self.context))
        return self._cache[scenario]

    def boundaries(self) -> dict[str, int]:
        """The coverage phase's cases each property test adds at this run's depth (for the request plan)."""
        from conformance.suite.generation import selected_coverage

        positive, negative = selected_coverage(self.profile.name, self.config.depth)
        return {"PROP-001": len(positive), "PROP-002": len(negative)}

    def cached(self, scenario: str) -> Exchange | None:
        return self._cache.get(scenario)

    def seed_exchange(self, exchange: Exchange) -> None:
        """Take an exchange another process of this run made (the preflight's) as this scenario's answer."""
        self._cache[exchange.scenario] = exchange

    def prefetch(self, scenarios: Iterable[str]) -> None:
        """Start sending the planned scenarios in the background, so a slow target costs its latency
        once per `concurrency` requests while the run goes on; tests wait only for what they judge."""
        wanted = [s for s in dict.fromkeys(scenarios) if s not in self._cache and s not in self._pending]
        if self.config.concurrency <= 1 or len(wanted) < 2:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="sgp-prefetch")
        for name in wanted:
            self._pending[name] = self._pool.submit(self._try_send, name)

    def _try_send(self, scenario: str) -> Exchange | None:
        try:
            return self.client.send(build(scenario, self.context))
        except BudgetExhausted:
            return None

    def clear_stale_reports(self) -> None:
        """Remove the previous run's reports (only this tool's), now that this run writes its own."""
        from conformance.report.folder import clear_own_reports

        clear_own_reports(self.stale_reports)
        self.stale_reports = []

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.close()
        if self._pool is not None:
            # an interrupted run does not wait for requests in flight: closing the client breaks them off
            self._pool.shutdown(wait=self.interrupted is None, cancel_futures=True)
        self.client.close()
        if self.embedded is not None:
            self.embedded.stop()
