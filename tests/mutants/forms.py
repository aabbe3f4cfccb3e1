"""Faults of the documented request forms (FORM): a server that refuses one form a client may send."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core import OPENAI, SGP, Call, Mutant, Reply, json_reply

_M = Mutant


def _refusing(what: str, refuses: Callable[[dict[str, Any]], bool]) -> Callable[[Call], Reply | None]:
    """A request hook: a body `refuses` matches gets the profile's own validation error, naming `what`."""

    def hook(call: Call) -> Reply | None:
        from conformance.server import errors
        from conformance.server.errors import Issue

        body = call.json()
        if isinstance(body, dict) and refuses(body):
            error = errors.invalid_request(call.profile, [Issue("value_error", ("body",), f"{what} is not supported",
                                                                None)])
            return json_reply(error.status, error.body)
        return None

    return hook


def _messages(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


MUTANTS: dict[str, Mutant] = {
    "form_developer_refused": _M('a "developer" message is refused', "FORM-001", (SGP,), request=_refusing(
        "the developer role", lambda b: any(m.get("role") == "developer" for m in _messages(b)))),
    "form_content_parts_refused": _M("content as a list of parts is refused", "FORM-001", (OPENAI,),
                                     request=_refusing("list content", lambda b: any(
                                         isinstance(m.get("content"), list) for m in _messages(b)))),
    "form_json_schema_refused": _M('response_format "json_schema" is refused', "FORM-001", (SGP,),
                                   request=_refusing("json_schema", lambda b: isinstance(b.get("response_format"), dict)
                                                     and b["response_format"].get("type") == "json_schema")),
}
