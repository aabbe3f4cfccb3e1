"""The pytest plugin: options, the session's target and client, requirement marks, and result collection.

Installed, the package registers this module as the pytest plugin `conformance.plugin` (a `pytest11` entry
point); the CLI also loads it with `-p conformance.plugin`. Its options carry an `--sgp-` prefix
(`--sgp-base-url`, `--sgp-timeout` ...) so they never collide with other pytest plugins' options.

The plugin is loaded into every pytest session of the interpreter but stays inert (no server, no reports,
no options required) unless the session asks for the suite: an `--sgp-` option is given, or what pytest
was asked to collect is the suite or a part of it (`pytest --pyargs conformance.suite`, or its path). Suite
tests collected by accident (a parent directory) are deselected with a warning instead of being run.
Each conformance test is tied to exactly one requirement by `@requirement(ID, scenarios...)`; the
requirement ID becomes the test's parameter id, so it reads the same in test names, JUnit, the HTML
report and the JSON results.
"""

from __future__ import annotations

import random
import signal
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from conformance.config import ConfigError, require_key, resolve
from conformance.contract.profiles import get_profile
from conformance.contract.selection import Selection, SelectionError
from conformance.report import baseline
from conformance.suite.judge import Judge, requirement, requirement_of
from conformance.suite.plan import Collector
from conformance.suite.preflight import note_no_answer, preflight
from conformance.suite.run import STASH_RUN, Run
from conformance.transport.exchange import Exchange

# what test modules of the suite, and users' own, import from the plugin
__all__ = ["STASH_RUN", "Judge", "Run", "requirement", "requirement_of"]

OPTION_FIELDS = {
    # option: (help, type)
    "base-url": ("base URL of the target; without it the embedded reference server is started", str),
    "api-key": ("API key (prefer the SGP_API_KEY environment variable)", str),
    "account-id": ("account id sent in x-selected-account-id", str),
    "model": ("model every request asks for", str),
    "profile": ("sgp (default) or openai", str),
    "timeout": ("seconds to wait for a connection or a read", float),
    "stream-timeout": ("seconds a whole streamed response may take", float),
    "max-tokens": ("max_tokens carried by every request", int),
    "max-requests": ("hard cap on requests sent", int),
    "rate-limit": ("requests per second at most", float),
    "concurrency": ("requests in flight at once when scenarios are fetched", int),
    "concurrency-probe": ("overlapping requests of the concurrency probe (CONC-*); 0: none", int),
    "retries": ("retries of a 429/503 answer, honouring Retry-After", int),
    "max-throttle-wait": ("seconds the run may spend waiting on 429/503 answers in all", float),
    "depth": ("smoke, standard (default) or deep", str),
    "fail-on": ("must (default) or should: the level that fails the run", str),
    "report-dir": ("where conformance.json is written", str),
    "max-examples": ("property-test cases per property", int),
    "seed": ("seed for generated cases", int),
    "baseline": ("baseline file of accepted deviations", str),
    "junit-should": ("how junit.xml shows a SHOULD failure: failure, skip or pass (default: failure at "
                     "--fail-on should, skip at must, so CI test views agree with the exit code)", str),
    "proxy": ("forward proxy of every request, http://[user:password@]host:port (default: HTTPS_PROXY ...)", str),
    "ca-bundle": ("PEM file of the CA certificates to trust instead of the default ones", str),
    "headers": ("extra request headers, one 'Name: value' (or 'Name: env:VARIABLE') a line", str),
    "without": ("features the server does not offer, comma-separated (contract.claims.FEATURES)", str),
    "claims": ("positions on open points the server claims, comma-separated (contract.claims.CHOICES)", str),
}
FLAG_FIELDS = {
    "allow-insecure-http": "send the key over http to a non-loopback host",
    "dry-run": "print the planned requests per requirement and send none",
    "clients": "also drive the official SDKs against the target (CLIENT-*)",
    "insecure": "verify no TLS certificate",
}
SUITE_MODULE = "conformance.suite"
SUITE_DIR = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgp-conformance")
    for name, (help_text, _kind) in OPTION_FIELDS.items():
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", default=None, help=help_text)
    for name, help_text in FLAG_FIELDS.items():
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", action="store_true", default=None,
                        help=help_text)
    group.addoption("--sgp-config", dest="sgp_config", default=None, help="TOML file with [tool.sgp-conformance]")
    group.addoption("--sgp-only", dest="sgp_only", default=None,
                    help="only these requirement IDs or areas, comma-separated and case-sensitive, e.g. "
                         "VAL-005,AUTH (unlike -k, never matches by accident)")
    group.addoption("--sgp-embedded", dest="sgp_embedded", action="store_true", default=False,
                    help="the --sgp-base-url is the embedded reference server `sgp-conformance run` started "
                         "(recorded as such: diff and replay treat every embedded server as one target)")
    group.addoption("--sgp-progress", dest="sgp_progress", default=None, choices=("auto", "live", "lines", "off"),
                    help="show the run's progress instead of pytest's dots: a live line in a terminal (live), a "
                         "line per area (lines), whichever suits stdout (auto); default off")


