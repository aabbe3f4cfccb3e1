"""Negative controls: correct servers that read a point the contract leaves open another way than the
reference server does. The suite must fail no MUST against them, and report only what each one `allowed`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import between as _between
from .core import BOTH, OPENAI, SGP, Call, Mutant, Reply, json_reply
from .hooks import _sse_text, _status, both, chunk_each, on_body, on_chunks, on_completion, on_error
from .validation import _default_role

_M = Mutant
# how long the slow control takes on a seeded request, against the --timeout its run is given
SLOW_S = 2.5
_OPTIONAL_MESSAGE = ("content", "refusal", "tool_calls", "annotations", "audio", "function_call")
_OPTIONAL_DELTA = ("content", "refusal", "tool_calls", "function_call")


def _nulls(doc: dict[str, Any], call: Call) -> None:
    for key in ("service_tier", "system_fingerprint"):
        doc[key] = None
    for choice in doc.get("choices") or []:
        choice.setdefault("logprobs", None)
        message = choice.get("message") or {}
        for key in _OPTIONAL_MESSAGE:
            message.setdefault(key, None)


def _null_chunks(chunk: dict[str, Any], position: int) -> None:
    for key in ("service_tier", "system_fingerprint"):
        chunk[key] = None
    chunk.setdefault("usage", None)
    for choice in chunk.get("choices") or []:
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)
        delta = choice.get("delta") or {}
        for key in _OPTIONAL_DELTA:
            delta.setdefault(key, None)


def _absent_optionals(doc: dict[str, Any], call: Call) -> None:
    for key in ("object", "service_tier", "system_fingerprint"):
        doc.pop(key, None)
    for choice in doc.get("choices") or []:
        if choice.get("logprobs") is None:
            choice.pop("logprobs", None)
        message = choice.get("message") or {}
        for key in _OPTIONAL_MESSAGE:
            if message.get(key) is None:
                message.pop(key, None)


def _absent_chunk_optionals(chunk: dict[str, Any], position: int) -> None:
    for key in ("object", "service_tier", "system_fingerprint"):
        chunk.pop(key, None)
    if chunk.get("usage") is None:
        chunk.pop("usage", None)
    for choice in chunk.get("choices") or []:
        for key in ("logprobs", "finish_reason"):
            if choice.get(key) is None:
                choice.pop(key, None)


def _extra_everywhere(value: Any) -> None:
    if isinstance(value, dict):
        for child in list(value.values()):
            _extra_everywhere(child)
        value["x_vendor_extension"] = {"note": "extra keys are allowed", "n": 1}
    elif isinstance(value, list):
        for child in value:
            _extra_everywhere(child)


def _extra_keys(call: Call, reply: Reply) -> None:
    if reply.is_json:
        doc = reply.json()
        _extra_everywhere(doc)
        reply.set_json(doc)
    elif reply.status == 200 and reply.is_stream:
        on_chunks(chunk_each(lambda chunk, _: _extra_everywhere(chunk)))(call, reply)


def _add_done(items: list[Any], call: Call) -> list[Any]:
    return [*items, "[DONE]"]


def _nested_detail(reply: Reply, call: Call) -> None:
    body = reply.json()
    if isinstance(body.get("detail"), str):
        reply.set_json({"detail": {"detail": body["detail"]}})


def _sse_decorated(text: str) -> str:
    # comments, explicit event names, ids, retry and CRLF line ends: all valid SSE (WHATWG HTML §9.2)
    blocks = [b for b in text.split("\n\n") if b]
    out = [": stream opened", "retry: 3000", ""]
    for number, block in enumerate(blocks):
        out += [": keep-alive", "event: message", f"id: {number}", block, ""]
    return "\r\n".join(out) + "\r\n"


def _dated_model(doc: dict[str, Any], call: Call) -> None:
    if isinstance(doc.get("model"), str):
        doc["model"] = doc["model"] + "-2024-07-18"


def _dated_chunks(chunk: dict[str, Any], position: int) -> None:
    chunk["model"] = chunk["model"] + "-2024-07-18"


def _no_usage(doc: dict[str, Any], call: Call) -> None:
    doc.pop("usage", None)


def _strict_integers(call: Call) -> Reply | None:
    """pydantic's strict mode: 1.0 is no integer (refused in the profile's own error shape)."""
    from conformance.server import errors
    from conformance.server.errors import Issue

    body = call.json()
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens", "n", "top_logprobs", "seed", "top_k"):
            if isinstance(body.get(key), float):
                error = errors.invalid_request(call.profile, [Issue("int_type", (key,), "Input should be a valid "
                                                                   "integer", body[key])])
                return json_reply(error.status, error.body)
    return None


def _filtered_json_answer(call: Call, reply: Reply) -> None:
    body = call.json()
    fmt = body.get("response_format") if isinstance(body, dict) else None
    if reply.status == 200 and reply.is_json and isinstance(fmt, dict) and fmt.get("type") == "json_object":
        doc = reply.json()
        for choice in doc.get("choices") or []:
            choice["finish_reason"] = "content_filter"
            choice["message"]["content"] = None
        reply.set_json(doc)


def _x_api_key_too(call: Call) -> None:
    """An OpenAI-compatible gateway that also reads its key from x-api-key (LiteLLM does)."""
    value = call.headers.get("x-api-key", "")
    if call.profile.auth_header not in call.headers and value:
        call.headers[call.profile.auth_header] = call.profile.auth_prefix + value


def _slow_seeded(call: Call) -> float:
    body = call.json()
    return SLOW_S if isinstance(body, dict) and "seed" in body else 0.0


def _vendor_request_id(call: Call, reply: Reply) -> None:
    value = reply.header("x-request-id")
    reply.set_header("x-request-id", None)
    reply.set_header("x-litellm-call-id", value)


def _unknown_sse_field(text: str) -> str:
    # a field of a name clients do not know is ignored by them (WHATWG HTML §9.2.6)
    return text.replace("data: ", "x-vendor-trace: 0\ndata: ", 1)


def _lax_types(call: Call) -> None:
    """pydantic's lax mode: "2" is read as 2, 1 as true."""
    from conformance.contract.request_rules import lax_scalars

    body = call.json()
    if isinstance(body, dict):
        call.set_json(lax_scalars(body))


