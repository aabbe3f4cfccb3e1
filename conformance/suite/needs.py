"""What a requirement needs before its rule can be applied, declared as data beside its test.

`@requirement("SEM-007", "max_tokens_1", needs=(Answered("max_tokens_1"), Held("SEM-006", ...)))` says that
SEM-007 can only be judged on a whole 2xx answer to `max_tokens_1` on which SEM-006 (the limit is kept)
holds. The Judge checks the needs, in order, before the test body runs. A need that is not met makes the
requirement `not judged`, naming the requirement that reports the cause (`needs BASIC-001`), so one fault
is reported once and the requirements that depend on it point at it. The requirement that owns the cause
is the one that fails: a need whose owner is the requirement being judged returns that failure instead.

Owners: the minimal request (`basic`) belongs to BASIC-001; every other valid scenario to the requirement
that names it in `scenarios.OWNERS` (the `tools` request belongs to TOOL-001); a 5xx to a request that
ought to be refused belongs to ERR-005; a streamed request that gets no 2xx while the minimal stream gets
none either to STRM-001 (stream_refused); a stream answered as JSON to STRM-001, with broken framing to
STRM-002, without chunks to STRM-017 (or STRM-003 when its events are not JSON objects).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from conformance.checks import Violation, findings
from conformance.checks.streaming import assemble, chunks, sse_framing
from conformance.checks.transport import is_event_stream, judged_json
from conformance.suite.scenarios import OWNERS
from conformance.transport.exchange import Exchange

NOT_JUDGED, NOT_RUN = "not judged", "not run"
# requirement: the requirements whose failure on the same answer makes its own finding a consequence (the
# Held needs of the scripted tests say the same); used where findings are gathered without needs (the
# generated cases): one fault, one failure
CONSEQUENCE_OF: dict[str, tuple[str, ...]] = {
    "SEM-007": ("RESP-003", "SEM-006"),
    "SEM-008": ("RESP-003", "SEM-006", "SEM-007"),
    "TOOL-004": ("RESP-003",),
    "STRM-004": ("STRM-006",),
    "STRM-014": ("STRM-002", "STRM-012"),
    "STRM-015": ("STRM-006",),
    "STRM-016": ("STRM-006",),
    "STRM-017": ("STRM-010", "STRM-011", "STRM-012", "STRM-015"),
    "ERR-003": ("ERR-001",),
}
BASIC = "basic"
STREAM = "stream"
# 4xx statuses that mean "refused"; 429 means "not now", which no rule of refusal can judge
REFUSAL = tuple(s for s in range(400, 500) if s != 429)


class Judge(Protocol):
    """What a need reads of the test that declares it (conformance.suite.judge.Judge is one)."""

    requirement: str | None
    run: Any

    def exchange(self, scenario: str) -> Exchange: ...


class Unmet(Exception):
    """A need that is not met: the requirement is `status` (not judged / not run) for `reason`; `needs` is
    the requirement that reports the cause, where one does."""

    def __init__(self, reason: str, needs: str | None = None, status: str = NOT_JUDGED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needs = needs
        self.status = status


def judgeable(exchange: Exchange) -> bool:
    """A 2xx that arrived whole, or a 2xx stream the client cut at its own limit: the stream checks judge
    what arrived and say what the cut leaves unknown (an endless stream is a finding, not a lost run)."""
    if exchange.ok:
        return True
    response = exchange.response
    return (response is not None and 200 <= response.status < 300 and response.truncated is not None
            and is_event_stream(exchange))


def why_not(exchange: Exchange) -> str:
    """Why an exchange cannot be judged as a success, in one line."""
    response = exchange.response
    if response is not None and 200 <= response.status < 300 and exchange.error:
        return f"HTTP {response.status} cut short: {exchange.error}"
    if response is None:
        return f"no answer: {exchange.error or 'transport error'}"
    media = response.media_type
    if media and media != "application/json" and not media.endswith("+json"):
        # an HTML error page says "a gateway" in its media type better than in its markup
        return f"HTTP {response.status} ({media})"
    detail = response.text[:160].strip().replace("\n", " ")
    return f"HTTP {response.status}" + (f" {detail}" if detail else "")


def scenario_owner(scenario: str) -> str | None:
    return OWNERS.get(scenario)


def stream_refused(judge: Judge) -> str | None:
    """Why the minimal streamed request (`stream`, STRM-001's) got no 2xx, or None when it got one (or no
    answer at all, or the server declares streaming absent). While it gets none, no other streamed
    request's failure to get a 2xx can be laid at the door of what else that request carries: STRM-001
    reports the one fault (a gateway that answers every stream with a 500)."""
    if judge.requirement == "STRM-001" or "streaming" in (getattr(judge.run.config, "without", None) or ()):
        return None
    stream = judge.exchange(STREAM)
    if judgeable(stream) or stream.response is None:
        return None
    return why_not(stream)


def _basic_failed(judge: Judge) -> None:
    """Unmet(needs BASIC-001) when the minimal valid request itself got no 2xx: then no other outcome can be
    laid at the door of the feature a scenario exercises."""
    if judge.requirement == "BASIC-001":
        return
    basic = judge.exchange(BASIC)
    if not judgeable(basic):
        raise Unmet(f"the minimal valid request was not answered with 2xx ({why_not(basic)})", "BASIC-001")


@dataclass(frozen=True)
class Answered:
    """A whole 2xx answer to `scenario`. Unmet: the minimal request failed too (BASIC-001), no answer came
    (a timeout: no owner), a streamed request failed while the minimal stream failed too (STRM-001), or the
    scenario's owner reports it (the owner itself fails)."""

    scenario: str

    def check(self, judge: Judge) -> list[Violation]:
        exchange = judge.exchange(self.scenario)
        if judgeable(exchange):
            return []
        _basic_failed(judge)
        if exchange.response is None:
            raise Unmet(f"no answer to the {self.scenario} request: {exchange.error or 'transport error'}")
        if exchange.request.stream and self.scenario != STREAM:
            cause = stream_refused(judge)
            if cause is not None:
                raise Unmet(f"the minimal stream request was not answered with 2xx either ({cause})", "STRM-001")
        owner = scenario_owner(self.scenario)
        if owner is None or judge.requirement == owner:
            return [Violation(judge.requirement or "", f"not answered with 2xx: {why_not(exchange)}", "",
                              self.scenario)]
        raise Unmet(f"the {self.scenario} request was not answered with 2xx ({why_not(exchange)})", owner)

    def describe(self) -> str:
        return f"a 2xx answer to {self.scenario}"


