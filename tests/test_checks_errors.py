"""Unit tests of conformance.checks.errors: refusal statuses and error bodies."""

from __future__ import annotations

from typing import Any

import builders
import pytest
from builders import make_exchange

from conformance.checks import NotJudged, errors
from conformance.contract.profiles import OPENAI, SGP


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


NO_RESPONSE = make_exchange(no_response=True, error="read timeout")
VALIDATION = {
    "detail": [
        {
            "loc": ["body", "messages"],
            "msg": "Field required",
            "type": "missing",
            "input": {},
            "url": "https://errors.pydantic.dev/2/v/missing",
        }
    ]
}
OPENAI_ERROR = {
    "error": {
        "message": "Incorrect API key",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def error(status: int, body: Any = None) -> Any:
    return make_exchange(status=status, body={"detail": "Not authenticated"} if body is None else body)


# --- refused / status_is / client_error / not_server_error ----------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_accepts_401_and_403(status: int) -> None:
    assert errors.refused(error(status), "AUTH-001") == []


@pytest.mark.parametrize(
    ("status", "words"), [(200, "accepted"), (500, "server error"), (404, "got 404"), (422, "got 422")]
)
def test_refused_flags_other_statuses(status: int, words: str) -> None:
    found = errors.refused(error(status), "AUTH-003")
    assert ids(found) == ["AUTH-003"] and words in found[0].message and "401 or 403" in found[0].message


def test_refused_with_other_allowed_and_no_response() -> None:
    assert errors.refused(error(404), "HDR-002", allowed=(403, 404)) == []
    found = errors.refused(NO_RESPONSE, "AUTH-001")
    assert ids(found) == ["AUTH-001"] and "read timeout" in found[0].message


def test_status_is() -> None:
    assert errors.status_is(make_exchange(), "BASIC-001", 200) == []
    found = errors.status_is(error(403), "AUTH-005", 401)
    assert ids(found) == ["AUTH-005"] and "expected 401, got 403" in found[0].message


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_error_accepts_4xx(status: int) -> None:
    assert errors.client_error(error(status), "VAL-001") == []


@pytest.mark.parametrize(
    ("status", "words"), [(200, "accepted a request it ought to refuse"), (302, "got 302")]
)
def test_client_error_flags_non_4xx(status: int, words: str) -> None:
    found = errors.client_error(error(status), "VAL-006")
    assert ids(found) == ["VAL-006"] and words in found[0].message


def test_client_error_leaves_a_5xx_to_its_owner() -> None:
    # a 5xx is no refusal, and not this rule's finding either: ERR-005 reports it, for generated cases too
    (note,) = errors.client_error(error(503), "VAL-006")
    assert isinstance(note, NotJudged) and note.needs == "ERR-005" and "503" in note.message
    (note,) = errors.client_error(error(500), "PROP-003")
    assert isinstance(note, NotJudged) and note.needs == "ERR-005"


def test_client_error_names_a_200_stream_with_an_error_event() -> None:
    body = b'event: error\ndata: {"error": {"message": "invalid"}}\n\n'
    found = errors.client_error(make_exchange(stream=True, body=body), "AUTH-008")
    assert ids(found) == ["AUTH-008"] and "error event" in found[0].message


def test_not_server_error() -> None:
    assert errors.not_server_error(error(422), "PROP-002") == []
    assert ids(errors.not_server_error(error(500), "PROP-002")) == ["PROP-002"]
    # a timeout is no answer, not a 5xx
    timeout = make_exchange(no_response=True, error="did not answer within 20 s")
    timeout.error_kind = "timeout"
    assert [type(v) for v in errors.not_server_error(timeout, "PROP-002")] == [NotJudged]
    # the connection closed without an answer, after the client's second try on a fresh connection
    closed = make_exchange(no_response=True, error="closed the connection without answering, twice")
    closed.error_kind = "closed"
    assert ids(errors.not_server_error(closed, "PROP-002")) == ["PROP-002"]


# --- error_body_json ------------------------------------------------------------------------------


def test_error_body_json() -> None:
    assert errors.error_body_json(error(422, VALIDATION)) == []
    assert errors.error_body_json(error(400, OPENAI_ERROR), "ERR-001") == []


@pytest.mark.parametrize(
    ("exchange", "words"),
    [
        (make_exchange(status=422, body=[1, 2]), "got array"),
        (
            make_exchange(status=400, body=b"Bad Request", headers={"content-type": "text/plain"}),
            "text/plain",
        ),
        (make_exchange(status=400, body=b'{"detail": NaN}'), "not JSON"),
        (make_exchange(status=200), "no error response to judge: HTTP 200"),
        (NO_RESPONSE, "no response"),
    ],
)
def test_error_body_json_flags(exchange: Any, words: str) -> None:
    found = errors.error_body_json(exchange)
    assert ids(found) == ["ERR-001"] and words in found[0].message


# --- error_shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"detail": "Not authenticated"}),
        (401, {"detail": {"detail": "Invalid API key"}}),  # seen from SGP
        (422, VALIDATION),
        (401, VALIDATION),  # FastAPI: either shape at any status
        (422, {"detail": "Unprocessable"}),
        (403, {"detail": "Forbidden", "request_id": "abc"}),
    ],
)
def test_error_shape_sgp_accepts_fastapi_bodies(status: int, body: Any) -> None:
    assert errors.error_shape(error(status, body), SGP, "AUTH-006") == []


