"""The outcome model, the same in every output: the statuses a requirement can have, a requirement's
`Result`, and the verdict of a run from its results. Plain data, no pytest hooks: the collector (results.py),
the HTML report, the summary and the diff all read it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from typing import Any

import pytest

from conformance import __version__
from conformance.contract import catalogue, claims

RESULT_FILE = "conformance.json"
HTML_FILE = "conformance.html"
SCHEMA_ID = "https://sgp-conformance.dev/schemas/conformance-result.json"
# in schemas/ beside the contract's schemas, but not one of them: it describes this file, not the API
RESULT_SCHEMA = "conformance-result.json"
# bumped when a consumer of conformance.json would have to change; added fields do not bump it
FORMAT_VERSION = 1
# The outcome model, the same in every output:
# pass        the rule was applied to at least one response and held
# fail        the rule was applied and broken (at an INFO requirement: observed)
# observed    an INFO requirement's statement does not hold: an observation, never a failure
# not judged  the rule had nothing to judge (reason; `needs`: the requirement that reports the cause)
# not run     no request was spent on it: budget, throttling, interruption, not selected, or settings
# known       a failure listed in the baseline; stale: listed there but passing now; error: the test
#             itself broke, or its baseline entry expired
NOT_JUDGED, NOT_RUN = "not judged", "not run"
STATUSES = ("pass", "fail", "observed", NOT_JUDGED, NOT_RUN, "known", "stale", "error")
# worst first: a requirement hit by several tests keeps its worst status; a rule that held once beats
# "nothing to judge" elsewhere
STATUS_ORDER = ("fail", "error", "stale", "known", "observed", "pass", NOT_JUDGED, NOT_RUN)
BAD = frozenset({"fail", "error", "stale"})
# why a requirement was not run, and what that makes of the run's verdict: "selection" (-k, -m, a
# deselection) makes it partial, "budget"/"throttled" incomplete, "interrupted" interrupted; "settings"
# (depth, --clients, --account-id) and "halted"/"unreachable" (the run's own verdict says it) do not, nor
# does "not claimed" (a feature declared absent with --without: the verdict names it, "conformant without ...")
NOT_RUN_KINDS = ("selection", "budget", "throttled", "interrupted", "settings", "halted", "unreachable",
                 "not claimed")
# what one requirement keeps for the reports; the counts say how many there were
MAX_VIOLATIONS = 20
MAX_EXCHANGES = 5
# the members of conformance.json's run object that hold what the user or the target gave (masked, and read
# by the leak scan); the others are the run's own names, enums, numbers and times
RUN_GIVEN = frozenset({"target", "model", "halted", "selection", "configuration"})
CORE_KEYS = frozenset({"schema", "format_version", "versions", "run", "requests", "unreachable", "verdict",
                       "verdicts", "counts", "coverage", "results"})


@dataclass
class Result:
    id: str
    level: str
    statement: str
    source: str
    # where docs/contract.md states the rule: "docs/contract.md#auth-status" (catalogue.Requirement.contract)
    contract: str
    status: str = NOT_RUN
    message: str = ""
    # for not judged: the requirement that reports the cause; for not run: why (NOT_RUN_KINDS)
    needs: str | None = None
    not_run: str | None = None
    tests: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    violation_count: int = 0
    # the exchanges behind a failure as exchange_evidence made them; only the HTML report shows them whole
    evidence: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    # for generated cases: the seed that reproduces them (the minimal example is the first evidence)
    generated: dict[str, Any] | None = None
    # the message came from another requirement's test; the requirement's own test says it better
    borrowed: bool = field(default=False, repr=False)
    # the requirement whose failure left this one's own test not judged (its Held/Refused needs), if any
    own_unmet: str | None = field(default=None, repr=False)
    # the violations counted so far, by what they say: one violation seen by several checks counts once
    _seen: set[str] = field(default_factory=set, repr=False)

    def worsen(self, status: str, message: str, own: bool = True, needs: str | None = None,
               not_run: str | None = None) -> None:
        """Take `status` if it is worse than the current one (STATUS_ORDER); an INFO requirement's failure is
        an observation."""
        if status == "fail" and self.level == catalogue.INFO:
            status = "observed"
        worse = STATUS_ORDER.index(status) < STATUS_ORDER.index(self.status)
        if worse or (status == self.status and message and (not self.message or (own and self.borrowed))):
            self.status, self.message, self.borrowed = status, message, not own
            self.needs = needs if status == NOT_JUDGED else None
            self.not_run = not_run if status == NOT_RUN else None

    def note_own(self, status: str, needs: str | None) -> None:
        """Remember what the requirement's own test said when a requirement it needs failed."""
        if status == NOT_JUDGED and needs:
            self.own_unmet = needs

    def add_violations(self, found: Iterable[dict[str, Any]]) -> None:
        """Count and keep (up to MAX_VIOLATIONS) the violations not seen before: the same finding reported by
        two tests (STRM-013's and STRM-019's both read a stream's ids and timestamps) is one violation."""
        for violation in found:
            key = json.dumps({k: violation.get(k) for k in ("requirement", "message", "pointer", "scenario")},
                             sort_keys=True, default=str)
            if key in self._seen:
                continue
            self._seen.add(key)
            self.violation_count += 1
            if len(self.violations) < MAX_VIOLATIONS:
                self.violations.append(violation)

    def add_evidence(self, found: Iterable[dict[str, Any]]) -> None:
        for item in found:
            if len(self.evidence) < MAX_EXCHANGES and item not in self.evidence:
                self.evidence.append(item)

    def to_json(self, html_name: str = HTML_FILE) -> dict[str, Any]:
        pointer = None
        if self.evidence:
            anchor = evidence_anchor(self.id)
            pointer = {
                "anchor": anchor,
                "html": f"{html_name}#{anchor}",
                "scenarios": [_exchange_pointer(e) for e in self.evidence],
            }
        return {
            "id": self.id, "level": self.level, "statement": self.statement, "source": self.source,
            "contract": self.contract, "status": self.status, "message": self.message, "needs": self.needs,
            "not_run": self.not_run,
            "tests": list(self.tests), "violations": list(self.violations),
            "violation_count": self.violation_count, "evidence": pointer, "baseline": self.baseline,
            "generated": self.generated,
        }


