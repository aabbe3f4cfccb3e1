"""Transport checks: what the bytes and headers of a response say, before any field is read.

Also holds the helpers the other check modules share to decide whether an exchange can be judged at all
(`unjudgeable`) and whether its body is an event stream (`is_event_stream`, `payloads`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from conformance.checks import NotJudged, Violation
from conformance.checks.shape import brief
from conformance.secret_forms import Found, SecretFinder, as_text, distinctive
from conformance.transport import strictjson
from conformance.transport.exchange import Exchange, per_exchange

DONE = "[DONE]"


def unjudgeable(
    exchange: Exchange, requirement_id: str, need_ok: bool = True, need_body: bool = True
) -> NotJudged | None:
    """Why the exchange cannot be judged, as a NotJudged note (no response; not 2xx when `need_ok`; a body
    that did not arrive whole when `need_body`), or None when it can.

    A body the transport broke off (a reset, a close mid-response) is no answer at all: not even its status
    is judged, since a server that crashed while answering said nothing reliable. A body the client cut at
    its own size or time limit still has a real status and headers, so checks of those (`need_body=False`)
    go on. Streams are judged as far as they arrived: the stream checks say where a cut leaves them blind.
    """
    if exchange.response is None:
        return NotJudged(
            requirement_id,
            f"no response to judge: {exchange.error or 'transport error'}",
            "",
            exchange.scenario,
        )
    if exchange.error and not is_event_stream(exchange):
        cut_by_client = exchange.response.truncated is not None
        # the problem first: a one-line summary cuts long messages
        if not cut_by_client:
            return NotJudged(
                requirement_id,
                f"response cut short: {exchange.error} (after HTTP {exchange.response.status})",
                "",
                exchange.scenario,
            )
        if need_body:
            return NotJudged(
                requirement_id,
                f"body not judged: {exchange.error} (HTTP {exchange.response.status})",
                "",
                exchange.scenario,
            )
    if need_ok and not 200 <= exchange.response.status < 300:
        return NotJudged(
            requirement_id, f"no 200 to judge: HTTP {exchange.response.status}", "", exchange.scenario
        )
    return None


@per_exchange
def is_event_stream(exchange: Exchange) -> bool:
    """Whether the body is judged as SSE. The request decides where it is known: a stream was asked, and
    the answer is not a JSON document (an SSE body labelled application/json is still a stream, and STRM-001
    reports the label); a plain answer was asked, and the body is judged as JSON whatever its label (HDR-003
    reports it). Where the request is not known (a bare recording), the label decides."""
    response = exchange.response
    if response is None:
        return False
    params = exchange.request.params if isinstance(exchange.request.params, dict) else None
    asked = exchange.request.stream or (params or {}).get("stream") is True
    if asked:
        return not (_is_json_media(response.media_type) and lenient_loads(response.body)[0])
    if params is not None:
        return False
    return response.media_type == "text/event-stream"


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def payloads(exchange: Exchange) -> Iterable[tuple[int, str]]:
    """(event index, data) of every SSE event except a [DONE] terminator."""
    for i, event in enumerate(exchange.events.events):
        if event.data.strip() != DONE:
            yield i, event.data


def lenient_loads(text: str | bytes) -> tuple[bool, Any]:
    """(parsed, value) with Python's lenient parser, which accepts NaN/Infinity; (False, None) if not JSON."""
    try:
        strictjson.check_limits(text)
        return True, json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False, None


@per_exchange
def judged_json(exchange: Exchange) -> tuple[Any, str | None]:
    """(value, None) of the body to judge, or (None, why) when it is not JSON at all.

    A body that is JSON but for NaN or Infinity is judged on its lenient parse: the non-finite numbers are
    JSON-001's finding, and every other rule still has a document to hold to (one fault, one ID).
    """
    if exchange.json_error is None:
        return exchange.json, None
    ok, value = lenient_loads(exchange.response.body) if exchange.response is not None else (False, None)
    if not ok and exchange.response is not None:
        # JSON in another encoding than UTF-8 (Latin-1 bytes): HDR-006's finding, and the document is judged
        ok, value = lenient_loads(_not_utf8_text(exchange.response.body) or "")
    return (value, None) if ok else (None, exchange.json_error)


