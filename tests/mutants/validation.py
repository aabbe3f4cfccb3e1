"""Faults of request validation (VAL, and ERR-005 where a bad request crashes the server): a lenient server
repairs, defaults, clamps or drops what it should refuse.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

from .core import BOTH, MODEL, OPENAI, SGP, Call, Mutant, Reply, json_reply
from .hooks import _is_stream, _sse_error, on_body

_M = Mutant


def _default(key: str, value: Any) -> Callable[[Any, Call], None]:
    def fix(body: Any, call: Call) -> None:
        if isinstance(body, dict) and key not in body:
            body[key] = copy.deepcopy(value)

    return fix


def _coerce_messages(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("messages"), str):
        body["messages"] = [{"role": "user", "content": body["messages"]}]


def _coerce_model(body: Any, call: Call) -> None:
    if isinstance(body, dict) and "model" in body and not isinstance(body["model"], str):
        body["model"] = call.settings.models[0]


def _default_role(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        for message in body["messages"]:
            if isinstance(message, dict):
                message.setdefault("role", "user")


def _crash_on_bad_json(call: Call) -> Reply | None:
    try:
        json.loads(call.body)
    except ValueError:
        return json_reply(500, {"detail": "Internal Server Error"})
    return None


def _serve_what_is_not_json(call: Call) -> None:
    """A body that does not parse is served as the minimal request."""
    try:
        json.loads(call.body)
    except ValueError:
        call.set_json({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        call.headers["content-type"] = "application/json"


def _unwrap_array(body: Any, call: Call) -> Any:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    return None


def _text_plain_as_json(call: Call) -> None:
    if call.headers.get("content-type", "").startswith("text/plain"):
        call.headers["content-type"] = "application/json"


def _clamp(key: str, low: float, high: float) -> Callable[[Any, Call], None]:
    def fix(body: Any, call: Call) -> None:
        value = body.get(key) if isinstance(body, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            body[key] = min(max(value, low), high)

    return fix


def _truncate_stop(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("stop"), list):
        body["stop"] = body["stop"][:4]


def _drop_negative_max_tokens(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("max_tokens"), int) and body["max_tokens"] < 0:
        del body["max_tokens"]


def _fill_empty_messages(body: Any, call: Call) -> None:
    if isinstance(body, dict) and body.get("messages") == []:
        body["messages"] = [{"role": "user", "content": "Hello"}]


def _accept_nan(call: Call) -> None:
    # Python's parser takes NaN; the mutant then drops the non-finite values and goes on
    try:
        body = json.loads(call.body)
    except ValueError:
        return
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if not (isinstance(v, float) and not math.isfinite(v))}
        call.set_json(body)


_ROLES = ("developer", "system", "user", "assistant", "tool", "function")


def _crash_on_misspelt_role(call: Call) -> Reply | None:
    body = call.json()
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and any(isinstance(m, dict) and m.get("role") not in _ROLES for m in messages):
        return json_reply(500, {"detail": "Internal Server Error"})
    return None


def _any_role(body: Any, call: Call) -> None:
    """Roles are not checked: a message with an unknown role is taken as a user message."""
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        for message in body["messages"]:
            if isinstance(message, dict) and "role" in message and message["role"] not in _ROLES:
                message["role"] = "user"


def _unknown_format_as_text(body: Any, call: Call) -> None:
    fmt = body.get("response_format") if isinstance(body, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") not in ("text", "json_object", "json_schema"):
        body["response_format"] = {"type": "text"}


def _unknown_tool_choice_as_auto(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("tool_choice"), str) \
            and body["tool_choice"] not in ("none", "auto", "required"):
        body["tool_choice"] = "auto"


def _stream_validation_error_event(call: Call) -> Reply | None:
    body = call.json()
    if _is_stream(body) and "messages" not in body:
        return _sse_error("messages: Field required")
    return None


_TYPES = {"n": int, "max_tokens": int, "logprobs": bool, "stream": bool, "temperature": float}


def _drop_wrong_types(body: Any, call: Call) -> None:
    """A parameter of the wrong JSON type is dropped silently, as if it had not been sent."""
    if not isinstance(body, dict):
        return
    for key, kind in _TYPES.items():
        value = body.get(key)
        if value is not None and (isinstance(value, str) or (kind is bool) != isinstance(value, bool)):
            del body[key]


MUTANTS: dict[str, Mutant] = {
    "val_messages_defaulted": _M("a body without messages is served with a default message", "VAL-001", (SGP,),
                                 request=on_body(_default("messages", [{"role": "user", "content": "Hi"}]))),
    "val_model_defaulted": _M("a body without model is served by the default model", "VAL-002", (OPENAI,),
                              request=on_body(_default("model", MODEL))),
    "val_messages_string_coerced": _M("a string `messages` is wrapped into a user message", "VAL-003", (SGP,),
                                      request=on_body(_coerce_messages)),
    "val_model_integer_coerced": _M("a non-string model is replaced by the default", "VAL-004", (SGP,),
                                    request=on_body(_coerce_model)),
    "val_role_defaulted": _M("a message without role is taken as a user message", "VAL-005", (SGP,),
                             request=on_body(_default_role)),
    "val_malformed_json_served": _M("a body that is not JSON is served as the minimal request", "VAL-006", (SGP,),
                                    request=_serve_what_is_not_json),
    "val_malformed_json_500": _M("a body that is not JSON crashes the server (500)", "ERR-005", BOTH,
                                 request=_crash_on_bad_json),
    "val_json_array_unwrapped": _M("a JSON array body is served as its first element", "VAL-007", (SGP,),
                                   request=on_body(_unwrap_array)),
    "val_text_plain_accepted": _M("a JSON body labelled text/plain is served", "VAL-008", (SGP,),
                                  request=_text_plain_as_json),
    "val_temperature_clamped": _M("temperature out of range is clamped, not refused", "VAL-009", (SGP,),
                                  request=on_body(_clamp("temperature", 0, 2))),
    "val_n_zero_clamped": _M("n = 0 is served as n = 1", "VAL-010", (SGP,), request=on_body(_clamp("n", 1, 128))),
    "val_top_logprobs_clamped": _M("top_logprobs above 20 is clamped", "VAL-011", (SGP,),
                                   request=on_body(_clamp("top_logprobs", 0, 20))),
    "val_stop_truncated": _M("more than 4 stop sequences are cut to 4", "VAL-012", (SGP,),
                             request=on_body(_truncate_stop)),
    "val_negative_max_tokens_ignored": _M("a negative max_tokens is dropped", "VAL-013", (SGP,),
                                          request=on_body(_drop_negative_max_tokens)),
    "val_empty_messages_filled": _M("an empty messages array is served", "VAL-014", BOTH,
                                    request=on_body(_fill_empty_messages)),
    "val_nan_accepted": _M("NaN in the body is parsed and dropped", "VAL-015", (SGP,), request=_accept_nan),
    "val_top_p_clamped": _M("top_p out of range is clamped", "VAL-016", (SGP,), request=on_body(_clamp("top_p", 0, 1))),
    "val_presence_penalty_clamped": _M("presence_penalty out of range is clamped", "VAL-017", (OPENAI,),
                                       request=on_body(_clamp("presence_penalty", -2, 2))),
    "val_frequency_penalty_clamped": _M("frequency_penalty out of range is clamped", "VAL-018", (SGP,),
                                        request=on_body(_clamp("frequency_penalty", -2, 2))),
    "val_role_misspelt_500": _M('a misspelt role ("assitant") crashes the server (500)', "ERR-005", (OPENAI,),
                                request=_crash_on_misspelt_role),
    "val_role_unknown_accepted": _M("a message with an unknown role is served as a user message", "VAL-019", BOTH,
                                    request=on_body(_any_role)),
    "val_response_format_unknown": _M("an unknown response_format type is served as text", "VAL-020", (SGP,),
                                      request=on_body(_unknown_format_as_text)),
    "val_tool_choice_unknown": _M("an unknown tool_choice string is served as auto", "VAL-021", (OPENAI,),
                                  request=on_body(_unknown_tool_choice_as_auto)),
    "val_stream_error_event": _M("an invalid streamed request gets a 200 stream with an error event", "VAL-022",
                                 BOTH, request=_stream_validation_error_event),
    "val_wrong_type_ignored": _M('a parameter of the wrong type ("n": "2") is dropped silently', "VAL-023", (SGP,),
                                 request=on_body(_drop_wrong_types)),
}
