"""Properties of the reference server over generated valid requests, streamed or not."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.contract import schema_store
from conformance.server import RunningServer
from conformance.server.model import structured_hint
from conformance.transport import sse, strictjson

MODEL = "openai/gpt-4o-mini"
PROFILES = ["sgp", "openai"]
EXAMPLES_PER_PROFILE = 25
Factory = Callable[..., RunningServer]

_WORDS = [
    "hello",
    "world",
    "fox",
    "naïve",
    "café",
    "日本",
    "🌍",
    "a",
    "the",
    ",",
    ".",
    "!",
    "  ",
    "\n",
    "x-y",
]
texts = st.one_of(
    st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join),
    st.text(st.characters(codec="utf-8"), max_size=24),
)
content = st.one_of(
    texts,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), min_size=1, max_size=3),
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant"]), "content": content}
    ),
    min_size=1,
    max_size=3,
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 2},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 5},
                    "exact": {"type": "boolean"},
                },
                "required": ["query"],
            },
        },
    },
    {"type": "function", "function": {"name": "noop"}},
    {
        "type": "function",
        "function": {
            "name": "tag",
            "parameters": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
            },
        },
    },
]
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "confidence"],
}
response_formats = st.sampled_from(
    [
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "out", "schema": OUTPUT_SCHEMA}},
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request body: only combinations the contract accepts."""
    body = draw(
        st.fixed_dictionaries(
            {"model": st.just(MODEL), "messages": messages},
            optional={
                "n": st.integers(1, 3),
                "max_tokens": st.integers(1, 16),
                "max_completion_tokens": st.integers(1, 16),
                "stop": st.one_of(st.text(min_size=1, max_size=3), st.lists(st.text(max_size=3), max_size=4)),
                "response_format": response_formats,
                "seed": st.integers(-(2**63), 2**63 - 1),
                "temperature": st.floats(0, 2),
            },
        )
    )
    if draw(st.booleans()):
        body["logprobs"] = draw(st.booleans())
        if body["logprobs"] and draw(st.booleans()):
            body["top_logprobs"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        tools = draw(
            st.lists(
                st.sampled_from(TOOLS), min_size=1, max_size=3, unique_by=lambda t: t["function"]["name"]
            )
        )
        body["tools"] = tools
        named = [{"type": "function", "function": {"name": t["function"]["name"]}} for t in tools]
        choice = draw(st.sampled_from([None, "none", "auto", "required", *named]))
        if choice is not None:
            body["tool_choice"] = choice
    if draw(st.booleans()):
        body["stream"] = True
        if draw(st.booleans()):
            body["stream_options"] = {"include_usage": draw(st.booleans())}
    return body


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


# --- what a response must satisfy, given its request --------------------------------------------------


def expected_echo(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    text = ""
    if users:
        last = users[-1]["content"]
        text = last if isinstance(last, str) else "".join(part["text"] for part in last)
    return text if text.strip() else "Hello"


def token_limit(body: dict[str, Any]) -> int | None:
    limits = [body[k] for k in ("max_tokens", "max_completion_tokens") if k in body]
    return min(limits) if limits else None


def expected_tool(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice", "auto")
    if not body.get("tools") or choice == "none":
        return None
    if isinstance(choice, dict):
        return str(choice["function"]["name"])
    return str(body["tools"][0]["function"]["name"])


def check_logprobs(logprobs: Any, body: dict[str, Any], content: str | None) -> int | None:
    """Checks one choice's logprobs; returns its number of content tokens when it is known."""
    if body.get("logprobs") is not True:
        assert logprobs is None
        return None
    entries = logprobs["content"]
    if content is None:
        assert entries == []
        return None
    assert "".join(e["token"] for e in entries) == content
    for entry in entries:
        assert entry["bytes"] == list(entry["token"].encode("utf-8"))
        assert math.isfinite(entry["logprob"]) and entry["logprob"] <= 0
        top = entry["top_logprobs"]
        assert len(top) == body.get("top_logprobs", 0)
        logprobs_desc = [t["logprob"] for t in top]
        assert logprobs_desc == sorted(logprobs_desc, reverse=True)
        if top:
            assert top[0]["token"] == entry["token"]
        for alternative in top:
            assert alternative["bytes"] == list(alternative["token"].encode("utf-8"))
            assert math.isfinite(alternative["logprob"]) and alternative["logprob"] <= 0
    return len(entries)


def check_choice(choice: dict[str, Any], body: dict[str, Any]) -> int | None:
    message, finish = choice["message"], choice["finish_reason"]
    limit = token_limit(body)
    assert finish in ("stop", "length", "tool_calls")
    if finish == "length":
        assert limit is not None
    tool = expected_tool(body)
    content = message.get("content")
    if tool is not None:
        assert content is None
        (call,) = message["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == tool
        if finish != "length":
            assert finish == "tool_calls"
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
        return check_logprobs(choice.get("logprobs"), body, None)
    assert not message.get("tool_calls") and finish != "tool_calls"
    assert isinstance(content, str)
    kind = body.get("response_format", {}).get("type", "text")
    if kind == "json_object":
        expected = {"echo": structured_hint(expected_echo(body))}
        assert json.dumps(expected, ensure_ascii=False).startswith(content)
        if finish == "stop":
            assert json.loads(content) == expected
    elif kind == "json_schema":
        if finish == "stop":
            jsonschema.validate(json.loads(content), OUTPUT_SCHEMA)
    else:
        echo = expected_echo(body)
        assert echo.startswith(content)
        stops = (
            [body["stop"]] if isinstance(body.get("stop"), str) else [s for s in body.get("stop", []) if s]
        )
        assert not any(stop in content for stop in stops)
        if finish == "stop" and not any(stop in echo for stop in stops):
            assert content == echo
    tokens = check_logprobs(choice.get("logprobs"), body, content)
    if tokens is not None and limit is not None:
        assert tokens <= limit
    return tokens


def check_completion(completion: dict[str, Any], body: dict[str, Any]) -> None:
    schema_errors = [e.message for e in schema_store.validator("chat-completion").iter_errors(completion)]
    assert not schema_errors
    n = body.get("n", 1)
    assert [c["index"] for c in completion["choices"]] == list(range(n))
    counted = [check_choice(choice, body) for choice in completion["choices"]]
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] >= len(body["messages"])
    if all(count is not None for count in counted):
        assert usage["completion_tokens"] == sum(count or 0 for count in counted)
    limit = token_limit(body)
    if limit is not None:
        assert usage["completion_tokens"] <= n * limit
    calls = [
        c["message"]["tool_calls"][0]["id"] for c in completion["choices"] if c["message"].get("tool_calls")
    ]
    assert len(set(calls)) == len(calls)


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream as the completion it stands for, checking the per-choice chunk order on the way."""
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for entry in chunk["choices"]:
            index, delta = entry["index"], entry["delta"]
            if index not in choices:
                assert delta.get("role") == "assistant", "the first delta of a choice carries the role"
                choices[index] = {"index": index, "message": {"role": "assistant", "content": None},
                                  "finish_reason": None, "logprobs": None}  # fmt: skip
            choice = choices[index]
            assert choice["finish_reason"] is None, "nothing follows a choice's finish_reason"
            message = choice["message"]
            if delta.get("content") is not None:
                message["content"] = (message["content"] or "") + delta["content"]
            for call in delta.get("tool_calls") or []:
                calls = message.setdefault("tool_calls", [])
                if "id" in call:
                    head = {"name": call["function"]["name"], "arguments": ""}
                    calls.append({"id": call["id"], "type": call["type"], "function": head})
                calls[call["index"]]["function"]["arguments"] += call["function"].get("arguments", "")
            if entry.get("logprobs") is not None:
                choice["logprobs"] = choice["logprobs"] or {"content": [], "refusal": None}
                choice["logprobs"]["content"].extend(entry["logprobs"]["content"] or [])
            choice["finish_reason"] = entry.get("finish_reason")
    return {"choices": [choices[i] for i in sorted(choices)]}


def check_stream(response: httpx.Response, server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    data = sse.parse(response.text).data
    terminator = server.profile.stream_terminator
    if terminator is not None:
        assert data.pop() == terminator
    assert terminator not in data
    chunks = [strictjson.loads(d) for d in data]
    validator = schema_store.validator("chat-completion-chunk")
    for chunk in chunks:
        assert not [e.message for e in validator.iter_errors(chunk)]
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    include_usage = body.get("stream_options", {}).get("include_usage") is True
    usage = None
    if include_usage:
        *chunks, last = chunks
        assert last["choices"] == []
        usage = last["usage"]
        assert all(c["usage"] is None for c in chunks)
    else:
        assert all("usage" not in c for c in chunks)
    assembled = assemble(chunks)
    for choice in assembled["choices"]:
        choice["message"].setdefault("refusal", None)
        if body.get("logprobs") is True and choice["logprobs"] is None:
            # an empty answer streams no token, hence no logprobs entry to assemble
            choice["logprobs"] = {"content": [], "refusal": None}
    return {
        "id": chunks[0]["id"],
        "created": chunks[0]["created"],
        "model": MODEL,
        **assembled,
        "usage": usage,
    }


@pytest.mark.parametrize("profile", PROFILES)
@settings(
    max_examples=EXAMPLES_PER_PROFILE,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(body=requests())
def test_valid_requests_get_conformant_answers(
    reference_server: Factory, http: httpx.Client, profile: str, body: dict[str, Any]
) -> None:
    server = reference_server(profile)
    headers = server.profile.auth_headers(server.settings.api_keys[0])  # type: ignore[union-attr]
    response = http.post(server.url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    if body.get("stream") is not True:
        assert response.headers["content-type"] == "application/json"
        check_completion(strictjson.loads(response.content), body)
        return
    streamed = check_stream(response, server, body)
    # the same request without streaming: the same answer, ids aside
    plain_body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    plain = http.post(server.url, json=plain_body, headers=headers).json()
    if streamed["usage"] is None:
        streamed["usage"] = plain["usage"]
    check_completion(streamed, body)
    assert streamed["usage"] == plain["usage"]
    for got, expected in zip(streamed["choices"], plain["choices"], strict=True):
        assert got["finish_reason"] == expected["finish_reason"]
        assert got["message"]["content"] == expected["message"]["content"]
        assert got["logprobs"] == expected["logprobs"]
        got_calls = [c["function"] for c in got["message"].get("tool_calls") or []]
        assert got_calls == [c["function"] for c in expected["message"].get("tool_calls") or []]


@pytest.mark.parametrize("profile", PROFILES)
@settings(max_examples=EXAMPLES_PER_PROFILE, database=None, deadline=None)
@given(body=requests())
def test_same_request_same_answer(
    reference_server: Factory, http: httpx.Client, profile: str, body: dict[str, Any]
) -> None:
    server = reference_server(profile)
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    headers = server.profile.auth_headers(server.settings.api_keys[0])  # type: ignore[union-attr]
    first, second = (http.post(server.url, json=body, headers=headers).json() for _ in range(2))
    assert first["id"] != second["id"]
    for answer in (first, second):
        del answer["id"], answer["created"]
        for choice in answer["choices"]:
            for call in choice["message"].get("tool_calls") or []:
                del call["id"]
    assert first == second
