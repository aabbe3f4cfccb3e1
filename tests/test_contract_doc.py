"""docs/contract.md and the catalogue's references into it: every requirement names an anchor the page has,
every link into the page lands, and `list` gives each requirement's reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_runs import run_cli

from conformance.contract import catalogue

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
PAGE_ANCHORS = re.findall(r'<a id="([^"]+)"></a>', PAGE)


# -- the catalogue's anchors ------------------------------------------------------------------------------------


def test_page_anchors_are_unique() -> None:
    assert len(PAGE_ANCHORS) == len(set(PAGE_ANCHORS)), [a for a in PAGE_ANCHORS if PAGE_ANCHORS.count(a) > 1]


@pytest.mark.parametrize("req", catalogue.REQUIREMENTS, ids=lambda r: r.id)
def test_every_requirement_names_an_anchor_of_the_page(req: catalogue.Requirement) -> None:
    assert req.anchor in PAGE_ANCHORS, f"{req.id}: no <a id=\"{req.anchor}\"></a> in docs/contract.md"
    assert req.contract == f"docs/contract.md#{req.anchor}"


def test_every_requirement_named_in_the_page_exists() -> None:
    named = set(re.findall(r"\b[A-Z]+-\d{3}\b", PAGE))
    assert named, "the open points name the requirements that check them"
    assert named <= set(catalogue.BY_ID), sorted(named - set(catalogue.BY_ID))


def test_every_link_into_the_page_lands() -> None:
    targets = [(f"contract.md#{a}", a) for a in re.findall(r"\]\(#([^)]+)\)", PAGE)]
    for name in ("requirements.md", "reports.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        targets += [(name, a) for a in re.findall(r"\]\(contract\.md#([^)]+)\)", text)]
    assert len(targets) > 100
    missing = sorted({f"{where}: {anchor}" for where, anchor in targets if anchor not in PAGE_ANCHORS})
    assert not missing, missing


# -- `list` -----------------------------------------------------------------------------------------------------


def test_list_json_carries_each_contract_reference() -> None:
    out = run_cli(["list", "--format", "json"], timeout=60)
    assert out.code == 0, out.output[-2000:]
    listed = json.loads(out.stdout)
    assert [r["id"] for r in listed] == [r.id for r in catalogue.REQUIREMENTS]
    for entry in listed:
        assert entry["contract"] == catalogue.get(entry["id"]).contract
    assert next(r for r in listed if r["id"] == "AUTH-005")["contract"] == "docs/contract.md#auth-status"


def test_list_text_gives_the_reference_under_each_statement() -> None:
    out = run_cli(["list", "--profile", "openai"], timeout=60)
    assert out.code == 0, out.output[-2000:]
    lines = out.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("RESP-010 "))
    assert lines[at + 1] == " " * 18 + "docs/contract.md#openai-differences"
    # one statement line and one reference line per requirement of the profile
    assert len(lines) == 2 * len(catalogue.for_profile("openai"))


def test_list_markdown_links_relative_to_docs() -> None:
    table = catalogue.markdown_table([catalogue.get("VAL-008")])
    assert "| [§content-types](contract.md#content-types) |" in table
    assert table.splitlines()[0] == "| ID | Level | Requirement | Contract | Source | Profiles |"
