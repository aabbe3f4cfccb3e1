"""Which rule a generated invalid request body breaks, and whether the contract states it for a profile.

PROP-003 counts a generated invalid body against a server only when the body breaks a constraint the
contract states for the profile (docs/contract.md #generated-requests): the body is a JSON object with
`messages` and `model`; `messages` is an array of objects and `model` a non-empty string; under `openai`,
each message has a documented role and its content; `top_logprobs` needs `logprobs: true` (CONTRACT.md).
Everything else the OpenAPI document adds (bounds, enum values, wrong-typed optional parameters, nulls,
patterns and nesting details from OpenAI's deeper schema) is an open point: observed, and counted only for
a server that claims the matching choice (contract.claims.CHOICES).

`broken_rules` names each broken constraint with its docs/contract.md anchor, the requirement that owns
the rule where one does (VAL-009 owns temperature's bounds), and the choice that pins it where it is open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import ValidationError

from conformance.contract import schema_store, status
from conformance.contract.request_rules import (
    _all_errors,
    combination_problems,
    is_text,
    lax_scalars,
    strict_validator,
)

# the requirement that owns the bounds of each top-level parameter (its own scripted test)
BOUND_OWNERS = {"temperature": "VAL-009", "n": "VAL-010", "top_logprobs": "VAL-011", "stop": "VAL-012",
                "max_tokens": "VAL-013", "messages": "VAL-014", "top_p": "VAL-016", "presence_penalty": "VAL-017",
                "frequency_penalty": "VAL-018"}
ENUM_OWNERS = {"response_format": "VAL-020", "tool_choice": "VAL-021"}
_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
                     "minLength", "maxLength", "minProperties", "maxProperties"})
_ENUMS = frozenset({"enum", "const"})


@dataclass(frozen=True)
class Broken:
    """One constraint a body breaks: where (a JSON pointer), what the rule is, the docs/contract.md anchor
    stating it, the requirement owning it (None: PROP-003 itself) and the choice that pins it when open."""

    where: str
    rule: str
    anchor: str
    owner: str | None = None
    choice: str | None = None

    def stated(self, profile: str, claims: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether a server under `profile` that claims `claims` owes a refusal of this body."""
        found = status.status(self.anchor, profile)
        return found == status.SETTLED or (found == status.OPEN and self.choice is not None
                                           and self.choice in claims)

    def describe(self) -> str:
        return f"{self.where}: {self.rule} (docs/contract.md#{self.anchor})"


def not_an_object(body: bytes | None) -> Broken:
    """The rule a request body that is no JSON object breaks: JSON of another type is VAL-007's, no JSON at
    all VAL-006's (a server that serves whatever does not parse fails VAL-006 alone)."""
    try:
        json.loads(body or b"")
    except (ValueError, RecursionError):
        return Broken("/", "the body is JSON", "errors-validation", "VAL-006")
    return Broken("/", "the body is a JSON object", "errors-validation", "VAL-007")


def _classify(error: ValidationError) -> Broken:
    path = list(error.absolute_path)
    where = schema_store.json_pointer(path) or "/"
    kind, instance = error.validator, error.instance
    top = path[0] if path else None
    if not path:
        if kind == "required":
            missing = "messages" if "'messages'" in error.message else "model"
            return Broken(where, f"`{missing}` is required", "request-body",
                          "VAL-001" if missing == "messages" else "VAL-002")
        return Broken(where, "the body is a JSON object", "errors-validation", "VAL-007")
    if instance is None and kind == "type":
        return Broken(where, "no request field is documented as nullable", "open-request-null", None, "refuses-null")
    if top == "model" and len(path) == 1:
        return Broken(where, "`model` is a non-empty string", "request-model", "VAL-004" if kind == "type" else None)
    if top == "messages" and len(path) == 1:
        if kind in _BOUNDS:
            return Broken(where, "at least one message (OpenAI's bound)", "open-bounds", "VAL-014",
                          "refuses-out-of-bounds")
        return Broken(where, "`messages` is an array", "request-messages", "VAL-003")
    if top == "messages":
        return _message(error, where, path[2:])
    if len(path) == 1:
        if kind in _BOUNDS:
            return Broken(where, f"`{top}` within OpenAI's bounds", "open-bounds", BOUND_OWNERS.get(str(top)),
                          "refuses-out-of-bounds")
        if kind in _ENUMS:
            return Broken(where, f"`{top}` is one of the documented values", "open-unknown-enum",
                          ENUM_OWNERS.get(str(top)), "refuses-unknown-enum")
        if kind == "type":
            return Broken(where, f"`{top}` has its documented JSON type", "open-request-types", "VAL-023",
                          "refuses-wrong-types")
    if top in ENUM_OWNERS and ((len(path) == 1 and kind in ("oneOf", "anyOf")) or (path[1:] == ["type"]
                               and kind in _ENUMS)):
        return Broken(where, f"`{top}.type` is one of the documented values", "open-unknown-enum",
                      ENUM_OWNERS[str(top)], "refuses-unknown-enum")
    return _detail(where)


