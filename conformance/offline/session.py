"""The configure step shared by the sessions that judge traffic they did not send (`validate`, `proxy`).

Such a session has no target and no reference server: it stands in for conformance.plugin's configure
step, registering the suite's Collector, ResultsCollector and a census plugin over a Run that sends
nothing, so its reports have exactly the formats of `run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from conformance.config import Config
from conformance.contract import catalogue
from conformance.report.census import PLUGIN_NAME, CensusPlugin
from conformance.report.files import register as tidy_report_files
from conformance.report.results import ResultsCollector, register_section
from conformance.suite.plan import Collector
from conformance.suite.run import STASH_RUN, Run

# what no observed traffic can hold (auth, validation, the official SDKs) needs a run of its own requests
UNLISTED = ("judged only by `sgp-conformance run`, which sends the requests it needs", "settings")


def configure_observed(config: pytest.Config, settings: Config, secrets: Iterable[str],
                       section: tuple[str, Callable[[], Any]],
                       census: type[CensusPlugin] = CensusPlugin,
                       prepare: Callable[[Run, ResultsCollector], None] | None = None) -> Run:
    """Register the suite's plugins for a session judging observed traffic; returns its Run.

    `secrets` are scrubbed from every output; `section` is the (name, callable) of the results document's
    section about the traffic; `prepare` adjusts the Run and the ResultsCollector before they are
    registered (the exchanges or counts the session saw, when its report starts).
    """
    config.addinivalue_line("markers", "requirement(id): the requirement a conformance test judges")
    config.addinivalue_line("markers", "scenarios(*names): the requests a conformance test needs")
    run = Run(settings)
    run.unlisted = UNLISTED
    for secret in secrets:
        if secret:
            run.scrubber.add(secret)
    results = ResultsCollector(run, config)
    if prepare is not None:
        prepare(run, results)
    config.stash[STASH_RUN] = run
    config.pluginmanager.register(Collector(run, config), "sgp-conformance-collector")
    config.pluginmanager.register(results, "sgp-conformance-results")
    register_section(config, *section)
    config.pluginmanager.register(census(run, config), PLUGIN_NAME)
    tidy_report_files(config)
    return run


class ObservedSession:
    """The base of the pytest plugins of such sessions: the Run it configures (closed with the session) and
    the one test function, parametrised with a requirement each."""

    def __init__(self, settings: Config) -> None:
        self.settings = settings
        self.run: Run | None = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.run is not None:
            self.run.close()

    @staticmethod
    def parametrize(metafunc: pytest.Metafunc, req_ids: Iterable[str]) -> None:
        """`req` of the session's test: one Requirement per ID, marked as the suite's tests are."""
        metafunc.parametrize("req", [
            pytest.param(catalogue.get(req_id), id=req_id,
                         marks=[pytest.mark.requirement(req_id), pytest.mark.scenarios()])
            for req_id in req_ids])
