"""Unit tests of conformance.checks.streaming: SSE framing, chunks, stream conventions, assembly."""

from __future__ import annotations

from typing import Any

import pytest
from builders import MODEL, NOW, PROMPT, chunk, logprob_entry, make_exchange, sse_body, stream_chunks, usage

from conformance.checks import NotJudged, streaming
from conformance.contract.profiles import OPENAI, SGP
from conformance.transport.exchange import Exchange


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


def where(found: list[Any]) -> list[tuple[str, str]]:
    return [(v.requirement, v.pointer) for v in found]


def stream(
    chunks: list[Any] | None = None,
    terminator: str | None = "[DONE]",
    *,
    raw: bytes | str | None = None,
    **params: Any,
) -> Exchange:
    body = raw if raw is not None else sse_body(stream_chunks() if chunks is None else chunks, terminator)
    return make_exchange(
        stream=True, body=body, params={"model": MODEL, "messages": PROMPT, "stream": True, **params}
    )


USAGE = {"stream_options": {"include_usage": True}}
NOT_OK = make_exchange(status=401, body={"detail": "no"}, stream=True)


def test_every_check_passes_a_conformant_stream_with_and_without_done() -> None:
    for terminator in ("[DONE]", None):
        for n in (1, 2):
            exchange = stream(stream_chunks(n=n, include_usage=True), terminator, n=n, **USAGE)
            found = [
                *streaming.sse_framing(exchange),
                *streaming.data_is_json(exchange, SGP),
                *streaming.nothing_after_done(exchange),
                *streaming.chunk_shapes(exchange),
                *streaming.constant_identity(exchange),
                *streaming.role_first(exchange),
                *streaming.finish_once(exchange),
                *streaming.usage_chunk(exchange),
                *streaming.assembled_valid(exchange),
            ]
            assert found == []


@pytest.mark.parametrize(
    ("check", "requirement"),
    [
        (streaming.sse_framing, "STRM-002"),
        (lambda e: streaming.data_is_json(e, OPENAI), "STRM-003"),
        (streaming.done_terminator, "STRM-004"),
        (streaming.no_done, "STRM-005"),
        (streaming.nothing_after_done, "STRM-006"),
        (streaming.chunk_shapes, "STRM-010"),
        (streaming.constant_identity, "STRM-013"),
        (streaming.role_first, "STRM-014"),
        (streaming.finish_once, "STRM-015"),
        (streaming.assembled_valid, "STRM-017"),
    ],
)
def test_non_2xx_cannot_be_judged(check: Any, requirement: str) -> None:
    found = check(NOT_OK)
    assert ids(found) == [requirement] and "HTTP 401" in found[0].message


# --- framing --------------------------------------------------------------------------------------


def test_sse_framing_accepts_comments_crlf_and_other_fields() -> None:
    text = (
        ": ping\r\n\r\nid: 1\r\nretry: 1000\r\ndata: "
        + '{"a": 1}'
        + "\r\n\r\nevent: message\ndata: [DONE]\n\n"
    )
    assert streaming.sse_framing(stream(raw=text)) == []


def test_sse_framing_flags_unknown_lines_and_unterminated_stream() -> None:
    found = streaming.sse_framing(stream(raw='data: {"a": 1}\n\n{"id": "x"}\n\n'))
    assert ids(found) == ["STRM-002"] and '\'{"id": "x"}\'' in found[0].message
    cut = streaming.sse_framing(stream(raw='data: {"a": 1}\n\ndata: {"b"'))
    assert ids(cut) == ["STRM-002"] and "mid-event" in cut[0].message


def test_sse_framing_does_not_blame_the_server_for_a_client_cut() -> None:
    exchange = make_exchange(stream=True, body='data: {"a": 1}\n\ndata: {"b"', truncated="time limit")
    assert streaming.sse_framing(exchange) == []


def test_data_is_json() -> None:
    body = sse_body([chunk(), "not json", "[1, 2]", '{"a": NaN}'])
    found = streaming.data_is_json(stream(raw=body), OPENAI)
    # NaN is JSON-001's finding (transport.strict_json): one fault, one ID
    assert where(found) == [("STRM-003", "/events/1"), ("STRM-003", "/events/2")]
    assert "got array" in found[1].message


# --- terminator -----------------------------------------------------------------------------------


