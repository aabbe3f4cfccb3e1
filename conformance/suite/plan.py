"""What a session will send: the selected tests' scenarios, the request plan `--dry-run` prints, and the
collector that selects tests per profile, depth and baseline before the run starts.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterable
from typing import Any

import pytest

from conformance import heap
from conformance.checks import stream_assembly
from conformance.contract import catalogue
from conformance.contract.claims import NOT_CLAIMED
from conformance.report import baseline
from conformance.suite.ahead import ORDER, Ahead, worth_it
from conformance.suite.judge import requirement_of
from conformance.suite.needs import NOT_RUN
from conformance.suite.run import Run

# property tests send up to max_examples generated requests each (PROP-003 reuses PROP-002's)
GENERATED = {"PROP-001": 1, "PROP-002": 1, "PROP-003": 0}
# the kinds of generated case each property test judges (test_properties.py: _positive, _negative)
DRAWS = {"PROP-001": ("positive",), "PROP-002": ("positive", "negative"), "PROP-003": ("negative",)}


def planned_scenarios(items: Iterable[pytest.Item]) -> list[tuple[str, tuple[str, ...]]]:
    """What the selected tests will send: per test not skipped, its requirement and its scenarios."""
    planned = []
    for item in items:
        mark = item.get_closest_marker("scenarios")
        if not item.get_closest_marker("skip"):
            planned.append((requirement_of(item) or item.nodeid, tuple(mark.args) if mark else ()))
    return planned


def request_plan(planned: list[tuple[str, tuple[str, ...]]], examples: int,
                 boundaries: dict[str, int] | None = None, probe: int = 0) -> tuple[list[tuple[str, int, str]], int]:
    """Per requirement: the requests it adds and what they are; and the total at most (what --dry-run
    prints). A scenario shared by several requirements is sent once; property tests add `examples` random
    cases each and their `boundaries` (the coverage phase's cases, see generation.selected_coverage); the
    first CONC requirement adds the concurrency probe's `probe` overlapping requests and their twins."""
    boundaries = boundaries or {}
    sent: set[str] = set()
    total = 0
    rows = []
    for req_id, scenarios in planned:
        new = [s for s in scenarios if s not in sent]
        sent.update(new)
        shared = len(scenarios) - len(new)
        generated = GENERATED.get(req_id, 0) * examples + boundaries.get(req_id, 0)
        probed = 0
        if req_id.startswith("CONC-") and probe and "concurrency probe" not in sent:
            sent.add("concurrency probe")
            probed = 2 * probe
        count = len(new) + generated + probed
        total += count
        what = ", ".join(new) if new else "-"
        if generated:
            what = (f"up to {generated} generated request(s): {boundaries.get(req_id, 0)} at the parameters' "
                    f"bounds (coverage phase), {GENERATED.get(req_id, 0) * examples} random")
        if probed:
            what = f"concurrency probe: {probe} request(s) one at a time, then the same {probe} at once"
        rows.append((req_id, count, what + (f" (+{shared} shared)" if shared else "")))
    return rows, total


def _order(item: pytest.Item) -> int:
    """Hand-written tests first; then the property tests, so that a request budget that runs out cuts
    generated cases rather than a fixed requirement; run-wide requirements last, as they judge what the
    others' requests drew (the sort is stable: pytest's order holds within each group)."""
    if item.get_closest_marker("run_wide"):
        return 2
    return 1 if requirement_of(item) in GENERATED else 0


class Collector:
    """Collection-time selection and run-time bookkeeping; lives on the controller and on workers."""

    def __init__(self, run: Run, config: pytest.Config) -> None:
        self.run = run
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        profile = self.run.profile.name
        self._claims_in_junit(config)
        accepted = baseline.load(self.run.config.baseline) if self.run.config.baseline else {}
        keep, drop = [], []
        for item in items:
            req_id = requirement_of(item)
            if req_id is not None and not catalogue.get(req_id).applies_to(profile):
                drop.append(item)
                continue
            if self.run.only is not None and (req_id is None or not self.run.only.matches(req_id)):
                drop.append(item)  # --only: exact IDs and areas (contract.selection)
                continue
            keep.append(item)
            if req_id is not None:
                level = catalogue.get(req_id).level_for(profile, self.run.config.claims)
                item.user_properties.append(("requirement", req_id))
                item.user_properties.append(("level", level))
                entry = accepted.get(req_id)
                if entry is not None and entry.expired():
                    item.user_properties.append(("sgp_baseline_expired", str(entry.expires)))
                elif entry is not None:
                    item.add_marker(pytest.mark.xfail(strict=True, reason=entry.reason))
                feature = catalogue.get(req_id).feature
                if not catalogue.get(req_id).claimed(self.run.config.without):
                    item.add_marker(pytest.mark.skip(reason=f"{NOT_RUN}: {NOT_CLAIMED} (--without {feature})"))
                elif self.run.config.depth == "smoke" and level != catalogue.MUST:
                    item.add_marker(pytest.mark.skip(reason=f"{NOT_RUN}: depth smoke runs MUST requirements only"))
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        items[:] = sorted(items, key=_order)
        planned = planned_scenarios(items)
        self.run.planned = {s for _, scenarios in planned for s in scenarios}
        if self.run.config.dry_run:
            self.print_plan(planned)
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
        self.run.prefetch(s for _, scenarios in planned for s in scenarios)
        # every stream judged goes through the openai SDK's accumulator (STRM-022): import it while the
        # scenarios just prefetched are in flight, not on the first stream judged, when nothing may be
        if not self.run.halted and any(str(requirement_of(i)).startswith("STRM-") and not i.get_closest_marker("skip")
                                       for i in items):
            # a broken SDK install is STRM-022's to report, when it is judged, not the run's
            with contextlib.suppress(Exception):
                stream_assembly.sdk_available()
        self._draw_ahead(items)

    def _claims_in_junit(self, config: pytest.Config) -> None:
        """junit.xml's <properties>: the features declared absent and the choices claimed (empty: none)."""
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property("sgp_without", ",".join(sorted(self.run.config.without)))
            xml.add_global_property("sgp_claims", ",".join(sorted(self.run.config.claims)))

    def _draw_ahead(self, items: list[pytest.Item]) -> None:
        """Start drawing the property tests' random cases in a second process, where the run is big enough
        to pay for it (not on an xdist worker: with xdist the cores are taken already)."""
        run = self.run
        modes = {mode for i in items if not i.get_closest_marker("skip") for mode in DRAWS.get(requirement_of(i), ())}
        if (modes and not run.halted and run.ahead is None and not worth_it(run.config) and run.config.concurrency > 1
                and not hasattr(self.config, "workerinput")):
            # (not on an xdist worker: every worker collects every test, one of them runs the property tests)
            self._draw_while_prefetching(sorted(modes, key=ORDER.index))
            return
        if not modes or run.halted or run.ahead is not None or not worth_it(run.config):
            return
        if hasattr(self.config, "workerinput"):
            return
        if run.config.seed is None:
            run.config.seed = random.SystemRandom().randrange(1, 2**31)
        run.ahead = Ahead(run.config, run.profile.name, modes=sorted(modes, key=ORDER.index))

    def _draw_while_prefetching(self, modes: list[str]) -> None:
        """Draw the random cases here and now, while the scenarios just prefetched are in flight: with
        requests overlapping (--concurrency > 1) a run waits on the target, and drawing later, in the property
        tests, left nothing in flight for as long as drawing takes (a second or two per mode). The cases are
        kept (generation.draw, by seed) for the property tests, which draw the same ones; where drawing fails
        here, they draw (and report) it themselves."""
        from conformance.suite.generation import draw

        run = self.run
        if run.config.seed is None:
            run.config.seed = random.SystemRandom().randrange(1, 2**31)
        for mode in modes:
            try:
                draw(mode, run.profile, run.config)
            except Exception:  # the property test draws again, and says what failed
                return

    def print_plan(self, planned: list[tuple[str, tuple[str, ...]]]) -> None:
        """The requests of the run, per requirement; a scenario shared by several is sent once."""
        writer = self.config.pluginmanager.get_plugin("terminalreporter")
        rows, total = request_plan(planned, self.run.config.property_examples(), self.run.boundaries(),
                                   self.run.config.probe_size())
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

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The selection is known: the previous run's reports go only if this run judges something. A `-k`
        or `-m` that selects nothing ends the run as a usage error (exit 2) that writes no report, so the
        previous run's reports stay as they were."""
        # the session, its plugins and items live until the run ends
        heap.settle()
        if not self.run.stale_reports:
            return
        if session.items:
            self.run.clear_stale_reports()
            return
        silence_report_writers(self.config)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.run.interrupted = self.run.interrupted or "SIGINT"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            # an xdist worker: its findings about the run reach the controller this way
            output["sgp_stats"] = json.dumps(self.run.client.stats.to_json())
            output["sgp_dead"] = self.run.client.dead or ""


def silence_report_writers(config: pytest.Config) -> None:
    """Stop junit.xml, conformance.html and conformance.json from being written in this session."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        del config.stash[xml_key]
        config.pluginmanager.unregister(xml)
    for plugin in list(config.pluginmanager.get_plugins()):
        # pytest-html's report object (its page is written at the session's end)
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "pytest_sessionfinish"):
            config.pluginmanager.unregister(plugin)
    results = config.pluginmanager.get_plugin("sgp-conformance-results")
    if results is not None:
        results.silenced = True
