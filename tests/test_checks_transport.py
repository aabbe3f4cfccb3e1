"""Unit tests of conformance.checks.transport: strict JSON, duplicate keys, charset, media type, key echo,
request id."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from builders import KEY, chunk, completion, make_exchange, sse_body, stream_chunks

from conformance.checks import NotJudged, transport


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


NO_RESPONSE = make_exchange(no_response=True, error="connection refused")


# --- strict_json ----------------------------------------------------------------------------------


def test_strict_json_passes_valid_body_and_stream() -> None:
    assert transport.strict_json(make_exchange()) == []
    assert transport.strict_json(make_exchange(stream=True)) == []
    # a number beyond double range is valid JSON (RFC 8259 §6 leaves precision to implementations)
    assert transport.strict_json(make_exchange(body=b'{"created": 1e400}')) == []


@pytest.mark.parametrize("body", [b'{"logprob": NaN}', b'{"logprob": -Infinity}', b'{"a": 1', b"hello"])
def test_strict_json_flags_non_json_body(body: bytes) -> None:
    found = transport.strict_json(make_exchange(body=body, scenario="s"))
    assert ids(found) == ["JSON-001"] and found[0].scenario == "s"


def test_strict_json_judges_only_bodies_that_claim_or_look_like_json() -> None:
    html = make_exchange(status=502, body=b"<html>bad gateway</html>", headers={"content-type": "text/html"})
    assert transport.strict_json(html) == []
    nan_as_text = make_exchange(body=b'{"a": NaN}', headers={"content-type": "text/plain"})
    assert ids(transport.strict_json(nan_as_text)) == ["JSON-001"]
    empty = make_exchange(body=b"")
    assert "empty body" in transport.strict_json(empty)[0].message


def test_strict_json_in_stream_flags_nan_payload_only() -> None:
    body = sse_body([chunk({"role": "assistant"}), '{"logprob": NaN}', "not json at all"])
    found = transport.strict_json(make_exchange(stream=True, body=body))
    # the non-JSON payload is STRM-003's finding, not a second JSON-001
    assert [(v.requirement, v.pointer) for v in found] == [("JSON-001", "/events/1")]


def test_strict_json_without_response() -> None:
    found = transport.strict_json(NO_RESPONSE)
    assert ids(found) == ["JSON-001"] and "connection refused" in found[0].message


# --- duplicate_keys -------------------------------------------------------------------------------


def test_duplicate_keys() -> None:
    assert transport.duplicate_keys(make_exchange()) == []
    found = transport.duplicate_keys(
        make_exchange(body=b'{"id": "a", "choices": [{"index": 0, "index": 1}]}')
    )
    assert ids(found) == ["JSON-002"] and "'index'" in found[0].message


def test_duplicate_keys_in_stream_and_unjudgeable() -> None:
    body = sse_body([chunk(), '{"id": "a", "id": "b"}'])
    found = transport.duplicate_keys(make_exchange(stream=True, body=body))
    assert [(v.requirement, v.pointer) for v in found] == [("JSON-002", "/events/1")]
    assert [type(v) for v in transport.duplicate_keys(make_exchange(body=b"oops"))] == [NotJudged]
    assert [type(v) for v in transport.duplicate_keys(NO_RESPONSE)] == [NotJudged]


# --- json_charset ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json; charset=utf8",
        "text/event-stream",
    ],
)
def test_json_charset_accepts_utf8(content_type: str) -> None:
    body = '{"content": "héllo ✓"}'.encode()
    assert transport.json_charset(make_exchange(body=body, headers={"content-type": content_type})) == []


def test_json_charset_flags_other_charset_and_invalid_bytes() -> None:
    latin = make_exchange(headers={"content-type": "application/json; charset=iso-8859-1"})
    found = transport.json_charset(latin)
    assert ids(found) == ["HDR-008"] and "'iso-8859-1'" in found[0].message
    bad = make_exchange(body=b'{"content": "caf\xe9"}')
    assert ids(transport.json_charset(bad)) == ["HDR-006"]
    # no response: neither rule has anything to judge
    assert {(v.requirement, type(v)) for v in transport.json_charset(NO_RESPONSE)} == {
        ("HDR-006", NotJudged), ("HDR-008", NotJudged)}


# --- content_type ---------------------------------------------------------------------------------


def test_content_type() -> None:
    ok = make_exchange(headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert transport.content_type(ok, "application/json", "HDR-003") == []
    assert transport.content_type(make_exchange(stream=True), "text/event-stream", "STRM-001") == []
    wrong = transport.content_type(
        make_exchange(headers={"content-type": "text/plain"}), "application/json", "HDR-003"
    )
    assert ids(wrong) == ["HDR-003"] and "'text/plain'" in wrong[0].message
    missing = transport.content_type(make_exchange(headers={}), "text/event-stream", "STRM-001")
    assert ids(missing) == ["STRM-001"] and "no Content-Type" in missing[0].message


def test_content_type_needs_a_2xx() -> None:
    found = transport.content_type(
        make_exchange(status=401, body={"detail": "no"}), "application/json", "HDR-003"
    )
    assert ids(found) == ["HDR-003"] and "HTTP 401" in found[0].message
    assert (
        transport.content_type(make_exchange(status=401), "application/json", "HDR-003", need_ok=False) == []
    )


# --- key_not_echoed -------------------------------------------------------------------------------


def test_key_not_echoed_passes_clean_response() -> None:
    assert transport.key_not_echoed(make_exchange(), [KEY]) == []
    assert transport.key_not_echoed(NO_RESPONSE, [KEY]) == []


@pytest.mark.parametrize("key", ["bad", "key", "conformance", "prompt_tokens", "assistant"])
def test_a_key_an_answer_may_contain_anyway_is_not_judged(key: str) -> None:
    """A word or a short key found in a conformant answer (a field name, a fingerprint) proves no echo: the
    rule is not judged, and says why, rather than failing a correct server or passing on nothing."""
    answer = make_exchange(body={"detail": "bad key", "usage": {"prompt_tokens": 1}, "system_fingerprint":
                                 "fp_conformance", "role": "assistant"})
    found = transport.key_not_echoed(answer, ["", key])
    assert [type(v).__name__ for v in found] == ["NotJudged"] and "too short or too ordinary" in found[0].message


@pytest.mark.parametrize(("secret", "distinct"), [
    ("sk-0123456789abcdef", True), ("a" * 16, True), ("key12345", True), ("12345678", False),
    ("conformance", False), ("prompt_tokens", False), ("k3y", False)])
def test_distinctive_keys(secret: str, distinct: bool) -> None:
    assert transport.distinctive(secret) is distinct


def test_a_distinctive_key_beside_an_ordinary_one_is_still_judged() -> None:
    echo = make_exchange(body={"detail": f"bad key {KEY}"})
    assert [v.requirement for v in transport.key_not_echoed(echo, ["conformance", KEY])] == ["AUTH-007"]


def test_key_echoed_in_header_never_quotes_it() -> None:
    exchange = make_exchange(headers=[("content-type", "application/json"), ("x-debug", f"key={KEY}")])
    found = transport.key_not_echoed(exchange, ["unrelated-secret-value", KEY])
    assert ids(found) == ["AUTH-007"]
    assert "x-debug" in found[0].message and "#2" in found[0].message
    assert KEY not in found[0].message and KEY not in found[0].render()


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:"])
def test_key_echoed_in_body_as_base64_at_any_offset(prefix: bytes) -> None:
    blob = base64.b64encode(prefix + KEY.encode() + b":rest").decode()
    found = transport.key_not_echoed(make_exchange(body={"detail": f"token {blob} invalid"}), [KEY])
    assert ids(found) == ["AUTH-007"] and "base64" in found[0].message and KEY not in found[0].message


def test_key_echoed_verbatim_in_body() -> None:
    found = transport.key_not_echoed(make_exchange(status=401, body={"detail": f"invalid key {KEY}"}), [KEY])
    assert ids(found) == ["AUTH-007"] and "verbatim" in found[0].message and KEY not in found[0].message


# --- request_id -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "x-request-id",
        "Request-Id",
        "X-Amzn-RequestId",
        "cf-ray",
        "x-trace-id",
        "apim-request-id",
        "openai-request-id",
        "traceparent",
        "x-correlation-id",
    ],
)
def test_request_id_names(name: str) -> None:
    assert (
        transport.request_id(make_exchange(headers={"content-type": "application/json", name: "abc"})) == []
    )


def test_request_id_missing() -> None:
    found = transport.request_id(
        make_exchange(headers={"content-type": "application/json", "x-requested": "1"})
    )
    assert ids(found) == ["HDR-007"]
    assert ids(transport.request_id(NO_RESPONSE)) == ["HDR-007"]


def _answered(**headers: str) -> Any:
    return make_exchange(headers={"content-type": "application/json", **headers})


def test_request_ids_differ_between_two_requests() -> None:
    assert transport.request_ids_differ(_answered(**{"x-request-id": "req-1"}),
                                        _answered(**{"x-request-id": "req-2"})) == []
    # a conversation id that repeats is harmless beside a request id that does not
    assert transport.request_ids_differ(
        _answered(**{"x-request-id": "req-1", "x-conversation-id": "conv-abcdef"}),
        _answered(**{"x-request-id": "req-2", "x-conversation-id": "conv-abcdef"})) == []
    same = transport.request_ids_differ(_answered(**{"x-litellm-conversation-id": "conv-abcdef"}),
                                        _answered(**{"x-litellm-conversation-id": "conv-abcdef"}))
    assert ids(same) == ["HDR-007"] and "conv-abcdef" in same[0].message
    # no id at all is request_id's finding, not this one's
    assert transport.request_ids_differ(_answered(), _answered()) == []
    assert transport.request_ids_differ(NO_RESPONSE, _answered(**{"x-request-id": "a"})) == []


# --- helpers --------------------------------------------------------------------------------------


def test_is_event_stream() -> None:
    assert transport.is_event_stream(make_exchange(stream=True))
    assert not transport.is_event_stream(make_exchange())
    # a JSON answer to a stream request is judged as JSON (and fails STRM-001 elsewhere)
    assert not transport.is_event_stream(
        make_exchange(stream=True, body=completion(), headers={"content-type": "application/json"})
    )
    assert transport.is_event_stream(
        make_exchange(stream=True, body=sse_body(stream_chunks()), headers={"content-type": "text/plain"})
    )
    assert not transport.is_event_stream(NO_RESPONSE)


# --- unjudgeable: bodies that did not arrive whole ----------------------------------------------------

RESET = "127.0.0.1:8000 closed the connection mid-response: peer closed connection"
TOO_BIG = "body larger than 2000000 bytes: read stopped there"


def test_a_body_broken_off_by_the_transport_is_no_answer_at_all() -> None:
    # the status of a crashed answer says nothing: even status-only checks stop, naming the failure
    reset = make_exchange(body=b'{"id": "chatcmpl-1", "cho', error=RESET)
    for need_body in (True, False):
        stop = transport.unjudgeable(reset, "AUTH-001", need_ok=False, need_body=need_body)
        assert stop is not None and stop.message.startswith("response cut short: ") and RESET in stop.message


def test_a_body_cut_by_the_client_leaves_status_and_headers_judgeable() -> None:
    big = make_exchange(body=b"[0,0,0", error=TOO_BIG, truncated=TOO_BIG)
    assert transport.unjudgeable(big, "AUTH-001", need_ok=False, need_body=False) is None
    stop = transport.unjudgeable(big, "JSON-001", need_ok=False)
    assert stop is not None and stop.message.startswith("body not judged: ") and TOO_BIG in stop.message
    assert transport.strict_json(big)[0].message.startswith("body not judged: ")
    assert transport.content_type(big, "application/json", "HDR-003", need_ok=False) == []


def test_streams_cut_short_are_left_to_the_stream_checks() -> None:
    cut = make_exchange(stream=True, body=sse_body(stream_chunks(), None), error=RESET)
    assert transport.unjudgeable(cut, "STRM-010") is None


def test_judged_json_reads_past_nan_only() -> None:
    assert transport.judged_json(make_exchange(body=b'{"a": NaN, "b": 1}'))[0]["b"] == 1
    value, error = transport.judged_json(make_exchange(body=b'{"a": 1'))
    assert value is None and error


def test_json_in_latin1_is_hdr_006s_finding_alone() -> None:
    """A completion written in Latin-1 is one fault: not UTF-8 (HDR-006). Its JSON is judged as JSON, and
    the shape rules still have the document; before, JSON-001 and RESP-001 failed on the same bytes."""
    body = '{"id": "c", "choices": [{"message": {"content": "café"}}], "created": 1}'.encode("latin-1")
    exchange = make_exchange(body=body, scenario="basic")
    assert [v.requirement for v in transport.json_charset(exchange)] == ["HDR-006"]
    assert transport.strict_json(exchange) == []
    assert transport.judged_json(exchange)[0]["choices"][0]["message"]["content"] == "café"
    # not JSON in any encoding, or NaN in Latin-1: still JSON-001's
    assert [v.requirement for v in transport.strict_json(make_exchange(body=b"\xe9t\xe9"))] == ["JSON-001"]
    nan = make_exchange(body='{"x": NaN, "y": "é"}'.encode("latin-1"))
    assert [v.requirement for v in transport.strict_json(nan)] == ["JSON-001"]
