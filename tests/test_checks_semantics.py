"""Unit tests of conformance.checks.semantics: usage, choices, time, model, limits, logprobs, tools, JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import (
    MODEL,
    NOW,
    PROMPT,
    choice,
    chunk,
    completion,
    logprob_entry,
    logprobs,
    make_exchange,
    sse_body,
    stream_chunks,
    tool_call,
    top_entry,
    usage,
)

from conformance.checks import NotJudged, semantics
from conformance.transport.exchange import Exchange


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


def where(found: list[Any]) -> list[tuple[str, str]]:
    return [(v.requirement, v.pointer) for v in found]


def ex(doc: Any = None, **params: Any) -> Exchange:
    """A 200 exchange whose body is `doc` (default a valid completion) for a request with `params`."""
    return make_exchange(
        body=completion() if doc is None else doc, params={"model": MODEL, "messages": PROMPT, **params}
    )


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


# --- cannot judge ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "words"),
    [
        (make_exchange(no_response=True, error="reset"), "no response to judge: reset"),
        (make_exchange(status=401, body={"detail": "no"}), "no 200 to judge: HTTP 401"),
        (make_exchange(body=b"{oops"), "not JSON"),
        (make_exchange(body=[completion()]), "array, not an object"),
        (make_exchange(stream=True, body=b": keep-alive\n\n"), "no chunks"),
    ],
)
def test_unjudgeable_exchange_is_reported_under_the_asked_requirement(exchange: Exchange, words: str) -> None:
    for check, requirement in [
        (semantics.usage_adds_up, "SEM-001"),
        (semantics.created_seconds, "SEM-003"),
        (semantics.logprob_values, "LOGP-002"),
        (semantics.tool_call_arguments, "TOOL-003"),
    ]:
        found = check(exchange)
        assert ids(found) == [requirement] and words in found[0].message


# --- usage, choices -------------------------------------------------------------------------------


def test_usage_adds_up() -> None:
    assert semantics.usage_adds_up(ex()) == []
    assert semantics.usage_adds_up(ex(completion(usage=None))) == []
    assert semantics.usage_adds_up(ex(completion(drop=("usage",)))) == []
    found = semantics.usage_adds_up(ex(completion(usage=usage(5, 3, 9))))
    assert where(found) == [("SEM-001", "/usage/total_tokens")] and "5 + 3 = 8, got 9" in found[0].message


def test_choice_count() -> None:
    assert semantics.choice_count(ex()) == []
    assert semantics.choice_count(ex(n=None)) == []  # null n means 1
    two = completion(choices=[choice(1), choice(0)])
    assert semantics.choice_count(ex(two, n=2)) == []
    assert semantics.choice_count(ex(two), 2) == []
    assert where(semantics.choice_count(ex(n=2))) == [("SEM-002", "/choices")]
    dup = semantics.choice_count(ex(completion(choices=[choice(0), choice(0)]), n=2))
    assert ids(dup) == ["SEM-002"] and "indices" in dup[0].message
    assert ids(semantics.choice_count(ex(completion(choices=[choice(1)])))) == ["SEM-002"]


def test_usage_counts_choices_says_what_falls_short() -> None:
    two = completion(choices=[choice(0), choice(1)], usage=usage(5, 1))
    found = semantics.usage_counts_choices(ex(two, n=2))
    assert ids(found) == ["SEM-011"] and "only one choice counted?" in found[0].message
    # Prism's static example: one choice with text "string" and completion_tokens 0 (no choice counted)
    found = semantics.usage_counts_choices(ex(completion(choices=[choice(0, "string")], usage=usage(0, 0))))
    assert [v.message for v in found] == ["expected completion_tokens >= 1 for 1 choice with output, got 0"]


# --- created --------------------------------------------------------------------------------------


# 0 and a 1970 date are seconds too (a wrong clock, SEM-004's finding): a mock's created 0 is no unit error
@pytest.mark.parametrize("created", [NOW, 1_000_000_000, float(NOW), 0, 8_177_461])
def test_created_seconds_ok(created: Any) -> None:
    assert semantics.created_seconds(ex(completion(created=created))) == []


@pytest.mark.parametrize(
    ("created", "words"),
    [(NOW * 1000, "milliseconds"), (NOW * 1_000_000_000, "nanoseconds")],
)
def test_created_seconds_flags(created: int, words: str) -> None:
    found = semantics.created_seconds(ex(completion(created=created)))
    assert where(found) == [("SEM-003", "/created")] and words in found[0].message


def test_created_near() -> None:
    assert semantics.created_near(ex(), NOW + 5) == []
    assert semantics.created_near(ex(), NOW - 599) == []
    found = semantics.created_near(ex(), NOW + 3600)
    assert where(found) == [("SEM-004", "/created")] and "3600 s behind" in found[0].message
    # not seconds at all: SEM-003's finding, not a second one
    assert semantics.created_near(ex(completion(created=NOW * 1000)), NOW) == []
    # seconds of a clock that is off: a created of 0 is 1970
    assert where(semantics.created_near(ex(completion(created=0)), NOW)) == [("SEM-004", "/created")]
    assert semantics.created_near(ex(), NOW + 100, tolerance_s=10) != []


# --- model ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "requested"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("Llama-3.1-8B-Instruct", "meta-llama/llama-3.1-8b-instruct"),
        ("llama3.2:latest", "llama3.2"),
        ("claude-3-5-sonnet@20240620", "anthropic/claude-3-5-sonnet"),
    ],
)
def test_model_answers_accepts_aliases(answered: str, requested: str) -> None:
    assert semantics.model_answers(ex(completion(model=answered)), requested) == []


def test_model_answers_flags_other_model() -> None:
    found = semantics.model_answers(ex(completion(model="gpt-3.5-turbo")), "gpt-4o-mini")
    assert where(found) == [("SEM-005", "/model")] and "'gpt-3.5-turbo'" in found[0].message
    # requested model taken from the request by default
    assert ids(semantics.model_answers(ex(completion(model="llama3")))) == ["SEM-005"]
    assert semantics.model_answers(ex(completion(model=5))) == []  # RESP-001 reports the type


# --- max tokens and length ------------------------------------------------------------------------


def test_max_tokens_respected() -> None:
    assert semantics.max_tokens_respected(ex(completion(usage=usage(5, 1)), max_tokens=1)) == []
    assert semantics.max_tokens_respected(ex()) == []  # no limit asked
    found = semantics.max_tokens_respected(ex(completion(usage=usage(5, 4))), 1)
    assert where(found) == [("SEM-006", "/usage/completion_tokens")]
    # the limit is per choice
    two = completion(choices=[choice(0), choice(1)], usage=usage(5, 6))
    assert semantics.max_tokens_respected(ex(two), 3) == []
    assert ids(semantics.max_tokens_respected(ex(two), 2)) == ["SEM-006"]


def test_max_tokens_by_logprobs_and_sem_008() -> None:
    doc = completion(choices=[choice(logprobs=logprobs(["a", "b", "c"]))], drop=("usage",))
    found = semantics.max_tokens_respected(ex(doc, max_completion_tokens=2), requirement_id="SEM-008")
    assert where(found) == [("SEM-008", "/choices/0/logprobs/content")]
    assert semantics.max_tokens_respected(ex(doc, max_completion_tokens=3), requirement_id="SEM-008") == []


def test_cut_by_length() -> None:
    cut = completion(choices=[choice(finish_reason="length")], usage=usage(5, 1))
    assert semantics.cut_by_length(ex(cut, max_tokens=1)) == []
    found = semantics.cut_by_length(ex(completion(usage=usage(5, 1)), max_tokens=1))
    assert where(found) == [("SEM-007", "/choices/0/finish_reason")] and "'stop'" in found[0].message
    assert semantics.cut_by_length(ex(completion(choices=[choice(finish_reason="content_filter")]))) == []


def test_cut_by_length_skips_choices_that_stopped_short() -> None:
    # an end-of-text first token: 0 tokens < limit, nothing was cut
    assert semantics.cut_by_length(ex(completion(usage=usage(5, 0)), max_tokens=1)) == []
    short = completion(
        choices=[choice(logprobs=logprobs(["a"])), choice(1, finish_reason="length")], drop=("usage",)
    )
    assert semantics.cut_by_length(ex(short, max_tokens=5)) == []
    # no evidence either way: the caller vouched the output was cut
    assert ids(semantics.cut_by_length(ex(completion(drop=("usage",)), max_tokens=1))) == ["SEM-007"]


# --- same content ---------------------------------------------------------------------------------


def test_same_content() -> None:
    assert semantics.same_content(ex(), ex()) == []
    other = ex(completion(choices=[choice(content="Hi!")]))
    found = semantics.same_content(ex(), other)
    assert ids(found) == ["SEM-009"] and "'Hello!'" in found[0].message and "'Hi!'" in found[0].message
    assert ids(semantics.same_content(ex(), make_exchange(status=500, body=b""))) == ["SEM-009"]


# --- logprobs -------------------------------------------------------------------------------------


def test_logprobs_present() -> None:
    assert semantics.logprobs_present(ex(completion(choices=[choice(logprobs=logprobs())]))) == []
    # no content, nothing to cover
    assert (
        semantics.logprobs_present(ex(completion(choices=[choice(content=None, tool_calls=[tool_call()])])))
        == []
    )
    assert semantics.logprobs_present(ex(completion(choices=[choice(content="")]))) == []
    found = semantics.logprobs_present(ex(completion(choices=[choice(logprobs=None)])))
    assert where(found) == [("LOGP-001", "/choices/0/logprobs")]
    empty = semantics.logprobs_present(ex(completion(choices=[choice(logprobs={"content": []})])))
    assert ids(empty) == ["LOGP-001"]


def test_logprob_values() -> None:
    assert semantics.logprob_values(ex(completion(choices=[choice(logprobs=logprobs())]))) == []
    # float noise just above 0 is rounding, not a probability above 1
    noisy = {"content": [logprob_entry("a", 1e-7, top=[top_entry("a", 2e-7)])]}
    assert semantics.logprob_values(ex(completion(choices=[choice(logprobs=noisy)]))) == []
    bad = {"content": [logprob_entry("a", 0.5), logprob_entry("b", -1.0, top=[top_entry("b", 3.0)])]}
    found = semantics.logprob_values(ex(completion(choices=[choice(logprobs=bad)])))
    assert where(found) == [
        ("LOGP-002", "/choices/0/logprobs/content/0/logprob"),
        ("LOGP-002", "/choices/0/logprobs/content/0/top_logprobs/0/logprob"),
        ("LOGP-002", "/choices/0/logprobs/content/1/top_logprobs/0/logprob"),
    ]


def test_logprob_values_not_finite() -> None:
    # 1e400 is valid JSON and parses to infinity
    body = completion(choices=[choice(logprobs={"content": [logprob_entry("a", -1.0)]})])
    text = json.dumps(body).replace('"logprob": -1.0', '"logprob": -1e400', 1)
    found = semantics.logprob_values(ex(text))
    assert where(found) == [("LOGP-002", "/choices/0/logprobs/content/0/logprob")]


@pytest.mark.parametrize(
    "entry",
    [
        logprob_entry("héllo"),
        logprob_entry(" ✓"),
        # partial UTF-8 sequences: not decodable alone, shown as U+FFFD or bytes:\x.. by servers
        logprob_entry("\ufffd", bytes_=[0xE2, 0x9C]),
        logprob_entry("bytes:\\xe2\\x9c", bytes_=[0xE2, 0x9C]),
        logprob_entry("\ufffd\ufffd", bytes_=[0xE2]),
        logprob_entry("token_id:123", bytes_=[104, 105]),
        logprob_entry("a", bytes_=None),
        {"token": "a", "logprob": -0.1, "top_logprobs": []},
    ],
)
def test_logprob_bytes_ok(entry: dict[str, Any]) -> None:
    doc = completion(choices=[choice(logprobs={"content": [entry]})])
    assert semantics.logprob_bytes(ex(doc)) == []


def test_logprob_bytes_flags_mismatch() -> None:
    doc = completion(
        choices=[
            choice(
                logprobs={
                    "content": [
                        logprob_entry("hi", bytes_=[104, 111]),
                        logprob_entry("ok", top=[{"token": "é", "logprob": -1, "bytes": [101]}]),
                    ]
                }
            )
        ]
    )
    found = semantics.logprob_bytes(ex(doc))
    assert where(found) == [
        ("LOGP-003", "/choices/0/logprobs/content/0/bytes"),
        ("LOGP-003", "/choices/0/logprobs/content/1/top_logprobs/0/bytes"),
    ]


def test_top_logprobs_count() -> None:
    doc = completion(choices=[choice(logprobs=logprobs())])  # two top entries each
    assert semantics.top_logprobs_count(ex(doc), 2) == []
    assert semantics.top_logprobs_count(ex(doc, top_logprobs=2)) == []
    assert semantics.top_logprobs_count(ex(doc)) == []  # nothing asked
    found = semantics.top_logprobs_count(ex(doc), 3)
    assert where(found) == [("LOGP-004", "/choices/0/logprobs/content/0/top_logprobs")]
    # k + 1 where the extra is the sampled token itself
    plus = {
        "content": [logprob_entry("a", -3, top=[top_entry("b", -1), top_entry("c", -2), top_entry("a", -3)])]
    }
    assert semantics.top_logprobs_count(ex(completion(choices=[choice(logprobs=plus)])), 2) == []


def test_top_logprobs_sorted() -> None:
    assert semantics.top_logprobs_sorted(ex(completion(choices=[choice(logprobs=logprobs())]))) == []
    ties = {"content": [logprob_entry("a", -1, top=[top_entry("a", -1.0), top_entry("b", -1.0 + 5e-7)])]}
    assert semantics.top_logprobs_sorted(ex(completion(choices=[choice(logprobs=ties)]))) == []
    bad = {"content": [logprob_entry("a", -2, top=[top_entry("a", -2), top_entry("b", -1)])]}
    found = semantics.top_logprobs_sorted(ex(completion(choices=[choice(logprobs=bad)])))
    assert where(found) == [("LOGP-005", "/choices/0/logprobs/content/0/top_logprobs")]


# --- tools ----------------------------------------------------------------------------------------


def tools_doc(*calls: dict[str, Any], finish_reason: str = "tool_calls", n: int = 1) -> dict[str, Any]:
    return completion(choices=[choice(i, None, finish_reason, tool_calls=list(calls)) for i in range(n)])


def test_tool_calls_present() -> None:
    assert semantics.tool_calls_present(ex(tools_doc(tool_call()))) == []
    found = semantics.tool_calls_present(ex())
    assert where(found) == [("TOOL-001", "/choices/0/message")]
    # cut before it said anything: not judged
    cut = semantics.tool_calls_present(ex(completion(choices=[choice(content=None, finish_reason="length")])))
    assert [type(v) for v in cut] == [NotJudged]
    # answering in text ignores the forced call, whatever cut it afterwards
    texted = semantics.tool_calls_present(ex(completion(choices=[choice(finish_reason="length")])))
    assert where(texted) == [("TOOL-001", "/choices/0/message")] and "Hello!" in texted[0].message


def test_tool_call_fields() -> None:
    doc = tools_doc(tool_call("call_1"), tool_call("call_2", "get_time"))
    assert semantics.tool_call_fields(ex(doc), ["get_weather", "get_time"]) == []
    assert semantics.tool_call_fields(ex(doc)) == []  # no tools offered: names not judged
    found = semantics.tool_call_fields(ex(doc, tools=[WEATHER]))
    assert where(found) == [("TOOL-002", "/choices/0/message/tool_calls/1/function/name")]


@pytest.mark.parametrize(
    ("call", "suffix"),
    [
        (tool_call(""), "/id"),
        ({**tool_call(), "id": None}, "/id"),
        ({**tool_call(), "type": "custom"}, "/type"),
    ],
)
def test_tool_call_fields_flags(call: dict[str, Any], suffix: str) -> None:
    found = semantics.tool_call_fields(ex(tools_doc(call)), ["get_weather"])
    assert where(found) == [("TOOL-002", "/choices/0/message/tool_calls/0" + suffix)]


def test_tool_call_ids_unique_across_choices() -> None:
    found = semantics.tool_call_fields(ex(tools_doc(tool_call("call_1"), n=2)), ["get_weather"])
    assert where(found) == [("TOOL-002", "/choices/1/message/tool_calls/0/id")]


def test_custom_tools_offered_allow_custom_calls() -> None:
    custom = {"type": "custom", "custom": {"name": "grep"}}
    call = {"id": "c1", "type": "custom", "custom": {"name": "grep", "input": "x"}}
    assert semantics.tool_call_fields(ex(tools_doc(call), tools=[WEATHER, custom])) == []


@pytest.mark.parametrize("arguments", ['{"city": "Paris"}', "{}", ' {"a": [1, {"b": null}]} '])
def test_tool_call_arguments_ok(arguments: str) -> None:
    assert semantics.tool_call_arguments(ex(tools_doc(tool_call(arguments=arguments)))) == []


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"city": ', "holding a JSON object"),
        ("[1]", "got array"),
        ('"x"', "got string"),
        ("", "holding a JSON object"),
        ('{"a": NaN}', "holding a JSON object"),
    ],
)
def test_tool_call_arguments_flags(arguments: str, words: str) -> None:
    found = semantics.tool_call_arguments(ex(tools_doc(tool_call(arguments=arguments))))
    assert where(found) == [("TOOL-003", "/choices/0/message/tool_calls/0/function/arguments")]
    assert words in found[0].message


def test_tool_call_arguments_not_string_and_cut() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"city": "Paris"}}}
    assert "got object" in semantics.tool_call_arguments(ex(tools_doc(call)))[0].message
    cut = tools_doc(tool_call(arguments='{"ci'), finish_reason="length")
    assert semantics.tool_call_arguments(ex(cut)) == []


def test_tool_finish_reason() -> None:
    assert semantics.tool_finish_reason(ex(tools_doc(tool_call()))) == []
    assert semantics.tool_finish_reason(ex()) == []  # no tool calls
    found = semantics.tool_finish_reason(
        ex(tools_doc(tool_call(), finish_reason="stop"), tool_choice="required")
    )
    assert where(found) == [("TOOL-004", "/choices/0/finish_reason")]
    # OpenAI answers a named tool_choice with finish_reason "stop"
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert (
        semantics.tool_finish_reason(ex(tools_doc(tool_call(), finish_reason="stop"), tool_choice=named))
        == []
    )
    assert semantics.tool_finish_reason(ex(tools_doc(tool_call(), finish_reason="length"))) == []


# --- json_content ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ['{"a": 1}', '\n  {"answer": "hi"}\n', "{}"])
def test_json_content_ok(content: str) -> None:
    assert semantics.json_content(ex(completion(choices=[choice(content=content)]))) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('```json\n{"a": 1}\n```', "holding a JSON object"),
        ("[1, 2]", "got array"),
        ("Hello!", "'Hello!'"),
        ('{"a": NaN}', "holding a JSON object"),
    ],
)
def test_json_content_flags(content: Any, words: str) -> None:
    found = semantics.json_content(ex(completion(choices=[choice(content=content)])))
    assert where(found) == [("FMT-001", "/choices/0/message/content")] and words in found[0].message


def test_json_content_cut_and_unjudgeable() -> None:
    cut = completion(choices=[choice(content='{"a": ', finish_reason="length")])
    found = semantics.json_content(ex(cut))
    assert [type(v) for v in found] == [NotJudged] and "cut at max_tokens" in found[0].message
    assert semantics.json_content(ex(cut), require_judgeable=False) == []
    # one judged choice is enough
    mixed = completion(choices=[choice(content='{"a": 1}'), choice(1, content='{"b', finish_reason="length")])
    assert semantics.json_content(ex(mixed)) == []
    refusal = completion(
        choices=[{**choice(), "message": {"role": "assistant", "content": None, "refusal": "I can't"}}]
    )
    assert isinstance(semantics.json_content(ex(refusal))[0], NotJudged)
    # no text at all (content null, finish stop): nothing to judge, not a finding
    empty = semantics.json_content(ex(completion(choices=[choice(content=None)])))
    assert [type(v) for v in empty] == [NotJudged] and "no choice carried text" in empty[0].message


def test_json_content_cut_text_that_cannot_begin_an_object_is_a_finding_at_any_cap() -> None:
    # a model that ignores response_format and never stops: a higher --max-tokens cannot help, the start tells
    for reason in ("length", "content_filter"):
        ignored = completion(choices=[choice(content="1 2 3 4 5 6", finish_reason=reason)])
        found = semantics.json_content(ex(ignored))
        assert where(found) == [("FMT-001", "/choices/0/message/content")] and "ignored" in found[0].message
    # white space before the brace is a JSON text all the same
    assert isinstance(semantics.json_content(ex(completion(choices=[choice(content=' \n{"a', finish_reason="length")
                                                                        ])))[0], NotJudged)
    filtered_object = completion(choices=[choice(content='{"a', finish_reason="content_filter")])
    assert "nothing in the request can change" in semantics.json_content(ex(filtered_object))[0].message


# --- streams are judged through their assembled document ------------------------------------------


def test_semantics_of_a_stream() -> None:
    chunks = stream_chunks(('{"a"', ": 1}"), include_usage=True)
    exchange = make_exchange(
        stream=True,
        body=sse_body(chunks),
        params={
            "model": MODEL,
            "messages": PROMPT,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert semantics.json_content(exchange) == []
    assert semantics.created_seconds(exchange) == []
    assert semantics.model_answers(exchange) == []
    assert semantics.max_tokens_respected(exchange, 3) == []
    assert ids(semantics.max_tokens_respected(exchange, 2)) == ["SEM-006"]
    bad = [chunk({"role": "assistant"}, created=NOW * 1000), chunk({"content": "x"}, 0, "stop")]
    found = semantics.created_seconds(make_exchange(stream=True, body=sse_body(bad)))
    assert where(found) == [("SEM-003", "/created")]


# --- hostile documents never raise ----------------------------------------------------------------

HOSTILE = [
    None,
    "x",
    5,
    [],
    {},
    completion(choices="x"),
    completion(usage=[]),
    completion(usage={"total_tokens": "3"}),
    completion(choices=[choice(logprobs=5)]),
    completion(choices=[None, 1, "a", [], {"index": True}]),
    completion(choices=[{"index": 0, "message": "hi", "finish_reason": [], "logprobs": {"content": 7}}]),
    completion(
        choices=[
            choice(
                logprobs={
                    "content": [5, None, {"logprob": "x", "top_logprobs": "y", "bytes": "z", "token": 3}]
                }
            )
        ]
    ),
    completion(
        choices=[
            choice(
                logprobs={
                    "content": [
                        {
                            "token": "a",
                            "bytes": [-1, 999, "x"],
                            "logprob": None,
                            "top_logprobs": [None, {"logprob": []}],
                        }
                    ]
                }
            )
        ]
    ),
    completion(choices=[{"index": 0, "message": {"tool_calls": "x", "content": 5}}]),
    completion(
        choices=[
            {
                "index": 0,
                "message": {
                    "tool_calls": [
                        None,
                        3,
                        {"id": [], "type": {}, "function": 5},
                        {"function": {"arguments": None, "name": []}},
                    ]
                },
            }
        ]
    ),
    completion(
        created="now",
        model=None,
        usage={"prompt_tokens": True, "completion_tokens": 1.5, "total_tokens": None},
    ),
    completion(created=True),
    completion(created=[1]),
]
HOSTILE_PARAMS: list[dict[str, Any]] = [
    {},
    {"n": "2", "max_tokens": "5", "top_logprobs": None, "tools": "x", "tool_choice": 5},
    {
        "n": 2,
        "max_tokens": 1,
        "max_completion_tokens": 1,
        "logprobs": True,
        "top_logprobs": 2,
        "tools": [WEATHER, 5],
        "tool_choice": {"type": "function"},
        "response_format": {"type": "json_object"},
        "model": ["x"],
    },
]
CHECKS = [
    semantics.usage_adds_up,
    semantics.choice_count,
    semantics.created_seconds,
    lambda e: semantics.created_near(e, NOW),
    semantics.model_answers,
    semantics.max_tokens_respected,
    lambda e: semantics.max_tokens_respected(e, 1),
    semantics.cut_by_length,
    lambda e: semantics.same_content(e, e),
    semantics.logprobs_present,
    semantics.logprob_values,
    semantics.logprob_bytes,
    semantics.top_logprobs_count,
    lambda e: semantics.top_logprobs_count(e, 2),
    semantics.top_logprobs_sorted,
    semantics.tool_calls_present,
    semantics.tool_call_fields,
    lambda e: semantics.tool_call_fields(e, ["f"]),
    semantics.tool_call_arguments,
    semantics.tool_finish_reason,
    semantics.json_content,
]


@pytest.mark.parametrize("doc", HOSTILE)
@pytest.mark.parametrize("request_params", HOSTILE_PARAMS)
def test_hostile_documents_never_raise(doc: Any, request_params: dict[str, Any]) -> None:
    exchange = make_exchange(body=doc, params=request_params)
    for check in CHECKS:
        for v in check(exchange):
            assert v.requirement and v.message
    # a request body that was not a JSON object
    for check in CHECKS:
        check(make_exchange(body=doc, params=None))
