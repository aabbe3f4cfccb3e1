"""Scenario groups shared by the suite modules."""

from __future__ import annotations

from conformance.checks import Violation
from conformance.checks.transport import is_event_stream
from conformance.exchange import Exchange
from conformance.plugin import Judge

# non-streaming scenarios whose 200 responses are judged for shape and JSON hygiene
COMPLETIONS = ("basic", "n2", "max_tokens_1", "logprobs", "tools", "json_object")
REFUSALS = ("no_key", "empty_key", "wrong_key")


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
        return f"{exchange.scenario}: HTTP {response.status} cut short: {exchange.error}"
    detail = exchange.error or (response.text[:200] if response is not None else "")
    return f"the request was not answered with 2xx: {exchange.describe()} {detail}".strip()


def completions(judge: Judge, scenarios: tuple[str, ...] = COMPLETIONS) -> list[Exchange]:
    """The successful exchanges among `scenarios`; the run fails here if there is none to judge."""
    exchanges = [judge.exchange(s) for s in scenarios]
    ok = [e for e in exchanges if e.ok]
    if not ok:
        first = exchanges[0]
        cut = first.response is not None and 200 <= first.response.status < 300
        message = why_not(first) if cut else f"no 200 response to judge: {why_not(first)}"
        judge([Violation(judge.requirement or "", message)])
    return ok


def needs_ok(judge: Judge, scenario: str) -> Exchange | None:
    """The exchange of a scenario that must have succeeded, or a violation of this requirement saying why not."""
    exchange = judge.exchange(scenario)
    if judgeable(exchange):
        return exchange
    judge([Violation(judge.requirement or "", why_not(exchange), scenario=scenario)])
    return None