@pytest.mark.parametrize(
    ("status", "body", "where"),
    [
        (401, OPENAI_ERROR, ""),
        (401, {"detail": None}, "/detail"),
        (404, {"message": "not found"}, ""),
    ],
)
def test_error_shape_sgp_flags(status: int, body: Any, where: str) -> None:
    found = errors.error_shape(error(status, body), SGP, "AUTH-006")
    assert [(v.requirement, v.pointer) for v in found] == [("AUTH-006", where)]
    assert "error-detail or error-validation" in found[0].message


def test_error_shape_openai() -> None:
    assert errors.error_shape(error(400, OPENAI_ERROR), OPENAI) == []
    assert errors.error_shape(error(401, {"error": {"message": "bad", "code": 401}}), OPENAI) == []
    found = errors.error_shape(error(401, {"detail": "Not authenticated"}), OPENAI)
    assert ids(found) == ["ERR-004"] and "error-openai" in found[0].message
    found = errors.error_shape(error(400, {"error": {"type": "x"}}), OPENAI)
    assert [(v.requirement, v.pointer) for v in found] == [("ERR-004", "/error")]


def test_error_shape_unjudgeable() -> None:
    assert "HTTP 200" in errors.error_shape(make_exchange(), SGP)[0].message
    assert ids(errors.error_shape(make_exchange(status=500, body=b"<html>"), SGP, "ERR-004")) == ["ERR-004"]
    assert ids(errors.error_shape(NO_RESPONSE, OPENAI)) == ["ERR-004"]


# --- fastapi_validation_body ----------------------------------------------------------------------


def test_fastapi_validation_body() -> None:
    assert errors.fastapi_validation_body(error(422, VALIDATION)) == []
    assert errors.fastapi_validation_body(error(422, {"detail": []})) == []
    # applies only to 422 responses
    assert errors.fastapi_validation_body(error(400, OPENAI_ERROR)) == []
    assert errors.fastapi_validation_body(NO_RESPONSE) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"detail": "invalid"}, "/detail"),
        ({"detail": [{"loc": "body", "msg": "x", "type": "y"}]}, "/detail/0/loc"),
        ({"detail": [{"msg": "x", "type": "y"}]}, "/detail/0"),
        (OPENAI_ERROR, ""),
    ],
)
def test_fastapi_validation_body_flags(body: Any, where: str) -> None:
    found = errors.fastapi_validation_body(error(422, body))
    assert [(v.requirement, v.pointer) for v in found] == [("ERR-003", where)]


def test_fastapi_validation_body_not_json() -> None:
    assert ids(errors.fastapi_validation_body(make_exchange(status=422, body=b"nope"))) == ["ERR-003"]


def test_refusal_messages_name_non_json_answers_and_what_was_wanted() -> None:
    page = make_exchange(status=502, body=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    assert errors.status_is(page, "BASIC-001", 200)[0].message == (
        "expected 200, got 502 (text/html): a server error instead of an answer")
    assert errors.refused(page, "AUTH-001")[0].message == (
        "expected 401 or 403, got 502 (text/html): a server error instead of a refusal")
    assert "got 302" in errors.client_error(make_exchange(status=302, body={"detail": "x"}), "VAL-001")[0].message


@pytest.mark.parametrize(("headers", "ok"), [
    ({"retry-after": "2"}, True), ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, True),
    ({"retry-after-ms": "1500"}, True), ({"retry-after-ms": "1.5e3"}, True),
    ({}, False), ({"retry-after": "soon"}, False), ({"retry-after-ms": "-1"}, False),
    ({"retry-after": "-3"}, False), ({"retry-after-ms": "x", "retry-after": "1"}, True),
])
def test_retry_after(headers: dict[str, str], ok: bool) -> None:
    throttled = make_exchange(status=429, body={"detail": "slow down"}, headers={"content-type": "application/json",
                                                                                  **headers})
    found = errors.retry_after(throttled)
    assert (found == []) is ok, found
    assert all(v.requirement == "ERR-006" for v in found)


def test_not_server_error_counts_a_body_broken_off() -> None:
    reset = make_exchange(body=b'{"id": "x", "ch', error="127.0.0.1:1 closed the connection mid-response")
    found = errors.not_server_error(reset)
    assert ids(found) == ["PROP-002"] and "cut short" in found[0].message
    # a body the client cut at its own limit is not the server's crash
    cut = make_exchange(body=b"[0,0", error="body larger than 10 bytes", truncated="body larger than 10 bytes")
    assert errors.not_server_error(cut) == []


