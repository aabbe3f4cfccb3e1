"""The reference server, one feature per test, over real HTTP in both profiles."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from conformance.contract import schema_store
from conformance.contract.profiles import OPENAI, SGP, Profile
from conformance.server import RunningServer, ServerSettings, create_app, runner, serve_main, start_server
from conformance.server.model import tokenize
from conformance.server.runner import ServerStartError
from conformance.transport import sse, strictjson

MODEL = "openai/gpt-4o-mini"
ACCOUNT = "acct-123"
PROMPT = "The quick brown fox, jumps over the lazy dog!"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}

Factory = Callable[..., RunningServer]
# the conftest fixture's default key
REFERENCE_KEY = "sk-reference-test-key-7f3a9c"


@pytest.fixture(params=["sgp", "openai"])
def server(request: pytest.FixtureRequest, reference_server: Factory) -> RunningServer:
    return reference_server(request.param, account_ids=(ACCOUNT,))


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def auth(server: RunningServer, key: str = REFERENCE_KEY) -> dict[str, str]:
    return server.profile.auth_headers(key)


def request_body(**params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], **params}


def post(http: httpx.Client, server: RunningServer, body: Any = None, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", auth(server))
    if body is not None:
        kwargs["json"] = body
    return http.post(server.url, **kwargs)


def validate(schema: str, document: Any) -> None:
    errors = [e.message for e in schema_store.validator(schema).iter_errors(document)]
    assert not errors, f"{schema}: {errors}"


def chat(http: httpx.Client, server: RunningServer, **params: Any) -> dict[str, Any]:
    response = post(http, server, request_body(**params))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = strictjson.loads(response.content)
    validate("chat-completion", body)
    return body


def stream(http: httpx.Client, server: RunningServer, **params: Any) -> tuple[httpx.Response, list[str]]:
    response = post(http, server, request_body(stream=True, **params))
    assert response.status_code == 200, response.text
    parsed = sse.parse(response.text)
    assert not parsed.unknown_lines and not parsed.unterminated
    return response, parsed.data


def chunks_of(data: list[str], profile: Profile) -> list[dict[str, Any]]:
    if profile.stream_terminator is not None:
        assert data[-1] == profile.stream_terminator
        data = data[:-1]
    chunks = [strictjson.loads(d) for d in data]
    for chunk in chunks:
        validate("chat-completion-chunk", chunk)
    return chunks


def assert_error(response: httpx.Response, status: int, schema: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = strictjson.loads(response.content)
    validate(schema, body)
    return body


def without_ids(body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k not in ("id", "created")}
    for choice in body["choices"]:
        for call in choice["message"].get("tool_calls") or []:
            call.pop("id")
    return body


# --- transport, auth, accounts ----------------------------------------------------------------------


def test_healthz_needs_no_key(http: httpx.Client, server: RunningServer) -> None:
    root = server.base_url.removesuffix("/v1")
    response = http.get(f"{root}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_route_follows_the_profile(server: RunningServer) -> None:
    expected = "/v4/beta/chat/completions" if server.profile is SGP else "/v1/chat/completions"
    assert httpx.URL(server.url).path == expected


@pytest.mark.parametrize(
    "headers",
    [{}, {"key": ""}, {"key": "wrong-key"}, {"key": REFERENCE_KEY + "x"}, {"other_header": True}],
    ids=["missing", "empty", "wrong", "longer", "wrong-header"],
)
def test_auth_failures_are_401_without_the_key(
    http: httpx.Client, server: RunningServer, headers: dict[str, Any]
) -> None:
    profile = server.profile
    if "key" in headers:
        # an HTTP client strips the space left after "Bearer" by an empty key
        sent = {name: value.strip() for name, value in profile.auth_headers(headers["key"]).items()}
    elif headers:
        # the other profile's header with the right key
        other = OPENAI if profile is SGP else SGP
        sent = other.auth_headers(REFERENCE_KEY)
    else:
        sent = {}
    response = post(http, server, request_body(), headers=sent)
    body = assert_error(response, 401, profile.error_schema)
    assert REFERENCE_KEY not in response.text
    if profile.error_style == "openai":
        assert body["error"]["code"] == "invalid_api_key"


def test_auth_header_name_is_case_insensitive(http: httpx.Client, server: RunningServer) -> None:
    ((name, value),) = auth(server).items()
    response = post(http, server, request_body(), headers={name.upper(): value})
    assert response.status_code == 200


def test_bearer_scheme_is_case_insensitive(http: httpx.Client, reference_server: Factory) -> None:
    server = reference_server("openai")
    response = post(http, server, request_body(), headers={"Authorization": f"bearer {REFERENCE_KEY}"})
    assert response.status_code == 200


def test_any_of_several_keys(http: httpx.Client, reference_server: Factory) -> None:
    server = reference_server("sgp", api_keys=("first", "second"))
    assert post(http, server, request_body(), headers=auth(server, "second")).status_code == 200
    assert post(http, server, request_body(), headers=auth(server, REFERENCE_KEY)).status_code == 401


@pytest.mark.parametrize(("account", "status"), [(None, 200), (ACCOUNT, 200), ("acct-other", 403), ("", 403)])
def test_account_header(
    http: httpx.Client, reference_server: Factory, account: str | None, status: int
) -> None:
    server = reference_server("sgp", account_ids=(ACCOUNT,))
    headers = auth(server)
    if account is not None:
        headers[SGP.account_header] = account  # type: ignore[index]
    response = post(http, server, request_body(), headers=headers)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 403, SGP.error_schema)


def test_any_account_when_none_configured(http: httpx.Client, reference_server: Factory) -> None:
    server = reference_server("sgp")
    response = post(
        http, server, request_body(), headers={**auth(server), "x-selected-account-id": "anything"}
    )
    assert response.status_code == 200


def test_unknown_model_is_404(http: httpx.Client, server: RunningServer) -> None:
    response = post(http, server, request_body(model="vendor/no-such-model"))
    body = assert_error(response, 404, server.profile.error_schema)
    if server.profile.error_style == "openai":
        assert body["error"]["code"] == "model_not_found"
    else:
        assert "vendor/no-such-model" in body["detail"]


def test_unknown_path_and_method_answer_in_profile_style(http: httpx.Client, server: RunningServer) -> None:
    assert_error(http.post(server.base_url + "/nope", headers=auth(server)), 404, server.profile.error_schema)
    response = http.get(server.url, headers=auth(server))
    assert_error(response, 405, server.profile.error_schema)
    assert response.headers["allow"] == "POST"


# --- request validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"model": ', b"not json", b"", b'{"model": "m", "messages": [], "temperature": NaN}',
     b'{"temperature": Infinity}', b'{"seed": 1e400}', b'{"model": "\\ud800"}', b"\xff\xfe{}"],
    ids=["truncated", "text", "empty", "nan", "infinity", "overflow", "lone-surrogate", "not-utf8"],
)  # fmt: skip
def test_malformed_json(http: httpx.Client, server: RunningServer, raw: bytes) -> None:
    headers = {**auth(server), "content-type": "application/json"}
    response = post(http, server, content=raw, headers=headers)
    body = assert_error(response, server.profile.validation_status, server.profile.validation_error_schema)
    if server.profile.error_style == "fastapi":
        (item,) = body["detail"]
        if raw:
            assert item["type"] == "json_invalid"
            assert item["loc"][0] == "body" and isinstance(item["loc"][1], int)
            assert 0 <= item["loc"][1] <= len(raw)
        else:
            assert item["type"] == "missing" and item["loc"] == ["body"]
    else:
        assert body["error"]["param"] is None and body["error"]["type"] == "invalid_request_error"


def test_nan_offset_points_at_the_constant(http: httpx.Client, reference_server: Factory) -> None:
    server = reference_server("sgp")
    raw = b'{"model": "NaN", "n": NaN}'
    response = post(http, server, content=raw, headers={**auth(server), "content-type": "application/json"})
    assert response.json()["detail"][0]["loc"] == ["body", raw.index(b"NaN}")]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type(http: httpx.Client, server: RunningServer, content_type: str | None) -> None:
    headers = auth(server)
    if content_type:
        headers["content-type"] = content_type
    response = post(http, server, content=json.dumps(request_body()).encode(), headers=headers)
    assert_error(response, server.profile.validation_status, server.profile.validation_error_schema)


def test_content_type_parameters_are_allowed(http: httpx.Client, server: RunningServer) -> None:
    headers = {**auth(server), "content-type": "Application/JSON; charset=utf-8"}
    response = post(http, server, content=json.dumps(request_body()).encode(), headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"model": MODEL}, ["messages"]),
        (request_body(n=0), ["n"]),
        (request_body(n="2"), ["n"]),
        (request_body(messages=[]), ["messages"]),
        (request_body(messages=[{"role": "robot", "content": "x"}]), ["messages", 0, "role"]),
        (request_body(temperature=3), ["temperature"]),
        (request_body(stop=["a", "b", "c", "d", "e"]), ["stop"]),
        (request_body(top_logprobs=2), ["top_logprobs"]),
        (request_body(logprobs=True, top_logprobs=21), ["top_logprobs"]),
        (request_body(tool_choice="required"), ["tool_choice"]),
        (request_body(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "x"}}),
         ["tool_choice"]),
        (request_body(stream_options={"include_usage": True}), ["stream_options"]),
        (request_body(stream=False, stream_options={"include_usage": True}), ["stream_options"]),
        (request_body(response_format={"type": "yaml"}), ["response_format"]),
        ([1, 2], []),
    ],
    ids=["no-messages", "n-0", "n-string", "messages-empty", "bad-role", "temperature", "five-stops",
         "top-without-logprobs", "top-21", "required-without-tools", "unknown-tool", "stream-options",
         "stream-options-false", "format", "array"],
)  # fmt: skip
def test_invalid_body(http: httpx.Client, server: RunningServer, body: Any, path: list[str | int]) -> None:
    response = post(http, server, body)
    error = assert_error(response, server.profile.validation_status, server.profile.validation_error_schema)
    if server.profile.error_style == "fastapi":
        locs = [item["loc"] for item in error["detail"]]
        assert any(loc[: len(path) + 1] == ["body", *path] for loc in locs), locs
        assert all(item["type"] and item["msg"] for item in error["detail"])
    else:
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["code"] is None
        param = error["error"]["param"]
        assert (param or "").startswith(".".join(f"[{p}]" if isinstance(p, int) else p for p in path))


def test_null_optional_params_count_as_absent(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, n=None, stop=None, temperature=None, tools=None, stream=None)
    assert len(body["choices"]) == 1


def test_integral_floats_are_integers(http: httpx.Client, server: RunningServer) -> None:
    # JSON Schema (and pydantic) accept 2.0 where an integer is required
    body = chat(http, server, n=2.0, max_tokens=3.0)
    assert len(body["choices"]) == 2
    assert body["usage"]["completion_tokens"] == 6


# --- the model --------------------------------------------------------------------------------------


def test_echoes_the_last_user_message(http: httpx.Client, server: RunningServer) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "part"}]},
    ]
    body = chat(http, server, messages=messages)
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "second part", "refusal": None}
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    assert body["service_tier"] == "default" and isinstance(body["system_fingerprint"], str)
    assert body["id"].startswith("chatcmpl-")


def test_empty_prompt_gets_a_fixed_reply(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, messages=[{"role": "user", "content": ""}])
    assert body["choices"][0]["message"]["content"] == "Hello"


def test_n_choices(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, n=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len({c["message"]["content"] for c in body["choices"]}) == 1


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_token_limit_cuts_with_length(http: httpx.Client, server: RunningServer, param: str) -> None:
    body = chat(http, server, n=2, **{param: 3})
    for choice in body["choices"]:
        assert choice["finish_reason"] == "length"
        assert choice["message"]["content"] == "".join(tokenize(PROMPT)[:3])
    assert body["usage"]["completion_tokens"] == 6


def test_smaller_token_limit_wins(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, max_tokens=5, max_completion_tokens=2)
    assert body["usage"]["completion_tokens"] == 2
    body = chat(http, server, max_tokens=2, max_completion_tokens=5)
    assert body["usage"]["completion_tokens"] == 2


def test_limit_above_the_answer_stops_naturally(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, max_tokens=1000)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"] == PROMPT


@pytest.mark.parametrize(
    ("stop", "content"),
    [(" fox", "The quick brown"), (["zzz", "row", "lazy"], "The quick b"), ("The", ""), ("absent", PROMPT)],
)
def test_stop_cuts_before_the_first_occurrence(
    http: httpx.Client, server: RunningServer, stop: str | list[str], content: str
) -> None:
    body = chat(http, server, stop=stop)
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == content


def test_logprobs(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, logprobs=True, top_logprobs=5, n=2)
    for choice in body["choices"]:
        entries = choice["logprobs"]["content"]
        assert "".join(e["token"] for e in entries) == choice["message"]["content"]
        assert len(entries) * 2 == body["usage"]["completion_tokens"]
        for entry in entries:
            assert entry["bytes"] == list(entry["token"].encode("utf-8"))
            assert math.isfinite(entry["logprob"]) and entry["logprob"] <= 0
            top = entry["top_logprobs"]
            assert len(top) == 5
            assert top[0]["token"] == entry["token"] and top[0]["logprob"] == entry["logprob"]
            assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
            assert len({t["token"] for t in top}) == 5
            assert sum(math.exp(t["logprob"]) for t in top) <= 1
            for alternative in top:
                assert alternative["bytes"] == list(alternative["token"].encode("utf-8"))


def test_logprobs_without_top(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, logprobs=True)
    assert all(e["top_logprobs"] == [] for e in body["choices"][0]["logprobs"]["content"])
    assert chat(http, server)["choices"][0]["logprobs"] is None


def test_logprob_bytes_of_multibyte_tokens(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, messages=[{"role": "user", "content": "héllo 🌍 мир"}], logprobs=True)
    for entry in body["choices"][0]["logprobs"]["content"]:
        assert bytes(entry["bytes"]).decode("utf-8") == entry["token"]


def test_tool_calls(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, n=2, tools=[WEATHER_TOOL, TIME_TOOL])
    ids = []
    for choice in body["choices"]:
        assert choice["finish_reason"] == "tool_calls"
        message = choice["message"]
        assert message["content"] is None
        (call,) = message["tool_calls"]
        assert call["type"] == "function" and call["id"].startswith("call_")
        assert call["function"]["name"] == "get_weather"
        arguments = json.loads(call["function"]["arguments"])
        jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])
        ids.append(call["id"])
    assert len(set(ids)) == 2


def test_named_tool_choice(http: httpx.Client, server: RunningServer) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    body = chat(http, server, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice)
    (call,) = body["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_time"
    assert json.loads(call["function"]["arguments"]) == {}


def test_tool_choice_none_answers_in_text(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, tools=[WEATHER_TOOL], tool_choice="none")
    assert body["choices"][0]["message"]["content"] == PROMPT
    assert "tool_calls" not in body["choices"][0]["message"]


def test_tool_call_cut_by_the_limit(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, tools=[WEATHER_TOOL], max_tokens=2)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_json_object(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, response_format={"type": "json_object"}, stop="quick")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    # the start of the prompt only: JSON answers are kept short enough for small token limits
    assert json.loads(choice["message"]["content"]) == {"echo": "The quick brown fox,"}


def test_json_object_cut_by_the_limit(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, response_format={"type": "json_object"}, max_tokens=2)
    assert body["choices"][0]["finish_reason"] == "length"


def test_json_schema(http: httpx.Client, server: RunningServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 80},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "score": {"type": "number", "minimum": 0.5, "maximum": 1},
            "ok": {"type": "boolean"},
        },
        "required": ["title", "tags", "score", "ok"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    body = chat(http, server, response_format=response_format)
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)


def test_seed_gives_the_same_answer(http: httpx.Client, server: RunningServer) -> None:
    params = {"seed": 42, "logprobs": True, "top_logprobs": 3, "n": 2}
    first, second = chat(http, server, **params), chat(http, server, **params)
    assert without_ids(first) == without_ids(second)
    other = chat(http, server, **{**params, "seed": 43})
    assert other["choices"][0]["message"] == first["choices"][0]["message"]
    assert other["choices"][0]["logprobs"] != first["choices"][0]["logprobs"]


def test_usage_adds_up(http: httpx.Client, server: RunningServer) -> None:
    body = chat(http, server, n=2)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == 2 * len(tokenize(PROMPT))
    assert usage["prompt_tokens"] == 1 + len(tokenize(PROMPT))
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


def test_created_is_now_and_ids_are_unique(http: httpx.Client, server: RunningServer) -> None:
    before = int(time.time())
    bodies = [chat(http, server) for _ in range(3)]
    assert all(before <= b["created"] <= time.time() + 1 for b in bodies)
    assert len({b["id"] for b in bodies}) == 3


def test_request_ids_are_unique_on_every_response(http: httpx.Client, server: RunningServer) -> None:
    responses = [post(http, server, request_body()), post(http, server, {}), post(http, server, headers={})]
    responses.append(http.get(server.base_url.removesuffix("/v1") + "/healthz"))
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)


# --- streaming --------------------------------------------------------------------------------------


def test_stream_framing(http: httpx.Client, server: RunningServer) -> None:
    response, data = stream(http, server)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-request-id"]
    # every event is exactly one data line and a blank line
    assert response.text == "".join(f"data: {d}\n\n" for d in data)
    assert ("[DONE]" in data) == (server.profile.stream_terminator == "[DONE]")
    chunks = chunks_of(data, server.profile)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)


def _per_choice(chunks: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            found.setdefault(choice["index"], []).append(choice)
    return found


@pytest.mark.parametrize(
    "params",
    [{}, {"n": 3, "max_tokens": 4}, {"stop": "over"}, {"logprobs": True, "top_logprobs": 2},
     {"response_format": {"type": "json_object"}}, {"messages": [{"role": "user", "content": ""}]}],
    ids=["plain", "n-and-limit", "stop", "logprobs", "json", "empty"],
)  # fmt: skip
def test_stream_assembles_to_the_non_streamed_answer(
    http: httpx.Client, server: RunningServer, params: dict[str, Any]
) -> None:
    expected = chat(http, server, **params)
    _, data = stream(http, server, stream_options={"include_usage": True}, **params)
    chunks = chunks_of(data, server.profile)
    *content_chunks, last = chunks
    assert last["choices"] == [] and last["usage"] == expected["usage"]
    assert all(c["usage"] is None for c in content_chunks)
    per_choice = _per_choice(content_chunks)
    assert sorted(per_choice) == [c["index"] for c in expected["choices"]]
    for choice in expected["choices"]:
        entries = per_choice[choice["index"]]
        assert entries[0]["delta"]["role"] == "assistant"
        finishes = [e["finish_reason"] for e in entries if e.get("finish_reason")]
        assert finishes == [choice["finish_reason"]] and entries[-1]["finish_reason"]
        assert "".join(e["delta"].get("content") or "" for e in entries) == choice["message"]["content"]
        if choice["logprobs"] is not None:
            streamed = [x for e in entries if e["logprobs"] for x in e["logprobs"]["content"]]
            assert streamed == choice["logprobs"]["content"]


def test_stream_tool_calls(http: httpx.Client, server: RunningServer) -> None:
    expected = chat(http, server, tools=[WEATHER_TOOL], n=2)
    _, data = stream(http, server, tools=[WEATHER_TOOL], n=2)
    per_choice = _per_choice(chunks_of(data, server.profile))
    for choice in expected["choices"]:
        entries = per_choice[choice["index"]]
        deltas = [d for e in entries for d in e["delta"].get("tool_calls") or []]
        head, *rest = deltas
        assert head["id"].startswith("call_") and head["type"] == "function"
        assert head["function"]["name"] == "get_weather"
        assert all("id" not in d and "name" not in d["function"] and d["index"] == 0 for d in rest)
        arguments = "".join(d["function"]["arguments"] for d in deltas)
        assert arguments == choice["message"]["tool_calls"][0]["function"]["arguments"]
        assert entries[-1]["finish_reason"] == "tool_calls"
    heads = [e["delta"]["tool_calls"][0]["id"] for entries in per_choice.values() for e in entries[:1]]
    assert len(set(heads)) == 2


# --- latency, runner, CLI ---------------------------------------------------------------------------


def test_latency_delays_each_answer(http: httpx.Client, reference_server: Factory) -> None:
    slow = reference_server("sgp", latency_ms=250)
    started = time.monotonic()
    assert post(http, slow, request_body()).status_code == 200
    assert time.monotonic() - started >= 0.25


def test_runner_serves_any_asgi_app(http: httpx.Client) -> None:
    async def teapot(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("tea", status_code=418)(scope, receive, send)

    with pytest.raises(TypeError):
        start_server(teapot)
    with start_server(teapot, profile=OPENAI) as running:
        assert running.base_url == f"http://127.0.0.1:{running.port}/v1"
        assert running.settings is None
        assert http.get(running.url).status_code == 418
    with pytest.raises(httpx.ConnectError):
        http.get(running.url)


def test_runner_wraps_create_app(http: httpx.Client) -> None:
    settings = ServerSettings(profile=SGP, api_keys=("k",))
    with start_server(create_app(settings), profile=SGP) as running:
        assert running.base_url == f"http://127.0.0.1:{running.port}"
        assert http.post(running.url, json=request_body(), headers=SGP.auth_headers("k")).status_code == 200


def test_runner_reports_a_busy_port(reference_server: Factory) -> None:
    busy = reference_server("sgp")
    with pytest.raises(OSError):
        start_server(ServerSettings(profile=SGP, api_keys=("k",)), port=busy.port)
    assert issubclass(ServerStartError, RuntimeError)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        ServerSettings(profile=SGP, api_keys=())
    with pytest.raises(ValueError):
        ServerSettings(profile=SGP, api_keys=("",))
    with pytest.raises(TypeError):
        ServerSettings(profile=SGP, api_keys="k")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--port", "http"], "not a port"), (["--port", "70000"], "0..65535"),
     (["--profile", "grpc"], "invalid choice"), (["--latency-ms", "-1"], ">= 0"), ([], "--api-key")],
)  # fmt: skip
def test_cli_rejects_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SGP_API_KEY", raising=False)
    assert serve_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_serves_until_interrupted(http: httpx.Client) -> None:
    command = [sys.executable, "-m", "conformance.server", "--port", "0", "--profile", "openai",
               "--api-key", "cli-key", "--model", "acme/m1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), line
        body = {"model": "acme/m1", "messages": [{"role": "user", "content": "hi"}]}
        response = http.post(
            f"{base_url}/chat/completions", json=body, headers=OPENAI.auth_headers("cli-key")
        )
        assert response.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        # Ctrl-C: uvicorn shuts down gracefully and serve_main exits 0
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err


# --- stopping a server (runner._Server: uvicorn without its fixed pauses) -----------------------------

# far above a stop's normal time (about 1 ms), far below a tick stretched to a minute
STOP_GUARD_S = 10


async def _paced_stream(send: Send, parts: int | None) -> None:
    """`parts` chunks 20 ms apart (None: without end), then the end of the body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    sent = 0
    while parts is None or sent < parts:
        await send({"type": "http.response.body", "body": b"part\n", "more_body": True})
        sent += 1
        await asyncio.sleep(0.02)
    await send({"type": "http.response.body", "body": b"end\n"})


