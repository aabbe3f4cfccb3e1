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

import json
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conformance import baseline, catalogue
from conformance.checks import NotJudged, Violation, split
from conformance.client import BudgetExhausted, Client
from conformance.config import Config, ConfigError, require_key, resolve
from conformance.evidence import exchange_evidence
from conformance.exchange import Exchange
from conformance.needs import NOT_JUDGED, NOT_RUN, Need, Unmet
from conformance.preflight import preflight
from conformance.profiles import Profile, get_profile
from conformance.redact import Scrubber, config_secrets
from conformance.scenarios import Context, build

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
    "retries": ("retries of a 429/503 answer, honouring Retry-After", int),
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
}
FLAG_FIELDS = {
    "allow-insecure-http": "send the key over http to a non-loopback host",
    "dry-run": "print the planned requests per requirement and send none",
    "clients": "also drive the official SDKs against the target (CLIENT-*)",
    "insecure": "verify no TLS certificate",
}
# property tests send up to max_examples generated requests each (PROP-003 reuses PROP-002's)
GENERATED = {"PROP-001": 1, "PROP-002": 1, "PROP-003": 0}
STASH_RUN = pytest.StashKey["Run"]()
SUITE_MODULE = "conformance.suite"
SUITE_DIR = Path(__file__).resolve().parent / "suite"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgp-conformance")
    for name, (help_text, _kind) in OPTION_FIELDS.items():
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", default=None, help=help_text)
    for name, help_text in FLAG_FIELDS.items():
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", action="store_true", default=None,
                        help=help_text)
    group.addoption("--sgp-config", dest="sgp_config", default=None, help="TOML file with [tool.sgp-conformance]")
    group.addoption("--sgp-progress", dest="sgp_progress", default=None, choices=("auto", "live", "lines", "off"),
                    help="show the run's progress instead of pytest's dots: a live line in a terminal (live), a "
                         "line per area (lines), whichever suits stdout (auto); default off")


class Run:
    """Everything one session knows about its target."""

    def __init__(self, config: Config, embedded: Any = None, workers: int = 1) -> None:
        self.config = config
        self.profile: Profile = get_profile(config.profile)
        self.embedded = embedded
        self.scrubber = Scrubber(config_secrets(config), config.secret_headers)
        budget = config.max_requests
        # an xdist worker of this run spends its share of the budget (`workers`: how many this run has)
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
        from conformance.generation import selected_coverage

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

    def close(self) -> None:
        if self._pool is not None:
            # an interrupted run does not wait for requests in flight: closing the client breaks them off
            self._pool.shutdown(wait=self.interrupted is None, cancel_futures=True)
        self.client.close()
        if self.embedded is not None:
            self.embedded.stop()


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
            config.getoption(name) is not None for name in ("sgp_config", "sgp_progress")):
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
        settings = resolve(_flags(config), config_file=config.getoption("sgp_config"))
        if not settings.dry_run:
            require_key(settings)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):
        from conformance.summary import run_report_dir

        # --sgp-report-dir reports/{timestamp}: where this run's conformance.json goes
        settings.report_dir = str(run_report_dir(settings.report_dir))
    embedded = None
    if settings.base_url is None and not settings.dry_run:
        from conformance.embedded import start_embedded

        embedded = start_embedded(settings)
        settings.base_url, settings.api_key = embedded.base_url, embedded.api_key
        if get_profile(settings.profile).account_header:
            settings.account_id = embedded.account_id
    worker = hasattr(config, "workerinput")
    # from this session's own xdist, never from the environment: a run started by a process that is itself an
    # xdist worker (a CI job's test) inherits PYTEST_XDIST_WORKER_COUNT, and would spend a share of its budget
    workers = int(config.workerinput.get("workercount", 1)) if worker else 1  # type: ignore[attr-defined]
    run = Run(settings, embedded, workers)
    config.stash[STASH_RUN] = run
    if worker:
        run.halted = config.workerinput.get("sgp_halted") or None  # type: ignore[attr-defined]
        settings.seed = config.workerinput.get("sgp_seed", settings.seed)  # type: ignore[attr-defined]
        preflight_answer = config.workerinput.get("sgp_preflight")  # type: ignore[attr-defined]
        if preflight_answer:
            # the controller sent the minimal request already: its answer is this worker's too (and counted once)
            run.seed_exchange(Exchange.from_wire(preflight_answer))
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
        # (only this tool's) can go
        from conformance.summary import clear_own_reports

        report_dir = Path(settings.report_dir)
        clear_own_reports([report_dir / "conformance.json", *(Path(p) for p in (
            getattr(config.option, "xmlpath", None), getattr(config.option, "htmlpath", None)) if p)])
    config.pluginmanager.register(Collector(run, config), "sgp-conformance-collector")
    if not worker and not settings.dry_run:
        from conformance.results import ResultsCollector

        config.pluginmanager.register(ResultsCollector(run, config), "sgp-conformance-results")
    if not settings.dry_run:
        from conformance.progress import register as show_progress
        from conformance.report_files import register as tidy_report_files

        show_progress(config, run)
        tidy_report_files(config)
    if not settings.dry_run:
        from conformance.census import PLUGIN_NAME, CensusPlugin

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


