"""Every output of one run read on its own, and the check that they all say the same: the exit code, the
summary banner on stdout, conformance.json, junit.xml and conformance.html.

    out = run_cli([...], tmp_path / "reports")
    doc = agree(out)        # asserts; returns conformance.json

Each output is read with a plain parser (json, xml.etree, html.parser), never with the tool's own code, so a
report that only the tool can read, or that contradicts another, fails here.
"""

from __future__ import annotations

import html
import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from cli_runs import Outcome

# the exit code of each verdict, as the README and `sgp-conformance run --help` document them
EXIT_OF_VERDICT = {"conformant": 0, "partial": 0, "not conformant": 1, "unreachable": 3, "key refused": 3,
                   "incomplete": 4, "not judged": 4}
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
REPORTS = ("conformance.html", "junit.xml", "conformance.json")
LEVELS = ("MUST", "SHOULD", "INFO")
BAD = frozenset({"fail", "error", "stale"})
# the statuses whose results have an evidence section in the page
SHOWN = frozenset({"fail", "error", "stale", "known", "observed"})
UNJUDGED = frozenset({"not judged", "not run"})
# verdicts whose banner line says "N of M requirements judged"
COUNTED = frozenset({"conformant", "not conformant", "partial", "incomplete", "interrupted"})
# how the banner shouts a verdict, where it is more than the verdict in capitals
SHOUTED = {"unreachable": "TARGET UNREACHABLE"}
# verdicts of a run that ended at its first request: one line, no banner
ONE_LINE = frozenset({"unreachable", "key refused"})
RULE = "=" * 72


# -- conformance.html --------------------------------------------------------------------------------------


@dataclass
class Page:
    """What conformance.html shows: its sections, verdict, requirement matrix and evidence entries."""

    ids: set[str] = field(default_factory=set)
    verdict: str = ""
    # matrix rows: requirement id -> the status its row shows, and the class it carries
    rows: dict[str, str] = field(default_factory=dict)
    row_classes: dict[str, list[str]] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)
    # pytest-html's data (its table of tests), JSON in an attribute
    data: dict[str, Any] = field(default_factory=dict)


