"""A `Completion` as the documented JSON body, or as the chunks of a stream in OpenAI's framing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance.server.model import Choice, Completion

SYSTEM_FINGERPRINT = "fp_sgp_conformance_ref"
SERVICE_TIER = "default"


@dataclass(frozen=True)
class Envelope:
    """What every body or chunk of one answer shares."""

    id: str
    created: int
    model: str


def _tool_calls(choice: Choice) -> list[dict[str, Any]] | None:
    if choice.tool_call is None:
        return None
    call = choice.tool_call
    return [{"id": call.id, "type": "function", "function": {"name": call.name, "arguments": choice.text}}]


def _choice_logprobs(choice: Choice) -> dict[str, Any] | None:
    if choice.logprobs is None:
        return None
    return {"content": [entry.entry() for entry in choice.logprobs], "refusal": None}


def completion_body(completion: Completion, envelope: Envelope) -> dict[str, Any]:
    choices = []
    for choice in completion.choices:
        message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None}
        tool_calls = _tool_calls(choice)
        if tool_calls:
            message["tool_calls"] = tool_calls
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": _choice_logprobs(choice),
                "finish_reason": choice.finish_reason,
            }
        )
    return {
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": choices,
        "usage": completion.usage(),
        "service_tier": SERVICE_TIER,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _choice_deltas(choice: Choice) -> list[dict[str, Any]]:
    """The per-choice entries of the chunks that stream one choice, in order."""
    first: dict[str, Any] = {"role": "assistant", "content": "" if choice.tool_call is None else None}
    if choice.tool_call is not None:
        # OpenAI's order: id, type and name arrive once, then the arguments in pieces
        first["tool_calls"] = [
            {
                "index": 0,
                "id": choice.tool_call.id,
                "type": "function",
                "function": {"name": choice.tool_call.name, "arguments": ""},
            }
        ]
    entries = [{"index": choice.index, "delta": first, "logprobs": None, "finish_reason": None}]
    for position, token in enumerate(choice.tokens):
        if choice.tool_call is not None:
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": token}}]}
            logprobs = {"content": [], "refusal": None} if choice.logprobs is not None else None
        else:
            delta = {"content": token}
            logprobs = None
            if choice.logprobs is not None:
                logprobs = {"content": [choice.logprobs[position].entry()], "refusal": None}
        entries.append({"index": choice.index, "delta": delta, "logprobs": logprobs, "finish_reason": None})
    entries.append({"index": choice.index, "delta": {}, "logprobs": None, "finish_reason": choice.finish_reason})
    return entries


def chunks(completion: Completion, envelope: Envelope, *, include_usage: bool) -> Iterator[dict[str, Any]]:
    base: dict[str, Any] = {
        "id": envelope.id,
        "object": "chat.completion.chunk",
        "created": envelope.created,
        "model": envelope.model,
        "service_tier": SERVICE_TIER,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        # OpenAI's convention: with include_usage every chunk has the key, null until the last one
        base["usage"] = None
    per_choice = [_choice_deltas(choice) for choice in completion.choices]
    # choices interleave, one per chunk, as OpenAI streams n > 1: a client must route deltas by index
    for step in range(max((len(entries) for entries in per_choice), default=0)):
        for entries in per_choice:
            if step < len(entries):
                yield {**base, "choices": [entries[step]]}
    if include_usage:
        yield {**base, "choices": [], "usage": completion.usage()}


def sse_event(data: dict[str, Any] | str) -> bytes:
    text = (
        data if isinstance(data, str) else json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    )
    return f"data: {text}\n\n".encode()
