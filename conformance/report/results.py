"""Per-requirement results, gathered from test reports on the controller, and the run's verdict.

Workers attach violations and evidence to their reports as user properties; this collector takes them
off (so JUnit keeps only the requirement ID and level), scrubs every report before any reporter sees it,
folds the results per requirement, writes conformance.json when the session ends (its schema is
schemas/conformance-result.json) and gives pytest-html its summary, matrix and failure evidence.

Other plugins add top-level sections to conformance.json with `register_section(config, name, provider)`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.contract import catalogue
from conformance.redact import Scrubber, ScrubbingStream, safe_url
from conformance.report import baseline
from conformance.report.folder import write_new
from conformance.report.html import duration as formatted
from conformance.report.html import (
    evidence_html,
    evidence_link,
    matrix_html,
    summary_html,
    table_log,
    tidy_environment,
    tidy_outcomes,
)
from conformance.report.open_points import open_points
from conformance.report.outcomes import (
    CORE_KEYS,
    FORMAT_VERSION,
    HTML_FILE,
    NOT_JUDGED,
    NOT_RUN,
    RESULT_FILE,
    RUN_GIVEN,
    SCHEMA_ID,
    Result,
    count,
    coverage,
    failure_message,
    first_line,
    level_verdicts,
    not_run_kind,
    settle_consequences,
    verdict,
    versions,
)

PLUGIN_NAME = "sgp-conformance-results"

def _props(report: pytest.TestReport) -> dict[str, str]:
    return {k: v for k, v in report.user_properties if isinstance(k, str)}


def _test_name(nodeid: str) -> str:
    """A test's name without its file: `test_generated_valid_requests[PROP-001]`."""
    return nodeid.rsplit("::", 1)[-1]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300].removeprefix("E   ") if lines else ""


def register_section(config: pytest.Config, name: str, provider: Callable[[], Any]) -> None:
    """Add a top-level section to conformance.json: `provider()` is called once, when the file is written,
    and must return JSON-able data (it is scrubbed like the rest). Does nothing on an xdist worker, where
    no results are written: register on the controller."""
    collector = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if collector is not None:
        collector.add_section(name, provider)


