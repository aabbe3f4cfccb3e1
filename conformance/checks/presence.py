"""Keys that OpenAI always sends: present even when their value is null (RESP-010, openai profile only).

OpenAI's schema makes `object`, `choices[].logprobs`, `message.content`, `message.refusal` and a chunk
choice's `finish_reason` required but nullable; strict clients generated from it fail on a body that omits
them. The SGP contract leaves them optional, so the rule applies to the openai profile alone.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import Violation
from conformance.checks.streaming import chunks
from conformance.checks.transport import is_event_stream, judged_json, unjudgeable
from conformance.transport.exchange import Exchange

REQUIREMENT = "RESP-010"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _missing(owner: Any, keys: tuple[str, ...], where: str, scenario: str) -> list[Violation]:
    if not isinstance(owner, dict):
        return []
    return [Violation(REQUIREMENT, f"missing key {key!r} (OpenAI sends it, null when empty)", f"{where}/{key}",
                      scenario) for key in keys if key not in owner]


def openai_keys(exchange: Exchange) -> list[Violation]:
    """RESP-010: the always-present keys of a completion (object, choices[].logprobs, message.content,
    message.refusal) or of every chunk choice (finish_reason)."""
    stop = unjudgeable(exchange, REQUIREMENT)
    if stop:
        return [stop]
    out: list[Violation] = []
    if is_event_stream(exchange):
        for i, chunk in chunks(exchange):
            for j, choice in enumerate(_list(chunk.get("choices"))):
                out += _missing(choice, ("finish_reason",), f"/events/{i}/choices/{j}", exchange.scenario)
        return out
    body = judged_json(exchange)[0]
    if not isinstance(body, dict):
        return []
    out += _missing(body, ("object",), "", exchange.scenario)
    for j, choice in enumerate(_list(body.get("choices"))):
        out += _missing(choice, ("logprobs",), f"/choices/{j}", exchange.scenario)
        if isinstance(choice, dict):
            out += _missing(choice.get("message"), ("content", "refusal"), f"/choices/{j}/message",
                            exchange.scenario)
    return out
