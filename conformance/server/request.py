"""From raw request bytes to a checked body, or to the issues a FastAPI/pydantic server would report.

Profile-neutral: errors.py decides how the issues are rendered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from conformance.contract import schema_store
from conformance.contract.request_rules import combination_problems
from conformance.server.errors import InvalidRequest, Issue

REQUEST_SCHEMA = "chat-completion-request"
# a null here is as invalid as an absent key is required: they are not dropped
_REQUIRED = ("messages", "model")
_MESSAGE_KEPT = ("role", "content")

# a string literal, or one of the constants Python's json accepts but RFC 8259 does not
_CONSTANT_OUTSIDE_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


class _NotJSON(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _json_invalid(message: str, offset: int) -> InvalidRequest:
    # FastAPI's exact shape: loc ["body", <offset>], msg "JSON decode error", input {}, ctx.error
    return InvalidRequest(
        [
            Issue(
                type="json_invalid",
                loc=(offset,),
                msg="JSON decode error",
                input={},
                ctx={"error": message},
                openai_message=(
                    "We could not parse the JSON body of your request. The API expects a JSON payload "
                    f"with Content-Type application/json ({message} at offset {offset})."
                ),
                openai_param=False,
            )
        ]
    )


def _first_constant(text: str) -> int:
    for match in _CONSTANT_OUTSIDE_STRINGS.finditer(text):
        if match.group(1):
            return match.start(1)
    return 0


def _reject_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON value", -1)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        # 1e400 is valid JSON syntax but no double holds it; echoing it back would break strict JSON out
        raise _NotJSON(f"number {literal} is out of range", -1)
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def parse_json(raw: bytes) -> Any:
    """Strict RFC 8259 parsing of a UTF-8 body; raises InvalidRequest(json_invalid) like FastAPI."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _json_invalid("invalid UTF-8", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise _json_invalid(exc.msg, exc.pos) from None
    except _NotJSON as exc:
        offset = exc.offset if exc.offset >= 0 else _first_constant(text)
        raise _json_invalid(str(exc), offset) from None
    except (ValueError, RecursionError) as exc:
        # too deep, or an integer longer than Python converts: not a body any client means to send
        raise _json_invalid(str(exc) or type(exc).__name__, 0) from None
    try:
        for string in _strings(value):
            string.encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" parses in Python but is no Unicode text; pydantic's parser refuses it too
        match = _LONE_SURROGATE.search(text)
        raise _json_invalid("lone surrogate in string escape", match.start() if match else 0) from None
    except RecursionError:
        raise _json_invalid("nesting too deep", 0) from None
    return value


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(content_type: str | None, raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidRequest(
            [
                Issue(
                    type="missing",
                    loc=(),
                    msg="Field required",
                    input=None,
                    openai_message="The request body is empty; send a JSON object.",
                    openai_param=False,
                )
            ]
        )
    if _media_type(content_type) != "application/json":
        # FastAPI does not parse a body of another media type and fails validating the raw text
        text = raw.decode("utf-8", errors="replace")
        raise InvalidRequest(
            [
                Issue(
                    type="model_attributes_type",
                    loc=(),
                    msg="Input should be a valid dictionary or object to extract fields from",
                    input=text,
                    openai_message=(
                        f"Unsupported Content-Type {content_type or '(none)'!r}: "
                        "the request body must be JSON sent as application/json."
                    ),
                    openai_param=False,
                )
            ]
        )
    return parse_json(raw)


# --- JSON Schema errors rendered as pydantic v2 would name them ---------------------------------------

_TYPE_ERRORS = {
    "string": ("string_type", "Input should be a valid string"),
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "array": ("list_type", "Input should be a valid list"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "null": ("none_required", "Input should be None"),
}
_JSON_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _literal_list(values: Iterable[Any]) -> str:
    shown = [repr(v) if isinstance(v, str) else json.dumps(v) for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _got(instance: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(instance), "a value")


_BOUNDS = {
    "minimum": ("greater_than_equal", "greater than or equal to", "ge"),
    "maximum": ("less_than_equal", "less than or equal to", "le"),
    "exclusiveMinimum": ("greater_than", "greater than", "gt"),
    "exclusiveMaximum": ("less_than", "less than", "lt"),
}


def _size_issue(kind: str, value: int, instance: Any) -> tuple[str, str, dict[str, Any]]:
    if kind in ("minLength", "maxLength"):
        noun = "character" if value == 1 else "characters"
        words, key = ("at least", "min_length") if kind == "minLength" else ("at most", "max_length")
        name = "string_too_short" if kind == "minLength" else "string_too_long"
        return name, f"String should have {words} {value} {noun}", {key: value}
    field_type = "List" if kind.endswith("Items") else "Dictionary"
    noun = "item" if value == 1 else "items"
    size = len(instance)
    words, key, name = ("at least", "min_length", "too_short")
    if kind.startswith("max"):
        words, key, name = ("at most", "max_length", "too_long")
    msg = f"{field_type} should have {words} {value} {noun} after validation, not {size}"
    return name, msg, {"field_type": field_type, key: value, "actual_length": size}


def _issue(error: ValidationError) -> list[Issue]:
    loc: tuple[str | int, ...] = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        # jsonschema reports one error per missing name, naming it in the message
        missing = [name for name in value if isinstance(instance, dict) and name not in instance]
        named = [name for name in missing if repr(name) in error.message] or missing[:1]
        return [
            Issue("missing", (*loc, name), "Field required", instance,
                  openai_message=f"Missing required parameter: '{_dotted((*loc, name))}'.")
            for name in named
        ]  # fmt: skip
    if kind == "type":
        expected = [value] if isinstance(value, str) else [t for t in value if t != "null"] or ["null"]
        type_name, msg = _TYPE_ERRORS.get(expected[0], ("value_error", error.message))
        wanted = " or ".join(expected)
        message = f"Invalid type for '{_dotted(loc)}': expected {wanted}, but got {_got(instance)} instead."
        return [Issue(type_name, loc, msg, instance, openai_message=message)]
    if kind in ("enum", "const"):
        expected = _literal_list(value if kind == "enum" else [value])
        return [Issue("literal_error", loc, f"Input should be {expected}", instance, {"expected": expected})]
    if kind in _BOUNDS:
        type_name, words, key = _BOUNDS[kind]
        return [Issue(type_name, loc, f"Input should be {words} {value}", instance, {key: value})]
    if kind in ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"):
        type_name, msg, ctx = _size_issue(kind, value, instance)
        return [Issue(type_name, loc, msg, instance, ctx)]
    if kind == "pattern":
        msg = f"String should match pattern '{value}'"
        return [Issue("string_pattern_mismatch", loc, msg, instance, {"pattern": value})]
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extra = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
        return [
            Issue("extra_forbidden", (*loc, key), "Extra inputs are not permitted", instance[key],
                  openai_message=f"Unrecognized request argument supplied: {key}")
            for key in extra
        ] or [Issue("value_error", loc, f"Value error, {error.message}", instance)]  # fmt: skip
    return [Issue("value_error", loc, f"Value error, {error.message}", instance)]


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in loc)


def schema_issues(body: Any) -> list[Issue]:
    if schema_store.surely_valid(REQUEST_SCHEMA, body):
        return []
    errors = sorted(schema_store.errors(REQUEST_SCHEMA, body), key=lambda e: [str(p) for p in e.absolute_path])
    issues: list[Issue] = []
    for error in errors:
        if "dependentSchemas" in error.absolute_schema_path:
            # the same rule as semantic_issues, which words it for the reader
            continue
        issues.extend(_issue(schema_store.leaf_error(error)))
    return issues


def semantic_issues(body: Any) -> list[Issue]:
    """Combinations every field of which is valid alone but OpenAI rejects together (request_rules)."""
    return [Issue("value_error", (field,), f"Value error, {why}", body[field])
            for field, why in combination_problems(body)]


def check_body(body: Any) -> dict[str, Any]:
    """The body as the model sees it, or InvalidRequest with every problem found."""
    if isinstance(body, dict):
        # OpenAI treats an optional param sent as null as absent, and clients (LangChain among them) send
        # such nulls; the schema neither allows nor requires rejecting them (an open point)
        body = {k: v for k, v in body.items() if v is not None or k in _REQUIRED}
        if isinstance(body.get("messages"), list):
            # the same for a message's optional fields (OpenAI allows refusal: null): only role and content are
            # read as sent, content being null-able for an assistant message alone
            body["messages"] = [{k: v for k, v in m.items() if v is not None or k in _MESSAGE_KEPT}
                                if isinstance(m, dict) else m for m in body["messages"]]
    issues = schema_issues(body) + semantic_issues(body)
    if issues:
        raise InvalidRequest(issues)
    return body
