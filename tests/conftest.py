"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_runs import REFERENCE_KEY, Outcome, run_in_process

from conformance.contract.profiles import Profile, get_profile
from conformance.server import RunningServer, ServerSettings, start_server, stop_all


@pytest.fixture(scope="session")
def reference_server() -> Iterator[Callable[..., RunningServer]]:
    """A factory: `reference_server("openai", latency_ms=50)` starts the reference server on loopback.

    Keyword arguments are ServerSettings fields (api_keys defaults to (REFERENCE_KEY,)). One server runs
    per distinct settings for the whole session; all stop at its end. `server.settings` has the keys.
    """
    running: dict[ServerSettings, RunningServer] = {}

    def start(profile: Profile | str = "sgp", **fields: Any) -> RunningServer:
        fields.setdefault("api_keys", (REFERENCE_KEY,))
        settings = ServerSettings(
            profile=get_profile(profile) if isinstance(profile, str) else profile, **fields
        )
        if settings not in running:
            running[settings] = start_server(settings)
        return running[settings]

    yield start
    stop_all(running.values())  # together: one after the other they were the last seconds of a worker


@pytest.fixture(scope="session")
def earlier_run(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """One smoke run against the embedded reference server (conformant): the reports a user has from an
    earlier run, to plant where a later run writes (agreement.plant), or to compare with (diff). Its tests
    read its reports and its summary, not its process: it runs in this interpreter (cli_runs.run_in_process);
    the real-CLI runs of its modules are their own."""
    out = run_in_process(["run", "--depth", "smoke"], tmp_path_factory.mktemp("earlier") / "reports")
    assert out.code == 0, out.output[-3000:]
    return out


# tests that take seconds each (the mutation matrix's groups: a third of the session's CPU): started first. xdist's
# worksteal scheduler (tox.ini) gives each worker half of the tests to start with, in order, and a worker that
# runs out takes half of what another has not started: the groups, first in one worker's half, are shared out
# by the time both are busy with them, and the short tests even out the end
SLOW_FIRST = ("tests/test_mutation_matrix.py::test_every_mutant_is_killed_at_its_level",)


def pytest_sessionfinish(session: pytest.Session) -> None:
    import cli_zygote

    cli_zygote.stop_shared()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))
