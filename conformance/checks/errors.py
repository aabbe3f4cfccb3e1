"""Checks of refusals: the status a request was refused with, and the body it came with."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable

from jsonschema.exceptions import best_match

from conformance.checks import NotJudged, Violation
from conformance.checks.shape import brief, describe_error, json_type
from conformance.checks.transport import is_event_stream, unjudgeable
from conformance.contract import schema_store
from conformance.contract.profiles import Profile
from conformance.transport.exchange import Exchange


def _statuses(allowed: Iterable[int]) -> str:
    codes = [str(s) for s in allowed]
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " or " + codes[-1]


def refused(exchange: Exchange, requirement_id: str, allowed: Iterable[int] = (401, 403)) -> list[Violation]:
    """The request was refused with one of `allowed` (AUTH-001..005, HDR-002, MODEL-002...)."""
    allowed = tuple(allowed)
    stop = unjudgeable(exchange, requirement_id, need_ok=False, need_body=False)
    if stop:
        return [stop]
    status = exchange.response.status  # type: ignore[union-attr]  # unjudgeable ruled out None
    if status in allowed:
        return []
    expected = f"expected {_statuses(allowed)}"
    got = _got(exchange)
    if 200 <= status < 300:
        message = f"{expected}, got {got}: the request was accepted"
    elif status >= 500:
        wanted = "an answer" if any(200 <= s < 300 for s in allowed) else "a refusal"
        message = f"{expected}, got {got}: a server error instead of {wanted}"
    else:
        message = f"{expected}, got {got}"
    return [Violation(requirement_id, message, "", exchange.scenario)]


def _got(exchange: Exchange) -> str:
    """The status, with the media type when the body is not JSON: an HTML 502 page says "gateway"."""
    response = exchange.response
    assert response is not None
    media = response.media_type
    if response.body.strip() and media and media != "application/json" and not media.endswith("+json"):
        return f"{response.status} ({media})"
    return str(response.status)


def status_is(exchange: Exchange, requirement_id: str, expected: int) -> list[Violation]:
    """The response status is exactly `expected` (BASIC-001 200, HDR-001 200, ERR-002 422/400...)."""
    return refused(exchange, requirement_id, (expected,))


def client_error(exchange: Exchange, requirement_id: str) -> list[Violation]:
    """The request was refused with a 4xx (AUTH-001..003, VAL-*, MODEL-001, PROP-003). A 5xx is no refusal
    but not this rule's finding either: ERR-005 (or PROP-002) reports it, and this rule is not judged."""
    stop = unjudgeable(exchange, requirement_id, need_ok=False, need_body=False)
    if stop:
        return [stop]
    status = exchange.response.status  # type: ignore[union-attr]
    if 400 <= status < 500:
        return []
    got = _got(exchange)
    if status >= 500:
        # a 5xx to a request that ought to be refused, generated or scripted, is ERR-005's
        return [NotJudged(requirement_id, f"answered with {got}", "", exchange.scenario, needs="ERR-005")]
    if 200 <= status < 300:
        message = f"expected 4xx, got {got}: the server accepted a request it ought to refuse"
        if is_event_stream(exchange):
            errors = [e for e in exchange.events.events if e.event == "error" or '"error"' in e.data]
            what = " carrying an error event" if errors else ""
            message = f"expected a 4xx refusal before any event, got {got} and an event stream{what}"
    else:
        message = f"expected 4xx, got {got}"
    return [Violation(requirement_id, message, "", exchange.scenario)]


