"""Faults of basic operation (BASIC) and of authentication (AUTH): a valid request refused, keys not checked,
taken from the wrong header, echoed back, or a refusal in the wrong shape.
"""

from __future__ import annotations

from .core import BOTH, OPENAI, SGP, Call, Mutant, Reply, json_reply
from .hooks import _is_stream, _sse_error, on_error

_M = Mutant
# a second key-carrying header per profile: the one the other profile uses
_OTHER_AUTH = {SGP: ("authorization", "Bearer "), OPENAI: ("x-api-key", "")}


def _require_temperature(call: Call) -> Reply | None:
    body = call.json()
    if isinstance(body, dict) and "temperature" not in body:
        return json_reply(400, {"detail": "temperature is required"})
    return None


def _auth_missing_accepted(call: Call) -> None:
    if call.profile.auth_header not in call.headers:
        call.authorize()


def _auth_empty_accepted(call: Call) -> None:
    if call.profile.auth_header in call.headers and not call.key():
        call.authorize()


def _auth_any_accepted(call: Call) -> None:
    if call.key():
        call.authorize()


def _auth_not_checked(call: Call) -> None:
    call.authorize()


def _auth_other_header(call: Call) -> None:
    name, prefix = _OTHER_AUTH[call.profile.name]
    value = call.headers.get(name, "")
    if call.profile.auth_header not in call.headers and value.startswith(prefix) and value[len(prefix):]:
        call.headers[call.profile.auth_header] = call.profile.auth_prefix + value[len(prefix):]


def _auth_missing_422(call: Call) -> Reply | None:
    # FastAPI with `x_api_key: str = Header()` answers a missing header as a validation error
    if call.profile.auth_header in call.headers:
        return None
    return json_reply(422, {"detail": [{"type": "missing", "loc": ["header", call.profile.auth_header],
                                        "msg": "Field required", "input": None}]})


def _echo_key_header(call: Call, reply: Reply) -> None:
    key = call.key()
    if key:
        reply.set_header("x-debug-api-key", key)


def _echo_key_in_refusal(call: Call, reply: Reply) -> None:
    key = call.key()
    if reply.status == 401 and key:
        message = f"Invalid API key: {key}"
        reply.set_json({"detail": message} if call.profile.error_style == "fastapi" else
                       {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                  "code": "invalid_api_key"}})


def _refusal_html(reply: Reply, call: Call) -> None:
    reply.set_header("content-type", "text/html; charset=utf-8")
    reply.body = b"<html><body><h1>401 Authorization Required</h1></body></html>"


def _stream_served_without_key(call: Call) -> None:
    if _is_stream(call.json()) and call.key() != call.settings.api_keys[0]:
        call.authorize()


def _stream_auth_error_event(call: Call) -> Reply | None:
    if _is_stream(call.json()) and call.key() != call.settings.api_keys[0]:
        return _sse_error("Invalid API key")
    return None


MUTANTS: dict[str, Mutant] = {
    "basic_optional_param_required": _M("a request without temperature is refused with 400", "BASIC-001", (SGP,),
                                        request=_require_temperature),
    "auth_missing_key_accepted": _M("a request without a key is served", "AUTH-001", BOTH,
                                    request=_auth_missing_accepted),
    "auth_missing_key_422": _M("a missing key header is answered as a 422 validation error", "AUTH-005", (SGP,),
                               request=_auth_missing_422),
    "auth_empty_key_accepted": _M("an empty key is served", "AUTH-002", (SGP,), request=_auth_empty_accepted),
    "auth_any_key_accepted": _M("any non-empty key is served", "AUTH-003", (OPENAI,), request=_auth_any_accepted),
    # a server with no authentication at all (transformers serve): one fault, reported by AUTH-001 alone
    "auth_not_checked": _M("every request is served, whatever key it carries or lacks", "AUTH-001", BOTH,
                           request=_auth_not_checked),
    "auth_other_header_accepted": _M("the key is also taken from the other profile's header", "AUTH-004",
                                     (SGP,), request=_auth_other_header),
    "auth_refusal_html": _M("refusals carry an HTML page", "AUTH-006", (SGP,),
                            response=on_error((401, 403), _refusal_html)),
    "auth_key_echoed_in_header": _M("every response echoes the key in a debug header", "AUTH-007", BOTH,
                                    response=_echo_key_header),
    "auth_key_echoed_in_refusal": _M("a refusal names the wrong key it was sent", "AUTH-007", (SGP,),
                                     response=_echo_key_in_refusal),
    "auth_stream_served_without_key": _M("a streamed request without a valid key is served", "AUTH-008", BOTH,
                                         request=_stream_served_without_key),
    "auth_stream_error_event": _M("a streamed request without a valid key gets a 200 stream with an error event",
                                  "AUTH-008", (OPENAI,), request=_stream_auth_error_event),
}