def test_done_terminator() -> None:
    assert streaming.done_terminator(stream()) == []
    found = streaming.done_terminator(stream(terminator=None))
    assert ids(found) == ["STRM-004"] and "ended" not in found[0].message
    late = stream(raw=sse_body([chunk(), "[DONE]", chunk()], None))
    assert ids(streaming.done_terminator(late)) == ["STRM-004"]
    cut = make_exchange(stream=True, body=sse_body(stream_chunks(), None), truncated="size limit")
    assert [type(v) for v in streaming.done_terminator(cut)] == [NotJudged]


def test_no_done() -> None:
    assert streaming.no_done(stream(terminator=None)) == []
    assert where(streaming.no_done(stream())) == [("STRM-005", "/events/4")]


def test_nothing_after_done() -> None:
    assert streaming.nothing_after_done(stream()) == []
    assert streaming.nothing_after_done(stream(terminator=None)) == []
    found = streaming.nothing_after_done(stream(raw=sse_body([chunk(), "[DONE]", chunk()], "[DONE]")))
    assert where(found) == [("STRM-006", "/events/2")] and "2 more" in found[0].message


# --- chunks ---------------------------------------------------------------------------------------


def test_chunk_shapes() -> None:
    chunks = [chunk({"role": "assistant"}), chunk({"content": 5}), {"id": "x", "choices": []}]
    found = streaming.chunk_shapes(stream(chunks))
    assert {(v.requirement, v.pointer) for v in found} == {
        ("STRM-012", "/events/1/choices/0/delta/content"),
        ("STRM-010", "/events/2"),
    }


def test_chunk_shapes_skips_error_events_and_non_objects() -> None:
    text = sse_body(stream_chunks()).decode() + 'event: error\ndata: {"error": {"message": "boom"}}\n\n'
    assert streaming.chunk_shapes(stream(raw=text)) == []
    assert streaming.chunk_shapes(stream(raw=sse_body(["[1]", "x"]))) == []


def test_constant_identity() -> None:
    assert streaming.constant_identity(stream(stream_chunks(include_usage=True))) == []
    # fields that are absent or null in a chunk are not compared
    assert (
        streaming.constant_identity(stream([chunk({"role": "assistant"}), chunk({}, 0, "stop", id=None)]))
        == []
    )
    chunks = [
        chunk({"role": "assistant"}),
        chunk({"content": "a"}, id="other"),
        chunk({}, 0, "stop", id="third", created=NOW + 1),
    ]
    found = streaming.constant_identity(stream(chunks))
    assert where(found) == [("STRM-013", "/events/1/id"), ("STRM-019", "/events/2/created")]
    # the same model is a convention no source states: SHOULD, with created
    assert ids(streaming.constant_identity(stream([chunk(), chunk(model="other")]))) == ["STRM-023"]


def test_role_first() -> None:
    found = streaming.role_first(
        stream([chunk({"content": "a"}), chunk({"role": "assistant"}), chunk({}, 0, "stop")])
    )
    assert where(found) == [("STRM-014", "/events/0/choices/0/delta")] and "no role" in found[0].message
    two = [
        chunk({"role": "assistant"}, 0),
        chunk({"content": "x"}, 1),
        chunk({}, 0, "stop"),
        chunk({}, 1, "stop"),
    ]
    assert where(streaming.role_first(stream(two))) == [("STRM-014", "/events/1/choices/0/delta")]
    assert "'user'" in streaming.role_first(stream([chunk({"role": "user"})]))[0].message


def test_finish_once() -> None:
    # content in the same chunk as the finish, and empty deltas after it, are fine
    ok = [
        chunk({"role": "assistant"}),
        chunk({"content": "hi"}, 0, "stop"),
        chunk({"content": ""}),
        chunk({}, logprobs=None),
    ]
    assert streaming.finish_once(stream(ok)) == []
    # "" is "not yet" for some servers
    assert (
        streaming.finish_once(stream([chunk({"role": "assistant"}, finish_reason=""), chunk({}, 0, "stop")]))
        == []
    )


@pytest.mark.parametrize(
    ("chunks", "pointer", "words"),
    [
        ([chunk({"role": "assistant"}), chunk({"content": "hi"})], "", "got none"),
        (
            [chunk({"role": "assistant"}), chunk({}, 0, "stop"), chunk({}, 0, "length")],
            "/events/2/choices/0/finish_reason",
            "second",
        ),
        (
            [chunk({"role": "assistant"}), chunk({}, 0, "stop"), chunk({"content": "more"})],
            "/events/2/choices/0/delta",
            "more output",
        ),
        (
            [chunk({"role": "assistant"}), chunk({}, 0, "tool_calls"), chunk({"tool_calls": [{"index": 0}]})],
            "/events/2/choices/0/delta",
            "more output",
        ),
    ],
)
def test_finish_once_flags(chunks: list[Any], pointer: str, words: str) -> None:
    found = streaming.finish_once(stream(chunks))
    assert where(found) == [("STRM-015", pointer)] and words in found[0].message