@dataclass(frozen=True)
class Basic:
    """The minimal valid request was answered with 2xx: without that, a refusal proves nothing (a server
    that refuses everything refuses invalid requests too)."""

    def check(self, judge: Judge) -> list[Violation]:
        _basic_failed(judge)
        return []

    def describe(self) -> str:
        return "a 2xx answer to basic"


@dataclass(frozen=True)
class NoServerError:
    """`scenario` (a request that ought to be refused) was not answered with a 5xx: ERR-005 owns that."""

    scenario: str

    def check(self, judge: Judge) -> list[Violation]:
        exchange = judge.exchange(self.scenario)
        status = exchange.status
        if status is not None and status >= 500 and judge.requirement != "ERR-005":
            raise Unmet(f"the {self.scenario} request was answered with HTTP {status}", "ERR-005")
        if exchange.response is None:
            raise Unmet(f"no answer to the {self.scenario} request: {exchange.error or 'transport error'}")
        return []

    def describe(self) -> str:
        return f"no 5xx for {self.scenario}"


@dataclass(frozen=True)
class Refused:
    """At least one of `scenarios` was refused with one of `statuses`; `owner` reports it when none was."""

    scenarios: tuple[str, ...]
    owner: str
    statuses: tuple[int, ...] = REFUSAL

    def check(self, judge: Judge) -> list[Violation]:
        exchanges = [judge.exchange(s) for s in self.scenarios]
        if any(e.status in self.statuses for e in exchanges):
            return []
        seen = ", ".join(f"{e.scenario}: {e.status or 'no answer'}" for e in exchanges)
        raise Unmet(f"no request here was refused ({seen})", self.owner)

    def describe(self) -> str:
        return f"a refusal of {', '.join(self.scenarios)}"


