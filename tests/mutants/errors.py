"""Faults of error answers (ERR) and of model selection (MODEL): error bodies in the wrong shape or status,
a stack trace shown, a 429 without Retry-After, an unknown model served or refused as 400.
"""

from __future__ import annotations

from typing import Any

from .core import BOTH, OPENAI, SGP, Call, Mutant, Reply, RequestHook, json_reply
from .hooks import _status, on_body, on_error

_M = Mutant


def _validation_text(reply: Reply, call: Call) -> None:
    reply.set_header("content-type", "text/plain; charset=utf-8")
    reply.body = b"Unprocessable Entity"


def _validation_as_400(reply: Reply, call: Call) -> None:
    reply.status = 400


def _validation_as_422(reply: Reply, call: Call) -> None:
    reply.status = 422


def _detail_string(reply: Reply, call: Call) -> None:
    reply.set_json({"detail": "Invalid request body"})


def _flat_openai_error(reply: Reply, call: Call) -> None:
    body = reply.json()
    reply.set_json({"message": body["error"]["message"], "status": reply.status})


def _traceback_in_validation_error(reply: Reply, call: Call) -> None:
    body = reply.json()
    # a Java frame: a Python traceback would read as one of the suite's own in the matrix's output check
    trace = "java.lang.IllegalStateException: bad body\n\tat com.acme.gateway.Routes.create(Routes.java:88)"
    if isinstance(body, dict):
        body["trace"] = trace
        reply.set_json(body)


def _detail_body_for_openai(reply: Reply, call: Call) -> None:
    """400s other than those of the five classic invalid requests come as {"detail": ...}."""
    body = call.json()
    if isinstance(body, dict) and "messages" in body and "model" in body and isinstance(body["model"], str):
        reply.set_json({"detail": "Invalid request"})


def _throttle_without_retry_after() -> RequestHook:
    seen = {"n": 0}

    def hook(call: Call) -> Reply | None:
        seen["n"] += 1
        return json_reply(429, {"detail": "Too many requests"}) if seen["n"] % 25 == 0 else None

    return hook


def _accept_any_model(body: Any, call: Call) -> None:
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        body["model"] = call.settings.models[0]


MUTANTS: dict[str, Mutant] = {
    "err_validation_text_plain": _M("validation errors are plain text", "ERR-001", BOTH,
                                    response=on_error((400, 422), _validation_text)),
    "err_validation_400": _M("validation errors are 400 instead of FastAPI's 422", "ERR-002", (SGP,),
                             response=on_error((422,), _validation_as_400)),
    "err_validation_422_openai": _M("openai validation errors are 422 instead of OpenAI's 400", "ERR-002",
                                    (OPENAI,), response=on_error((400,), _validation_as_422)),
    "err_422_detail_string": _M("a 422 carries {detail: <string>}, not the list of errors", "ERR-003", (SGP,),
                                response=on_error((422,), _detail_string)),
    "err_openai_flat_body": _M("400 bodies are {message, status}, not {error: {...}}", "ERR-004", (OPENAI,),
                               response=on_error((400,), _flat_openai_error)),
    "err_detail_body_under_openai": _M('400s other than the classic invalid requests come as {"detail": ...}',
                                       "ERR-004", (OPENAI,), response=on_error((400,), _detail_body_for_openai)),
    "err_traceback_in_errors": _M("validation errors carry the server's stack trace", "ERR-007", (SGP,),
                                  response=on_error((422,), _traceback_in_validation_error)),
    # one request in 25: a few 429s in a run (each a backoff of the client's, waited in wall time) show the fault
    "err_429_without_retry_after": _M("one request in 25 is answered 429 without Retry-After", "ERR-006", (SGP,),
                                      request=_throttle_without_retry_after()),
    "model_unknown_served": _M("an unknown model is served by the default one", "MODEL-001", (SGP,),
                               request=on_body(_accept_any_model)),
    "model_unknown_400": _M("an unknown model is refused with 400, not 404", "MODEL-002", (SGP,),
                            response=_status(404, 400)),
}
