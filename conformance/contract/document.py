"""docs/contract.md, the contract in this project's words, read from the copy the package ships
(`conformance.docs`, see pyproject.toml), so a report made from an installed wheel can quote it.

The page marks its places with `<a id="..."></a>` (catalogue.Requirement.anchor names one per rule). An
anchor sits in one of four places, and its passage is the block it opens:

- on a line of its own before a heading: the heading and what follows, up to the next heading or the next
  anchored block (the first anchored bullet of the section starts a passage of its own);
- on a line of its own before a paragraph: that paragraph;
- in a list item (`- ...`, `12. ...`): the item with its indented continuation, from the anchor on;
- in a table row: the row, each cell named by its column's header.

`passage` gives that block as plain text (no markup, links reduced to their text), which the HTML report
escapes and shows under "What the contract says".
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

PACKAGE = "conformance.docs"
FILE = "contract.md"
# characters of a passage the report quotes; the longest (a section with its table) are cut, with the
# reference beside them for the rest
PASSAGE_LIMIT = 1500

ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
_HEADING = re.compile(r"#{1,6} ")
_ITEM = re.compile(r"(\s*)(?:[-*]|\d+\.) ")
# a line that opens a block of its own: a heading, a bare anchor, or an anchored item or table row
_BLOCK_START = re.compile(r'(?:#{1,6} |<a id=|(?:[-*]|\d+\.) <a id=|\| <a id=)')
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_TABLE_RULE = re.compile(r"\|?\s*:?-{3,}")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")


@cache
def text() -> str:
    """The whole page, as shipped in the package (the source tree's docs/contract.md in a checkout)."""
    return resources.files(PACKAGE).joinpath(FILE).read_text(encoding="utf-8")


def anchors(page: str | None = None) -> list[str]:
    """Every anchor id of the page, in order of appearance."""
    return ANCHOR.findall(text() if page is None else page)


def passage(anchor: str, limit: int = PASSAGE_LIMIT, page: str | None = None) -> str:
    """The plain text the page gives under `anchor`: paragraphs separated by a blank line, list items and
    table rows one a line; at most `limit` characters (cut at a word, ending in "…"). KeyError for an
    anchor the page does not have."""
    lines, at, marker = _locate(anchor, page)
    line = lines[at]
    if line.strip() == marker:
        block = _after_bare_anchor(lines, at + 1)
    elif line.lstrip().startswith("|"):
        block = _table_row(lines, at)
    else:
        block = _item(lines, at, line.index(marker))
    return _cut(_plain(block), limit)


def _locate(anchor: str, page: str | None) -> tuple[list[str], int, str]:
    """The page's lines, the index of the line holding `anchor`'s marker, and the marker; KeyError without."""
    lines = (text() if page is None else page).splitlines()
    marker = f'<a id="{anchor}"></a>'
    at = next((i for i, line in enumerate(lines) if marker in line), None)
    if at is None:
        raise KeyError(anchor)
    return lines, at, marker


def passage_markdown(anchor: str, limit: int = PASSAGE_LIMIT, page: str | None = None) -> str:
    """The same block as `passage`, as markdown (its tables, code spans, emphasis and lists kept) for a
    renderer: anchors gone, links reduced to their text ("§anchor" for a link to a place on the page: the
    report travels without docs/). Cut after the last whole line within `limit` characters, then "…".
    KeyError for an anchor the page does not have."""
    lines, at, marker = _locate(anchor, page)
    line = lines[at]
    if line.strip() == marker:
        block = _after_bare_anchor(lines, at + 1)
        if block and lines[at + 1].lstrip().startswith("#"):
            block[0] = f"**{block[0]}**"  # the heading, as the passage's own title
    elif line.lstrip().startswith("|"):
        block = _table_row(lines, at)
    else:
        block = _dedent(_item(lines, at, line.index(marker)))
    out: list[str] = []
    used = 0
    for raw in block:
        shown = _LINK.sub(_link_text, ANCHOR.sub("", raw)).rstrip()
        if used + len(shown) > limit and out:
            out.append("…")
            break
        out.append(shown)
        used += len(shown) + 1
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out).strip("\n")


def _dedent(block: list[str]) -> list[str]:
    """A list item's continuation lines without the indentation that made them part of the item."""
    indents = [len(line) - len(line.lstrip()) for line in block[1:] if line.strip()]
    cut = min(indents, default=0)
    return [block[0].strip(), *(line[cut:] for line in block[1:])]


def _after_bare_anchor(lines: list[str], start: int) -> list[str]:
    if start < len(lines) and _HEADING.match(lines[start]):
        # the heading stands alone, as its own paragraph
        block = [lines[start].lstrip("#").strip(), ""]
        for line in lines[start + 1:]:
            if _BLOCK_START.match(line):
                break
            block.append(line)
        return block
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    return block


def _item(lines: list[str], at: int, column: int) -> list[str]:
    """A list item from `column` of line `at` on, with its continuation: the lines indented deeper than its
    marker, blank lines between them included."""
    found = _ITEM.match(lines[at])
    indent = len(found.group(1)) if found else 0
    block = [lines[at][column:]]
    for i in range(at + 1, len(lines)):
        line = lines[i]
        if line.strip():
            if len(line) - len(line.lstrip()) <= indent:
                break
            block.append(line)
        else:
            rest = next((later for later in lines[i + 1:] if later.strip()), "")
            if len(rest) - len(rest.lstrip()) <= indent:
                break
            block.append("")
    return block


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in _CELL_SPLIT.split(line.strip().strip("|"))]


def _table_row(lines: list[str], at: int) -> list[str]:
    """One row as `header: cell` lines, empty cells left out."""
    top = at
    while top > 0 and lines[top - 1].lstrip().startswith("|"):
        top -= 1
    headers = _cells(lines[top])
    out = []
    for i, cell in enumerate(_cells(lines[at])):
        name = headers[i] if i < len(headers) and headers[i] else ""
        if cell:
            out.append(f"- {name}: {cell}" if name else f"- {cell}")
    return out


def _plain(block: list[str]) -> str:
    """Markdown lines as plain text: anchors, emphasis and link targets gone, a paragraph's wrapped lines
    joined, list items and table rows one a line, paragraphs separated by one blank line."""
    out: list[str] = []
    for raw in block:
        line = raw.strip()
        if not line:
            if out and out[-1]:
                out.append("")
            continue
        if _TABLE_RULE.match(line):
            continue
        row = line.startswith("|")
        line = _EMPHASIS.sub(r"\1", _STRONG.sub(r"\1", _LINK.sub(_link_text, ANCHOR.sub("", line)))).strip()
        if row:
            line = " | ".join(_cells(line))
        item = _ITEM.match(raw)
        # a new line for the first of a paragraph, an item or a row; a wrapped line joins the one before
        if not out or not out[-1] or row or item:
            # a nested item keeps its indentation, so it reads as part of the one above
            out.append(f"{item.group(1)}{line}" if item else line)
        else:
            out[-1] = f"{out[-1]} {line}"
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _link_text(link: re.Match[str]) -> str:
    """A link's text; a link to a place on the page that names only its anchor reads "§anchor", the form
    the catalogue's references take."""
    label, target = link.group(1), link.group(2)
    return f"§{label}" if target == f"#{label}" else label


def _cut(passage_text: str, limit: int) -> str:
    if len(passage_text) <= limit:
        return passage_text
    head = passage_text[:limit]
    space = max(head.rfind(" "), head.rfind("\n"))
    return (head[:space] if space > limit // 2 else head).rstrip() + " …"
