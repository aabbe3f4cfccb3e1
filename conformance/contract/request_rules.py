"""What a request body must be beyond what its schema states, read strictly or leniently.

Shared by the reference server (which refuses what breaks these rules), by the generator (whose positive
cases must hold to the strict reading, so no server refuses them for reasons outside the contract) and by
the negative filter (a case counts as invalid only when the lenient reading of the profile refuses it too).

- Cross-field rules the schema cannot state (OpenAI refuses these combinations): top_logprobs without
  logprobs true, tool_choice "required" without tools, a named tool_choice that is not among the tools,
  stream_options without stream true.
- The canonical form of every documented type: integers as JSON integers (JSON Schema's `integer` admits
  `1.0`, pydantic's strict mode and Rust/Go decoders do not), no `-0.0`, no string that is not Unicode text
  (a lone surrogate escape).
- The profile's leniency (Profile.lenient_request): under sgp the documented message type is a free-form
  object and the backend is FastAPI/pydantic in lax mode, so a message without role or content, an empty
  messages array, and scalars that pydantic coerces ("2" for 2, 1 for true) are not counted as invalid;
  nor are the combinations only OpenAI refuses (CONTRACT.md states only that top_logprobs needs logprobs).
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from conformance.contract import schema_store
from conformance.contract.profiles import Profile

REQUEST_SCHEMA = "chat-completion-request"


def _function_name(holder: Any) -> str | None:
    """The function name of a tool or a named tool_choice; None where it is not a string (an invalid body
    is judged by the schema, these rules only read what a valid one holds)."""
    function = holder.get("function") if isinstance(holder, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def combination_problems(body: Any, stated_only: bool = False) -> list[tuple[str, str]]:
    """(field, why) of each combination OpenAI refuses although every field is valid alone; with
    `stated_only`, only those that CONTRACT.md itself states (top_logprobs "needs logprobs true"): the
    others are OpenAI's rules, which the SGP sources never state."""
    if not isinstance(body, dict):
        return []
    out: list[tuple[str, str]] = []
    if "top_logprobs" in body and body.get("logprobs") is not True:
        out.append(("top_logprobs", "top_logprobs requires logprobs to be true"))
    if stated_only:
        return out
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    choice = body.get("tool_choice")
    if choice == "required" and not tools:
        out.append(("tool_choice", "tool_choice 'required' needs at least one tool"))
    wanted = _function_name(choice)
    if isinstance(wanted, str) and wanted not in {_function_name(t) for t in tools}:
        out.append(("tool_choice", f"tool_choice names {wanted!r}, which is not in tools"))
    if "stream_options" in body and body.get("stream") is not True:
        out.append(("stream_options", "stream_options is only allowed when stream is true"))
    return out


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@functools.cache
def strict_validator() -> Validator:
    """The request schema, with `integer` meaning a JSON integer (never 1.0); references inlined, as only
    the errors' instance paths and messages are read."""
    return StrictValidator(schema_store.inlined(schema_store.load(REQUEST_SCHEMA)))


def _all_errors(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from _all_errors(iter(error.context or ()))


def _set(body: Any, path: list[Any], value: Any) -> None:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _no_negative_zero(value: Any) -> Any:
    if isinstance(value, float) and value == 0.0 and math.copysign(1.0, value) < 0:
        return 0.0
    if isinstance(value, dict):
        return {k: _no_negative_zero(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_negative_zero(v) for v in value]
    return value


def canonical(body: Any) -> Any:
    """`body` with every integral float where the schema wants an integer turned into an int, and -0.0 into
    0.0 (a copy; the input is not changed)."""
    body = _no_negative_zero(copy.deepcopy(body))
    for _ in range(20):  # each pass fixes what the errors show; nested fixes may reveal others
        fixes = [e for e in _all_errors(strict_validator().iter_errors(body))
                 if e.validator == "type" and isinstance(e.instance, float) and e.instance.is_integer()
                 and "integer" in ([e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)
                 and e.absolute_path]
        if not fixes:
            break
        for error in fixes:
            _set(body, list(error.absolute_path), int(error.instance))
    return body


def is_text(body: Any) -> bool:
    """Whether every string in `body` is Unicode text (UTF-8 encodable: no lone surrogate)."""
    try:
        json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def strict_problems(body: Any) -> list[str]:
    """Why `body` is not a valid request under the strict reading (empty: it is)."""
    problems = [f"{schema_store.json_pointer(e.absolute_path) or '/'}: {e.message}"
                for e in strict_validator().iter_errors(body)]
    problems += [f"/{field}: {why}" for field, why in combination_problems(body)]
    if not is_text(body):
        problems.append("a string is not Unicode text (a lone surrogate) or a number is not finite")
    return problems


# --- the lenient reading of a profile --------------------------------------------------------------------


@functools.cache
def _lenient_validator(leniencies: frozenset[str]) -> Validator:
    schema = schema_store.load(REQUEST_SCHEMA)
    if "free_form_messages" in leniencies:
        schema["$defs"]["message"].pop("required", None)
    if "empty_messages" in leniencies:
        schema["properties"]["messages"].pop("minItems", None)
    return Draft202012Validator(schema_store.inlined(schema))


_TRUE = frozenset({"true", "on", "yes", "1", "t", "y"})
_FALSE = frozenset({"false", "off", "no", "0", "f", "n"})


def _coerced(value: Any, kind: str) -> Any:
    """`value` as pydantic's lax mode would read it for a field of JSON type `kind`, or `value` unchanged."""
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return value
            return int(number) if number.is_integer() else value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "number":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return value
    elif kind == "boolean":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    return value


def lax_scalars(body: Any) -> Any:
    """`body` with each top-level scalar parameter coerced as pydantic's lax mode would ("2" to 2, 1 to
    true), so a body whose only fault is such a type is seen as the valid body the server reads."""
    if not isinstance(body, dict):
        return body
    types = schema_store.parameter_types(REQUEST_SCHEMA)
    out = dict(body)
    for key, value in body.items():
        kind = types.get(key)
        if isinstance(kind, str) and kind in ("integer", "number", "boolean"):
            out[key] = _coerced(value, kind)
    return out


def why_invalid(body: Any, profile: Profile) -> str | None:
    """What makes `body` invalid under the lenient reading of `profile`, in one line ("/temperature: 3 is
    greater than the maximum of 2"), or None when it is valid."""
    if "lax_scalars" in profile.lenient_request:
        body = lax_scalars(body)
    error = next(iter(_lenient_validator(frozenset(profile.lenient_request)).iter_errors(body)), None)
    if error is not None:
        error = schema_store.leaf_error(error)
        where = schema_store.json_pointer(error.absolute_path) or "the body"
        message = error.message if len(error.message) <= 100 else error.message[:99] + "…"
        return f"{where}: {message}"
    combination = combination_problems(body, "stated_combinations" in profile.lenient_request)
    return f"/{combination[0][0]}: {combination[0][1]}" if combination else None


def invalid_under(body: Any, profile: Profile) -> bool:
    """Whether `body` is invalid under the lenient reading of `profile`: the schema (JSON Schema's lax
    `integer`), the profile's leniencies, and the cross-field rules. A body that a lax server reads as valid
    is no negative case: refusing it is not owed."""
    leniencies = frozenset(profile.lenient_request)
    if "lax_scalars" in leniencies:
        body = lax_scalars(body)
    if not _lenient_validator(leniencies).is_valid(body):
        return True
    return bool(combination_problems(body, "stated_combinations" in leniencies))