def test_finish_once_missing_per_index_and_cut() -> None:
    two = [chunk({"role": "assistant"}, 0), chunk({"role": "assistant"}, 1), chunk({}, 0, "stop")]
    assert "[1]" in streaming.finish_once(stream(two))[0].message
    cut = make_exchange(
        stream=True, body=sse_body([chunk({"role": "assistant"})], None), truncated="time limit"
    )
    assert [type(v) for v in streaming.finish_once(cut)] == [NotJudged]


# --- usage chunk ----------------------------------------------------------------------------------


def test_usage_chunk_applies_only_when_asked() -> None:
    assert streaming.usage_chunk(stream()) == []
    assert streaming.usage_chunk(stream(stream_chunks(include_usage=True), **USAGE)) == []
    # OpenAI sends usage: null in every other chunk
    chunks = [{**c, "usage": None} for c in stream_chunks()] + [chunk(choices=[], usage=usage())]
    assert streaming.usage_chunk(stream(chunks, **USAGE)) == []


@pytest.mark.parametrize(
    ("chunks", "pointers"),
    [
        (stream_chunks(), [""]),
        ([*stream_chunks()[:-1], chunk({}, 0, "stop", usage=usage())], ["/events/3/choices"]),
        ([*stream_chunks(), chunk(choices=[], usage=usage(5, 3, 7))], ["/events/4/usage/total_tokens"]),
        (
            [
                chunk({"role": "assistant"}, usage=usage()),
                *stream_chunks()[1:],
                chunk(choices=[], usage=usage()),
            ],
            ["/events/0/usage"],
        ),
        ([*stream_chunks(include_usage=True), chunk({})], ["/events/5"]),
    ],
)
def test_usage_chunk_flags(chunks: list[Any], pointers: list[str]) -> None:
    found = streaming.usage_chunk(stream(chunks, **USAGE))
    assert where(found) == [("STRM-016", p) for p in pointers]


def test_usage_chunk_with_continuous_stats() -> None:
    chunks = [{**c, "usage": usage()} for c in stream_chunks()] + [chunk(choices=[], usage=usage())]
    options = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    assert streaming.usage_chunk(stream(chunks, **options)) == []


# --- assembly -------------------------------------------------------------------------------------


def test_assemble_folds_content_role_finish_and_logprobs() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}, 0),
        chunk({"role": "assistant"}, 1),
        chunk({"content": "Hel"}, 0, logprobs={"content": [logprob_entry("Hel")]}),
        chunk({"content": "Yo"}, 1),
        chunk({"content": "lo"}, 0, logprobs={"content": [logprob_entry("lo")]}),
        chunk({}, 1, "length"),
        chunk({}, 0, "stop"),
        chunk(choices=[], usage=usage()),
    ]
    doc = streaming.assemble(stream(chunks))
    assert doc is not None
    assert (doc["id"], doc["created"], doc["model"], doc["usage"]) == ("chatcmpl-123", NOW, MODEL, usage())
    first, second = doc["choices"]
    assert first["message"] == {"role": "assistant", "content": "Hello"} and first["finish_reason"] == "stop"
    assert [e["token"] for e in first["logprobs"]["content"]] == ["Hel", "lo"]
    assert second["message"]["content"] == "Yo" and second["finish_reason"] == "length"
    assert "logprobs" not in second


def test_assemble_merges_tool_calls_by_index() -> None:
    chunks = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}
                ]
            }
        ),
        chunk(
            {"tool_calls": [{"index": 0, "id": None, "function": {"name": None, "arguments": '"Paris"}'}}]}
        ),
        chunk({}, 0, "tool_calls"),
    ]
    doc = streaming.assemble(stream(chunks))
    assert doc is not None
    calls = doc["choices"][0]["message"]["tool_calls"]
    assert calls == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert doc["choices"][0]["message"]["content"] is None


def test_assemble_without_chunks() -> None:
    assert streaming.assemble(stream(raw=b"")) is None
    assert streaming.assemble(stream(raw=sse_body(["[1]"], "[DONE]"))) is None