def settle_consequences(results: Mapping[str, Result]) -> None:
    """One fault, one failure, across tests: a requirement failed only by other tests' findings (the generated
    cases') while its own test was not judged because a requirement it needs fails, is not judged as well.
    Its own test says those findings follow from that failure (SEM-008's max_completion_tokens ignored where
    max_tokens is ignored too: SEM-006 reports it), so they are the cause's, not a second fault."""
    for result in results.values():
        cause = results.get(result.own_unmet or "")
        if result.status in ("fail", "observed") and result.borrowed and cause is not None \
                and cause.status in ("fail", "observed"):
            result.status, result.needs, result.borrowed = NOT_JUDGED, cause.id, False
            result.message = f"{cause.id} fails; what the generated cases found of this rule follows from it " \
                             f"({first_line(result.message)})"


def evidence_anchor(req_id: str) -> str:
    return f"evidence-{req_id}"


def matrix_anchor(req_id: str) -> str:
    return f"req-{req_id}"


# characters of each body conformance.json keeps of an exchange (the HTML report shows up to BODY_LIMIT)
JSON_BODY_LIMIT = 1000


def _cut(text: Any) -> Any:
    if not isinstance(text, str) or len(text) <= JSON_BODY_LIMIT:
        return text
    return f"{text[:JSON_BODY_LIMIT]}… [{len(text) - JSON_BODY_LIMIT} more characters in the HTML report]"