def requirement(req_id: str, *scenarios: str, needs: Iterable[Need] = (),
                run_wide: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Tie a test to one requirement, declare the scenarios it sends and what it needs (conformance.needs)
    before its rule can be applied. A `run_wide` requirement judges every answer of the run of some kind
    (every 4xx, every response): it runs after the others."""
    req = catalogue.get(req_id)
    marks = [pytest.mark.requirement(req_id), pytest.mark.scenarios(*scenarios), pytest.mark.needs(*needs)]
    if run_wide:
        marks.append(pytest.mark.run_wide)
    return pytest.mark.parametrize("req", [pytest.param(req, id=req_id, marks=marks)])


def requirement_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("requirement")
    return mark.args[0] if mark else None


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Run:
    run = request.config.stash.get(STASH_RUN, None)
    if run is None:
        pytest.fail("the sgp-conformance plugin is inactive in this session: give an --sgp- option "
                    f"(e.g. --sgp-base-url) or run `pytest --pyargs {SUITE_MODULE}`", pytrace=False)
    return run


def record_outcome(item: pytest.Item, status: str, reason: str, needs: str | None = None) -> None:
    """Attach a not-judged / not-run outcome to the test's report, for the results (see results.py)."""
    item.user_properties.append(("sgp_outcome", json.dumps({"status": status, "reason": reason, "needs": needs})))


def not_judged(item: pytest.Item, reason: str, needs: str | None = None) -> NoReturn:
    """End the test as `not judged`: its rule had nothing to judge (because of `needs`, if given)."""
    record_outcome(item, NOT_JUDGED, reason, needs)
    owner = f"needs {needs}: " if needs else ""
    pytest.skip(f"{NOT_JUDGED}: {owner}{reason}")


def not_run(item: pytest.Item, reason: str) -> NoReturn:
    """End the test as `not run`: no request was spent on it (budget, throttling, unreachable, settings)."""
    record_outcome(item, NOT_RUN, reason)
    pytest.skip(f"{NOT_RUN}: {reason}")


class Judge:
    """Turns violations into a test outcome (pass, fail, not judged, not run) and keeps the evidence."""

    def __init__(self, run: Run, item: pytest.Item) -> None:
        self.run = run
        self.item = item
        self.requirement = requirement_of(item)
        self.exchanges: list[Exchange] = []

    def exchange(self, scenario: str) -> Exchange:
        if self.run.halted:
            self.not_run(self.run.halted)
        try:
            exchange = self.run.exchange(scenario)
        except BudgetExhausted as exc:
            self.not_run(str(exc))
        if exchange not in self.exchanges:
            self.exchanges.append(exchange)
        if exchange.response is None and self.run.client.dead:
            # nothing can be judged of a target that cannot be reached: not run, and the run exits 3
            self.not_run(f"target unreachable: {self.run.client.dead}")
        if exchange.response is not None and exchange.response.status == 429:
            self.not_run("the target kept answering 429 Too Many Requests after retries")
        return exchange

    def not_judged(self, reason: str, needs: str | None = None) -> NoReturn:
        not_judged(self.item, reason, needs)

    def not_run(self, reason: str) -> NoReturn:
        not_run(self.item, reason)

    def check_needs(self) -> None:
        """Apply the needs declared with @requirement, in order: an unmet one ends the test as not judged
        (or not run), naming its owner; one whose owner is this requirement fails it."""
        if self.run.halted:
            self.not_run(self.run.halted)
        mark = self.item.get_closest_marker("needs")
        for need in mark.args if mark else ():
            try:
                failure = need.check(self)
            except Unmet as unmet:
                if unmet.status == NOT_RUN:
                    self.not_run(unmet.reason)
                self.not_judged(unmet.reason, unmet.needs)
            if failure:
                self(failure)

    def each(self, exchanges: Iterable[Exchange], check: Callable[[Exchange], Iterable[Violation]]) -> None:
        """Judge this requirement over several exchanges: it passes when the rule held on every exchange it
        could be applied to and there was at least one; an exchange that only gave a NotJudged note is left
        out. Violations of other requirements found on the way are kept for them."""
        found: list[Violation] = []
        notes: list[Violation] = []
        judged = 0
        for exchange in exchanges:
            results = list(check(exchange))
            own_notes = [v for v in results if isinstance(v, NotJudged) and v.requirement == self.requirement]
            judged += not own_notes
            notes += own_notes
            found += [v for v in results if not isinstance(v, NotJudged)]
        self(found if judged else found + notes)

    def __call__(self, violations: Iterable[Violation], detail: str | None = None) -> None:
        """Fail on findings of this requirement; end as not judged when the only results are NotJudged notes
        of it; otherwise pass. Findings of other requirements are recorded for them (results.py)."""
        found = list(violations)
        own, notes = split(v for v in found if v.requirement == self.requirement)
        scrub = self.run.scrubber
        data = [scrub.value(v.to_json()) for v in found if not isinstance(v, NotJudged)]
        self.item.user_properties.append(("sgp_violations", json.dumps(data)))
        if own:
            evidence = [exchange_evidence(e, scrub, self.run.profile, self.run.config) for e in self.exchanges]
            self.item.user_properties.append(("sgp_evidence", json.dumps(evidence)))
            lines = "\n".join(f"- {scrub.text(v.render())}" for v in own[:20])
            more = f"\n... and {len(own) - 20} more" if len(own) > 20 else ""
            if detail:
                lines = f"- {scrub.text(own[0].render())}\n{scrub.text(detail)}"
            pytest.fail(f"{len(own)} violation(s) of {self.requirement}:\n{lines}{more}", pytrace=False)
        if notes:
            first = notes[0]
            self.not_judged(scrub.text(first.message), first.needs or None)


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


def planned_scenarios(items: Iterable[pytest.Item]) -> list[tuple[str, tuple[str, ...]]]:
    """What the selected tests will send: per test not skipped, its requirement and its scenarios."""
    planned = []
    for item in items:
        mark = item.get_closest_marker("scenarios")
        if not item.get_closest_marker("skip"):
            planned.append((requirement_of(item) or item.nodeid, tuple(mark.args) if mark else ()))
    return planned


def request_plan(planned: list[tuple[str, tuple[str, ...]]], examples: int,
                 boundaries: dict[str, int] | None = None) -> tuple[list[tuple[str, int, str]], int]:
    """Per requirement: the requests it adds and what they are; and the total at most (what --dry-run
    prints). A scenario shared by several requirements is sent once; property tests add `examples` random
    cases each and their `boundaries` (the coverage phase's cases, see generation.selected_coverage)."""
    boundaries = boundaries or {}
    sent: set[str] = set()
    total = 0
    rows = []
    for req_id, scenarios in planned:
        new = [s for s in scenarios if s not in sent]
        sent.update(new)
        generated = GENERATED.get(req_id, 0) * examples + boundaries.get(req_id, 0)
        count = len(new) + generated
        total += count
        shared = len(scenarios) - len(new)
        what = ", ".join(new) if new else "-"
        if generated:
            what = (f"up to {generated} generated request(s): {boundaries.get(req_id, 0)} at the parameters' "
                    f"bounds (coverage phase), {GENERATED.get(req_id, 0) * examples} random")
        rows.append((req_id, count, what + (f" (+{shared} shared)" if shared else "")))
    return rows, total


class Collector:
    """Collection-time selection and run-time bookkeeping; lives on the controller and on workers."""

    def __init__(self, run: Run, config: pytest.Config) -> None:
        self.run = run
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        profile = self.run.profile.name
        accepted = baseline.load(self.run.config.baseline) if self.run.config.baseline else {}
        keep, drop = [], []
        for item in items:
            req_id = requirement_of(item)
            if req_id is not None and not catalogue.get(req_id).applies_to(profile):
                drop.append(item)
                continue
            keep.append(item)
            if req_id is not None:
                level = catalogue.get(req_id).level_for(profile)
                item.user_properties.append(("requirement", req_id))
                item.user_properties.append(("level", level))
                entry = accepted.get(req_id)
                if entry is not None and entry.expired():
                    item.user_properties.append(("sgp_baseline_expired", str(entry.expires)))
                elif entry is not None:
                    item.add_marker(pytest.mark.xfail(strict=True, reason=entry.reason))
                if self.run.config.depth == "smoke" and level != catalogue.MUST:
                    item.add_marker(pytest.mark.skip(reason=f"{NOT_RUN}: depth smoke runs MUST requirements only"))
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        # run-wide requirements judge what the others' requests drew: they come last
        items[:] = [i for i in items if not i.get_closest_marker("run_wide")] + \
            [i for i in items if i.get_closest_marker("run_wide")]
        planned = planned_scenarios(items)
        self.run.planned = {s for _, scenarios in planned for s in scenarios}
        if self.run.config.dry_run:
            self.print_plan(planned)
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
        self.run.prefetch(s for _, scenarios in planned for s in scenarios)

    def print_plan(self, planned: list[tuple[str, tuple[str, ...]]]) -> None:
        """The requests of the run, per requirement; a scenario shared by several is sent once."""
        writer = self.config.pluginmanager.get_plugin("terminalreporter")
        rows, total = request_plan(planned, self.run.config.property_examples(), self.run.boundaries())
        lines = [f"planned requests ({self.run.profile.name} profile, depth {self.run.config.depth}):"]
        lines += [f"  {req_id:<10} {count:>4}  {what}" for req_id, count, what in rows]
        lines.append(f"total: {total} request(s) at most, budget {self.run.config.max_requests} (--max-requests)")
        for line in lines:
            if writer is not None:
                writer.write_line(line)
            else:
                print(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        if self.run.interrupted:
            # interrupted in the preflight (see pytest_configure): the run ends here, its reports say so
            raise KeyboardInterrupt

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.run.interrupted = self.run.interrupted or "SIGINT"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            # an xdist worker: its findings about the run reach the controller this way
            output["sgp_stats"] = json.dumps(self.run.client.stats.to_json())
            output["sgp_dead"] = self.run.client.dead or ""