def test_assembled_valid() -> None:
    assert streaming.assembled_valid(stream()) == []
    two = stream(stream_chunks(n=2), n=2)
    assert streaming.assembled_valid(two) == []
    # a choice count other than n is the requirement on n, not a broken stream
    assert where(streaming.assembled_valid(two, 1)) == [("SEM-002", "/choices")]
    one = streaming.assembled_valid(stream(), 2)
    assert where(one) == [("SEM-002", "/choices")] and "expected 2" in one[0].message


def test_assembled_valid_flags_incomplete_tool_call_and_keeps_should_level() -> None:
    chunks = [
        chunk(
            {"role": "assistant", "tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}
        ),
        chunk({}, 0, "tool_calls"),
    ]
    found = streaming.assembled_valid(stream(chunks))
    assert where(found) == [("STRM-017", "/choices/0/message/tool_calls/0")] and "'id'" in found[0].message
    tier = streaming.assembled_valid(
        stream([chunk({"role": "assistant"}, service_tier="turbo"), chunk({}, 0, "stop")])
    )
    assert ids(tier) == ["RESP-009"]
    assert ids(streaming.assembled_valid(stream(raw=b": nothing\n\n"))) == ["STRM-017"]


# --- hostile streams never raise ------------------------------------------------------------------

HOSTILE_CHUNKS: list[Any] = [
    "null",
    "5",
    '"x"',
    "[]",
    "{}",
    chunk(choices="x"),
    chunk(choices=[None, 5, "a", {"index": "0"}]),
    chunk(choices=[{"index": 0, "delta": "x", "finish_reason": []}]),
    chunk(choices=[{"index": True, "delta": {"role": [], "content": 5, "tool_calls": "x"}}]),
    chunk(
        {
            "tool_calls": [
                None,
                5,
                {"index": "a", "function": "x"},
                {"index": 0, "function": {"arguments": 5, "name": {}}},
            ]
        }
    ),
    chunk({"tool_calls": [{"id": [], "type": {}, "function": {"name": ["x"]}}]}),
    chunk({}, logprobs=5),
    chunk({}, logprobs={"content": "x", "refusal": 5}),
    chunk(usage=[]),
    chunk(choices=[], usage={"prompt_tokens": "1"}),
    chunk(id=[], created={}, model=5),
]


@pytest.mark.parametrize("bad", HOSTILE_CHUNKS)
def test_hostile_chunks_never_raise(bad: Any) -> None:
    exchange = stream([*stream_chunks()[:2], bad, *stream_chunks()[2:]], n="x", **USAGE)
    for check in (
        streaming.sse_framing,
        streaming.nothing_after_done,
        streaming.chunk_shapes,
        streaming.constant_identity,
        streaming.role_first,
        streaming.finish_once,
        streaming.usage_chunk,
        streaming.assembled_valid,
        streaming.done_terminator,
        streaming.no_done,
    ):
        for v in check(exchange):
            assert v.requirement and v.message
    streaming.data_is_json(exchange, SGP)
    streaming.assemble(exchange)


def test_assembled_valid_does_not_judge_a_stream_cut_by_the_client() -> None:
    cut = make_exchange(stream=True, body=sse_body([chunk({"role": "assistant", "content": "1 2"})], None),
                        truncated="response still arriving after 60 s: read stopped there")
    found = streaming.assembled_valid(cut)
    assert [type(v) for v in found] == [NotJudged] and "never arrived whole" in found[0].message


def test_suite_judges_a_stream_cut_by_the_client_but_not_one_broken_off() -> None:
    from conformance.suite.needs import judgeable, why_not

    limit = "response still arriving after 1 s: read stopped there"
    endless = make_exchange(stream=True, body=sse_body(stream_chunks(), None), error=limit, truncated=limit)
    assert judgeable(endless)
    reset = make_exchange(stream=True, body=sse_body(stream_chunks(), None), error="reset mid-response")
    assert not judgeable(reset)
    assert why_not(reset) == "HTTP 200 cut short: reset mid-response"
    assert not judgeable(make_exchange(status=500, body={"detail": "x"}))


def test_created_is_exercised_only_by_a_stream_that_lasted_a_second() -> None:
    short, long = stream(), stream()
    short.response.body_ms, long.response.body_ms = 120.0, 1500.0
    note = streaming.crossed_a_second([short, short])
    assert isinstance(note, NotJudged) and note.requirement == "STRM-019" and "0.12 s" in note.message
    assert streaming.crossed_a_second([short, long]) is None
    # a recording does not say how long its stream lasted: its chunks are judged as they are
    assert streaming.crossed_a_second([stream()]) is None
