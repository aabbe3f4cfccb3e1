"""Scenario groups shared by the suite modules."""

from __future__ import annotations

from conformance.checks import Violation
from conformance.exchange import Exchange
from conformance.plugin import Judge

# non-streaming scenarios whose 200 responses are judged for shape and JSON hygiene
COMPLETIONS = ("basic", "n2", "max_tokens_1", "logprobs", "tools", "json_object")
REFUSALS = ("no_key", "empty_key", "wrong_key")


def completions(judge: Judge, scenarios: tuple[str, ...] = COMPLETIONS) -> list[Exchange]:
    """The successful exchanges among `scenarios`; the run fails here if there is none to judge."""
    exchanges = [judge.exchange(s) for s in scenarios]
    ok = [e for e in exchanges if e.ok]
    if not ok:
        judge([Violation(judge.requirement or "", f"no 200 response to judge: {exchanges[0].describe()}")])
    return ok


def needs_ok(judge: Judge, scenario: str) -> Exchange | None:
    """The exchange of a scenario that must have succeeded, or a violation of this requirement saying why not."""
    exchange = judge.exchange(scenario)
    if exchange.ok:
        return exchange
    detail = exchange.error or (exchange.response.text[:200] if exchange.response is not None else "")
    judge([Violation(judge.requirement or "", f"the request was not answered with 2xx: "
                                              f"{exchange.describe()} {detail}".strip(), scenario=scenario)])
    return None