def _message(error: ValidationError, where: str, rest: list[Any]) -> Broken:
    """A rule of one message: an object (settled), with a documented role and its content (settled under
    openai by OpenAI's specification, open under sgp: docs/contract.md #open-message-shape)."""
    if not rest and error.validator == "type":
        return Broken(where, "each message is an object", "request-messages")
    if not rest and error.validator == "required" and "'role'" in error.message:
        return Broken(where, "a message has a role", "open-message-shape", "VAL-005", "refuses-message-shape")
    if rest[:1] == ["role"]:
        return Broken(where, "a message's role is a documented one", "open-message-shape", "VAL-019",
                      "refuses-message-shape")
    if (not rest and error.validator == "required" and "'content'" in error.message) or rest == ["content"]:
        return Broken(where, "a message has content: a string or a non-empty array of parts", "open-message-shape",
                      None, "refuses-message-shape")
    return _detail(where)


def _detail(where: str) -> Broken:
    return Broken(where, "a detail only OpenAI's schema adds (a pattern, a nested type or key)", "open-schema-details")


def broken_rules(body: Any, profile: str, lax: bool = False) -> list[Broken]:
    """Every constraint `body` breaks (empty: a valid body), most stated first; `lax` reads scalars as
    pydantic's lax mode does ("2" as 2), as the sgp profile's backend is allowed to."""
    if lax:
        body = lax_scalars(body)
    out: list[Broken] = []
    for error in _leaves(strict_validator().iter_errors(body)):
        if "dependentSchemas" in error.absolute_schema_path:
            continue  # a combination rule, named below in its own words
        broken = _classify(error)
        if broken not in out:
            out.append(broken)
    stated_combination = combination_problems(body, stated_only=True)
    for field, why in combination_problems(body):
        if (field, why) in stated_combination:
            out.append(Broken(f"/{field}", why, "request-top-logprobs"))
        else:
            # OpenAI refuses these; no SGP source states them (docs/contract.md #open-bounds)
            out.append(Broken(f"/{field}", why, "open-bounds", None, "refuses-out-of-bounds"))
    if not is_text(body):
        out.append(Broken("/", "a number is finite and a string is Unicode text", "open-nan-request", "VAL-015",
                          "refuses-nan"))
    rank = {status.SETTLED: 0, status.RECOMMENDED: 1, status.OPEN: 2}
    return sorted(out, key=lambda b: rank[status.status(b.anchor, profile)])


def _leaves(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    """The errors that say what is wrong: the most relevant alternative of an anyOf/oneOf, and the errors
    inside an allOf/if-then (a message's role-dependent rules) rather than the combinators themselves."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf"):
            yield schema_store.leaf_error(error)
        elif error.validator in ("allOf", "if", "then", "else") or error.context:
            yield from _leaves(_all_errors(iter(error.context or ())))
        else:
            yield error


def owed(body: Any, profile: str, claims: frozenset[str] | set[str] = frozenset(), lax: bool = False) -> Broken | None:
    """The first constraint `body` breaks that a server under `profile` claiming `claims` must refuse it for,
    or None: a body that breaks only open points is no fault of the server that serves it."""
    return next((b for b in broken_rules(body, profile, lax) if b.stated(profile, claims)), None)
