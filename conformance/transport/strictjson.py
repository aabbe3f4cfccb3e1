"""JSON as RFC 8259 defines it: NaN and Infinity are not JSON, duplicate keys are reported.

Parsing is bounded: RFC 8259 §9 lets a parser limit the nesting depth and the size of numbers, and a body
nested 100,000 deep (or a 5000-digit integer) is valid JSON past what many parsers accept. Such a body is
refused before it is parsed (BeyondLimits), so no check downstream meets a RecursionError.
"""

from __future__ import annotations

import json
import re
from typing import Any

# the deepest nesting of arrays and objects parsed; a chat completion is a handful of levels deep
MAX_DEPTH = 100
PAST_LIMITS = "valid JSON past what many parsers accept"
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


class StrictJSONError(ValueError):
    """The text is not RFC 8259 JSON."""


class BeyondLimits(StrictJSONError):
    """The text is (or may be) RFC 8259 JSON, but nested deeper or with a larger number than this parser
    accepts (RFC 8259 §9 lets a parser set both limits)."""


def too_deep(data: bytes | str) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH levels deep (brackets inside strings do not
    count). Linear in the text, and cheap for the usual body that holds few brackets."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def check_limits(data: bytes | str) -> None:
    """Raise BeyondLimits for text nested deeper than MAX_DEPTH."""
    if too_deep(data):
        raise BeyondLimits(f"{PAST_LIMITS}: arrays or objects nested more than {MAX_DEPTH} levels deep "
                           "(RFC 8259 §9 lets a parser limit the depth)")


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON value (RFC 8259 §6)")


def loads(data: bytes | str) -> Any:
    """Parse like json.loads, but refuse NaN, Infinity and -Infinity, which Python accepts by default."""
    check_limits(data)
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except StrictJSONError:
        raise
    except RecursionError:
        raise BeyondLimits(f"{PAST_LIMITS}: nested deeper than the parser's recursion limit") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if "integer string conversion" in str(exc):
            # Python refuses integers of more than 4300 digits (a guard against quadratic conversion)
            raise BeyondLimits(f"{PAST_LIMITS}: an integer of more than 4300 digits (RFC 8259 §9 lets a "
                               "parser limit the range of numbers)") from None
        raise StrictJSONError(str(exc)) from None


def duplicate_keys(data: bytes | str) -> list[str]:
    """Keys that occur twice in one object (RFC 8259 §4: names SHOULD be unique)."""
    found: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(pairs)

    if too_deep(data):
        return []
    try:
        json.loads(data, object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return []
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)
