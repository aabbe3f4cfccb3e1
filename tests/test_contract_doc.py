"""docs/contract.md and the catalogue's references into it: every requirement names an anchor the page has,
every link into the page lands, and the passage under an anchor is the block it opens, as plain text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_runs import run_cli, run_in_process

from conformance.contract import catalogue, document
from conformance.report.html import contract_html

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
PAGE_ANCHORS = document.anchors(PAGE)


# -- the catalogue's anchors ------------------------------------------------------------------------------------


def test_the_package_reads_the_page_of_the_source_tree() -> None:
    # the installed (editable) package reads docs/contract.md itself, not a stale copy
    assert document.text() == PAGE


def test_page_anchors_are_unique() -> None:
    assert len(PAGE_ANCHORS) == len(set(PAGE_ANCHORS)), [a for a in PAGE_ANCHORS if PAGE_ANCHORS.count(a) > 1]


@pytest.mark.parametrize("req", catalogue.REQUIREMENTS, ids=lambda r: r.id)
def test_every_requirement_names_an_anchor_of_the_page(req: catalogue.Requirement) -> None:
    assert req.anchor in PAGE_ANCHORS, f"{req.id}: no <a id=\"{req.anchor}\"></a> in docs/contract.md"
    assert req.contract == f"docs/contract.md#{req.anchor}"
    text = document.passage(req.anchor)
    # a passage says something, in plain text, within the bound
    assert len(text) > 80, text
    assert len(text) <= document.PASSAGE_LIMIT + 2
    for markup in ('<a id="', "**", "](#", "|---"):
        assert markup not in text, (markup, text)


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
    assert next(r for r in listed if r["id"] == "AUTH-001")["contract"] == "docs/contract.md#auth-status"


def test_list_text_gives_the_reference_under_each_statement() -> None:
    out = run_in_process(["list", "--profile", "openai"])
    assert out.code == 0, out.output[-2000:]
    lines = out.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("RESP-010 "))
    assert lines[at + 1] == " " * 18 + "docs/contract.md#openai-differences"
    # one statement line and one reference line per requirement of the profile
    assert len(lines) == 2 * len(catalogue.for_profile("openai"))


def test_list_markdown_links_relative_to_docs() -> None:
    table = catalogue.markdown_table([catalogue.get("HDR-003")])
    assert "| [§content-types](contract.md#content-types) |" in table
    assert table.splitlines()[0] == "| ID | Level | Requirement | Contract | Source | Profiles |"


# -- passages ---------------------------------------------------------------------------------------------------

SAMPLE = """\
# Title

<a id="section"></a>
## 2. A section

Intro line one
goes on [here](#item).

| a | b |
|---|---|
| x | y |

- <a id="item"></a>**An item.** It starts here
  and wraps; see [the row](#row).
  - a nested point;
  - another.

  A second paragraph of the item.
- The next item, not part of it.

<a id="para"></a>
**Bold lead.** A paragraph on
two lines.

Not this one.

| name | type | notes |
|---|---|---|
| <a id="row"></a>`n` | integer | the count *(new)* |

1. <a id="open-one"></a>**First** point. <a id="open-two"></a>Second *(C)* half
   of the point.
2. Next.
"""


def test_a_heading_gives_its_text_up_to_the_first_anchored_block() -> None:
    assert document.passage("section", page=SAMPLE) == (
        "2. A section\n\nIntro line one goes on here.\n\na | b\nx | y")


def test_an_item_gives_itself_its_nested_points_and_its_paragraphs() -> None:
    assert document.passage("item", page=SAMPLE) == (
        "An item. It starts here and wraps; see the row.\n  - a nested point;\n  - another.\n\n"
        "A second paragraph of the item.")


def test_a_bare_anchor_gives_the_paragraph_below_it() -> None:
    assert document.passage("para", page=SAMPLE) == "Bold lead. A paragraph on two lines."


def test_a_row_names_each_cell_by_its_header() -> None:
    assert document.passage("row", page=SAMPLE) == "- name: `n`\n- type: integer\n- notes: the count (new)"


def test_an_anchor_inside_an_item_starts_the_passage_there() -> None:
    assert document.passage("open-one", page=SAMPLE) == "First point. Second (C) half of the point."
    assert document.passage("open-two", page=SAMPLE) == "Second (C) half of the point."


def test_a_link_that_names_its_anchor_reads_as_a_reference() -> None:
    page = '<a id="x"></a>\nSee [open-bounds](#open-bounds) and [section 9](#errors).\n'
    assert document.passage("x", page=page) == "See §open-bounds and section 9."


def test_a_long_passage_is_cut_at_a_word() -> None:
    page = '<a id="long"></a>\n' + "word " * 400 + "\n"
    cut = document.passage("long", limit=100, page=page)
    assert cut.endswith("word …") and len(cut) <= 102


def test_an_unknown_anchor_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        document.passage("no-such-anchor", page=SAMPLE)


# -- the HTML report's quote ------------------------------------------------------------------------------------


def test_the_report_renders_the_passage_from_its_markdown() -> None:
    shown = contract_html("docs/contract.md#errors-auth")
    assert "What the contract says" in shown and "(docs/contract.md#errors-auth," in shown
    # the passage holds quotes and braces in code spans: rendered as code, escaped, it cannot break the page
    assert "<code>{&quot;detail&quot;: &quot;&lt;message&gt;&quot;}</code>" in shown
    assert "<blockquote class='sgp-contract'><p><strong>Other <code>sgp</code> error bodies.</strong>" in shown
    assert "`" not in shown and "**" not in shown
    # a table is a table, not rows of pipes; a link to a place on the page reads as its anchor
    table = contract_html("docs/contract.md#response-required")
    assert "<table>" in table and "<td><code>id</code></td>" in table and "| `id`" not in table
    assert "§response-choices" in table and "](#" not in table


def test_markup_in_the_source_is_escaped_not_passed_through() -> None:
    from conformance.report.html import render_markdown

    assert "<script>" not in render_markdown("a <script>alert(1)</script> b")


def test_the_quote_keeps_the_reference_when_the_budget_is_spent_or_the_anchor_unknown() -> None:
    compact = contract_html("docs/contract.md#errors-auth", compact=True)
    assert "docs/contract.md#errors-auth" in compact and "evidence budget is spent" in compact
    assert "blockquote" not in compact
    unknown = contract_html("docs/contract.md#no-such-anchor")
    assert "has no such anchor" in unknown and "blockquote" not in unknown