def _flags(config: pytest.Config) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for name in (*OPTION_FIELDS, *FLAG_FIELDS):
        value = config.getoption(f"sgp_{name.replace('-', '_')}")
        if value is not None:
            flags[name.replace("-", "_")] = value
    return flags


def _names_suite(arg: str, config: pytest.Config) -> bool:
    """Whether one of pytest's positional arguments is the suite or a part of it (a module, a test id)."""
    target = arg.split("::", 1)[0]
    if config.getoption("pyargs", False) and (target == SUITE_MODULE or target.startswith(SUITE_MODULE + ".")):
        return True
    try:
        path = (config.invocation_params.dir / target).resolve()
    except (OSError, ValueError):
        return False
    return path == SUITE_DIR or SUITE_DIR in path.parents


def asked_for(config: pytest.Config) -> bool:
    """Whether this session runs the conformance suite: an `--sgp-` option is set, or the suite is what pytest
    was asked to collect. Otherwise the plugin leaves the session alone."""
    given = [config.getoption(f"sgp_{name.replace('-', '_')}") for name in (*OPTION_FIELDS, *FLAG_FIELDS)]
    if any(value is not None for value in given) or any(
            config.getoption(name) is not None for name in ("sgp_config", "sgp_progress", "sgp_only")):
        return True
    return any(_names_suite(str(arg), config) for arg in config.args)


def _in_suite(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    return SUITE_DIR in path.parents


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): the requirement a conformance test judges")
    config.addinivalue_line("markers", "scenarios(*names): the requests a conformance test needs")
    if not asked_for(config):
        return
    config.addinivalue_line("markers", "needs(*needs): what a conformance test needs before judging")
    config.addinivalue_line("markers", "run_wide: judges every answer of the run of some kind; runs last")
    try:
        only = config.getoption("sgp_only")
        selection = Selection.parse(only, "--only") if only else None
        settings = resolve(_flags(config), config_file=config.getoption("sgp_config"))
        if settings.baseline:
            # a malformed baseline is the user's mistake: one line before any request
            baseline.load(settings.baseline)
        if not settings.dry_run:
            require_key(settings, "--sgp-api-key")
    except (ConfigError, SelectionError) as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):
        from conformance.report.folder import run_report_dir

        # --sgp-report-dir reports/{timestamp}: where this run's conformance.json goes
        settings.report_dir = str(run_report_dir(settings.report_dir))
    embedded = None
    if settings.base_url is None and not settings.dry_run:
        from conformance.server.embedded import start_embedded

        embedded = start_embedded(settings)
        settings.base_url, settings.api_key = embedded.base_url, embedded.api_key
        if get_profile(settings.profile).account_header:
            settings.account_id = embedded.account_id
    workers = int(config.workerinput.get("workercount", 1)) if hasattr(config, "workerinput") else 1  # type: ignore[attr-defined]
    run = Run(settings, embedded, workers)
    run.only = selection
    run.embedded_elsewhere = bool(config.getoption("sgp_embedded"))
    config.stash[STASH_RUN] = run
    worker = hasattr(config, "workerinput")
    if worker:
        run.halted = config.workerinput.get("sgp_halted") or None  # type: ignore[attr-defined]
        settings.seed = config.workerinput.get("sgp_seed", settings.seed)  # type: ignore[attr-defined]
        preflight_answer = config.workerinput.get("sgp_preflight")  # type: ignore[attr-defined]
        if preflight_answer:
            # the controller sent the minimal request already: its answer is this worker's too (and counted once)
            seeded = Exchange.from_wire(preflight_answer)
            run.seed_exchange(seeded)
            note_no_answer(run, seeded)
    elif settings.seed is None:
        # the run picks the seed of its generated cases once, records it and prints it: a failure found with
        # it reproduces with --seed
        settings.seed = random.SystemRandom().randrange(1, 2**31)
    if not worker and not settings.dry_run:
        # the minimal request first: a wrong path, model or key is the user's mistake, found before the run
        # spends its budget (a UsageError here ends the run before any report is written)
        # SIGTERM ends the run as Ctrl-C does from its first request on, the preflight's included
        _catch_sigterm(run)
        try:
            run.halted = preflight(run)
        except ConfigError as exc:
            run.close()
            raise pytest.UsageError(str(exc)) from None
        except KeyboardInterrupt:
            # pytest writes no report of an interrupt in pytest_configure: it is raised again once the session
            # has begun (Collector.pytest_collection), where pytest ends the run and writes its reports
            run.interrupted = run.interrupted or "SIGINT"
        # the target answers (or the run was interrupted, and writes its own): the previous run's reports
        # (only this tool's) can go, once the selection is known to judge something (Collector)
        report_dir = Path(settings.report_dir)
        run.stale_reports = [report_dir / "conformance.json", *(Path(p) for p in (
            getattr(config.option, "xmlpath", None), getattr(config.option, "htmlpath", None)) if p)]
        if run.interrupted or config.getoption("dist", "no") != "no":
            # an interrupted run writes its own now; with xdist the workers collect, not this process
            run.clear_stale_reports()
    config.pluginmanager.register(Collector(run, config), "sgp-conformance-collector")
    if not worker and not settings.dry_run:
        from conformance.report.results import ResultsCollector

        config.pluginmanager.register(ResultsCollector(run, config), "sgp-conformance-results")
    if not settings.dry_run:
        from conformance.report.files import register as tidy_report_files
        from conformance.suite.progress import QuietTerminal
        from conformance.suite.progress import register as show_progress

        if not worker and (run.halted or run.client.dead) and config.getoption("sgp_progress", None):
            # ended at the preflight: `sgp-conformance run` says so in one line (report.summary.finish)
            config.pluginmanager.register(QuietTerminal(), "sgp-conformance-quiet")
        else:
            show_progress(config, run)
        tidy_report_files(config)
    elif config.getoption("sgp_progress", None) not in (None, "off"):
        from conformance.suite.progress import NoPytestCounts

        # the plan ends with its own total: pytest's "105 deselected" would only contradict it
        config.pluginmanager.register(NoPytestCounts(), "sgp-conformance-no-pytest-counts")
    if not settings.dry_run:
        from conformance.report.census import PLUGIN_NAME, CensusPlugin

        # after the results collector: the census registers its conformance.json section with it
        config.pluginmanager.register(CensusPlugin(run, config), PLUGIN_NAME)