def wrong_type(probe: Exchange, twin: Exchange, sent: str, honoured: Callable[[Exchange], bool], owner: str,
               requirement_id: str = "VAL-023") -> list[Violation]:
    """VAL-023 on one probe: a parameter sent with the wrong JSON type (`sent`, e.g. '"n": "2"') is refused
    with a 4xx, or honoured as its coerced value (`honoured` tells from the answer), never dropped silently.

    `twin` is the same request with the documented type ("n": 2). A server that answers the twin as if
    the parameter were absent too ignores the parameter whatever its type: the probe then cannot tell a
    dropped value from an unsupported parameter, and `owner` (the parameter's own requirement, SEM-002
    for n) reports the fault. Not judged, then; the same when the twin got no whole 2xx to compare with.
    """
    status = probe.status
    if status is not None and 400 <= status < 500:
        return []
    found = client_error(probe, requirement_id)
    if not found or status is None or not 200 <= status < 300:
        return found
    if honoured(probe):
        return []
    if not twin.ok:
        return [NotJudged(requirement_id, f"{sent} was answered as if absent, and the same request with the "
                          f"documented type got no 2xx to compare with", "", probe.scenario, needs=owner)]
    if not honoured(twin):
        return [NotJudged(requirement_id, f"{sent} was answered as if absent, but so was the same request with "
                          f"the documented type: the server ignores the parameter whatever its type", "",
                          probe.scenario, needs=owner)]
    return [Violation(requirement_id, f"{sent} was neither refused nor honoured: HTTP {status}, answered as if "
                      f"the parameter were absent, while the same request with the documented type "
                      f"({twin.scenario}) is honoured", "", probe.scenario)]


def not_server_error(exchange: Exchange, requirement_id: str = "PROP-002") -> list[Violation]:
    """PROP-002 / ERR-005: the response is not a 5xx.

    A timeout is no answer, not a 5xx: not judged. A connection the server closed without answering (the
    client has already sent the request again once on a fresh connection, see client.py) counts: a worker
    crashing on the request looks like that.
    """
    if exchange.response is None:
        if exchange.error_kind in ("timeout", "connect", None):
            return [NotJudged(requirement_id, f"no answer: {exchange.error or 'no response'}", "",
                              exchange.scenario)]
        return [
            Violation(
                requirement_id,
                f"expected a response, got none: {exchange.error or 'no response'}",
                "",
                exchange.scenario,
            )
        ]
    status = exchange.response.status
    if status >= 500:
        return [Violation(requirement_id, f"expected no server error, got {_got(exchange)}", "", exchange.scenario)]
    if exchange.error and exchange.response.truncated is None:
        # the connection broke mid-answer: what a crashing worker looks like behind a proxy
        return [
            Violation(
                requirement_id,
                f"response cut short: {exchange.error} (after HTTP {status})",
                "",
                exchange.scenario,
            )
        ]
    return []


def _error_body(exchange: Exchange, requirement_id: str) -> tuple[object, list[Violation]]:
    """The parsed body of an error response, or why it cannot be judged."""
    stop = unjudgeable(exchange, requirement_id, need_ok=False)
    if stop:
        return None, [stop]
    status = exchange.response.status  # type: ignore[union-attr]
    if status < 400:
        return None, [
            NotJudged(requirement_id, f"no error response to judge: HTTP {status}", "", exchange.scenario)
        ]
    if exchange.json_error is not None:
        media = exchange.response.media_type or "no Content-Type"  # type: ignore[union-attr]
        return None, [
            Violation(
                requirement_id,
                f"expected a JSON error body, got {media} that is not JSON",
                "",
                exchange.scenario,
            )
        ]
    return exchange.json, []


def error_body_json(exchange: Exchange, requirement_id: str = "ERR-001") -> list[Violation]:
    """ERR-001: an error response carries a JSON object body."""
    body, stop = _error_body(exchange, requirement_id)
    if stop:
        return stop
    if not isinstance(body, dict):
        return [
            Violation(
                requirement_id,
                f"expected a JSON object body, got {json_type(body)} {brief(body)}",
                "",
                exchange.scenario,
            )
        ]
    return []


def _first_error(body: object, schema_name: str) -> tuple[str, str] | None:
    """(message, pointer) of the most telling error of `body` against a schema, or None if it validates."""
    if schema_store.surely_valid(schema_name, body):
        return None
    error = best_match(schema_store.errors(schema_name, body))
    if error is None:
        return None
    error = schema_store.leaf_error(error)
    return describe_error(error), schema_store.json_pointer(error.absolute_path)


