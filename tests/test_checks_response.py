"""Unit tests of conformance.checks.response: the composed checks of one 200 exchange.

The first half is about precision: conformant answers to many kinds of valid requests, including every
behaviour the contract leaves open, give no violation under either profile. The second half shows each
composed rule firing, and that no document, however malformed, makes the checks raise.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import (
    KEY,
    MODEL,
    NOW,
    PROMPT,
    choice,
    chunk,
    completion,
    logprob_entry,
    logprobs,
    make_exchange,
    paths,
    replaced,
    sse_body,
    stream_chunks,
    tool_call,
    top_entry,
    usage,
)

from conformance.checks import NotJudged, findings, response
from conformance.contract import catalogue
from conformance.contract.profiles import OPENAI, SGP, Profile
from conformance.transport.exchange import Exchange

PROFILES = [SGP, OPENAI]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def ids(found: list[Any]) -> list[str]:
    return sorted({v.requirement for v in found})


def req(**params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": PROMPT, **params}


def ex(doc: Any, params: dict[str, Any], profile: Profile = SGP, **kwargs: Any) -> Exchange:
    headers = {profile.auth_header: profile.auth_prefix + KEY}
    return make_exchange(body=doc, params=params, request_headers=headers, **kwargs)


# --- precision: conformant completions ------------------------------------------------------------

PARTIAL_UTF8 = {
    "content": [
        logprob_entry(
            "\ufffd", -0.5, bytes_=[0xE2, 0x9C], top=[top_entry("\ufffd", -0.5) | {"bytes": [0xE2, 0x9C]}]
        ),
        logprob_entry("bytes:\\x93", -0.2, bytes_=[0x93], top=[]),
        logprob_entry(" ok", 1e-9, top=[top_entry(" ok", 0.0), top_entry(" okay", -1.5)]),
    ],
    "refusal": None,
}

CONFORMANT: list[tuple[str, Any, dict[str, Any]]] = [
    ("minimal", completion(), req()),
    (
        "nulls instead of absent",
        completion(
            object=None,
            system_fingerprint=None,
            service_tier=None,
            usage=None,
            choices=[
                choice(logprobs=None)
                | {
                    "message": {
                        "role": "assistant",
                        "content": "Hi",
                        "refusal": None,
                        "tool_calls": None,
                        "annotations": None,
                        "audio": None,
                        "function_call": None,
                    }
                }
            ],
        ),
        req(),
    ),
    ("absent optionals", completion(drop=("object", "usage")), req()),
    (
        "extra keys everywhere",
        completion(
            x_extra=1,
            choices=[
                choice(stop_reason=None)
                | {"message": {"role": "assistant", "content": "Hi", "refusal": None, "reasoning_content": "…"}}
            ],
            usage=usage(prompt_tokens_details={"cached_tokens": 0}, text_tokens=1),
        ),
        req(),
    ),
    ("dated model", completion(model="gpt-4o-mini-2024-07-18"), req()),
    ("vendor prefix requested", completion(model="gpt-4o-mini"), req(model="openai/gpt-4o-mini")),
    ("vendor prefix answered", completion(model="openai/gpt-4o-mini"), req()),
    ("created a few seconds off", completion(created=NOW + 7), req()),
    ("service tier of the doc", completion(service_tier="scale"), req()),
    ("n absent means 1", completion(), req(n=None)),
    ("n = 2", completion(choices=[choice(0), choice(1, "Hey")], usage=usage(5, 6)), req(n=2)),
    ("max_tokens absent", completion(usage=usage(5, 5000)), req()),
    (
        "cut by max_tokens",
        completion(choices=[choice(content="Hel", finish_reason="length")], usage=usage(5, 1)),
        req(max_tokens=1),
    ),
    ("stopped before the limit", completion(usage=usage(5, 2)), req(max_tokens=16)),
    (
        "max_completion_tokens per choice",
        completion(choices=[choice(0), choice(1)], usage=usage(5, 8)),
        req(n=2, max_completion_tokens=4),
    ),
    ("stop sequence ends early", completion(choices=[choice(content="1, 2,")]), req(stop=["3"])),
    ("logprobs", completion(choices=[choice(logprobs=logprobs())]), req(logprobs=True, top_logprobs=2)),
    ("partial UTF-8 tokens", completion(choices=[choice(logprobs=PARTIAL_UTF8)]), req(logprobs=True)),
    ("logprobs false, none sent", completion(), req(logprobs=False)),
    (
        "top_logprobs 0",
        completion(choices=[choice(logprobs={"content": [logprob_entry("Hi", top=[])]})]),
        req(logprobs=True, top_logprobs=0),
    ),
    ("tool_choice auto without a call", completion(), req(tools=[WEATHER], tool_choice="auto")),
    (
        "tool_choice auto with a call",
        completion(choices=[choice(content=None, finish_reason="tool_calls", tool_calls=[tool_call()])]),
        req(tools=[WEATHER]),
    ),
    (
        "tool_choice required",
        completion(
            choices=[
                choice(content=None, finish_reason="tool_calls", tool_calls=[tool_call("a"), tool_call("b")])
            ]
        ),
        req(tools=[WEATHER], tool_choice="required"),
    ),
    (
        "named tool answered with stop",
        completion(choices=[choice(content="", finish_reason="stop", tool_calls=[tool_call()])]),
        req(tools=[WEATHER], tool_choice=NAMED),
    ),
    (
        "required but cut before any output",
        completion(choices=[choice(content=None, finish_reason="length")], usage=usage(5, 1)),
        req(tools=[WEATHER], tool_choice="required", max_tokens=1),
    ),
    ("tool_choice none", completion(), req(tools=[WEATHER], tool_choice="none")),
    (
        "json_object",
        completion(choices=[choice(content='{"greeting": "hello"}')]),
        req(response_format={"type": "json_object"}),
    ),
    (
        "json_object cut by max_tokens",
        completion(choices=[choice(content='{"gree', finish_reason="length")]),
        req(response_format={"type": "json_object"}, max_tokens=3),
    ),
    (
        "json_object with a stop sequence",
        completion(choices=[choice(content='{"a": ')]),
        req(response_format={"type": "json_object"}, stop="1"),
    ),
    (
        "json_object refused",
        completion(
            choices=[choice() | {"message": {"role": "assistant", "content": None, "refusal": "No."}}]
        ),
        req(response_format={"type": "json_object"}),
    ),
    (
        "json_schema is not json_object",
        completion(),
        req(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
    ),
    (
        "content filter",
        completion(choices=[choice(content=None, finish_reason="content_filter")], usage=usage(5, 0)),
        req(max_tokens=1, tools=[WEATHER], tool_choice="required"),
    ),
]


# where the openai profile reads an open point of SGP's more strictly (RESP-010, SHOULD: keys OpenAI always
# sends), what it reports; nothing else is reported under either profile
OPENAI_ONLY = {"absent optionals": {"RESP-010"}}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize(("name", "doc", "params"), CONFORMANT, ids=[c[0] for c in CONFORMANT])
def test_conformant_completion_has_no_violation(
    name: str, doc: Any, params: dict[str, Any], profile: Profile
) -> None:
    found = findings(response.completion_checks(ex(doc, params, profile), profile, NOW))
    expected = OPENAI_ONLY.get(name, set()) if profile is OPENAI else set()
    assert set(ids(found)) == expected, [v.render() for v in found]


def test_headers_left_open() -> None:
    headers = [("Content-Type", "application/json; charset=UTF-8"), ("cf-ray", "8a1b")]
    assert response.completion_checks(ex(completion(), req(), headers=headers), SGP, NOW) == []


# --- precision: conformant streams ----------------------------------------------------------------


def stream_ex(
    chunks: list[Any],
    params: dict[str, Any],
    terminator: str | None = "[DONE]",
    profile: Profile = SGP,
    **kwargs: Any,
) -> Exchange:
    headers = {profile.auth_header: profile.auth_prefix + KEY}
    return make_exchange(
        stream=True,
        body=sse_body(chunks, terminator),
        params={**params, "stream": True},
        request_headers=headers,
        **kwargs,
    )


TOOL_STREAM = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({}, 0, "tool_calls"),
]
CONFORMANT_STREAMS: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("minimal", stream_chunks(), req()),
    (
        "n = 2 with usage",
        stream_chunks(n=2, include_usage=True),
        req(n=2, stream_options={"include_usage": True}),
    ),
    (
        "OpenAI nulls",
        [{**c, "usage": None, "system_fingerprint": None} for c in stream_chunks()]
        + [chunk(choices=[], usage=usage())],
        req(stream_options={"include_usage": True}),
    ),
    (
        "cut by max_tokens",
        [chunk({"role": "assistant", "content": "Hel"}), chunk({}, 0, "length")],
        req(max_tokens=1),
    ),
    ("tool call streamed", TOOL_STREAM, req(tools=[WEATHER], tool_choice="required")),
    ("json streamed", stream_chunks(('{"a"', ": 1}")), req(response_format={"type": "json_object"})),
    (
        "logprobs streamed",
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hi"}, logprobs={"content": [logprob_entry("Hi")]}),
            chunk({}, 0, "stop"),
        ],
        req(logprobs=True, top_logprobs=2),
    ),
    ("dated model", [{**c, "model": "gpt-4o-mini-2024-07-18"} for c in stream_chunks()], req()),
]


@pytest.mark.parametrize("terminator", ["[DONE]", None])
@pytest.mark.parametrize(
    ("name", "chunks", "params"), CONFORMANT_STREAMS, ids=[c[0] for c in CONFORMANT_STREAMS]
)
def test_conformant_stream_has_no_violation(
    name: str, chunks: list[Any], params: dict[str, Any], terminator: str | None
) -> None:
    # sgp leaves the terminator open (STRM-005 is INFO); openai requires it
    profiles = [SGP, OPENAI] if terminator else [SGP]
    for profile in profiles:
        found = response.stream_checks(stream_ex(chunks, params, terminator, profile), profile, NOW)
        assert found == [], [v.render() for v in found]


# --- rules firing ---------------------------------------------------------------------------------

FAILING: list[tuple[str, Any, dict[str, Any], list[str]]] = [
    ("usage does not add up", completion(usage=usage(5, 3, 10)), req(), ["SEM-001"]),
    ("too few choices", completion(), req(n=2), ["SEM-002"]),
    ("created in ms", completion(created=NOW * 1000), req(), ["SEM-003"]),
    ("created an hour late", completion(created=NOW - 3600), req(), ["SEM-004"]),
    ("other model", completion(model="llama3"), req(), ["SEM-005"]),
    ("max_tokens exceeded", completion(usage=usage(5, 9)), req(max_tokens=4), ["SEM-006"]),
    (
        "max_completion_tokens exceeded",
        completion(usage=usage(5, 9)),
        req(max_completion_tokens=4),
        ["SEM-008"],
    ),
    ("no logprobs", completion(), req(logprobs=True), ["LOGP-001"]),
    (
        "positive logprob",
        completion(choices=[choice(logprobs={"content": [logprob_entry("Hi", 0.5, top=[])]})]),
        req(logprobs=True),
        ["LOGP-002"],
    ),
    (
        "wrong bytes",
        completion(choices=[choice(logprobs={"content": [logprob_entry("Hi", bytes_=[1])]})]),
        req(logprobs=True),
        ["LOGP-003"],
    ),
    (
        "top count",
        completion(choices=[choice(logprobs=logprobs())]),
        req(logprobs=True, top_logprobs=5),
        ["LOGP-004"],
    ),
    (
        "unsorted",
        completion(
            choices=[
                choice(
                    logprobs={
                        "content": [logprob_entry("a", -2, top=[top_entry("a", -2), top_entry("b", -1)])]
                    }
                )
            ]
        ),
        req(logprobs=True),
        ["LOGP-005"],
    ),
    ("required without call", completion(), req(tools=[WEATHER], tool_choice="required"), ["TOOL-001"]),
    (
        "required answered in text, then cut",
        completion(choices=[choice(content='{"name": "get_w', finish_reason="length")]),
        req(tools=[WEATHER], tool_choice="required", max_tokens=8),
        ["TOOL-001"],
    ),
    (
        "tool_calls finish without a call",
        completion(choices=[choice(finish_reason="tool_calls")]),
        req(),
        ["TOOL-005"],
    ),
    ("stop sequence kept", completion(choices=[choice(content="1 2 3 4")]), req(stop=["3"]), ["SEM-010"]),
    (
        "usage counts one of two choices",
        completion(choices=[choice(0), choice(1, "Hey")], usage=usage(5, 1)),
        req(n=2),
        ["SEM-011"],
    ),
    (
        "a whole character's code point as its bytes",
        completion(choices=[choice(logprobs={"content": [logprob_entry("é", bytes_=[233], top=[])]})]),
        req(logprobs=True),
        ["LOGP-003"],
    ),
    (
        "an alternative for top_logprobs 0",
        completion(choices=[choice(logprobs={"content": [logprob_entry("Hi", top=[top_entry("Hi")])]})]),
        req(logprobs=True, top_logprobs=0),
        ["LOGP-004"],
    ),
    (
        "unknown tool",
        completion(
            choices=[choice(content=None, finish_reason="tool_calls", tool_calls=[tool_call(name="rm_rf")])]
        ),
        req(tools=[WEATHER]),
        ["TOOL-002"],
    ),
    (
        "bad arguments",
        completion(
            choices=[
                choice(
                    content=None, finish_reason="tool_calls", tool_calls=[tool_call(arguments="city=Paris")]
                )
            ]
        ),
        req(tools=[WEATHER]),
        ["TOOL-003"],
    ),
    (
        "tool call with stop",
        completion(choices=[choice(content=None, tool_calls=[tool_call()])]),
        req(tools=[WEATHER], tool_choice="auto"),
        ["TOOL-004"],
    ),
    ("json_object prose", completion(), req(response_format={"type": "json_object"}), ["FMT-001"]),
    ("schema", completion(choices=[choice(finish_reason="done")]), req(), ["RESP-003"]),
    (
        "duplicate keys",
        b'{"id": "a", "id": "b", "created": 1700000000, "model": "gpt-4o-mini", "choices": []}',
        req(),
        ["JSON-002", "SEM-002"],
    ),
]


@pytest.mark.parametrize(("name", "doc", "params", "expected"), FAILING, ids=[c[0] for c in FAILING])
def test_failing_completion_is_flagged(
    name: str, doc: Any, params: dict[str, Any], expected: list[str]
) -> None:
    # open points are INFO (docs/contract.md section 14): found only with include_info, observed by the run
    found = ids(response.completion_checks(ex(doc, params), SGP, NOW, include_info=True))
    info = {r.id for r in catalogue.REQUIREMENTS if r.level_for("sgp") == catalogue.INFO}
    assert [i for i in found if i not in info or i in expected] == expected
    assert [i for i in ids(response.completion_checks(ex(doc, params), SGP, NOW)) if i in info] == []


def test_transport_rules_on_a_completion() -> None:
    headers = [("content-type", "text/plain; charset=latin-1"), ("x-echo", KEY)]
    found = response.completion_checks(ex(completion(), req(), headers=headers), SGP, NOW, include_info=True)
    assert ids(found) == ["AUTH-007", "HDR-003", "HDR-007", "HDR-008"]
    assert all(KEY not in v.message for v in found)


def test_openai_key_is_found_without_its_bearer_prefix() -> None:
    exchange = ex({"detail": f"bad {KEY}"} | completion(), req(), OPENAI)
    assert ids(response.completion_checks(exchange, OPENAI, NOW)) == ["AUTH-007"]


def test_body_not_json_stops_after_transport_checks() -> None:
    html = ex(b"<html>", req(), headers={"content-type": "text/html"})
    found = response.completion_checks(html, SGP, NOW)
    assert ids(found) == ["HDR-003", "JSON-002", "RESP-001"]
    # the rules on the body are not judged, pointing at the one fault: a body labelled as something else
    assert all(isinstance(v, NotJudged) and v.needs == "HDR-003" for v in found if v.requirement != "HDR-003")


def test_nan_is_json_001_only_and_the_rest_is_still_judged() -> None:
    # one fault, one ID: a NaN in a vendor extension must not fail every rule that reads the body
    nan_extra = json.dumps({**completion(), "x_latency": float("nan")}).encode()
    assert ids(response.completion_checks(ex(nan_extra, req()), SGP, NOW)) == ["JSON-001"]
    # and a real fault next to the NaN is still found
    broken = json.dumps({**completion(), "created": 1_700_000_000_000, "x": float("nan")}).encode()
    assert ids(response.completion_checks(ex(broken, req()), SGP, NOW)) == ["JSON-001", "SEM-003"]


def test_unjudgeable_exchanges() -> None:
    assert ids(response.completion_checks(ex({"detail": "x"}, req(), status=401), SGP, NOW)) == ["RESP-001"]
    assert ids(
        response.stream_checks(make_exchange(no_response=True, error="reset", stream=True), SGP, NOW)
    ) == ["STRM-001"]


def test_info_findings_only_when_asked() -> None:
    exchange = ex(completion(usage=None), req(), headers={"content-type": "application/json"})
    assert response.completion_checks(exchange, SGP, NOW) == []
    assert ids(response.completion_checks(exchange, SGP, NOW, include_info=True)) == ["HDR-007"]


def test_stream_terminator_per_profile() -> None:
    exchange = stream_ex(stream_chunks(), req(), terminator=None)
    assert ids(response.stream_checks(exchange, OPENAI, NOW)) == ["STRM-004"]
    assert response.stream_checks(exchange, SGP, NOW, include_info=True) == []
    with_done = stream_ex(stream_chunks(), req())
    assert ids(response.stream_checks(with_done, SGP, NOW, include_info=True)) == ["STRM-005"]


FAILING_STREAMS: list[tuple[str, Any, dict[str, Any], list[str]]] = [
    ("json instead of a stream", None, req(), ["STRM-001"]),
    ("no role", [chunk({"content": "Hi"}), chunk({}, 0, "stop")], req(), ["STRM-014"]),
    ("changing id", [chunk({"role": "assistant"}), chunk({}, 0, "stop", id="x")], req(), ["STRM-013"]),
    ("no finish", [chunk({"role": "assistant", "content": "Hi"})], req(), ["STRM-015", "STRM-017"]),
    ("no usage chunk", stream_chunks(), req(stream_options={"include_usage": True}), ["STRM-016"]),
    ("one choice of two", stream_chunks(), req(n=2), ["SEM-002"]),
    (
        "bad chunk",
        [chunk({"role": "assistant"}), chunk({"content": 5}), chunk({}, 0, "stop")],
        req(),
        ["STRM-012"],
    ),
    ("garbage", ["oops", *stream_chunks()], req(), ["STRM-003"]),
    ("NaN", [*stream_chunks(), json.dumps(chunk(choices=[], x=float("nan")))], req(), ["JSON-001"]),
    (
        "bad json content",
        stream_chunks(("no json",)),
        req(response_format={"type": "json_object"}),
        ["FMT-001"],
    ),
    ("required without call", stream_chunks(), req(tools=[WEATHER], tool_choice="required"), ["TOOL-001"]),
    (
        "too many tokens",
        stream_chunks(include_usage=True),
        req(max_tokens=1, stream_options={"include_usage": True}),
        ["SEM-006"],
    ),
]


@pytest.mark.parametrize(
    ("name", "chunks", "params", "expected"), FAILING_STREAMS, ids=[c[0] for c in FAILING_STREAMS]
)
def test_failing_stream_is_flagged(
    name: str, chunks: Any, params: dict[str, Any], expected: list[str]
) -> None:
    if chunks is None:
        exchange = make_exchange(
            stream=True,
            body=completion(),
            headers={"content-type": "application/json"},
            params={**params, "stream": True},
        )
    else:
        exchange = stream_ex(chunks, params)
    assert ids(response.stream_checks(exchange, OPENAI, NOW)) == expected


# --- no document, however malformed, makes the composed checks raise ------------------------------

HOSTILE_VALUES: list[Any] = [None, "x", "", 5, -1, 1.5, True, [], [None], {}, {"a": None}, 10**30]
RICH_PARAMS = req(
    n=2,
    max_tokens=3,
    max_completion_tokens=3,
    logprobs=True,
    top_logprobs=2,
    tools=[WEATHER],
    tool_choice=NAMED,
    response_format={"type": "json_object"},
    stream_options={"include_usage": True},
)


RICH = completion(
    choices=[
        choice(0, None, "tool_calls", tool_calls=[tool_call()], logprobs=logprobs()),
        choice(1, '{"a": 1}', "stop", logprobs=logprobs())
        | {
            "message": {
                "role": "assistant",
                "content": '{"a": 1}',
                "audio": {"id": "a", "data": "", "expires_at": 1, "transcript": ""},
            }
        },
    ],
    usage=usage(5, 6, completion_tokens_details={"reasoning_tokens": 0}),
)


def test_every_mutation_of_a_rich_completion_is_survived() -> None:
    count = 0
    for path in paths(RICH):
        for value in HOSTILE_VALUES:
            doc = replaced(RICH, path, value)
            # profiles differ only in which findings are kept: alternating them keeps the test fast
            profile = PROFILES[count % 2]
            for v in response.completion_checks(ex(doc, RICH_PARAMS), profile, NOW, include_info=True):
                assert v.requirement and v.message
            count += 1
    assert count > 500


def test_every_mutation_of_a_rich_stream_is_survived() -> None:
    chunks = [
        *TOOL_STREAM[:-1],
        chunk({"content": "x"}, 1, logprobs={"content": [logprob_entry("x")]}),
        chunk({}, 1, "stop"),
        TOOL_STREAM[-1],
        chunk(choices=[], usage=usage()),
    ]
    for position, original in enumerate(chunks):
        for path in paths(original):
            for value in HOSTILE_VALUES[:6]:
                mutated = [*chunks[:position], replaced(original, path, value), *chunks[position + 1 :]]
                exchange = stream_ex(mutated, RICH_PARAMS)
                for v in response.stream_checks(exchange, OPENAI, NOW, include_info=True):
                    assert v.requirement and v.message
