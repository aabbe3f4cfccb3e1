"""Hook builders: request hooks that rewrite the parsed body, response hooks that edit completions, the events
of a stream or error answers, and the small helpers several areas' faults share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .core import Call, Reply, RequestHook, ResponseHook


def on_body(fix: Callable[[Any, Call], Any]) -> RequestHook:
    """A request hook that rewrites the parsed JSON body (left alone when it is not JSON)."""

    def hook(call: Call) -> None:
        body = call.json()
        if body is None:
            return None
        new = fix(body, call)
        call.set_json(body if new is None else new)
        return None

    return hook


def on_completion(change: Callable[[dict[str, Any], Call], None]) -> ResponseHook:
    """A response hook that edits every 200 JSON completion in place."""

    def hook(call: Call, reply: Reply) -> None:
        if reply.status == 200 and reply.is_json:
            doc = reply.json()
            change(doc, call)
            reply.set_json(doc, allow_nan=True)

    return hook


def on_chunks(change: Callable[[list[Any], Call], list[Any] | None]) -> ResponseHook:
    """A response hook that edits the events of every 200 stream: parsed chunks, "[DONE]" kept as text."""

    def hook(call: Call, reply: Reply) -> None:
        if reply.status != 200 or not reply.is_stream:
            return
        items: list[Any] = []
        for block in reply.body.decode().split("\n\n"):
            if block.startswith("data: "):
                data = block.removeprefix("data: ")
                items.append(data if data == "[DONE]" else json.loads(data))
        new = change(items, call)
        reply.body = render_events(items if new is None else new)

    return hook


def render_events(items: Iterable[Any]) -> bytes:
    out = []
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item, allow_nan=True, separators=(",", ":"))
        out.append(f"data: {data}\n\n")
    return "".join(out).encode()


def each_choice(change: Callable[[dict[str, Any]], None]) -> Callable[[Any, Call], None]:
    """Apply `change` to every choice of a completion or of a chunk."""

    def apply(doc: Any, call: Call) -> None:
        for choice in doc.get("choices") or []:
            change(choice)

    return apply


def chunk_each(change: Callable[[dict[str, Any], int], None]) -> Callable[[list[Any], Call], None]:
    """Apply `change(chunk, position)` to every chunk of a stream (not to [DONE])."""

    def apply(items: list[Any], call: Call) -> None:
        for position, item in enumerate(items):
            if isinstance(item, dict):
                change(item, position)

    return apply


def both(json_change: Callable[[dict[str, Any], Call], None],
         chunk_change: Callable[[list[Any], Call], list[Any] | None]) -> ResponseHook:
    """One fault shown in JSON answers and in streams alike."""
    first, second = on_completion(json_change), on_chunks(chunk_change)

    def hook(call: Call, reply: Reply) -> None:
        first(call, reply)
        second(call, reply)

    return hook


def on_error(statuses: Iterable[int], change: Callable[[Reply, Call], None]) -> ResponseHook:
    wanted = frozenset(statuses)

    def hook(call: Call, reply: Reply) -> None:
        if reply.status in wanted:
            change(reply, call)

    return hook


def _status(old: int, new: int) -> ResponseHook:
    def hook(call: Call, reply: Reply) -> None:
        if reply.status == old:
            reply.status = new

    return hook


def _sse_text(change: Callable[[str], str]) -> ResponseHook:
    def hook(call: Call, reply: Reply) -> None:
        if reply.status == 200 and reply.is_stream:
            reply.body = change(reply.body.decode()).encode()

    return hook


def _logprob_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for choice in doc.get("choices") or []:
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            out += [e for e in logprobs.get("content") or [] if isinstance(e, dict)]
    return out


def _tool_calls(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [call for choice in doc.get("choices") or []
            for call in (choice.get("message") or {}).get("tool_calls") or []]


def _is_stream(body: Any) -> bool:
    return isinstance(body, dict) and body.get("stream") is True


def _sse_error(message: str) -> Reply:
    event = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return Reply(200, [("content-type", "text/event-stream")], f"event: error\ndata: {event}\n\n".encode())
