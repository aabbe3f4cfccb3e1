"""Faults of streaming (STRM): the stream mislabelled, events outside the SSE fields, [DONE] missing or
followed, chunks whose ids, roles, finish reasons, indices, timestamps or usage are wrong.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from .core import OPENAI, SGP, Call, Mutant, Reply
from .hooks import _sse_text, chunk_each, on_chunks

_M = Mutant


def _stream_as_json(call: Call, reply: Reply) -> None:
    if reply.status == 200 and reply.is_stream:
        reply.set_header("content-type", "application/json")


def _text_outside_fields(text: str) -> str:
    # a JSON line without its `data:` field: every client drops it
    return text.replace("data: ", "", 1)


def _keepalive(items: list[Any], call: Call) -> list[Any]:
    return [items[0], "keep-alive", *items[1:]]


def _drop_done(items: list[Any], call: Call) -> list[Any]:
    return [i for i in items if i != "[DONE]"]


def _after_done(items: list[Any], call: Call) -> list[Any]:
    chunks = [i for i in items if isinstance(i, dict)]
    return [*items, copy.deepcopy(chunks[-1])]


def _chunk_drop(key: str) -> Callable[[dict[str, Any], int], None]:
    def change(chunk: dict[str, Any], position: int) -> None:
        chunk.pop(key, None)

    return change


def _chunk_finish_unknown(chunk: dict[str, Any], position: int) -> None:
    for choice in chunk.get("choices") or []:
        if choice.get("finish_reason"):
            choice["finish_reason"] = "done"


def _chunk_role(chunk: dict[str, Any], position: int) -> None:
    for choice in chunk.get("choices") or []:
        if "role" in (choice.get("delta") or {}):
            choice["delta"]["role"] = "bot"


def _chunk_id_varies(chunk: dict[str, Any], position: int) -> None:
    chunk["id"] = f"{chunk['id']}-{position}"


def _chunk_drop_role(chunk: dict[str, Any], position: int) -> None:
    for choice in chunk.get("choices") or []:
        (choice.get("delta") or {}).pop("role", None)


def _finish_twice(items: list[Any], call: Call) -> list[Any]:
    out: list[Any] = []
    for item in items:
        out.append(item)
        if isinstance(item, dict) and any(c.get("finish_reason") for c in item.get("choices") or []):
            out.append(copy.deepcopy(item))
    return out


def _drop_usage_chunk(items: list[Any], call: Call) -> list[Any]:
    return [i for i in items if not (isinstance(i, dict) and i.get("choices") == [] and i.get("usage"))]


def _usage_chunk_off(items: list[Any], call: Call) -> None:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("usage"), dict):
            item["usage"]["total_tokens"] += 1


def _chunk_created_varies(chunk: dict[str, Any], position: int) -> None:
    chunk["created"] += position


def _chunk_model_varies(chunk: dict[str, Any], position: int) -> None:
    if position:
        chunk["model"] = f"{chunk['model']}-replica-{position % 2}"


def _chunk_index_from_one(chunk: dict[str, Any], position: int) -> None:
    for choice in chunk.get("choices") or []:
        choice["index"] += 1


def _tool_fragments(items: list[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(choice, fragment) of every tool-call fragment of the stream, in order."""
    return [(choice, fragment) for item in items if isinstance(item, dict) for choice in item.get("choices") or []
            for fragment in (choice.get("delta") or {}).get("tool_calls") or []]


def _repeat_call_identity(items: list[Any], call: Call) -> None:
    # a gateway that stamps id, type and name on every fragment of the call
    first: dict[tuple[int, int], dict[str, Any]] = {}
    for choice, fragment in _tool_fragments(items):
        key = (choice["index"], fragment["index"])
        if key not in first:
            first[key] = fragment
            continue
        fragment.update(id=first[key]["id"], type=first[key]["type"])
        fragment.setdefault("function", {})["name"] = first[key]["function"]["name"]


def _call_id_changes(items: list[Any], call: Call) -> None:
    # a server that sends another id with each later fragment
    seen: set[tuple[int, int]] = set()
    for position, (choice, fragment) in enumerate(_tool_fragments(items)):
        key = (choice["index"], fragment["index"])
        if key in seen:
            fragment["id"] = f"call_later{position}"
        seen.add(key)


def _cumulative_content(items: list[Any], call: Call) -> None:
    # each content delta carries the whole text so far instead of the increment
    so_far: dict[int, str] = {}
    for item in items:
        for choice in item.get("choices") or [] if isinstance(item, dict) else []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                so_far[choice["index"]] = so_far.get(choice["index"], "") + delta["content"]
                delta["content"] = so_far[choice["index"]]