async def _ten_parts(scope: Scope, receive: Receive, send: Send) -> None:
    await _paced_stream(send, 10)


async def _endless(scope: Scope, receive: Receive, send: Send) -> None:
    await _paced_stream(send, None)


def test_a_stop_wakes_the_server_at_once_not_at_its_next_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    # a tick of a minute: only the wake can end the loop within the guard
    monkeypatch.setattr(runner._Server, "TICK_S", 60.0)
    server = start_server(ServerSettings(profile=SGP, api_keys=("k",)))
    server.request_stop()
    server._thread.join(STOP_GUARD_S)
    assert not server._thread.is_alive()


def test_a_stop_with_no_connection_open_skips_uvicorns_pause_and_one_with_a_connection_keeps_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    graceful: list[int] = []
    original = uvicorn.Server.shutdown

    async def counted(self: uvicorn.Server, sockets: Any = None) -> None:
        graceful.append(len(self.server_state.connections))
        await original(self, sockets)

    monkeypatch.setattr(uvicorn.Server, "shutdown", counted)
    idle = start_server(ServerSettings(profile=SGP, api_keys=("k",)))
    with httpx.Client(timeout=10) as client:
        assert client.get(f"http://127.0.0.1:{idle.port}/healthz").status_code == 200
    idle.stop()
    assert graceful == []
    kept = start_server(ServerSettings(profile=SGP, api_keys=("k",)))
    with httpx.Client(timeout=10) as client:
        # the client keeps its connection alive while the server stops
        assert client.get(f"http://127.0.0.1:{kept.port}/healthz").status_code == 200
        kept.stop()
    assert graceful == [1]


def test_a_stop_during_a_stream_lets_the_stream_end() -> None:
    server = start_server(_ten_parts, profile=SGP)
    with httpx.Client(timeout=10) as client, client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
        lines = response.iter_lines()
        assert next(lines) == "part"
        server.request_stop()
        rest = list(lines)
    assert rest == ["part"] * 9 + ["end"]
    server._thread.join(STOP_GUARD_S)
    assert not server._thread.is_alive()


def test_a_forced_stop_ends_an_endless_stream() -> None:
    server = start_server(_endless, profile=SGP)
    with httpx.Client(timeout=10) as client, client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
        assert next(response.iter_lines()) == "part"
        # a short wait for the graceful stop, then force_exit
        server.stop(timeout=0.2)
    server._thread.join(STOP_GUARD_S)
    assert not server._thread.is_alive()
