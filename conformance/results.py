"""Per-requirement results, gathered from test reports on the controller, and the run's verdict.

Workers attach violations and evidence to their reports as user properties; this collector takes them
off (so JUnit keeps only the requirement ID and level), folds them per requirement, and writes
conformance.json when the session ends.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance import __version__, catalogue

RESULT_FILE = "conformance.json"
# worst first: a requirement hit by several tests keeps its worst status
STATUS_ORDER = ("fail", "error", "stale", "known", "skip", "pass")


@dataclass
class Result:
    id: str
    level: str
    statement: str
    source: str
    status: str = "pass"
    message: str = ""
    tests: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def worsen(self, status: str, message: str) -> None:
        if STATUS_ORDER.index(status) < STATUS_ORDER.index(self.status):
            self.status, self.message = status, message
        elif status == self.status and message and not self.message:
            self.message = message


def _props(report: pytest.TestReport) -> dict[str, str]:
    return {k: v for k, v in report.user_properties if isinstance(k, str)}


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


class ResultsCollector:
    def __init__(self, run: Any, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.results: dict[str, Result] = {}
        self.started = time.time()
        self.worker_stats: list[dict[str, Any]] = []
        self.dead: str | None = None

    def result(self, req_id: str) -> Result:
        if req_id not in self.results:
            req = catalogue.get(req_id)
            self.results[req_id] = Result(req.id, req.level, req.statement, req.source)
        return self.results[req_id]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = _props(report)
        req_id = props.get("requirement")
        violations = json.loads(props.get("sgp_violations", "[]"))
        evidence = json.loads(props.get("sgp_evidence", "[]"))
        # the bulky parts stay out of JUnit: they are in the JSON results and the HTML report
        report.user_properties = [(k, v) for k, v in report.user_properties if not str(k).startswith("sgp_")]
        for violation in violations:
            other = violation.get("requirement")
            if other and other != req_id and other in catalogue.BY_ID:
                found = self.result(other)
                found.worsen("fail", f"violated in {report.nodeid}: {violation.get('message', '')}")
                if len(found.violations) < 50:
                    found.violations.append(violation)
        if req_id is None:
            return
        result = self.result(req_id)
        if report.nodeid not in result.tests:
            result.tests.append(report.nodeid)
        status, message = self._status(report)
        if status is None:
            return
        if "sgp_baseline_expired" in props:
            status, message = "error", f"the baseline entry for {req_id} expired on {props['sgp_baseline_expired']}"
        result.worsen(status, message)
        result.violations.extend(v for v in violations if v.get("requirement") == req_id)
        result.evidence.extend(evidence)
        if evidence:
            self._attach_html(report, req_id, evidence)

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
            if report.failed:
                return "fail", _first_line(text.split("violation(s) of", 1)[-1].split("\n", 1)[-1]) or "failed"
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else text
            return "skip", str(reason).removeprefix("Skipped: ")
        if report.failed:
            if report.when == "call":
                return "fail", _first_line(text)
            return "error", _first_line(text) or f"error in {report.when}"
        return None, ""

    def _attach_html(self, report: pytest.TestReport, req_id: str, evidence: list[dict[str, Any]]) -> None:
        from conformance.html_evidence import evidence_extras

        extras = getattr(report, "extras", [])
        extras.extend(evidence_extras(req_id, evidence))
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

    def document(self) -> dict[str, Any]:
        run = self.run
        results = [self.results[r.id] for r in catalogue.REQUIREMENTS if r.id in self.results]
        counts: dict[str, dict[str, int]] = {level: {} for level in catalogue.LEVELS}
        for r in results:
            counts[r.level][r.status] = counts[r.level].get(r.status, 0) + 1
        return {
            "schema": "https://sgp-conformance.dev/schemas/conformance-result.json",
            "suite_version": __version__,
            "run": {
                "target": run.config.base_url,
                "embedded": run.embedded is not None,
                "profile": run.profile.name,
                "model": run.config.model,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                "duration_s": round(time.time() - self.started, 2),
                "configuration": run.config.redacted(),
            },
            "requests": self.request_stats(),
            "unreachable": run.client.dead or self.dead,
            "verdict": verdict(results, run.config.fail_on),
            "counts": counts,
            "results": [asdict(r) for r in results],
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = Path(self.run.config.report_dir)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.document(), indent=2, ensure_ascii=False)
        (out / RESULT_FILE).write_text(self.run.scrubber.text(text), encoding="utf-8")


def failing(results: list[Result], fail_on: str) -> list[Result]:
    levels = {catalogue.MUST} if fail_on == "must" else {catalogue.MUST, catalogue.SHOULD}
    return [r for r in results if r.level in levels and r.status in {"fail", "error", "stale"}]


def verdict(results: list[Result], fail_on: str) -> str:
    return "not conformant" if failing(results, fail_on) else "conformant"
