"""Where two answers to the same case differ, field by field, as a client would notice.

What is compared is what the contract fixes and a client relies on, never what differs by nature between
two answers (ids, timestamps, generated text, token counts, logprob values):

- the status (and, for an answer that did not arrive, how it failed);
- the shape of the body: which fields are present, absent or null and their JSON types (an array's items
  taken together), and the values of the enumerated fields (`object`, `finish_reason`, `role`, `type`);
- for an error, the shape of its body (the profile's error shape);
- for a stream: the `[DONE]` terminator, the usage chunk, the role of each choice's first delta, and the
  shape of the chunks;
- the headers the contract names: the media type and the request id.

A field absent on one side is reported once, not with everything under it. Each difference is filed under
the requirement whose rule covers the field, so a report reads by requirement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance.checks import streaming
from conformance.checks.shape import json_type
from conformance.checks.transport import DONE, is_event_stream, judged_json
from conformance.contract.profiles import Profile
from conformance.suite.scenarios import OWNERS
from conformance.transport.exchange import Exchange

# fields whose values, not only their types, are compared: each is an enumeration in the contract
ENUMERATED = ("object", "finish_reason", "role", "type")
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")
ABSENT = "absent"


@dataclass(frozen=True)
class Difference:
    """One field where the two answers to `case` differ: `a` and `b` are what each side showed."""

    requirement: str
    case: str
    field: str
    a: Any
    b: Any

    def to_json(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "case": self.case, "field": self.field, "a": self.a, "b": self.b}


def shape(value: Any, path: str = "") -> dict[str, set[str]]:
    """Path -> the JSON types seen there (and, for an enumerated field, its values as "=value"): an array's
    items are one path, `/*`, so answers of different lengths have the same shape."""
    out: dict[str, set[str]] = {}

    def walk(node: Any, where: str) -> None:
        out.setdefault(where or "/", set()).add(json_type(node))
        name = where.rsplit("/", 1)[-1]
        if name in ENUMERATED and isinstance(node, str):
            out[where].add(f"={node}")
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{where}/*")

    walk(value, path)
    return out


def _render(types: set[str] | None) -> str:
    if types is None:
        return ABSENT
    values = sorted(t[1:] for t in types if t.startswith("="))
    kinds = sorted(t for t in types if not t.startswith("="))
    return " | ".join(kinds) + (f" ({', '.join(repr(v) for v in values)})" if values else "")


def shape_differences(a: dict[str, set[str]], b: dict[str, set[str]]) -> Iterator[tuple[str, str, str]]:
    """(path, a, b) where the shapes differ; under a path absent on one side, nothing more."""
    gone: list[str] = []
    for path in sorted(set(a) | set(b)):
        if any(path.startswith(prefix + "/") for prefix in gone):
            continue
        left, right = a.get(path), b.get(path)
        if left == right:
            continue
        if left is None or right is None:
            gone.append(path)
        yield path, _render(left), _render(right)


def _body_requirement(path: str) -> str:
    if path.startswith("/usage") or "/usage" in path:
        return "RESP-005"
    if "/logprobs" in path:
        return "RESP-006"
    if "/tool_calls" in path:
        return "RESP-007"
    if "/message" in path:
        return "RESP-004"
    if path.startswith("/choices"):
        return "RESP-003"
    return "RESP-001"


def _chunk_requirement(path: str) -> str:
    return "STRM-016" if "/usage" in path else "STRM-012" if "/delta" in path else "STRM-010"


def status_requirement(case: str) -> str:
    """The requirement that judges the status of `case`'s answer."""
    if case in OWNERS:
        return OWNERS[case]
    if "key" in case or case == "wrong_header":
        return "AUTH-005"
    if case.startswith("val_") or case.startswith("type_"):
        return "ERR-002"
    if case == "unknown_model":
        return "MODEL-001"
    if case == "account_unknown":
        return "HDR-002"
    return "PROP-001" if case.startswith("generated") else "BASIC-001"