class _PageParser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.in_verdict = False
        self.row: str | None = None
        self.in_status = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        ident, classes = a.get("id", ""), a.get("class", "").split()
        if ident:
            self.page.ids.add(ident)
        if ident == "sgp-verdict":
            self.in_verdict = True
        if tag == "tr" and ident.startswith("req-"):
            self.row = ident.removeprefix("req-")
            self.page.rows[self.row] = ""
            self.page.row_classes[self.row] = classes
        if tag == "span" and "st" in classes and self.row is not None:
            self.in_status = True
        if tag == "details" and "sgp-evidence" in classes:
            self.page.evidence.add(ident.removeprefix("evidence-"))
        if ident == "data-container":
            self.page.data = json.loads(a.get("data-jsonblob", "{}"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self.in_verdict = False
        if tag == "span":
            self.in_status = False
        if tag == "tr":
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.in_verdict:
            self.page.verdict += data
        if self.in_status and self.row is not None:
            self.page.rows[self.row] += data


def read_page(path: Path) -> Page:
    page = Page()
    parser = _PageParser(page)
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    page.verdict = " ".join(page.verdict.split())
    return page


def markup_intact(path: Path) -> None:
    """The page's own markup was never masked: no tag, attribute or style rule with *** in it."""
    raw = path.read_text(encoding="utf-8")
    for broken in ("<***", "</***", "margin-***", "***=\"", "class=\"***", "<section id=\"***"):
        assert broken not in raw, f"{path.name}: {broken!r} in the markup"
    assert raw.lstrip().lower().startswith("<!doctype html>") and raw.rstrip().endswith("</html>")
    assert html.unescape(raw) is not None


# -- junit.xml ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    requirement: str
    level: str
    outcome: str  # passed, failure, error, skipped


def read_junit(path: Path) -> tuple[ET.Element, list[Case]]:
    root = ET.parse(path).getroot()
    cases = []
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") or "" for p in case.iter("property")}
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        cases.append(Case(case.get("name") or "", props.get("requirement", ""), props.get("level", ""), outcome))
    return root, cases


# -- the banner ----------------------------------------------------------------------------------------------


def banner(stdout: str) -> list[str]:
    """The summary printed at the end of a run: the lines between its two rulers."""
    parts = stdout.split(RULE)
    assert len(parts) >= 3, f"no summary banner on stdout:\n{stdout[-2000:]}"
    return [line for line in parts[-2].splitlines() if line.strip()]


# -- all of them ---------------------------------------------------------------------------------------------


def expected_exit(doc: dict[str, Any]) -> int:
    if doc["verdict"] == "interrupted":
        return SIGNAL_EXIT[doc["run"]["interrupted"]]
    return EXIT_OF_VERDICT[doc["verdict"]]


def agree(out: Outcome) -> dict[str, Any]:
    """Assert that the exit code, the banner, conformance.json, junit.xml and conformance.html of one run say
    the same; return conformance.json."""
    context = out.output[-3000:]
    for name in REPORTS:
        assert (out.report_dir / name).is_file(), f"{name} not written\n{context}"
    assert "Traceback" not in out.output, context
    assert "SECRET LEAK" not in out.output, context
    doc: dict[str, Any] = json.loads((out.report_dir / "conformance.json").read_text(encoding="utf-8"))
    results = doc["results"]
    verdict = doc["verdict"]

    # the exit code is the verdict's
    assert out.code == expected_exit(doc), f"exit {out.code} for verdict {verdict!r}\n{context}"

    # conformance.json agrees with itself: counts and coverage are those of its results
    tally = Counter((r["level"], r["status"]) for r in results)
    for level in LEVELS:
        assert {s: n for s, n in doc["counts"][level].items() if n} == \
            {s: n for (lv, s), n in tally.items() if lv == level}, level
    judged = sum(r["status"] not in (*UNJUDGED, "error") for r in results)
    assert doc["coverage"]["applicable"] == len(results) and doc["coverage"]["judged"] == judged
    for r in results:
        assert (r["not_run"] is not None) == (r["status"] == "not run"), r
        if r["status"] == "not run":
            assert r["message"], r

    # a run that ended at its first request says so in one line, with no area lines, banner or pytest counts
    if verdict in ONE_LINE and judged == 0:
        said = [line for line in out.stdout.splitlines() if line.strip()
                and not line.startswith("sgp-conformance: no --base-url given")
                and not line.startswith("sgp-conformance: requests to")]
        assert len(said) == 1, out.stdout[-3000:]
        assert said[0].startswith(f"sgp-conformance: {SHOUTED.get(verdict, verdict.upper())}:"), said
        assert "nothing judged" in said[0] and RULE not in out.stdout, said
    else:
        _banner_agrees(out, doc, judged)
    _reports_agree(out, doc)
    return doc


def _banner_agrees(out: Outcome, doc: dict[str, Any], judged: int) -> list[str]:
    """The banner says the verdict, the counts per level, the failures and the requests of conformance.json."""
    results, verdict = doc["results"], doc["verdict"]
    lines = banner(out.stdout)
    head = lines[0]
    assert head.startswith(f"sgp-conformance: {SHOUTED.get(verdict, verdict.upper())}:"), head
    if verdict in COUNTED:
        assert f"{judged} of {len(results)} requirements judged" in head, head
    for level in LEVELS:
        row = next((line for line in lines if line.split()[:1] == [level]), None)
        counts = {s: n for s, n in doc["counts"][level].items() if n}
        assert (row is not None) == bool(counts), (level, lines)
        for status, n in counts.items():
            assert f"{n} {status}" in (row or ""), (level, row)
    failed_lines = {line.split()[1] for line in lines if line.startswith("  x ")}
    bad = {r["id"] for r in results if r["status"] in BAD}
    assert failed_lines == bad or (len(bad) > 25 and failed_lines < bad), (failed_lines, bad)
    assert f"requests sent: {doc['requests']['sent']} " in "\n".join(lines) + " ", lines
    return lines


def _reports_agree(out: Outcome, doc: dict[str, Any]) -> None:
    """junit.xml and conformance.html say what conformance.json says."""
    results, verdict = doc["results"], doc["verdict"]
    by_id = {r["id"]: r for r in results}
    # junit.xml: one case per requirement test, its outcome the requirement's
    root, cases = read_junit(out.report_dir / "junit.xml")
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["sgp-conformance"]
    suite = suites[0]
    outcomes = Counter(c.outcome for c in cases)
    assert int(suite.get("tests", -1)) == len(cases)
    assert int(suite.get("failures", -1)) == outcomes["failure"]
    assert int(suite.get("errors", -1)) == outcomes["error"]
    assert int(suite.get("skipped", -1)) == outcomes["skipped"]
    cases_of: dict[str, list[Case]] = {}
    for case in cases:
        assert case.requirement in by_id and f"[{case.requirement}]" in case.name, case
        assert case.level == by_id[case.requirement]["level"], case
        cases_of.setdefault(case.requirement, []).append(case)
    for rid, r in by_id.items():
        shown = {c.outcome for c in cases_of.get(rid, [])}
        if r["status"] == "pass":
            assert shown == {"passed"}, (rid, shown)
        elif r["status"] in UNJUDGED:
            assert shown <= {"skipped"}, (rid, shown)
        if shown & {"failure", "error"}:
            assert r["status"] in BAD, (rid, r["status"], shown)
        if r["status"] in ("fail", "error") and r["level"] == "MUST" and not r["message"].startswith("violated in"):
            assert shown & {"failure", "error"}, (rid, shown)

    # conformance.html: the same verdict, one matrix row per result with its status, evidence for the failures
    page_path = out.report_dir / "conformance.html"
    markup_intact(page_path)
    page = read_page(page_path)
    assert {"sgp-summary", "sgp-verdict", "sgp-failures", "sgp-matrix", "results-table"} <= page.ids
    assert page.verdict.startswith(verdict.upper()), page.verdict
    assert page.rows == {rid: r["status"] for rid, r in by_id.items()}
    # one class per row that names its status: `row-not-judged`, not the two classes `row-not judged`
    assert all(page.row_classes[rid] == [f"row-{r['status'].replace(' ', '-')}"] for rid, r in by_id.items())
    assert page.evidence == {rid for rid, r in by_id.items() if r["status"] in SHOWN}
    assert isinstance(page.data.get("tests"), dict)


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def plant(source: Path, directory: Path) -> dict[str, bytes]:
    """Copy the reports of an earlier run into `directory`; return what is there now."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:
        shutil.copy2(source / name, directory / name)
    return snapshot(directory)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]

