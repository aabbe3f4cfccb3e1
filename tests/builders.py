"""Builders of exchanges and valid documents for unit tests.

Every builder returns a valid, conformant value by default; a test changes only what it is about
(`completion(model="x")`, `choice(finish_reason="length")`), so a failing check points at that change.
Import as `from builders import ...` (tests/ is on sys.path under pytest's default import mode).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from conformance.transport.exchange import Exchange, RequestSpec, Response

NOW = 1_700_000_000  # the client clock of the tests (Unix seconds), and `created` of every document
MODEL = "gpt-4o-mini"
ID = "chatcmpl-123"
KEY = "sk-test-key-0123456789abcdef"
PROMPT = [{"role": "user", "content": "Say hello."}]

_UNSET: Any = object()


def usage(prompt: int = 5, completion: int = 3, total: int | None = None, **extra: Any) -> dict[str, Any]:
    """A usage object; `total` defaults to prompt + completion."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion if total is None else total,
        **extra,
    }


def top_entry(token: str, logprob: float = -0.1) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def logprob_entry(
    token: str, logprob: float = -0.1, top: list[dict[str, Any]] | None = None, bytes_: Any = _UNSET
) -> dict[str, Any]:
    """A logprobs.content entry; `top` defaults to [the token itself, one less likely token]."""
    entry: dict[str, Any] = {"token": token, "logprob": logprob}
    entry["bytes"] = list(token.encode("utf-8")) if bytes_ is _UNSET else bytes_
    entry["top_logprobs"] = (
        top if top is not None else [top_entry(token, logprob), top_entry("x", logprob - 1)]
    )
    return entry


def logprobs(tokens: Iterable[str] = ("Hel", "lo!")) -> dict[str, Any]:
    """A choice's logprobs with one entry per token (and refusal null, as OpenAI sends it)."""
    return {"content": [logprob_entry(t) for t in tokens], "refusal": None}


def tool_call(
    call_id: str = "call_1", name: str = "get_weather", arguments: str = '{"city": "Paris"}'
) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def message(content: str | None = "Hello!", **extra: Any) -> dict[str, Any]:
    """An assistant message with the keys OpenAI always sends (refusal null)."""
    return {"role": "assistant", "content": content, "refusal": None, **extra}


def choice(
    index: int = 0,
    content: str | None = "Hello!",
    finish_reason: Any = "stop",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: Any = _UNSET,
    **overrides: Any,
) -> dict[str, Any]:
    """A choice (logprobs null unless given, as OpenAI sends it); with `tool_calls` the message carries
    them (content stays as given)."""
    msg = message(content)
    if tool_calls is not None:
        msg["tool_calls"] = tool_calls
    out: dict[str, Any] = {"index": index, "message": msg, "finish_reason": finish_reason,
                           "logprobs": None if logprobs is _UNSET else logprobs}
    out.update(overrides)
    return out


def completion(**overrides: Any) -> dict[str, Any]:
    """A valid chat.completion; keyword arguments replace top-level fields (`usage=None` sends null,
    `drop=("usage",)` removes keys)."""
    drop = overrides.pop("drop", ())
    doc: dict[str, Any] = {
        "id": ID,
        "object": "chat.completion",
        "created": NOW,
        "model": MODEL,
        "choices": [choice()],
        "usage": usage(),
    }
    doc.update(overrides)
    for key in drop:
        doc.pop(key, None)
    return doc


def chunk(
    delta: dict[str, Any] | None = None,
    index: int = 0,
    finish_reason: Any = None,
    *,
    logprobs: Any = _UNSET,
    choices: list[Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A chat.completion.chunk with one choice (or `choices` as given); `logprobs` goes into that choice,
    other keyword arguments replace top-level fields (e.g. `usage=usage()`)."""
    doc: dict[str, Any] = {"id": ID, "object": "chat.completion.chunk", "created": NOW, "model": MODEL}
    if choices is None:
        choices = [{"index": index, "delta": {} if delta is None else delta, "finish_reason": finish_reason}]
        if logprobs is not _UNSET:
            choices[0]["logprobs"] = logprobs
    doc["choices"] = choices
    doc.update(overrides)
    return doc


def stream_chunks(
    contents: Sequence[str] = ("Hel", "lo!"),
    n: int = 1,
    finish_reason: str = "stop",
    include_usage: bool = False,
) -> list[dict[str, Any]]:
    """The chunks of a conformant stream: per choice a role chunk, the content pieces, a finish chunk
    (choices interleaved when n > 1), then with `include_usage` a usage chunk with choices []."""
    out: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""}, i) for i in range(n)]
    for piece in contents:
        out += [chunk({"content": piece}, i) for i in range(n)]
    out += [chunk({}, i, finish_reason) for i in range(n)]
    if include_usage:
        out.append(chunk(choices=[], usage=usage(5, 3 * n)))
    return out


def sse_body(chunks: Iterable[Any], terminator: str | None = "[DONE]") -> bytes:
    """SSE text: one `data:` event per chunk (dicts as JSON, strings as given), then the terminator."""
    events = [c if isinstance(c, str) else json.dumps(c) for c in chunks]
    if terminator is not None:
        events.append(terminator)
    return "".join(f"data: {e}\n\n" for e in events).encode("utf-8")


def make_exchange(
    scenario: str = "test",
    status: int = 200,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    body: Any = _UNSET,
    params: dict[str, Any] | None = _UNSET,
    stream: bool = False,
    *,
    error: str | None = None,
    no_response: bool = False,
    truncated: str | None = None,
    request_headers: dict[str, str] | None = None,
) -> Exchange:
    """An exchange as the client would record it.

    body: dict, list, None or a number (sent as JSON, NaN allowed so tests can build invalid bodies),
    str (UTF-8) or bytes (as is); default a conformant completion, or with `stream` a conformant SSE stream.
    headers: the response headers, replacing the defaults (Content-Type for the body, x-request-id).
    params: the request body; default a minimal request (with stream: true when `stream`); None for a
    request whose body was not JSON.
    no_response: a transport failure (with `error`) and no response at all.
    """
    if params is _UNSET:
        params = {"model": MODEL, "messages": PROMPT, **({"stream": True} if stream else {})}
    request = RequestSpec(
        scenario=scenario,
        headers=dict(request_headers) if request_headers is not None else {"x-api-key": KEY},
        body=json.dumps(params).encode("utf-8") if params is not None else None,
        params=params,
        stream=stream,
    )
    response: Response | None = None
    if not no_response:
        if body is _UNSET:
            body = sse_body(stream_chunks()) if stream else completion()
        if body is None or isinstance(body, (dict, list, int, float)):
            raw = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = bytes(body)
        if headers is None:
            media = "text/event-stream" if stream else "application/json"
            header_list = [("content-type", media), ("x-request-id", "req-1")]
        else:
            header_list = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        response = Response(status=status, headers=header_list, body=raw, truncated=truncated)
    return Exchange(
        scenario=scenario,
        url="http://test/v4/beta/chat/completions",
        request=request,
        response=response,
        error=error,
    )


# --- changing a document at every place ---------------------------------------------------------------------

# the value `replaced` takes to mean "the field is gone"
DELETED = object()


def paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document, the document itself first: tuples of keys and indexes."""
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from paths(child, (*path, key))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `doc` with `value` at `path` (DELETED: the key or item removed); `doc` stays as it was."""
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETED:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out