@pytest.mark.parametrize("body", [
    'Traceback (most recent call last):\n  File "/srv/app.py", line 3, in f',
    '{"error": {"message": "1 validation error ... File \\"/root/.cache/x/llama_cpp/server/app.py\\", line 376"}}',
    "java.lang.NullPointerException\n\tat com.acme.Api.create(Api.java:12)",
    "TypeError: x\n    at Object.<anonymous> (/app/server.js:10:5)",
    "goroutine 1 [running]:\nmain.main()",
])
def test_internals_leaked_flags_stacks_and_source_paths(body: str) -> None:
    found = errors.internals_leaked(make_exchange(status=500, body=body, headers={"content-type": "text/plain"}))
    assert ids(found) == ["ERR-007"]


@pytest.mark.parametrize("body", [
    VALIDATION, OPENAI_ERROR, {"detail": "Not Found: /v4/beta/chat/completions/x"},
    {"error": {"message": "Invalid value at /messages/0/content; see https://docs.example.com/errors#400"}},
])
def test_internals_leaked_leaves_pointers_and_urls_alone(body: Any) -> None:
    assert errors.internals_leaked(make_exchange(status=422, body=body)) == []
    # a 200 is no error answer: nothing to judge
    assert [type(v) for v in errors.internals_leaked(make_exchange())] == [NotJudged]


# --- wrong_type (VAL-023) -------------------------------------------------------------------------

# llama-cpp-python 0.3.36 (interop run of 2026-11-30): it ignores `n`, so "n": "2" and "n": 2 both get one
# choice; LiteLLM's mock_response model ignores `logprobs` whatever its type
LLAMA_ONE_CHOICE = (b'{"id":"chatcmpl-8660cf8a","object":"chat.completion","created":1796004627,"model":"interop-tiny",'
                    b'"choices":[{"index":0,"message":{"content":"by\\u05aaa\\"lM HelloM53T","role":"assistant"},'
                    b'"logprobs":null,"finish_reason":"length"}],'
                    b'"usage":{"prompt_tokens":59,"completion_tokens":16,"total_tokens":75}}')
LITELLM_MOCK = (b'{"id":"chatcmpl-14060320","created":1796004306,"model":"interop-mock","object":"chat.completion",'
                b'"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hello from the LiteLLM mock.",'
                b'"role":"assistant"}}],"usage":{"completion_tokens":20,"prompt_tokens":10,"total_tokens":30}}')


def _two_choices(e: Any) -> bool:
    return isinstance(e.json, dict) and len(e.json.get("choices") or []) == 2


def _has_logprobs(e: Any) -> bool:
    return isinstance(e.json, dict) and any(isinstance(c.get("logprobs"), dict) for c in e.json.get("choices") or [])


def test_wrong_type_is_not_judged_when_the_documented_type_is_ignored_too() -> None:
    # the server ignores the parameter whatever its type: its own requirement reports that, not VAL-023
    probe = make_exchange("type_n_string", body=LLAMA_ONE_CHOICE)
    twin = make_exchange("n2", body=LLAMA_ONE_CHOICE)
    found = errors.wrong_type(probe, twin, '"n": "2"', _two_choices, "SEM-002")
    assert [type(v) for v in found] == [NotJudged] and found[0].needs == "SEM-002"
    probe = make_exchange("type_logprobs_integer", body=LITELLM_MOCK)
    twin = make_exchange("logprobs", body=LITELLM_MOCK)
    found = errors.wrong_type(probe, twin, '"logprobs": 1', _has_logprobs, "LOGP-001")
    assert [type(v) for v in found] == [NotJudged] and found[0].needs == "LOGP-001"
    # a twin without a 2xx leaves nothing to compare with
    found = errors.wrong_type(probe, error(500), '"logprobs": 1', _has_logprobs, "LOGP-001")
    assert [type(v) for v in found] == [NotJudged]


def test_wrong_type_flags_a_value_dropped_where_the_documented_type_is_honoured() -> None:
    honoured = make_exchange("n2", body=builders.completion(choices=[builders.choice(0), builders.choice(1)]))
    probe = make_exchange("type_n_string", body=LLAMA_ONE_CHOICE)
    found = errors.wrong_type(probe, honoured, '"n": "2"', _two_choices, "SEM-002")
    assert ids(found) == ["VAL-023"] and not isinstance(found[0], NotJudged) and "n2" in found[0].message
    # refused, or honoured as the coerced value: no finding
    assert errors.wrong_type(error(422, VALIDATION), honoured, '"n": "2"', _two_choices, "SEM-002") == []
    assert errors.wrong_type(honoured, honoured, '"n": "2"', _two_choices, "SEM-002") == []
    # a 5xx is ERR-005's
    assert [type(v) for v in errors.wrong_type(error(500), honoured, '"n": "2"', _two_choices, "SEM-002")] \
        == [NotJudged]
