"""Streams as clients assemble them (conformance.checks.stream_assembly): STRM-020 (what a later tool-call
fragment may carry), STRM-021 (content deltas are increments), STRM-022 (the openai SDK's own accumulator
reads every stream as the suite does). The SDK is part of the `clients` extra, which the project's tests
install (tox, .ci/run)."""

from __future__ import annotations

from typing import Any

import pytest
from builders import MODEL, PROMPT, chunk, make_exchange, sse_body, stream_chunks

from conformance.checks import NotJudged, stream_assembly, streaming
from conformance.transport.exchange import Exchange


def stream(chunks: list[Any]) -> Exchange:
    return make_exchange(stream=True, body=sse_body(chunks),
                         params={"model": MODEL, "messages": PROMPT, "stream": True})


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found if not isinstance(v, NotJudged)]


def tool_stream(later: dict[str, Any], *, type_: str = "function") -> list[dict[str, Any]]:
    """A streamed call to get_weather in three fragments; `later` is added to the last two."""
    first = {"index": 0, "id": "call_1", "type": type_, "function": {"name": "get_weather", "arguments": ""}}
    pieces = []
    for text in ('{"city": ', '"Paris"}'):
        piece: dict[str, Any] = {"index": 0, "function": {"arguments": text}}
        for key, value in later.items():
            if key == "name":
                piece["function"]["name"] = value
            else:
                piece[key] = value
        pieces.append(chunk({"tool_calls": [piece]}))
    return [chunk({"role": "assistant", "content": None, "tool_calls": [first]}), *pieces,
            chunk({}, 0, "tool_calls")]


def test_a_conformant_stream_passes_all_three() -> None:
    for chunks in (stream_chunks(), stream_chunks(n=2), tool_stream({})):
        exchange = stream(chunks)
        assert stream_assembly.tool_call_fragments(exchange) == []
        assert stream_assembly.cumulative_text(exchange) == []
        assert stream_assembly.sdk_agreement(exchange) == []


@pytest.mark.parametrize("later", [{"id": "call_1"}, {"id": "call_2"}, {"name": "get_weather"},
                                   {"type": "custom"}])
def test_a_later_fragment_repeating_the_identity_breaks_strm_020(later: dict[str, Any]) -> None:
    found = stream_assembly.tool_call_fragments(stream(tool_stream(later)))
    # one finding per call, where the first repeat is
    assert [(v.requirement, v.pointer) for v in found] == [("STRM-020", "/events/1/choices/0/delta/tool_calls/0")]


@pytest.mark.parametrize("later", [{"id": None}, {"id": ""}, {"type": "function"}, {"name": None},
                                   {"id": None, "type": "function", "name": None}])
def test_nulls_and_the_same_type_again_are_harmless(later: dict[str, Any]) -> None:
    exchange = stream(tool_stream(later))
    assert stream_assembly.tool_call_fragments(exchange) == []
    # the SDK joins nothing of them: it reads the stream as the suite does
    assert stream_assembly.sdk_agreement(exchange) == []