def _not_utf8_text(body: bytes) -> str | None:
    """The body read as Latin-1 (every byte a character) when it is not UTF-8; None when it is UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")
    return None


def strict_json(exchange: Exchange) -> list[Violation]:
    """JSON-001: a JSON body, or every SSE data payload, is RFC 8259 JSON (no NaN, no Infinity).

    A body is judged when it claims a JSON media type (then it must parse) or when it parses leniently
    (then it must also parse strictly). In a stream, only payloads that parse leniently are judged here:
    a payload that is not JSON at all is STRM-003's finding, so one fault gets one ID.
    """
    stop = unjudgeable(exchange, "JSON-001", need_ok=False)
    if stop:
        return [stop]
    out: list[Violation] = []
    if is_event_stream(exchange):
        for i, data in payloads(exchange):
            ok, _ = lenient_loads(data)
            if not ok:
                continue
            try:
                strictjson.loads(data)
            except strictjson.StrictJSONError as exc:
                out.append(
                    Violation(
                        "JSON-001",
                        f"data payload is not RFC 8259 JSON: {exc}",
                        f"/events/{i}",
                        exchange.scenario,
                    )
                )
        return out
    response = exchange.response
    assert response is not None  # for the type checker: unjudgeable returned None
    claims_json = _is_json_media(response.media_type)
    if not response.body.strip():
        if claims_json:
            out.append(
                Violation("JSON-001", "expected a JSON body, got an empty body", "", exchange.scenario)
            )
        return out
    lenient_ok, _ = lenient_loads(response.body)
    if not (claims_json or lenient_ok):
        return out
    other_encoding = _not_utf8_text(response.body) if exchange.json_error is not None else None
    if other_encoding is not None and lenient_loads(other_encoding)[0]:
        # not UTF-8 is HDR-006's finding; read byte for byte the body is JSON, judged as such
        try:
            strictjson.loads(other_encoding)
        except strictjson.StrictJSONError as exc:
            out.append(Violation("JSON-001", f"body is not RFC 8259 JSON: {brief(str(exc), 120)}", "",
                                 exchange.scenario))
        return out
    if exchange.json_error is not None:
        out.append(
            Violation(
                "JSON-001",
                (f"body is {exchange.json_error}" if exchange.json_error.startswith(
                    strictjson.PAST_LIMITS) else f"body is not RFC 8259 JSON: {brief(exchange.json_error, 120)}"),
                "",
                exchange.scenario,
            )
        )
    return out


def duplicate_keys(exchange: Exchange) -> list[Violation]:
    """JSON-002: no object in the body (or in any SSE payload) repeats a key.

    A body that is not JSON cannot be judged (JSON-002 says so); a stream payload that is not JSON is
    skipped, STRM-003 reports it.
    """
    stop = unjudgeable(exchange, "JSON-002", need_ok=False)
    if stop:
        return [stop]
    out: list[Violation] = []
    if is_event_stream(exchange):
        for i, data in payloads(exchange):
            dupes = strictjson.duplicate_keys(data)
            if dupes:
                out.append(
                    Violation(
                        "JSON-002",
                        f"keys repeated within an object: {brief(sorted(set(dupes)), 80)}",
                        f"/events/{i}",
                        exchange.scenario,
                    )
                )
        return out
    assert exchange.response is not None
    ok, _ = lenient_loads(exchange.response.body)
    if not ok:
        return [NotJudged("JSON-002", "body is not JSON: no keys to judge", "", exchange.scenario)]
    dupes = strictjson.duplicate_keys(exchange.response.body)
    if dupes:
        return [
            Violation(
                "JSON-002",
                f"keys repeated within an object: {brief(sorted(set(dupes)), 80)}",
                "",
                exchange.scenario,
            )
        ]
    return []


def _charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type value, unquoted, or None."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip("'")
    return None


def json_charset(exchange: Exchange) -> list[Violation]:
    """HDR-006: the body decodes as UTF-8; HDR-008: a charset parameter, if present, says utf-8.

    "utf8" is accepted as well: it is a common alias every decoder understands, and flagging it would be
    pedantry rather than a client-visible fault.
    """
    stop = unjudgeable(exchange, "HDR-006", need_ok=False)
    if stop:
        return [stop, NotJudged("HDR-008", stop.message, "", exchange.scenario)]
    response = exchange.response
    assert response is not None
    out: list[Violation] = []
    charset = _charset(response.header("content-type") or "")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        out.append(
            Violation("HDR-008", f"expected charset utf-8, got {brief(charset)}", "", exchange.scenario)
        )
    try:
        response.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.append(
            Violation(
                "HDR-006", f"body is not UTF-8: invalid byte at offset {exc.start}", "", exchange.scenario
            )
        )
    return out


def content_type(
    exchange: Exchange, expected_media_type: str, requirement_id: str, need_ok: bool = True
) -> list[Violation]:
    """HDR-003 / STRM-001: the media type (parameters ignored, case-insensitive) is `expected_media_type`."""
    stop = unjudgeable(exchange, requirement_id, need_ok=need_ok, need_body=False)
    if stop:
        return [stop]
    assert exchange.response is not None
    seen = exchange.response.media_type
    if seen == expected_media_type.lower():
        return []
    shown = brief(exchange.response.header("content-type")) if seen else "no Content-Type"
    return [
        Violation(
            requirement_id, f"expected Content-Type {expected_media_type}, got {shown}", "", exchange.scenario
        )
    ]


def _echo_form(found: Found, text: str, secret: str) -> str:
    """The form an echo took, for the message: verbatim, or otherwise (case, escapes, base64, hex)."""
    if found.form != "itself":
        return found.form
    return "verbatim" if text[found.start:found.end] == secret else "case-changed, escaped or split"


def key_not_echoed(exchange: Exchange, secrets: list[str]) -> list[Violation]:
    """AUTH-007: no secret appears in a response header value or the body, in any form
    `conformance.secret_forms` knows (any case, URL/JSON/HTML escapes, base64 at any alignment, hex, split by
    zero-width characters).

    Messages name the header and the form found, never the secret or the header's value. No response
    means nothing was echoed: there is nothing to judge and nothing to report. Only distinctive secrets
    are looked for; where every secret is too ordinary to tell an echo from the answer's own text, the
    rule is not judged.
    """
    if exchange.response is None:
        return []
    response = exchange.response
    strings = [s for s in secrets if isinstance(s, str) and s]
    if strings and not any(distinctive(s) for s in strings):
        return [NotJudged("AUTH-007", "the key is too short or too ordinary (a word) to tell an echo of it from "
                          "an answer's own text: use a long random key to judge AUTH-007", "", exchange.scenario)]
    out: list[Violation] = []
    for number, secret in enumerate(secrets, start=1):
        if not isinstance(secret, str) or not distinctive(secret):
            continue
        finder = SecretFinder([secret])
        for name, value in response.headers:
            text = value if isinstance(value, str) else as_text(bytes(value))
            found = finder.search(text)
            if found:
                out.append(
                    Violation(
                        "AUTH-007",
                        f"key #{number} appears ({_echo_form(found, text, secret)}) in response header {name!r}",
                        "",
                        exchange.scenario,
                    )
                )
        body = as_text(response.body)
        found = finder.search(body)
        if found:
            out.append(
                Violation(
                    "AUTH-007", f"key #{number} appears ({_echo_form(found, body, secret)}) in the response body",
                    "", exchange.scenario
                )
            )
    return out


# header names that carry a request, call or trace id: the family, not a list of vendors (x-request-id,
# request-id, openai-request-id, x-litellm-call-id, x-amzn-trace-id, cf-ray, traceparent, x-b3-traceid ...)
_REQUEST_ID_NAME = re.compile(
    r"^[a-z0-9-]*(request|req|call|trace|correlation|span)[-_]?id$"
    r"|^(cf-ray|traceparent|x-cloud-trace-context|x-b3-traceid|x-datadog-trace-id)$"
)
# any other name ending in -id (x-litellm-id, x-kong-request-id ...) counts when its value looks like an id
_ID_SUFFIX = re.compile(r"^[a-z0-9-]+-id$")
_ID_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=-]{5,199}$")
# -id headers that name something else than the request
_NOT_REQUEST_IDS = frozenset({"x-selected-account-id", "x-account-id", "x-organization-id", "openai-organization",
                              "openai-project-id", "x-project-id", "x-user-id"})


def is_request_id(name: str, value: str) -> bool:
    """Whether a response header carries a request (or call, trace) id: a name of the family, or a name
    ending in -id whose value looks like an id (6 to 200 characters, no spaces)."""
    name = name.strip().lower()
    if name in _NOT_REQUEST_IDS:
        return False
    if _REQUEST_ID_NAME.match(name):
        return bool(value.strip())
    return bool(_ID_SUFFIX.match(name) and _ID_VALUE.match(value.strip()))


def request_id(exchange: Exchange) -> list[Violation]:
    """HDR-007 (INFO): a request id header is present (x-request-id, request-id, x-litellm-call-id, cf-ray,
    traceparent, ...: see is_request_id)."""
    stop = unjudgeable(exchange, "HDR-007", need_ok=False, need_body=False)
    if stop:
        return [stop]
    assert exchange.response is not None
    if any(is_request_id(name, value) for name, value in exchange.response.headers):
        return []
    return [
        Violation(
            "HDR-007",
            "expected a request id header (x-request-id, request-id, ...), found none",
            "",
            exchange.scenario,
        )
    ]


def request_ids(exchange: Exchange) -> dict[str, str]:
    """The request id headers of an exchange's response (name lower-cased -> value); {} without a response."""
    if exchange.response is None:
        return {}
    return {name.strip().lower(): value.strip() for name, value in exchange.response.headers
            if is_request_id(name, value)}


def request_ids_differ(first: Exchange, second: Exchange) -> list[Violation]:
    """HDR-007 (INFO), across two requests: at least one request id header has a different value in the
    answers to two requests (identical ones: an id computed from the request, such as a hash of the
    conversation, is the same for both and identifies no request). Judged where both answers carry ids."""
    ours, theirs = request_ids(first), request_ids(second)
    if not ours or not theirs:
        return []  # a missing id is request_id's finding
    shared = sorted(set(ours) & set(theirs))
    if not shared or any(ours[name] != theirs[name] for name in shared):
        return []
    shown = ", ".join(f"{name}: {brief(ours[name])}" for name in shared[:3])
    return [Violation("HDR-007", f"expected a request id that differs from request to request, got the same "
                      f"value for two requests ({shown}): it identifies the request's content, not the request",
                      "", second.scenario)]