def _header(exchange: Exchange, names: tuple[str, ...]) -> str | None:
    response = exchange.response
    if response is None:
        return None
    for name in names:
        value = response.header(name)
        if value is not None:
            return value
    return None


def _media(exchange: Exchange) -> str:
    response = exchange.response
    return response.media_type if response is not None and response.media_type else ABSENT


def _failure(exchange: Exchange) -> str:
    return exchange.error_kind or "no answer"


def _json_body(exchange: Exchange) -> tuple[bool, Any]:
    body, error = judged_json(exchange)
    return error is None, body


def _framing(exchange: Exchange) -> dict[str, Any]:
    """What a client's stream reader meets: the terminator, the usage chunk, each choice's first role."""
    events = exchange.events.events
    chunks = [c for _, c in streaming.chunks(exchange)]
    roles: dict[int, Any] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and isinstance(choice.get("index"), int) and choice["index"] not in roles:
                delta = choice.get("delta")
                roles[choice["index"]] = delta.get("role") if isinstance(delta, dict) else None
    return {
        "ends with [DONE]": bool(events) and events[-1].data.strip() == DONE,
        "usage chunk": any(c.get("choices") == [] and isinstance(c.get("usage"), dict) for c in chunks),
        "first delta roles": json.dumps([roles[i] for i in sorted(roles)]),
    }


def _chunk_shape(exchange: Exchange) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for _, chunk in streaming.chunks(exchange):
        for path, types in shape(chunk, "chunk").items():
            out.setdefault(path, set()).update(types)
    return out


def compare(case: str, a: Exchange, b: Exchange, profile: Profile) -> list[Difference]:
    """Every difference between `a` and `b`, the two targets' answers to `case`. `profile` is target A's:
    it names which rule the stream terminator is judged by."""
    out: list[Difference] = []

    def note(requirement: str, field: str, left: Any, right: Any) -> None:
        out.append(Difference(requirement, case, field, left, right))

    if a.response is None or b.response is None:
        left = a.status if a.response is not None else _failure(a)
        right = b.status if b.response is not None else _failure(b)
        if left != right:
            note(status_requirement(case), "status", left, right)
        return out
    if a.status != b.status:
        note(status_requirement(case), "status", a.status, b.status)
        return out
    streamed = is_event_stream(a) or is_event_stream(b)
    if _media(a) != _media(b):
        note("STRM-001" if streamed else "HDR-003", "header content-type", _media(a), _media(b))
        return out
    has_id = (_header(a, REQUEST_ID_HEADERS) is not None, _header(b, REQUEST_ID_HEADERS) is not None)
    if has_id[0] != has_id[1]:
        note("HDR-007", "header request id", "present" if has_id[0] else ABSENT, "present" if has_id[1] else ABSENT)
    if streamed:
        framing_a, framing_b = _framing(a), _framing(b)
        terminator = "STRM-004" if profile.stream_terminator is not None else "STRM-005"
        owners = {"ends with [DONE]": terminator, "usage chunk": "STRM-016", "first delta roles": "STRM-014"}
        for field, requirement in owners.items():
            if framing_a[field] != framing_b[field]:
                note(requirement, f"stream: {field}", framing_a[field], framing_b[field])
        for path, left, right in shape_differences(_chunk_shape(a), _chunk_shape(b)):
            note(_chunk_requirement(path), path, left, right)
        return out
    ok_a, body_a = _json_body(a)
    ok_b, body_b = _json_body(b)
    if not (ok_a and ok_b):
        if ok_a != ok_b:
            note("JSON-001", "body", "JSON" if ok_a else "not JSON", "JSON" if ok_b else "not JSON")
        return out
    error = (a.status or 0) >= 400
    for path, left, right in shape_differences(shape(body_a), shape(body_b)):
        note("ERR-004" if error else _body_requirement(path), path, left, right)
    return out