class ResultsCollector:
    def __init__(self, run: Any, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.results: dict[str, Result] = {}
        self.started = time.time()
        self.finished: float | None = None
        self.worker_stats: list[dict[str, Any]] = []
        self.dead: str | None = None
        self.sections: dict[str, Callable[[], Any]] = {}
        self.doc: dict[str, Any] | None = None
        # set when the session is to write no report at all
        self.silenced = False
        # JUnit properties of a test's call (observation, should_not_met), moved onto its teardown report
        self._junit_properties: dict[str, list[tuple[str, str]]] = {}
        self.accepted = baseline.load(run.config.baseline) if run.config.baseline else {}
        html_path = getattr(config.option, "htmlpath", None)
        self.html_name = Path(html_path).name if html_path else HTML_FILE

    @property
    def scrubber(self) -> Scrubber:
        scrubber: Scrubber = self.run.scrubber
        return scrubber

    def add_section(self, name: str, provider: Callable[[], Any]) -> None:
        if name in CORE_KEYS:
            raise ValueError(f"conformance.json section {name!r} is one of the core keys: pick another name")
        self.sections[name] = provider

    def result(self, req_id: str) -> Result:
        if req_id not in self.results:
            req = catalogue.get(req_id)
            self.results[req_id] = Result(req.id, req.level_for(self.run.profile.name, self.run.config.claims),
                                          req.statement, req.source, req.contract)
            entry = self.accepted.get(req_id)
            if entry is not None:
                self.results[req_id].baseline = {
                    "reason": entry.reason, "expires": entry.expires.isoformat() if entry.expires else None,
                    "expired": entry.expired(),
                }
        return self.results[req_id]

    # -- every report passes here first, so no reporter (terminal, JUnit, HTML) sees a secret ---------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        stream = getattr(writer, "_file", None)
        if stream is not None and self.scrubber.active and not isinstance(stream, ScrubbingStream):
            # whatever pytest or another plugin prints through the terminal writer is masked on its way out
            writer._file = ScrubbingStream(stream, self.scrubber)  # type: ignore[union-attr]

    def _scrub(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        scrub = self.scrubber
        if not scrub.active:
            return
        text = report.longreprtext + "".join(content for _, content in report.sections)
        if scrub.contains_secret(text):
            report.longrepr = scrub.scrub_in_place(report.longrepr)
            report.sections = [(scrub.text(title), scrub.text(content)) for title, content in report.sections]
        report.user_properties = [(k, scrub.value(v)) for k, v in getattr(report, "user_properties", [])]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._scrub(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            # JUnit takes a test's properties from its teardown report: an observation made in the call is
            # carried over to it, or it would never reach junit.xml
            report.user_properties = [*report.user_properties, *self._junit_properties.pop(report.nodeid, [])]
        props = _props(report)
        req_id = props.get("requirement")
        violations = json.loads(props.get("sgp_violations", "[]"))
        evidence = json.loads(props.get("sgp_evidence", "[]"))
        outcome = json.loads(props.get("sgp_outcome", "null")) or {}
        # the bulky parts stay out of JUnit: they are in the JSON results and the HTML report
        report.user_properties = [(k, v) for k, v in report.user_properties if not str(k).startswith("sgp_")]
        self._scrub(report)
        violations, evidence = self.scrubber.value(violations), self.scrubber.value(evidence)
        for violation in violations:
            other = violation.get("requirement")
            if other and other != req_id and other in catalogue.BY_ID and catalogue.get(other).applies_to(
                    self.run.profile.name):
                found = self.result(other)
                found.worsen("fail", f"violated in {_test_name(report.nodeid)}: {violation.get('message', '')}",
                             own=False)
                found.add_violations([violation])
        if req_id is None:
            return
        result = self.result(req_id)
        if report.nodeid not in result.tests:
            result.tests.append(report.nodeid)
        status, message = self._status(report)
        if status is None:
            return
        needs, kind = outcome.get("needs"), None
        if status == NOT_RUN:
            kind = not_run_kind(message)
        if "sgp_baseline_expired" in props:
            status, message = "error", f"the baseline entry for {req_id} expired on {props['sgp_baseline_expired']}"
        result.worsen(status, message, needs=needs, not_run=kind)
        result.note_own(status, needs)
        result.add_violations(v for v in violations if v.get("requirement") == req_id)
        result.add_evidence(evidence)
        if "sgp_generated" in props and status == "fail":
            result.generated = json.loads(props["sgp_generated"])
        if evidence:
            self._attach_html(report, req_id)
        self._present(report, result, status, message)

    def _present(self, report: pytest.TestReport, result: Result, status: str, message: str) -> None:
        """Make what JUnit, the HTML table and the terminal show of this report agree with the outcome model:
        an INFO finding is a passed test with an `observation` property; a SHOULD failure is shown as
        --junit-should says; a skip names its test file, never an absolute path."""
        if report.skipped and isinstance(report.longrepr, tuple):
            _, lineno, reason = report.longrepr
            report.longrepr = (report.nodeid.split("::", 1)[0], lineno, reason)
        if status != "fail" or report.when != "call":
            return
        if result.level == catalogue.INFO:
            report.outcome, report.longrepr = "passed", None
            report.user_properties.append(("observation", message))
            self._junit_properties.setdefault(report.nodeid, []).append(("observation", message))
        elif result.level == catalogue.SHOULD:
            shown = self.run.config.junit_should_as()
            if shown == "skip":
                report.outcome = "skipped"
                report.longrepr = (report.nodeid.split("::", 1)[0], 0, f"SHOULD not met: {message}")
            elif shown == "pass":
                report.outcome, report.longrepr = "passed", None
                report.user_properties.append(("should_not_met", message))
                self._junit_properties.setdefault(report.nodeid, []).append(("should_not_met", message))

    @staticmethod
    def _status(report: pytest.TestReport) -> tuple[str | None, str]:
        text = report.longreprtext if report.longrepr else ""
        if hasattr(report, "wasxfail"):
            if report.skipped:
                return "known", f"accepted deviation: {report.wasxfail}"
            return "stale", f"listed in the baseline but now passes: {report.wasxfail}"
        if report.failed and text.startswith("[XPASS(strict)]"):
            return "stale", f"listed in the baseline but now passes: {text.removeprefix('[XPASS(strict)]').strip()}"
        if report.when == "call":
            if report.passed:
                return "pass", ""
            if report.failed and "violation(s) of" in text:
                return "fail", failure_message(text)
            if report.failed:
                # an exception of the suite itself, not a finding about the target
                return "error", f"the test broke: {_last_line(text)}"
        if report.skipped:
            reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else text)
            reason = reason.removeprefix("Skipped: ")
            for status in (NOT_JUDGED, NOT_RUN):
                if reason.startswith(f"{status}: "):
                    # the owner is its own field: the message says what happened
                    return status, re.sub(r"^needs [A-Z]+-\d{3}: ", "", reason.removeprefix(f"{status}: "))
            return NOT_RUN, reason
        if report.failed:
            return "error", first_line(text) or f"error in {report.when}"
        return None, ""

    def _attach_html(self, report: pytest.TestReport, req_id: str) -> None:

        extras = getattr(report, "extras", [])
        extras.append(evidence_link(req_id))
        report.extras = extras

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Add an xdist worker's request counts to the run's."""
        output = getattr(node, "workeroutput", {}) or {}
        if "sgp_stats" in output:
            self.worker_stats.append(json.loads(output["sgp_stats"]))
        if output.get("sgp_dead"):
            self.dead = self.dead or output["sgp_dead"]

    def request_stats(self) -> dict[str, Any]:
        total: dict[str, Any] = self.run.client.stats.to_json()
        for stats in self.worker_stats:
            for key, value in stats.items():
                if isinstance(value, dict):
                    merged = total.setdefault(key, {})
                    for k, v in value.items():
                        merged[k] = merged.get(k, 0) + v
                else:
                    total[key] = total.get(key, 0) + value
        return total

    def ordered(self) -> list[Result]:
        known = [self.results[r.id] for r in catalogue.REQUIREMENTS if r.id in self.results]
        return known + [r for rid, r in self.results.items() if rid not in catalogue.BY_ID]

    def fill_not_run(self) -> None:
        """Every requirement of the profile that no test reported is `not run`, saying why: the run was
        interrupted or halted before it, or the selection (-k, -m, a deselection) left it out."""
        run, option = self.run, self.config.option
        only = getattr(run, "only", None)
        selection = [f"--only {only}" if only is not None else "",
                     f"-k {option.keyword}" if getattr(option, "keyword", "") else "",
                     f"-m {option.markexpr}" if getattr(option, "markexpr", "") else ""]
        chosen = " ".join(s for s in selection if s)
        if only is not None:
            # what a selected test found of a requirement left out (PROP-001 finds RESP-001's violations) is not
            # reported: the selection says which requirements this run judges
            for req_id in [r for r in self.results if not only.matches(r)]:
                del self.results[req_id]
        for req in catalogue.for_profile(run.profile.name):
            known = self.results.get(req.id)
            # a test that began but reported no outcome (interrupted in its call) is not run as well
            if known is not None and known.tests and (known.status != NOT_RUN or known.not_run):
                continue
            result = self.result(req.id)
            if run.interrupted:
                result.worsen(NOT_RUN, f"the run was interrupted ({run.interrupted}) before it was judged",
                              not_run="interrupted")
            elif run.halted:
                result.worsen(NOT_RUN, run.halted, not_run="halted")
            elif run.unlisted and not chosen:
                result.worsen(NOT_RUN, run.unlisted[0], not_run=run.unlisted[1])
            else:
                result.worsen(NOT_RUN, f"not selected ({chosen})" if chosen else "not selected",
                              not_run="selection")

    def selection(self) -> dict[str, Any]:
        """How the run was narrowed, for conformance.json: what a reader needs to trust a partial verdict."""
        option = self.config.option
        only = getattr(self.run, "only", None)
        return {"keyword": getattr(option, "keyword", "") or None, "markexpr": getattr(option, "markexpr", "") or None,
                "only": str(only) if only is not None else None,
                "depth": self.run.config.depth, "max_requests": self.run.config.max_requests,
                "clients": self.run.config.clients}

    def document(self) -> dict[str, Any]:
        """conformance.json. Target-derived text (messages, violations, evidence) was scrubbed as it came
        in; the run's own words (statements, IDs, field names) are never masked, so any key leaves the file
        well-formed and readable."""
        run = self.run
        finished = self.finished or time.time()
        self.fill_not_run()
        settle_consequences(self.results)
        results = [r.to_json(self.html_name) for r in self.ordered()]
        configuration = run.config.redacted()
        configuration["base_url"] = safe_url(configuration.get("base_url"))
        unreachable = run.client.dead or self.dead
        scrub = self.scrubber.value
        facts = {
            "target": safe_url(run.config.base_url),
            "embedded": run.embedded is not None or bool(getattr(run, "embedded_elsewhere", False)),
            "profile": run.profile.name,
            "model": run.config.model,
            "depth": run.config.depth,
            "fail_on": run.config.fail_on,
            # the seed generated cases were drawn with, given or picked by the run: --seed repeats them
            "seed": run.config.seed,
            "started": _iso(self.started),
            "finished": _iso(finished),
            "duration_s": round(finished - self.started, 2),
            "interrupted": run.interrupted,
            "halted": run.halted,
            "selection": self.selection(),
            "configuration": configuration,
            # what the server is held to: features declared absent, open points claimed (contract.claims)
            "claims": {"without": sorted(run.config.without), "choices": sorted(run.config.claims)},
        }
        doc: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "format_version": FORMAT_VERSION,
            "versions": versions(),
            # the run's own names, enums, numbers and times are never masked (a key `model` or `2026` would
            # corrupt them); what came from the user or the target is (RUN_GIVEN)
            "run": {k: self.scrubber.value(v, keys=False) if k in RUN_GIVEN else v for k, v in facts.items()},
            "requests": self.request_stats(),
            "unreachable": scrub(unreachable),
            "verdict": verdict(results, run.config.fail_on, interrupted=run.interrupted, halted=run.halted,
                               unreachable=unreachable),
            "verdicts": level_verdicts(results),
            "counts": count(results),
            "coverage": coverage(results),
            "results": results,
            "open_points": open_points(results, run.profile.name, run.config.claims),
        }
        for name, provider in self.sections.items():
            try:
                doc[name] = scrub(provider())
            except Exception as exc:  # one broken section must not cost the run its results
                doc[name] = {"error": scrub(f"{type(exc).__name__}: {exc}")}
        return doc

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.finished = time.time()
        if self.silenced:
            # a selection that judged nothing (plan.silence_report_writers): no conformance.json
            return
        self.doc = self.document()
        out = Path(self.run.config.report_dir)
        out.mkdir(parents=True, exist_ok=True)
        # a new file renamed into place: a link planted at conformance.json is replaced, never followed
        write_new(out / RESULT_FILE, json.dumps(self.doc, indent=2, ensure_ascii=False).encode("utf-8"))

    # -- pytest-html: title, summary, matrix and evidence; optional, so `-p no:html` still works ------------
    # Its own parts that mean nothing here go or get the suite's words (report_html.tidy_*): the outcome
    # filters of reruns and unexpected passes, raw skip tuples, the environment's CI variables, two
    # duration formats. Its table of tests stays, as the "Test log" at the end of the page.

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:

        report.title = "SGP conformance report"
        # kept to tidy its outcome filters once every test has reported (pytest_html_results_summary)
        self.html_report = report
        environment = report.data.get("environment")
        if isinstance(environment, dict):
            report.set_data("environment", self.scrubber.value(tidy_environment(environment)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:

        doc = self.doc or self.document()
        # built from data scrubbed as it came in: the markup itself is never masked
        prefix.append(summary_html(doc))
        # failures before the matrix: collapsed they take a line each, and they are what a reader wants next
        postfix.append(evidence_html(self.ordered()))
        postfix.append(matrix_html(doc))
        outcomes = getattr(getattr(self, "html_report", None), "outcomes", None)
        if isinstance(outcomes, dict):
            tidy_outcomes(outcomes)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        """A passed setup, or a passed teardown that captured nothing of its own, is never a row of pytest-html's
        table (its add_test drops them, keeping only a teardown's captured sections): empty cells tell
        pytest-html not to build them at all, two of every three reports of a run."""
        if report.passed and (report.when == "setup" or (
                report.when == "teardown" and not any("teardown" in header for header, _ in report.sections))):
            cells.clear()

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:

        data[:] = table_log(report, data)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_duration_format(self, duration: float) -> str:

        return formatted(duration)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