def _exchange_pointer(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """An exchange of a failure's evidence as conformance.json gives it: enough to reproduce it (the curl
    line, the URL, the bodies cut at JSON_BODY_LIMIT), all scrubbed as the evidence was."""
    request, response = evidence.get("request") or {}, evidence.get("response") or {}
    return {"scenario": evidence.get("scenario", ""), "method": request.get("method"),
            "status": response.get("status"), "error": evidence.get("error"), "url": request.get("url"),
            "curl": evidence.get("curl"), "request_body": _cut(request.get("body")),
            "response_body": _cut(response.get("body")) if response else None,
            # the request whole, for `sgp-conformance replay`; whether this exchange broke the rule
            "replay": evidence.get("replay"), "failed": bool(evidence.get("failed"))}


def failure_message(text: str) -> str:
    """The result message of a failed test: its first violation, without the requirement ID (the result
    says it once) and without pytest's framing."""
    body = text.split("violation(s) of", 1)[-1].split("\n", 1)[-1] if "violation(s) of" in text else text
    line = first_line(body).removeprefix("- ")
    head, sep, rest = line.partition(" ")
    if sep and catalogue.BY_ID.get(head.rstrip(":")) is not None:
        line = rest.removeprefix(": ") if not rest.startswith("at ") else rest
    return line or "failed"


def not_run_kind(reason: str) -> str:
    """Why a requirement was not run (NOT_RUN_KINDS), from its reason."""
    lowered = reason.lower()
    if "budget" in lowered:
        return "budget"
    if "429" in lowered:
        return "throttled"
    if "unreachable" in lowered:
        return "unreachable"
    if "refused" in lowered:
        return "halted"
    if "interrupted" in lowered:
        return "interrupted"
    if "not selected" in lowered:
        return "selection"
    if claims.NOT_CLAIMED in lowered:
        return "not claimed"
    return "settings"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def gating(results: Iterable[Mapping[str, Any]], fail_on: str) -> list[Mapping[str, Any]]:
    """The results that make a run fail: a failure or error at a gating level, and at any level a stale
    baseline entry (so the list only shrinks) or an expired one."""
    levels = {catalogue.MUST} if fail_on == "must" else {catalogue.MUST, catalogue.SHOULD}
    out = []
    for r in results:
        expired = bool((r.get("baseline") or {}).get("expired"))
        if r["status"] == "stale" or (r["status"] == "error" and expired) or \
                (r["level"] in levels and r["status"] in BAD):
            out.append(r)
    return out


def gating_levels(fail_on: str) -> set[str]:
    return {catalogue.MUST} if fail_on == "must" else {catalogue.MUST, catalogue.SHOULD}


VERDICTS = ("conformant", "not conformant", "partial", "incomplete", "not judged", "interrupted", "key refused",
            "unreachable")


# how a rule left not judged for want of an answer says so (checks.transport.unjudgeable, checks.errors,
# checks.streaming): the transport's doing, not the contract's, so it cannot leave a run conformant
TRANSPORT_NOT_JUDGED = ("no response to judge:", "no answer:", "response cut short:", "stream cut short (")


def unanswered(results: Iterable[Mapping[str, Any]], fail_on: str) -> list[Mapping[str, Any]]:
    """The gating requirements left not judged because an answer never came (or came cut short)."""
    return [r for r in results if r["level"] in gating_levels(fail_on) and r["status"] == NOT_JUDGED
            and any(mark in str(r.get("message") or "") for mark in TRANSPORT_NOT_JUDGED)]


def verdict(results: Iterable[Mapping[str, Any]], fail_on: str, *, interrupted: str | None = None,
            halted: str | None = None, unreachable: str | None = None) -> str:
    """The run's verdict (VERDICTS). A run that was interrupted, halted by a refused key or could not reach
    its target never says conformant; failures at a gating level make it not conformant; gating
    requirements not run for want of requests, or not judged for want of an answer, make it incomplete, and
    deselected ones partial."""
    results = list(results)
    if interrupted:
        return "interrupted"
    if halted:
        return "key refused"
    if unreachable:
        return "unreachable"
    if gating(results, fail_on):
        return "not conformant"
    missing = {r.get("not_run") for r in results
               if r["level"] in gating_levels(fail_on) and r["status"] == NOT_RUN}
    if missing & {"budget", "throttled"} or unanswered(results, fail_on):
        return "incomplete"
    if "selection" in missing:
        return "partial"
    return "conformant" if any(r["status"] == "pass" for r in results) else "not judged"


def level_verdicts(results: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Per level, read as the run's verdict is: not conformant (a failure), else interrupted, incomplete or
    partial where requirements of the level were not run for that reason (an interruption, the budget or
    throttling, the selection) or not judged for want of an answer, else conformant (something passed),
    else not judged. INFO results are observations and never make their level not conformant."""
    results = list(results)
    out = {}
    for level in catalogue.LEVELS:
        at_level = [r for r in results if r["level"] == level]
        statuses = {r["status"] for r in at_level}
        missing = {r.get("not_run") for r in at_level if r["status"] == NOT_RUN}
        if statuses & BAD:
            out[level] = "not conformant"
        elif "interrupted" in missing:
            out[level] = "interrupted"
        elif missing & {"budget", "throttled"} or (level != catalogue.INFO and unanswered(at_level, "should")):
            out[level] = "incomplete"
        elif statuses & {"pass", "observed"}:
            out[level] = "partial" if "selection" in missing else "conformant"
        else:
            # nothing at this level was judged (not judged, not run, or only known deviations)
            out[level] = NOT_JUDGED
    return out


def count(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    counts = {level: dict.fromkeys(STATUSES, 0) for level in (*catalogue.LEVELS, "total")}
    for r in results:
        counts[r["level"]][r["status"]] += 1
        counts["total"][r["status"]] += 1
    return counts


def coverage(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many of the applicable requirements were judged (pass, fail, observed, known, stale), found
    nothing to judge, or were not run."""
    results = list(results)
    statuses = [r["status"] for r in results]
    return {"applicable": len(results), "judged": sum(s not in (NOT_JUDGED, NOT_RUN, "error") for s in statuses),
            "not_judged": statuses.count(NOT_JUDGED), "not_run": statuses.count(NOT_RUN)}


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """The suite's and the contract's versions: the schemas' version and a digest of their bytes, so two
    runs judged by different schema files are told apart even where nobody bumped the version."""
    files = resources.files("conformance.schemas")
    digest = hashlib.sha256()
    schema_version = None
    contract = (f for f in files.iterdir() if f.name.endswith(".json") and f.name != RESULT_SCHEMA)
    for entry in sorted(contract, key=lambda f: f.name):
        data = entry.read_bytes()
        digest.update(entry.name.encode() + b"\0" + data)
        if entry.name == "openapi.json":
            schema_version = json.loads(data).get("info", {}).get("version")
    return {
        "suite": __version__,
        "schemas": schema_version,
        "schemas_digest": f"sha256:{digest.hexdigest()[:16]}",
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "pytest_html": _dist_version("pytest-html"),
    }


def failing(results: list[Result], fail_on: str) -> list[Result]:
    by_id = {r.id: r for r in results}
    return [by_id[r["id"]] for r in gating([r.to_json() for r in results], fail_on)]
