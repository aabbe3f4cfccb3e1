"""PROP-003 counts a generated invalid body against a server only for a rule the contract states for the
profile (contract/stated_rules.py); what only the OpenAPI document adds is never owed, whatever the seed."""

from __future__ import annotations

import pytest

from conformance.contract import status
from conformance.contract.stated_rules import broken_rules, not_an_object, owed

MESSAGES = [{"role": "user", "content": "hi"}]


def body(**fields: object) -> dict[str, object]:
    return {"model": "m", "messages": MESSAGES, **fields}


# the examples issue 19 names: a correct server may serve each of them
NEVER_OWED = {
    "tool name outside the pattern": body(tools=[{"type": "function", "function": {"name": "bad name!"}}]),
    "json_schema name outside the pattern": body(
        response_format={"type": "json_schema", "json_schema": {"name": "a b"}}),
    "description null": body(tools=[{"type": "function", "function": {"name": "f", "description": None}}]),
    "strict {}": body(tools=[{"type": "function", "function": {"name": "f", "strict": {}}}]),
    "content part without type": body(messages=[{"role": "user", "content": [{"text": "x"}]}]),
    "refusal null": body(messages=[{"role": "assistant", "content": "x", "refusal": None}]),
    "name null": body(messages=[{"role": "user", "content": "x", "name": None}]),
    "tool_call_id null": body(messages=[{"role": "tool", "content": "x", "tool_call_id": None}]),
    "temperature out of bounds": body(temperature=3),
    "unknown tool_choice": body(tool_choice="sometimes"),
    "unknown response_format type": body(response_format={"type": "xml"}),
    "wrong-typed temperature": body(temperature="hot"),
}


@pytest.mark.parametrize("profile", ["sgp", "openai"])
@pytest.mark.parametrize("name", NEVER_OWED)
def test_what_the_contract_leaves_open_is_never_owed(name: str, profile: str) -> None:
    rules = broken_rules(NEVER_OWED[name], profile)
    assert rules, "the body is invalid under the OpenAPI document"
    assert owed(NEVER_OWED[name], profile) is None, [r.describe() for r in rules]


@pytest.mark.parametrize(("name", "case", "owner"), [
    ("no messages", {"model": "m"}, "VAL-001"),
    ("messages a string", body(messages="hi"), "VAL-003"),
    ("a message that is no object", body(messages=[1]), None),
    ("an empty model", body(model=""), None),
    ("top_logprobs alone", body(top_logprobs=2), None),
])
def test_a_stated_rule_is_owed_in_both_profiles_and_names_its_anchor(name: str, case: dict[str, object],
                                                                     owner: str | None) -> None:
    for profile in ("sgp", "openai"):
        found = owed(case, profile)
        assert found is not None and found.owner == owner, name
        assert f"docs/contract.md#{found.anchor}" in found.describe()
        assert status.status(found.anchor, profile) == status.SETTLED


def test_a_message_shape_is_owed_under_openai_only_and_a_claim_pins_an_open_point() -> None:
    roleless = body(messages=[{"content": "x"}])
    assert owed(roleless, "openai") is not None and owed(roleless, "sgp") is None
    assert owed(roleless, "sgp", frozenset({"refuses-message-shape"})) is not None
    assert owed(body(temperature=3), "sgp", frozenset({"refuses-out-of-bounds"})).owner == "VAL-009"
    assert owed(NEVER_OWED["refusal null"], "sgp", frozenset({"refuses-null"})) is not None


def test_every_rule_names_an_anchor_with_a_status() -> None:
    for case in [*NEVER_OWED.values(), {"model": "m"}, body(messages=[1])]:
        for rule in broken_rules(case, "sgp"):
            assert status.status(rule.anchor, "sgp") in status.STATUSES


def test_a_generated_body_that_is_no_json_object_names_the_rule_it_breaks() -> None:
    """No JSON at all is VAL-006's; JSON of another type VAL-007's: a server serving whatever does not parse
    failed VAL-007 as well, through a generated case of bytes."""
    assert not_an_object(b"\x00{not json").owner == not_an_object(None).owner == "VAL-006"
    assert not_an_object(b"[1, 2]").owner == not_an_object(b'"text"').owner == "VAL-007"