def test_two_calls_and_two_choices_are_told_apart() -> None:
    first = [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
             {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]
    chunks = [*(chunk({"role": "assistant", "tool_calls": first}, i) for i in (0, 1)),
              chunk({}, 0, "tool_calls"), chunk({}, 1, "tool_calls")]
    exchange = stream(chunks)
    assert stream_assembly.tool_call_fragments(exchange) == []
    assert stream_assembly.sdk_agreement(exchange) == []


def test_a_repeated_id_is_a_disagreement_with_the_sdk_showing_both() -> None:
    found = stream_assembly.sdk_agreement(stream(tool_stream({"id": "call_1"})))
    assert ids(found) == ["STRM-022"]
    assert "suite 'call_1'" in found[0].message and "SDK 'call_1call_1call_1'" in found[0].message
    # the suite keeps the id the call was given
    assert streaming.assemble(stream(tool_stream({"id": "call_1"})))["choices"][0]["message"]["tool_calls"][0][
        "id"] == "call_1"


def test_a_role_in_every_delta_is_a_disagreement_with_the_sdk() -> None:
    chunks = [chunk({"role": "assistant", "content": piece}) for piece in ("Hel", "lo")] + [chunk({}, 0, "stop")]
    found = stream_assembly.sdk_agreement(stream(chunks))
    assert ids(found) == ["STRM-022"] and "assistantassistant" in found[0].message


def test_cumulative_content_breaks_strm_021() -> None:
    texts = ("Lisbon", "Lisbon is", "Lisbon is the", "Lisbon is the capital")
    found = stream_assembly.cumulative_text(stream(stream_chunks(texts)))
    assert [(v.requirement, v.pointer) for v in found] == [("STRM-021", "/events/2/choices/0/delta/content")]
    assert "LisbonLisbon is" in found[0].message


@pytest.mark.parametrize("texts", [
    ("a", "ab"),  # two deltas only: a plausible pair of increments
    ("ha", "ha", "ha"),  # the same text again is no growth
    ("1", " 2", " 3", " 4"),
    ("Lisbon", "Lisbon is", " the capital"),  # the pattern broken once
])
def test_increments_pass_strm_021(texts: tuple[str, ...]) -> None:
    assert stream_assembly.cumulative_text(stream(stream_chunks(texts))) == []


def test_not_judged_without_chunks_or_with_malformed_ones() -> None:
    empty = stream_assembly.sdk_agreement(stream([]))
    assert [(v.requirement, v.needs) for v in empty] == [("STRM-022", "STRM-017")]
    broken = stream_assembly.sdk_agreement(stream([chunk({"role": "assistant"}), {"id": "x", "choices": "no"}]))
    assert [type(v) for v in broken] == [NotJudged] and broken[0].needs.startswith("STRM-01")


def test_without_the_sdk_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_assembly, "_chunk_type", lambda: None)
    found = stream_assembly.sdk_agreement(stream(stream_chunks()))
    assert [type(v) for v in found] == [NotJudged] and "pip install" in found[0].message


def test_an_sdk_that_raises_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(docs: list[dict[str, Any]]) -> dict[str, Any]:
        raise RuntimeError("Expected list delta entry to have an `index` key")

    monkeypatch.setattr(stream_assembly, "_sdk_assembly", boom)
    found = stream_assembly.sdk_agreement(stream(stream_chunks()))
    assert ids(found) == ["STRM-022"] and "RuntimeError" in found[0].message


def test_the_sdk_assembles_a_stream_once_however_many_rules_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    # run-wide STRM-022 and the checks of each generated case both judge a generated stream
    fed: list[int] = []
    assembly = stream_assembly._sdk_assembly

    def counted(docs: list[dict[str, Any]]) -> dict[str, Any]:
        fed.append(len(docs))
        return assembly(docs)

    monkeypatch.setattr(stream_assembly, "_sdk_assembly", counted)
    exchange = stream(tool_stream({"id": "call_1"}))
    first = stream_assembly.sdk_agreement(exchange)
    first.append(NotJudged("STRM-022", "a caller's own note", ""))  # a caller's list is its own
    again = stream_assembly.sdk_agreement(exchange)
    assert ids(again) == ["STRM-022"] and len(again) == 1 and fed == [4]
    # another stream is assembled afresh
    assert stream_assembly.sdk_agreement(stream(stream_chunks())) == [] and len(fed) == 2


def test_cumulative_tool_call_arguments_break_strm_021() -> None:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    pieces = ['{"ci', '{"city": ', '{"city": "Paris"}']
    chunks = [chunk({"role": "assistant", "tool_calls": [first]}),
              *(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces),
              chunk({}, 0, "tool_calls")]
    found = stream_assembly.cumulative_text(stream(chunks))
    assert [(v.requirement, v.pointer) for v in found] == [
        ("STRM-021", "/events/2/choices/0/delta/tool_calls/0/function/arguments")]
    # the same arguments in increments pass
    assert stream_assembly.cumulative_text(stream(tool_stream({}))) == []