def _whole_tool_calls(items: list[Any], call: Call) -> list[Any]:
    """Each streamed tool call in one fragment: id, type, name and the whole arguments (vLLM and others)."""
    out: list[Any] = []
    held: dict[tuple[int, int], dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            out.append(item)
            continue
        keep = True
        for choice in item.get("choices") or []:
            delta = choice.get("delta") or {}
            for fragment in delta.get("tool_calls") or []:
                key = (choice["index"], fragment["index"])
                if key in held:
                    held[key]["function"]["arguments"] += (fragment.get("function") or {}).get("arguments", "")
                    keep = False
                else:
                    held[key] = fragment
        if keep:
            out.append(item)
    return out


def _quiet_later_fragments(items: list[Any], call: Call) -> None:
    """Later fragments say id null, name null and the same type again: the SDK joins nothing of them."""
    seen: set[tuple[int, int]] = set()
    for item in items:
        for choice in item.get("choices") or [] if isinstance(item, dict) else []:
            for fragment in (choice.get("delta") or {}).get("tool_calls") or []:
                key = (choice["index"], fragment["index"])
                if key in seen:
                    fragment.update(id=None, type="function")
                    fragment.setdefault("function", {})["name"] = None
                seen.add(key)


def _content_at_once(items: list[Any], call: Call) -> list[Any]:
    """All the text of a choice in one content delta, at the end, then its finish (a non-streaming backend
    behind a streaming front)."""
    texts: dict[int, str] = {}
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            for choice in item.get("choices") or []:
                # the finish chunk's delta is often {}: the text goes into that dict, not a new one
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    delta = choice["delta"] = {}
                if isinstance(delta.get("content"), str) and delta["content"]:
                    texts[choice["index"]] = texts.get(choice["index"], "") + delta.pop("content")
                if choice.get("finish_reason") and choice["index"] in texts:
                    delta["content"] = texts.pop(choice["index"])
        out.append(item)
    return out


def _ignore_extras(call: Call) -> None:
    """A server that takes logit_bias, metadata and parallel_tool_calls and ignores them (many backends do)."""
    body = call.json()
    if isinstance(body, dict) and {"logit_bias", "metadata", "parallel_tool_calls"} & set(body):
        call.set_json({k: v for k, v in body.items() if k not in ("logit_bias", "metadata", "parallel_tool_calls")})


def _conversation_id_too(call: Call, reply: Reply) -> None:
    """A conversation id (the same for the same conversation) beside a request id that is new each time."""
    reply.set_header("x-conversation-id", "conv-" + hashlib.sha256(call.body).hexdigest()[:24])


CONTROLS: dict[str, Mutant] = {
    "open_nulls": _M("null instead of absent for every optional field", None, BOTH,
                     response=both(_nulls, chunk_each(_null_chunks))),
    "open_absent_optionals": _M("optional fields absent instead of null", None, (SGP,),
                                response=both(_absent_optionals, chunk_each(_absent_chunk_optionals))),
    "open_extra_keys": _M("an extra key in every object of every JSON body and chunk", None, BOTH,
                          response=_extra_keys),
    "open_done_under_sgp": _M("data: [DONE] ends SGP streams", None, (SGP,), response=on_chunks(_add_done),
                              allowed=frozenset({"STRM-005"})),
    "open_refusal_403": _M("a refused key gets 403 instead of 401", None, BOTH, response=_status(401, 403)),
    "open_nested_detail": _M('auth errors as {"detail": {"detail": ...}}', None, (SGP,),
                             response=on_error((401, 403, 404), _nested_detail)),
    "open_dated_model": _M("model answered with a dated version of the requested one", None, BOTH,
                           response=both(_dated_model, chunk_each(_dated_chunks))),
    "open_sse_decorated": _M("SSE comments, event names, ids, retry and CRLF line ends", None, BOTH,
                             response=_sse_text(_sse_decorated)),
    "open_no_usage": _M("no usage in non-streamed completions", None, (SGP,), response=on_completion(_no_usage)),
    "open_strict_integers": _M("integers must be JSON integers: 1.0 is refused (pydantic strict)", None, BOTH,
                               request=_strict_integers),
    "open_roleless_messages": _M("a message without role is served as a user message (sgp: free-form messages)",
                                 None, (SGP,), request=on_body(_default_role), allowed=frozenset({"VAL-005"})),
    "open_json_filtered": _M("a json_object answer cut by content_filter, content null", None, BOTH,
                             response=_filtered_json_answer),
    "open_x_api_key_too": _M("an openai server that also takes its key from x-api-key (LiteLLM)", None, (OPENAI,),
                             request=_x_api_key_too, allowed=frozenset({"AUTH-004"})),
    # at --concurrency 8 (the slow target's in benchmarks/run.py) its requests' time-outs overlap, as a user's
    # run would send them (one at a time they were 14 s of waiting); the concurrency probe's requests alone go
    # one at a time, so it sends two pairs, the fewest that overlap (and the second of them streamed)
    "open_slow_seeded": _M(f"seeded requests take {SLOW_S} s, longer than the run's --timeout 1", None, (SGP,),
                           delay=_slow_seeded,
                           run_args=("--timeout", "1", "--concurrency", "8", "--concurrency-probe", "2")),
    "open_vendor_request_id": _M("the request id comes as x-litellm-call-id", None, BOTH, response=_vendor_request_id),
    "open_sse_unknown_field": _M("SSE fields of a name clients ignore (x-vendor-trace)", None, BOTH,
                                 response=_sse_text(_unknown_sse_field)),
    "open_tool_call_whole": _M("a streamed tool call comes whole in one fragment", None, BOTH,
                               response=on_chunks(_whole_tool_calls)),
    "open_tool_fragments_null": _M("later tool-call fragments say id null, name null and type function", None, BOTH,
                                   response=on_chunks(_quiet_later_fragments)),
    "open_content_at_once": _M("a choice's whole text in one delta, with its finish_reason", None, BOTH,
                               response=on_chunks(_content_at_once)),
    "open_ignores_extras": _M("logit_bias, metadata and parallel_tool_calls accepted and ignored", None, BOTH,
                              request=_ignore_extras),
    "open_conversation_id_too": _M("an x-conversation-id that repeats, beside a fresh x-request-id", None, BOTH,
                                   response=_conversation_id_too),
    # at --concurrency 8 the slow streams overlap, as a user's run against a slow server would send them; the
    # concurrency probe's requests alone go one at a time, so it sends two pairs, the fewest that overlap
    # (and the second of them streamed)
    "open_slow_streams": _M("streams last over a second, created the same in every chunk", None, BOTH,
                            stream_seconds=1.2, response=lambda call, reply: None,
                            run_args=("--concurrency", "8", "--concurrency-probe", "2")),
    "open_lax_types": _M('pydantic lax mode: "2" read as 2, 1 as true', None, (SGP,), request=_lax_types),
}
# the controls of the rules between requests (issue 25) live beside their mutants
CONTROLS.update(_between.CONTROLS)
