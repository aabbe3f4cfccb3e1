"""Scenario groups and helpers shared by the suite modules."""

from __future__ import annotations

from conformance.suite.judge import Judge
from conformance.suite.needs import judgeable
from conformance.transport.exchange import Exchange

# non-streaming scenarios whose 200 responses are judged for shape and JSON hygiene
COMPLETIONS = ("basic", "n2", "max_tokens_1", "logprobs", "tools", "json_object")
REFUSALS = ("no_key", "empty_key", "wrong_key")
STREAM_REFUSALS = ("stream_no_key", "stream_empty_key", "stream_wrong_key")


def completions(judge: Judge, scenarios: tuple[str, ...] = COMPLETIONS) -> list[Exchange]:
    """The 2xx exchanges among `scenarios` (their requirement declares Answered("basic"), so there is one)."""
    return [e for e in (judge.exchange(s) for s in scenarios) if judgeable(e)]


def answered(judge: Judge, scenarios: tuple[str, ...], statuses: tuple[int, ...]) -> list[Exchange]:
    """The exchanges among `scenarios` answered with one of `statuses`."""
    return [e for e in (judge.exchange(s) for s in scenarios) if e.status in statuses]