def error_shape(exchange: Exchange, profile: Profile, requirement_id: str = "ERR-004") -> list[Violation]:
    """ERR-004 / AUTH-006: the error body matches the profile's error shape.

    The validation status is held to profile.validation_error_schema, others to profile.error_schema.
    A FastAPI-style server puts a string or a list under `detail` depending on where the error was raised
    (HTTPException vs request validation), so for that style either shape is accepted at any status.
    """
    body, stop = _error_body(exchange, requirement_id)
    if stop:
        return stop
    status = exchange.response.status  # type: ignore[union-attr]
    primary = profile.validation_error_schema if status == profile.validation_status else profile.error_schema
    names = [primary]
    if profile.error_style == "fastapi":
        names += [n for n in (profile.error_schema, profile.validation_error_schema) if n not in names]
    first: tuple[str, str] | None = None
    for name in names:
        problem = _first_error(body, name)
        if problem is None:
            return []
        first = first or problem
    assert first is not None
    message, where = first
    accepted = " or ".join(names)
    return [Violation(requirement_id, f"body does not match {accepted}: {message}", where, exchange.scenario)]


def fastapi_validation_body(exchange: Exchange) -> list[Violation]:
    """ERR-003: a 422 carries {detail: [{loc, msg, type}, ...]}. Applies only to 422 responses."""
    if exchange.response is None or exchange.response.status != 422:
        return []
    body, stop = _error_body(exchange, "ERR-003")
    if stop:
        return stop
    problem = _first_error(body, "error-validation")
    if problem is None:
        return []
    message, where = problem
    return [
        Violation(
            "ERR-003", f"422 body is not a FastAPI validation error: {message}", where, exchange.scenario
        )
    ]


_SECONDS = re.compile(r"^\d+$")


def http_date(value: str) -> float | None:
    """An HTTP-date as Unix seconds, or None when `value` is not one."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after(exchange: Exchange) -> list[Violation]:
    """ERR-006: a 429 answer says when to retry: Retry-After as delay-seconds or an HTTP-date (RFC 9110
    §10.2.3), or retry-after-ms as a non-negative number of milliseconds (the SDKs honour both)."""
    response = exchange.response
    if response is None or response.status != 429:
        return [NotJudged("ERR-006", "not a 429 answer", "", exchange.scenario)]
    found: list[Violation] = []
    ms, after = response.header("retry-after-ms"), response.header("retry-after")
    if ms is not None:
        try:
            ok = float(ms) >= 0
        except ValueError:
            ok = False
        if ok:
            return []
        found.append(Violation("ERR-006", f"retry-after-ms {brief(ms)} is not a number of milliseconds", "",
                               exchange.scenario))
    if after is not None:
        value = after.strip()
        if _SECONDS.match(value) or http_date(value) is not None:
            return []
        found.append(Violation("ERR-006", f"Retry-After {brief(after)} is neither seconds nor an HTTP date", "",
                               exchange.scenario))
    return found or [Violation("ERR-006", "a 429 without Retry-After or retry-after-ms", "", exchange.scenario)]


# what only a server's own internals look like: a stack trace, or a source file of the server with a line
_INTERNALS = re.compile(
    r"Traceback \(most recent call last\)"
    r"|File \\?\"[^\"\\]+\.py\\?\", line \d+"  # in a JSON string the quotes come escaped
    # a stack frame, also behind a JSON-escaped tab ("\\tat com.x.Y.f(Y.java:3)")
    r"|at [\w.$<>]+\([\w$]+\.(java|kt|scala):\d+\)"
    r"|at .{0,80}\((/|[A-Za-z]:\\)[^()]+\.(js|mjs|ts):\d+:\d+\)"
    r"|goroutine \d+ \[running\]"
    r"|(/|[A-Za-z]:\\)[^\s\"']*(site-packages|dist-packages|node_modules)[/\\][^\s\"']+\.(py|js)"
)


def internals_leaked(exchange: Exchange) -> list[Violation]:
    """ERR-007: an error answer (4xx or 5xx) carries no stack trace and no path of a server source file
    (a Python traceback, `File "/srv/app.py", line 12`, a Java or Node stack frame, a goroutine dump, a path
    into site-packages or node_modules). A JSON pointer or a URL path in a message is no such path."""
    response = exchange.response
    if response is None or response.status < 400:
        return [NotJudged("ERR-007", "not an error answer", "", exchange.scenario)]
    match = _INTERNALS.search(response.text[:200_000])
    if match is None:
        return []
    return [Violation("ERR-007", f"the error answer shows the server's internals: {brief(match.group(0), 80)}",
                      "", exchange.scenario)]
