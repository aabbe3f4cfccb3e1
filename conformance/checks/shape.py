"""Shape checks: a parsed document against the JSON Schemas in schemas/, and optional fields sent as null.

The schemas are the single authority on shape; this module only turns jsonschema's errors into
violations: one per error, attributed to the requirement named by the nearest `x-requirement`
annotation, with a short message (never a dump of the whole instance) and an RFC 6901 pointer.
`brief` and `pointer` live here because every other check module formats values and paths the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

from conformance.checks import Violation
from conformance.contract import schema_store

# the requirement a schema error falls back to when no x-requirement annotation covers its location
DEFAULT_REQUIREMENT: dict[str, str] = {
    "chat-completion": "RESP-001",
    "chat-completion-chunk": "STRM-010",
}


def brief(value: Any, limit: int = 40) -> str:
    """A value quoted for a one-line message: repr, cut to `limit` characters."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ cannot come from JSON, but a message must never raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pointer(*parts: Any) -> str:
    """An RFC 6901 pointer from path segments (keys or indices); "" is the whole document."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages ("got string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def describe_error(error: ValidationError) -> str:
    """A one-line message saying what the schema expected and what was seen."""
    kind, expected, seen = error.validator, error.validator_value, error.instance
    if kind == "required":
        # jsonschema reports each missing property separately, as "'name' is a required property"
        return f"missing required field {error.message.removesuffix(' is a required property')}"
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return f"expected {wanted}, got {json_type(seen)} {brief(seen)}"
    if kind == "enum":
        return f"expected one of {brief(expected, 80)}, got {brief(seen)}"
    if kind == "const":
        return f"expected {brief(expected)}, got {brief(seen)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"expected {kind} {brief(expected)}, got {brief(seen)}"
    text = error.message
    return text if len(text) <= 160 else text[:159] + "…"


def schema_violations(
    document: Any, schema_name: str, scenario: str = "", default_requirement: str | None = None
) -> list[Violation]:
    """Every schema error of `document` against schemas/<schema_name>.json, one violation each.

    Each is attributed to the x-requirement annotation nearest to the failing schema location, or to
    `default_requirement` (RESP-001 for the completion, STRM-010 for the chunk).
    """
    if schema_store.surely_valid(schema_name, document):
        return []
    default = default_requirement or DEFAULT_REQUIREMENT.get(schema_name, "RESP-001")
    out: list[Violation] = []
    for error in schema_store.errors(schema_name, document):
        # inside anyOf/oneOf, the error of the branch the document was meant for
        detail = schema_store.leaf_error(error)
        try:
            requirement = schema_store.requirement_for(detail, schema_name) or default
        except Exception:  # attribution is advisory: an unresolvable path must not hide the error
            requirement = default
        try:
            excerpt = schema_store.schema_excerpt(detail)
        except Exception:
            excerpt = None
        out.append(
            Violation(
                requirement=requirement,
                message=describe_error(detail),
                pointer=schema_store.json_pointer(detail.absolute_path),
                scenario=scenario,
                schema_excerpt=excerpt,
            )
        )
    out.sort(key=lambda v: v.pointer)
    return out


# Optional (O) fields of the contract, as paths with "*" for any array index. R fields that are null
# are schema errors, not RESP-010 findings, so they are not listed.
_OPTIONAL_COMPLETION: tuple[tuple[str, ...], ...] = (
    ("object",),
    ("service_tier",),
    ("system_fingerprint",),
    ("usage",),
    ("usage", "completion_tokens_details"),
    ("usage", "prompt_tokens_details"),
    ("choices", "*", "logprobs"),
    ("choices", "*", "logprobs", "content"),
    ("choices", "*", "logprobs", "refusal"),
    ("choices", "*", "logprobs", "content", "*", "bytes"),
    ("choices", "*", "logprobs", "refusal", "*", "bytes"),
    ("choices", "*", "message", "content"),
    ("choices", "*", "message", "refusal"),
    ("choices", "*", "message", "annotations"),
    ("choices", "*", "message", "audio"),
    ("choices", "*", "message", "function_call"),
    ("choices", "*", "message", "tool_calls"),
)


def _walk(node: Any, path: tuple[str, ...], where: tuple[Any, ...]) -> Iterable[tuple[Any, ...]]:
    """Locations matching `path` whose value is null (missing keys and wrong types are skipped)."""
    head, rest = path[0], path[1:]
    if head == "*":
        items = list(enumerate(node)) if isinstance(node, list) else []
    elif isinstance(node, dict) and head in node:
        items = [(head, node[head])]
    else:
        items = []
    for key, child in items:
        if not rest:
            if child is None:
                yield (*where, key)
        else:
            yield from _walk(child, rest, (*where, key))
