"""JSON as RFC 8259 defines it: NaN and Infinity are not JSON, duplicate keys are reported."""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """The text is not RFC 8259 JSON."""


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON value (RFC 8259 §6)")


def loads(data: bytes | str) -> Any:
    """Parse like json.loads, but refuse NaN, Infinity and -Infinity, which Python accepts by default."""
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except StrictJSONError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
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

    try:
        json.loads(data, object_pairs_hook=hook)
    except ValueError:
        return []
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)
