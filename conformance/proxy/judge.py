"""One proxied exchange judged as `validate` judges a recorded one, and the `Tally` of all of them.

An exchange becomes a `Record` that holds everything a recording can: the real response headers, the
request the client sent, the time it was sent, the server's status. `record_findings` applies the checks
once; per requirement `judgeable` says whether the exchange holds what the rule needs and `unparsed` whether
another requirement owns the reason it cannot (a body that is not JSON is JSON-001's). The requirement then
counts the exchange as judged, and as failed where it has findings of its own.

The tally is bounded whatever the traffic: per requirement counts, at most MAX_VIOLATIONS violations and
MAX_EVIDENCE failing exchanges (keyless copies, response bodies cut at EVIDENCE_BODY_BYTES, all evidence
together within EVIDENCE_BUDGET_BYTES), a census of counts, the last RECENT terminal lines, and capped
counters of models and statuses.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.checks import NotJudged, Violation, split
from conformance.contract import catalogue
from conformance.contract.profiles import Profile
from conformance.offline.recorded import Record
from conformance.offline.validate import OFFLINE, judgeable, record_findings, unparsed, why_not_judged
from conformance.proxy import recording
from conformance.proxy.recording import Observed
from conformance.proxy.sanitize import credentials, keyless
from conformance.redact import Scrubber
from conformance.report.census import Census
from conformance.transport.client import Stats
from conformance.transport.exchange import Exchange, Response

MAX_VIOLATIONS = 20
MAX_EVIDENCE = 3
EVIDENCE_BODY_BYTES = 65_536
EVIDENCE_BUDGET_BYTES = 32_000_000
RECENT = 20
# distinct models / statuses counted by name; the rest are counted together
MAX_NAMES = 50
OTHER = "(other)"


def requirements_for(profile: Profile) -> tuple[str, ...]:
    """The requirements an observed exchange can judge under `profile` (validate's, in catalogue order)."""
    return tuple(r for r in OFFLINE if catalogue.get(r).applies_to(profile.name))


def why_not_judged_here(req_id: str) -> str:
    """Why `req_id` was judged on no proxied exchange: what such an exchange would have to be."""
    if req_id == "PROP-002":
        return "no answer of the upstream was proxied"
    text = why_not_judged(req_id).removeprefix("not judged: ")
    # a proxied exchange always has its headers, request and time: the recording hints do not apply
    text = re.sub(r" \([^)]*\)", "", text)
    return text.replace("needs a recorded ", "no proxied exchange was a ")


@dataclass
class Judgement:
    """What judging one exchange found. `findings` maps each requirement judged on it to its own findings
    (empty: the rule held); `notes` the requirements it could not judge and why; `owners` those whose body
    another requirement reports (JSON-001, STRM-017). `kept` is the keyless copy of the exchange."""

    observed: Observed
    kept: Exchange | None
    # masks every key seen in the run up to this exchange, its own included (for its terminal line)
    scrubber: Scrubber = field(default_factory=Scrubber)
    findings: dict[str, list[Violation]] = field(default_factory=dict)
    notes: dict[str, NotJudged] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    # why nothing was judged (a named result), where nothing was
    skipped: str | None = None

    def failed(self, profile: Profile) -> list[str]:
        """The IDs this exchange broke at MUST or SHOULD, in catalogue order."""
        return [
            r
            for r, found in self.findings.items()
            if found and catalogue.get(r).level_for(profile.name) != catalogue.INFO
        ]

    def observations(self, profile: Profile) -> list[str]:
        """The INFO statements that did not hold on it."""
        return [
            r
            for r, found in self.findings.items()
            if found and catalogue.get(r).level_for(profile.name) == catalogue.INFO
        ]


def _nothing_to_judge(observed: Observed, exchange: Exchange, problem: str | None) -> str | None:
    """Why this exchange is judged on nothing (its named result says so), or None."""
    if not observed.operation:
        return recording.FORWARDED
    if observed.request_over:
        return recording.REQUEST_TOO_LARGE
    if observed.outcome in recording.NOT_JUDGED:
        return observed.outcome
    if exchange.response is None:
        return observed.outcome
    if problem:
        observed.outcome = recording.ENCODING if "content-encoding" in problem else recording.RESPONSE_TOO_LARGE
        observed.error = problem
        return observed.outcome
    stream = exchange.response.media_type == "text/event-stream"
    if observed.outcome in (recording.CLIENT_GONE, recording.PROXY_STOPPED) and not stream:
        # a JSON body cut short by the client tells nothing about the server
        return observed.outcome
    return None


class SeenKeys:
    """Every credential any client sent through the proxy in the whole run: an upstream may echo one client's
    key into another client's exchange, so every record the proxy writes (the kept copies, the HAR, the
    terminal lines, the reports) masks all of them. Thread-safe; only grows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scrubber = Scrubber()

    def learn(self, secrets: Iterable[str]) -> Scrubber:
        """Add `secrets`; the scrubber of every key seen so far (a new one when any was new, so a holder of an
        earlier one is never changed under it)."""
        with self._lock:
            new = [s for s in secrets if s not in self.scrubber.secrets]
            if new:
                grown = Scrubber(self.scrubber.secrets)
                grown.add(*new)
                self.scrubber = grown
            return self.scrubber

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.scrubber.secrets


def judge(observed: Observed, profile: Profile, limit: int, requirements: Iterable[str],
          seen: SeenKeys | None = None) -> Judgement:
    """Judge one finished exchange; `limit` caps the decoded body (bytes). Its credentials join `seen`, and
    the kept copy masks every key seen so far, this exchange's own and every other client's."""
    exchange, problem = observed.to_exchange(limit)
    own = credentials(exchange, profile)
    scrubber = (seen or SeenKeys()).learn(own)
    skipped = _nothing_to_judge(observed, exchange, problem)
    out = Judgement(observed, keyless(exchange, profile, list(scrubber.secrets)), scrubber, skipped=skipped)
    if skipped is not None:
        return out
    record = Record(
        exchange.scenario,
        "proxy",
        exchange,
        headers_known=True,
        request_known=True,
        time=observed.started,
        status_known=True,
        body_known=True,
    )
    found = record_findings(record, profile)
    for req_id in requirements:
        if not judgeable(req_id, record, profile):
            continue
        owner = unparsed(req_id, record)
        if owner:
            out.owners[req_id] = owner
            continue
        real, notes = split(v for v in found if v.requirement == req_id)
        if real or not notes:
            out.findings[req_id] = real
        else:
            out.notes[req_id] = notes[0]
    return out


def _evidence_copy(exchange: Exchange) -> Exchange:
    """The exchange as evidence keeps it: the response body cut at EVIDENCE_BODY_BYTES (the reports show
    4,000 characters of it; the request stays whole for the curl line)."""
    response = exchange.response
    if response is None or len(response.body) <= EVIDENCE_BODY_BYTES:
        return exchange
    cut = Response(
        response.status,
        response.headers,
        response.body[:EVIDENCE_BODY_BYTES],
        response.elapsed_ms,
        response.truncated or f"evidence keeps the first {EVIDENCE_BODY_BYTES} bytes",
    )
    return Exchange(exchange.scenario, exchange.url, exchange.request, cut, exchange.error, exchange.error_kind)


def _size(exchange: Exchange) -> int:
    return len(exchange.request.body or b"") + (len(exchange.response.body) if exchange.response else 0)


@dataclass
class Counted:
    """One requirement over the proxied traffic."""

    judged: int = 0
    failed: int = 0
    violations: list[Violation] = field(default_factory=list)
    evidence: list[Exchange] = field(default_factory=list)
    # the first reason an exchange could not be judged, and the requirement that reports an unreadable body
    note: NotJudged | None = None
    owner: str | None = None

    def copy(self) -> Counted:
        return Counted(self.judged, self.failed, list(self.violations), list(self.evidence), self.note, self.owner)


def _count(counter: Counter[str], name: str) -> None:
    if name in counter or len(counter) < MAX_NAMES:
        counter[name] += 1
    else:
        counter[OTHER] += 1


class Tally:
    """Everything the reports say about the traffic; `add` on the judging thread, `snapshot` anywhere."""

    def __init__(self, profile: Profile, started: float) -> None:
        self.profile = profile
        self.started = started
        self.lock = threading.Lock()
        self.exchanges = 0
        self.operation = 0
        self.judged = 0
        self.streams = 0
        self.outcomes: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.models: Counter[str] = Counter()
        self.requirements: dict[str, Counted] = {}
        self.census = Census()
        self.recent: deque[str] = deque(maxlen=RECENT)
        self.evidence_bytes = 0
        self.evidence_dropped = 0
        self.seen = SeenKeys()

    def add(self, judgement: Judgement, line: str) -> None:
        observed = judgement.observed
        with self.lock:
            self.exchanges += 1
            self.outcomes[observed.outcome if judgement.skipped is None else judgement.skipped] += 1
            _count(self.statuses, str(observed.status) if observed.status is not None else "none")
            self.recent.append(line)
            if not observed.operation:
                return
            self.operation += 1
            if observed.model:
                _count(self.models, observed.model)
            if judgement.skipped is not None:
                return
            self.judged += 1
            self.streams += observed.streamed
            if judgement.kept is not None:
                self.census.add_exchange(judgement.kept)
            self._add_requirements(judgement)

    def _add_requirements(self, judgement: Judgement) -> None:
        for req_id, note in judgement.notes.items():
            counted = self.requirements.setdefault(req_id, Counted())
            counted.note = counted.note or note
        for req_id, owner in judgement.owners.items():
            counted = self.requirements.setdefault(req_id, Counted())
            counted.owner = counted.owner or owner
        evidence: Exchange | None = None
        over_budget = False
        for req_id, found in judgement.findings.items():
            counted = self.requirements.setdefault(req_id, Counted())
            counted.judged += 1
            if not found:
                continue
            counted.failed += 1
            room = MAX_VIOLATIONS - len(counted.violations)
            counted.violations += found[: max(room, 0)]
            if len(counted.evidence) >= MAX_EVIDENCE or judgement.kept is None or over_budget:
                continue
            if evidence is None:
                evidence = _evidence_copy(judgement.kept)
                if self.evidence_bytes + _size(evidence) > EVIDENCE_BUDGET_BYTES:
                    # past the budget a failure keeps its violations and counts, not its exchange
                    self.evidence_dropped += 1
                    over_budget = True
                    continue
                # one copy serves every requirement this exchange broke
                self.evidence_bytes += _size(evidence)
            counted.evidence.append(evidence)

    def snapshot(self) -> Tally:
        """A copy to write reports from while the traffic goes on (the kept exchanges are shared: they are
        never changed)."""
        with self.lock:
            copy = Tally(self.profile, self.started)
            copy.exchanges, copy.operation, copy.judged, copy.streams = (
                self.exchanges,
                self.operation,
                self.judged,
                self.streams,
            )
            copy.outcomes, copy.statuses, copy.models = (
                Counter(self.outcomes),
                Counter(self.statuses),
                Counter(self.models),
            )
            copy.requirements = {k: v.copy() for k, v in self.requirements.items()}
            copy.census.merge(self.census.dump())
            copy.recent = deque(self.recent, maxlen=RECENT)
            copy.evidence_bytes, copy.evidence_dropped = self.evidence_bytes, self.evidence_dropped
            # the same keys: the report written from the copy masks every one seen so far
            copy.seen = self.seen
            return copy

    def model(self) -> str:
        """The model the requests asked for most, for the report's header."""
        named = [(n, m) for m, n in self.models.items() if m != OTHER]
        return max(named)[1] if named else "unknown"

    def stats(self) -> Stats:
        """The traffic as the reports' request statistics: what the proxy forwarded to the upstream."""
        broken = sum(
            self.outcomes[o] for o in (recording.UNREACHABLE, recording.UPSTREAM_CLOSED, recording.UPSTREAM_RESET)
        )
        by_status = {k: v for k, v in self.statuses.items() if k != "none"}
        return Stats(
            sent=self.exchanges,
            throttled=self.statuses.get("429", 0),
            retries=0,
            transport_errors=broken,
            by_status=by_status,
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Per requirement of the profile: exchanges judged and failed."""
        return {
            r: {
                "judged": self.requirements[r].judged if r in self.requirements else 0,
                "failed": self.requirements[r].failed if r in self.requirements else 0,
            }
            for r in requirements_for(self.profile)
        }

    def section(self, upstream: str, listen: str, limits: dict[str, int]) -> dict[str, Any]:
        """conformance.json's `proxy` section (schemas/conformance-result.json describes it)."""
        return {
            "upstream": upstream,
            "listen": listen,
            "exchanges": {
                "total": self.exchanges,
                "chat_completions": self.operation,
                "judged": self.judged,
                "streams": self.streams,
                "other_paths": self.exchanges - self.operation,
            },
            "outcomes": {name: self.outcomes[name] for name in recording.OUTCOMES if self.outcomes[name]},
            "by_status": dict(sorted(self.statuses.items())),
            "models": dict(self.models.most_common()),
            "requirements": self.counts(),
            "evidence_dropped": self.evidence_dropped,
            "limits": limits,
            "recent": list(self.recent),
        }