def _catch_sigterm(run: Run) -> None:
    """SIGTERM ends the run as Ctrl-C does (pytest writes the reports on KeyboardInterrupt), remembered so
    the run exits 143 with verdict `interrupted`."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: Any) -> None:
        run.interrupted = run.interrupted or "SIGTERM"
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    run.shared["_previous_sigterm"] = previous


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: a worker learns the run's seed from the controller, and whether the preflight halted the run."""
    run = node.config.stash.get(STASH_RUN, None)
    if run is not None:
        node.workerinput["sgp_seed"] = run.config.seed
        if run.halted:
            node.workerinput["sgp_halted"] = run.halted
        basic = run.cached("basic")
        if basic is not None:
            node.workerinput["sgp_preflight"] = basic.to_wire()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a session that did not ask for the suite, suite tests collected by the way (a parent directory
    was given) are deselected: without the plugin's run they could only fail, and running them would
    start a server and write reports nobody asked for."""
    if STASH_RUN in config.stash:
        return
    stray = [item for item in items if _in_suite(item)]
    if not stray:
        return
    config.hook.pytest_deselected(items=stray)
    items[:] = [item for item in items if not _in_suite(item)]
    warnings.warn(pytest.PytestConfigWarning(
        f"sgp-conformance: {len(stray)} test(s) of the conformance suite were collected but not asked for, and "
        f"were deselected: run the suite with `pytest --pyargs {SUITE_MODULE}` or give an --sgp- option"),
        stacklevel=1)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(STASH_RUN, None)
    if run is not None:
        previous = run.shared.pop("_previous_sigterm", None)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        run.close()


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Run:
    run = request.config.stash.get(STASH_RUN, None)
    if run is None:
        pytest.fail("the sgp-conformance plugin is inactive in this session: give an --sgp- option "
                    f"(e.g. --sgp-base-url) or run `pytest --pyargs {SUITE_MODULE}`", pytrace=False)
    return run


@pytest.fixture
def judge(conformance_run: Run, request: pytest.FixtureRequest) -> Judge:
    return Judge(conformance_run, request.node)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """A conformance test's needs are checked in its call phase, just before its body: an unmet need is the
    test's outcome (not judged, or the owner's failure), never a setup error."""
    judge = pyfuncitem.funcargs.get("judge")
    if isinstance(judge, Judge):
        judge.check_needs()
    return (yield)