def _cumulative_arguments(items: list[Any], call: Call) -> None:
    # each fragment of a tool call's arguments carries all the arguments so far
    so_far: dict[tuple[int, int], str] = {}
    for choice, fragment in _tool_fragments(items):
        function = fragment.get("function") or {}
        if function.get("arguments"):
            key = (choice["index"], fragment["index"])
            so_far[key] = so_far.get(key, "") + function["arguments"]
            function["arguments"] = so_far[key]


def _role_every_delta(chunk: dict[str, Any], position: int) -> None:
    for choice in chunk.get("choices") or []:
        if isinstance(choice.get("delta"), dict):
            choice["delta"]["role"] = "assistant"


# how long the clock-stamping mutant's streams last: over a second, so the clock always ticks inside one
PACED_S = 1.2


def _clock_stamped(items: list[Any], call: Call) -> None:
    # created from the clock as each chunk leaves, the events spread over PACED_S (Mutant.stream_seconds)
    start = time.time()
    step = PACED_S / max(len(items) - 1, 1)
    for position, item in enumerate(items):
        if isinstance(item, dict):
            item["created"] = int(start + position * step)


MUTANTS: dict[str, Mutant] = {
    "strm_labelled_json": _M("streams are labelled application/json", "STRM-001", (SGP,), response=_stream_as_json),
    "strm_text_outside_fields": _M("a chunk's JSON is sent without its data: field", "STRM-002", (SGP,),
                                   response=_sse_text(_text_outside_fields)),
    "strm_keepalive_not_json": _M("a data: keep-alive event inside the stream", "STRM-003", (SGP,),
                                  response=on_chunks(_keepalive)),
    "strm_no_done": _M("no [DONE] at the end (openai)", "STRM-004", (OPENAI,), response=on_chunks(_drop_done)),
    "strm_chunk_after_done": _M("a chunk after [DONE] (openai)", "STRM-006", (OPENAI,),
                                response=on_chunks(_after_done)),
    "strm_chunk_id_missing": _M("chunks have no id", "STRM-010", (SGP,),
                                response=on_chunks(chunk_each(_chunk_drop("id")))),
    "strm_finish_reason_unknown": _M('chunk finish_reason "done"', "STRM-011", (SGP,),
                                     response=on_chunks(chunk_each(_chunk_finish_unknown))),
    "strm_delta_role_wrong": _M('delta role "bot"', "STRM-012", (SGP,), response=on_chunks(chunk_each(_chunk_role))),
    "strm_ids_vary": _M("every chunk has its own id", "STRM-013", (OPENAI,),
                        response=on_chunks(chunk_each(_chunk_id_varies))),
    "strm_role_missing": _M("no delta carries the role", "STRM-014", (SGP,),
                            response=on_chunks(chunk_each(_chunk_drop_role))),
    "strm_finish_twice": _M("the finishing chunk is sent twice", "STRM-015", (SGP,), response=on_chunks(_finish_twice)),
    "strm_usage_chunk_missing": _M("include_usage is ignored: no usage chunk", "STRM-016", (SGP,),
                                   response=on_chunks(_drop_usage_chunk)),
    "strm_usage_chunk_off": _M("the usage chunk does not add up", "STRM-016", (OPENAI,),
                               response=on_chunks(_usage_chunk_off)),
    "strm_created_varies": _M("created changes from chunk to chunk", "STRM-019", (SGP,),
                              response=on_chunks(chunk_each(_chunk_created_varies))),
    "strm_tool_identity_every_fragment": _M("a streamed tool call repeats id, type and name in every fragment",
                                            "STRM-020", (OPENAI,), response=on_chunks(_repeat_call_identity)),
    "strm_tool_id_changes": _M("a streamed tool call's later fragments carry another id", "STRM-020", (SGP,),
                               response=on_chunks(_call_id_changes)),
    "strm_cumulative_content": _M("content deltas carry the whole text so far", "STRM-021", (SGP,),
                                  response=on_chunks(_cumulative_content)),
    "strm_cumulative_arguments": _M("tool-call argument fragments carry all the arguments so far", "STRM-021",
                                    (OPENAI,), response=on_chunks(_cumulative_arguments)),
    "strm_role_every_delta": _M('every delta repeats role "assistant" (the openai SDK joins them)', "STRM-022",
                                (OPENAI,), response=on_chunks(chunk_each(_role_every_delta))),
    # at --concurrency 8 its paced streams overlap, as a user's run would send them
    "strm_created_from_the_clock": _M("each chunk's created is the clock as it leaves, streams last over a second",
                                      "STRM-019", (OPENAI,), response=on_chunks(_clock_stamped),
                                      stream_seconds=PACED_S, run_args=("--concurrency", "8")),
    "strm_model_varies": _M("model changes from chunk to chunk (a replica's name)", "STRM-023", (SGP,),
                            response=on_chunks(chunk_each(_chunk_model_varies))),
    "strm_indices_from_one": _M("stream choice indices start at 1", "STRM-017", (SGP,),
                                response=on_chunks(chunk_each(_chunk_index_from_one))),
}