@dataclass(frozen=True)
class Held:
    """Requirement `owner`'s rule holds on `scenario`: `rule(exchange)` finds nothing (SEM-007 judges a cut
    answer only where SEM-006 shows the limit kept: an uncut answer rightly says "stop")."""

    owner: str
    scenario: str
    rule: Callable[[Exchange], list[Violation]] = field(compare=False)

    def check(self, judge: Judge) -> list[Violation]:
        exchange = judge.exchange(self.scenario)
        if findings(v for v in self.rule(exchange) if v.requirement == self.owner):
            raise Unmet(f"{self.owner} fails on the {self.scenario} answer", self.owner)
        return []

    def describe(self) -> str:
        return f"{self.owner} holding on {self.scenario}"


@dataclass(frozen=True)
class Stream:
    """The answer to `scenario` is an event stream (STRM-001) with sound SSE framing when `whole` (STRM-002:
    rules about the end of a stream cannot be judged on events the framing lost) and at least one chunk
    when `chunks` (STRM-017 owns a stream without events, STRM-003 one whose events are not JSON objects)."""

    scenario: str = "stream"
    chunks: bool = True
    whole: bool = False

    def check(self, judge: Judge) -> list[Violation]:
        exchange = judge.exchange(self.scenario)
        if not is_event_stream(exchange):
            media = exchange.response.media_type if exchange.response is not None else "nothing"
            raise Unmet(f"the stream request was answered with {media or 'no Content-Type'}", "STRM-001")
        if self.whole and findings(sse_framing(exchange)):
            raise Unmet("the SSE framing is broken, events may be lost", "STRM-002")
        if self.chunks and not chunks(exchange):
            owner = "STRM-003" if exchange.events.events else "STRM-017"
            raise Unmet("the stream carried no chunks", owner)
        return []

    def describe(self) -> str:
        return f"chunks in the {self.scenario} stream"


def _documents(exchanges: Iterable[Exchange]) -> list[dict[str, Any]]:
    """The completion documents of 2xx exchanges: bodies, or assembled streams."""
    out: list[dict[str, Any]] = []
    for exchange in exchanges:
        if not judgeable(exchange):
            continue
        doc = assemble(exchange) if is_event_stream(exchange) else judged_json(exchange)[0]
        if isinstance(doc, dict):
            out.append(doc)
    return out


def _values(node: Any, path: Sequence[str]) -> Iterable[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            yield from _values(item, rest)
    elif isinstance(node, dict) and head in node:
        yield from _values(node[head], rest)


def present(documents: Iterable[Any], paths: Iterable[str]) -> bool:
    """Whether any document holds a non-null, non-empty value at any of `paths` ("choices.*.logprobs")."""
    split = [p.split(".") for p in paths]
    for doc in documents:
        for path in split:
            if any(v not in (None, [], {}) for v in _values(doc, path)):
                return True
    return False


@dataclass(frozen=True)
class Carried:
    """At least one 2xx answer among `scenarios` carries a value at one of `paths`; else `owner` (if any)
    reports its absence, or nothing does (the part is optional: "no response carried annotations")."""

    scenarios: tuple[str, ...]
    paths: tuple[str, ...]
    what: str
    owner: str | None = None

    def check(self, judge: Judge) -> list[Violation]:
        docs = _documents(judge.exchange(s) for s in self.scenarios)
        if not present(docs, self.paths):
            raise Unmet(f"no response carried {self.what}", self.owner)
        return []

    def describe(self) -> str:
        return f"{self.what} in an answer"


@dataclass(frozen=True)
class Configured:
    """A setting the requirement needs (`--account-id`): without it, the requirement is not run."""

    setting: str
    flag: str

    def check(self, judge: Judge) -> list[Violation]:
        if not getattr(judge.run.config, self.setting):
            raise Unmet(f"no {self.flag} configured", status=NOT_RUN)
        return []

    def describe(self) -> str:
        return self.flag


Need = Answered | Basic | NoServerError | Refused | Held | Stream | Carried | Configured
