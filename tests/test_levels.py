"""Levels come from the contract: every requirement's level per profile is its anchor's status in
docs/contract.md section 14 (settled MUST, recommended SHOULD, open INFO), and a claimed open point is MUST."""

from __future__ import annotations

import pytest

from conformance.contract import catalogue, claims, document, status


def test_the_status_table_is_read_from_the_page() -> None:
    table = status.table()
    assert table["auth-status"] == {"sgp": "settled", "openai": "settled"}
    assert table["open-bounds"] == {"sgp": "open", "openai": "open"}
    assert table["account-header"] == {"sgp": "settled", "openai": None}
    assert set(table) <= set(document.anchors()), "section 14 names an anchor the page does not have"


def test_a_row_of_the_table_is_parsed_whatever_else_the_page_holds() -> None:
    page = ('text | `x` | settled | open |\n<a id="levels"></a>\n| anchor | `sgp` | `openai` | why |\n'
            "|---|---|---|---|\n| `x` | recommended | - | a named source |\n")
    assert status.table(page) == {"x": {"sgp": "recommended", "openai": None}}


@pytest.mark.parametrize("requirement", catalogue.REQUIREMENTS, ids=lambda r: r.id)
def test_level_per_profile_is_the_anchor_status(requirement: catalogue.Requirement) -> None:
    for profile in requirement.profiles:
        derived = requirement.level_for(profile)
        assert requirement.stated_level(profile) == derived, (
            f"{requirement.id} says {requirement.stated_level(profile)} under {profile}, but #{requirement.anchor} "
            f"is {status.status(requirement.anchor, profile)} there ({derived}): fix the catalogue or section 14")


def test_every_open_point_can_be_claimed_and_only_open_points_are_choices() -> None:
    for r in catalogue.REQUIREMENTS:
        statuses = {status.status(r.anchor, p) for p in r.profiles}
        if status.OPEN in statuses:
            assert r.choice in claims.CHOICES, f"{r.id} checks an open point but names no choice to claim"
        elif r.choice is not None:
            pytest.fail(f"{r.id} names choice {r.choice!r} but #{r.anchor} is not open in its profiles")


def test_a_claimed_choice_is_must_and_unclaimed_is_observed() -> None:
    bounds = catalogue.get("VAL-009")
    assert bounds.level_for("sgp") == catalogue.INFO
    assert bounds.level_for("sgp", frozenset({"refuses-out-of-bounds"})) == catalogue.MUST
    assert bounds.level_for("sgp", frozenset({"refuses-null"})) == catalogue.INFO
    # a choice only lifts an open point: under openai the message shape is settled already
    shape = catalogue.get("VAL-005")
    assert shape.level_for("openai") == catalogue.MUST
    assert shape.level_for("sgp", frozenset({"refuses-message-shape"})) == catalogue.MUST
    # a settled rule is MUST whatever is claimed
    assert catalogue.get("VAL-001").level_for("sgp", frozenset(claims.CHOICES)) == catalogue.MUST


def test_features_and_choices_name_the_vocabulary() -> None:
    assert {r.feature for r in catalogue.REQUIREMENTS} - {None} <= set(claims.FEATURES)
    assert {r.choice for r in catalogue.REQUIREMENTS} - {None} <= set(claims.CHOICES)
    logprobs = catalogue.get("LOGP-001")
    assert not logprobs.claimed(frozenset({"logprobs"})) and logprobs.claimed(frozenset({"tools"}))
