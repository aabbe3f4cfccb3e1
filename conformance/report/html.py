"""The HTML report's own parts, put into pytest-html's page through its hooks: the run summary, the
requirement matrix and, for each failure, its evidence with what the contract says about the rule.

Everything here is static HTML (no script needed to read it), evidence is collapsed in <details>, and only
results that did not pass carry any. Each failure's entry is self-contained (an exchange two failures share
is shown in both: an entry is read on its own), ordered MUST, SHOULD, then observations. The page stays
small at any scale: once EVIDENCE_BUDGET characters of evidence are written, later failures show their
first violations and curl lines but no headers or bodies.

The page is sent to people without a checkout, so a link to docs/contract.md would lead nowhere: each
failure quotes the contract's passage on its rule (conformance.contract.document, from the copy the package
ships), rendered from its markdown by markdown-it-py, beside the reference; the matrix gives the reference
as text.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from pytest_html import extras

from conformance.contract import catalogue, claims, document
from conformance.report.outcomes import STATUSES, Result, evidence_anchor, matrix_anchor

# characters of failure evidence in the page before later failures are shown compactly
EVIDENCE_BUDGET = 1_500_000
# what a failure past the budget keeps
COMPACT_VIOLATIONS = 3
COMPACT_EXCHANGES = 2
SCHEMA_EXCERPT_LIMIT = 1500
# statuses whose results get an evidence section
SHOWN = ("fail", "error", "stale", "known", "observed")

# What pytest-html shows that means nothing here is hidden or renamed: its environment table (the summary's
# Runner row says the same), the "N tests took" line, and its minimum width of 800 px. Every wide thing
# (a curl line, a body, a census table) wraps or scrolls inside its own box, so the page fits 800 px.
STYLE = """
<style>
body{min-width:0} .run-count,#environment-header,#environment{display:none}
.sgp h2{margin:.6em 0 .3em} .sgp table{border-collapse:collapse;margin:.3em 0 1em;display:block;max-width:100%;
overflow-x:auto} .sgp th,.sgp td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;
font-size:13px;overflow-wrap:break-word}
.sgp th{background:#f3f3f3} .sgp pre{white-space:pre-wrap;word-break:break-all;background:#f8f8f8;
border:1px solid #e3e3e3;padding:6px;margin:2px 0 8px;font-size:12px;max-height:30em;overflow:auto}
.sgp code{overflow-wrap:break-word}
.sgp .st{font-weight:bold;padding:1px 6px;border-radius:3px;color:#fff;white-space:nowrap}
.st-pass{background:#2e7d32}.st-fail{background:#c62828}.st-error{background:#6a1b9a}.st-stale{background:#ef6c00}
.st-known{background:#546e7a}.st-not-judged{background:#9e9e9e}.st-not-run{background:#bdbdbd}
.st-observed{background:#1565c0}.sgp .verdict-ok{color:#2e7d32}.sgp .verdict-bad{color:#c62828}
.sgp .verdict-neutral{color:#666}
.sgp .msg{color:#555;font-size:12px} .sgp details{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px}
.sgp details[open]{background:#fffdf6} .sgp summary{cursor:pointer;padding:3px 0;overflow-wrap:anywhere}
.sgp .note{color:#777;font-style:italic} .sgp .ref{color:#777;font-size:11px;font-family:monospace}
.sgp blockquote.sgp-contract{overflow-wrap:break-word;margin:2px 0 8px;padding:4px 10px;
border-left:3px solid #90a4ae;background:#f6f8f9;font-size:13px} .sgp blockquote.sgp-contract p{margin:.3em 0}
#sgp-matrix tr.row-fail td,#sgp-matrix tr.row-error td{background:#fff3f3}
#results-table{table-layout:fixed} #results-table td{overflow-wrap:anywhere}
#results-table th[data-column-type=result],#results-table th[data-column-type=duration]{width:90px}
#results-table thead th:last-child{width:60px}
#results-table .logwrapper .log{overflow-wrap:anywhere} .controls{flex-wrap:wrap}
</style>
"""
# A link to an evidence anchor opens its <details> (fragment navigation alone leaves it closed). pytest-html's
# table of tests becomes the "Test log" at the end, with its filters beside it instead of above the verdict;
# the last filter loses the comma pytest-html leaves after it.
SCRIPT = """
<script>(function(){function o(){var t=document.getElementById(decodeURIComponent(location.hash.slice(1)));
if(t&&t.tagName==='DETAILS'){t.open=true;}}window.addEventListener('hashchange',o);
window.addEventListener('DOMContentLoaded',function(){o();var t=document.getElementById('results-table');
if(!t||document.getElementById('sgp-tests'))return;var s=document.createElement('section');s.id='sgp-tests';
s.className='sgp';s.innerHTML='<h2>Test log</h2><p class="msg">pytest\\'s record of each test: outcome, '+
'duration and captured output. The verdict and the requirements are above.</p>';t.parentNode.insertBefore(s,t);
['.summary p.filter','.summary .controls'].forEach(function(q){var e=document.querySelector(q);if(e)s.appendChild(e);});
var f=document.querySelectorAll('.filters span');if(f.length){var l=f[f.length-1];
l.textContent=l.textContent.replace(/,\\s*$/,'');}});})();</script>
"""
# pytest-html's outcome filters: those the suite cannot produce go, the baseline's get its words
OUTCOME_LABELS = {"xfailed": "Known (baseline)", "xpassed": "Stale (baseline)"}
UNUSED_OUTCOMES = ("xfailed", "xpassed", "rerun", "retried")
# what of pytest-metadata's environment may stay in the page (its CI variables carry hosts and paths)
ENVIRONMENT_KEYS = ("Python", "Platform", "Packages", "Plugins")


def tidy_outcomes(outcomes: dict[str, dict[str, Any]]) -> None:
    """pytest-html's filter checkboxes: drop the outcomes this run has none of that the suite cannot produce
    (reruns, retries) or rarely does (baseline entries), and name the baseline's in the suite's words."""
    for name in UNUSED_OUTCOMES:
        if name in outcomes and not outcomes[name].get("value"):
            del outcomes[name]
    for name, label in OUTCOME_LABELS.items():
        if name in outcomes:
            outcomes[name]["label"] = label


def tidy_environment(environment: Mapping[str, Any]) -> dict[str, Any]:
    """pytest-metadata's environment without its CI variables (build URLs, node names, checkout paths)."""
    return {key: environment[key] for key in ENVIRONMENT_KEYS if key in environment}


def _local_prefixes() -> tuple[tuple[str, str], ...]:
    """Absolute paths of this machine that may show in pytest's text, each as it is and HTML-escaped (with the
    path separator after it), longest first, and what they become in the page."""
    # keyed by $HOME, what Path.home() reads first: Path.home() itself costs 60 us, and every line of every
    # test's log passes through here
    return _prefixes(os.environ.get("HOME"))


@functools.cache
def _prefixes(home_variable: str | None) -> tuple[tuple[str, str], ...]:
    # computed once per $HOME (`home_variable`, the key: Path.home() reads it first); sysconfig.get_paths()
    # alone costs a millisecond
    package_root = str(Path(__file__).resolve().parents[2])
    found = {package_root: "", sys.prefix: "<python>", sys.base_prefix: "<python>",
             sysconfig.get_paths().get("purelib", ""): "", str(Path.home()): "~"}
    usable = [(prefix.rstrip(os.sep), shown) for prefix, shown in found.items() if len(prefix.rstrip(os.sep)) > 1]
    out = []
    for prefix, shown in sorted(usable, key=lambda pair: -len(pair[0])):
        becomes = f"{shown}/" if shown else ""
        out += [(prefix + os.sep, becomes), (html.escape(prefix) + os.sep, becomes)]
    return tuple(out)


def strip_local_paths(text: str) -> str:
    """`/home/ci/venv/lib/python3.11/site-packages/conformance/suite/test_auth.py` -> `conformance/suite/
    test_auth.py`: no install path of this machine in the report."""
    if os.sep not in text:
        return text
    for prefix, shown in _local_prefixes():
        text = text.replace(prefix, shown)
    return text


def table_log(report: Any, log: list[str]) -> list[str]:
    """A test's entry in pytest-html's table: a skip says its reason (not pytest's raw tuple of path, line and
    reason), and no line names an install path."""
    longrepr = getattr(report, "longrepr", None)
    if getattr(report, "skipped", False) and isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2]).removeprefix("Skipped: ")
        log = [html.escape(f"skipped: {reason}") + "\n"]
    return [visible(strip_local_paths(entry)) for entry in log]


def duration(seconds: float) -> str:
    """Every duration of pytest-html's table in one unit, which its sorting reads as a number."""
    return f"{round(seconds * 1000)} ms"


# C0 controls but tab, LF and CR, DEL, and the C1 controls: a terminal that shows the page's source (or a
# copy of its text) would act on them (ESC starts an escape sequence, BEL rings)
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character a target sent (ESC, BEL, NUL ...) written as `\\xNN`."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _e(value: Any) -> str:
    return html.escape(visible("" if value is None else str(value)))


def _css(status: str) -> str:
    """A status as a CSS class name: "not judged" -> "not-judged"."""
    return status.replace(" ", "-")


def _status(status: str) -> str:
    return f'<span class="st st-{_e(_css(status))}">{_e(status)}</span>'


def evidence_link(req_id: str) -> dict[str, Any]:
    """The pytest-html extra of a failed test: a pointer to the evidence, which lives once in the page."""
    anchor = evidence_anchor(req_id)
    return extras.html(f'<p class="sgp-evidence-link">Evidence: <a href="#{_e(anchor)}">{_e(req_id)}</a></p>')


def open_points_html(points: list[Mapping[str, Any]]) -> list[str]:
    """The table of open points: what the server did on each, and the --claim that would pin it."""
    if not points:
        return []
    out = ['<table id="sgp-open-points"><tr><th>Open point</th><th>What the server did</th>'
           "<th>Requirements</th><th>To promise it</th></tr>"]
    for p in points:
        reqs = ", ".join(f"{rid} {status}" for rid, status in p["requirements"].items())
        did = p["behaviour"] + (" (claimed)" if p["claimed"] else "")
        if p.get("message"):
            did += f": {p['message']}"
        out.append(f"<tr><th>{_e(p['choice'])}</th><td>{_e(did)}</td><td>{_e(reqs)}</td>"
                   f"<td><code>{_e(p['claim'])}</code></td></tr>")
    out.append("</table>")
    return out


def summary_html(doc: Mapping[str, Any]) -> str:
    run, versions, req = doc.get("run", {}), doc.get("versions", {}), doc.get("requests", {})
    fail_on = run.get("fail_on", "must")
    good = doc.get("verdict") == "conformant"
    target = run.get("target") or ""
    if run.get("embedded"):
        target += " (the embedded reference server)"
    by_status = ", ".join(f"{k}: {v}" for k, v in (req.get("by_status") or {}).items())
    rows = [
        ("Target", target), ("Profile", run.get("profile")), ("Model", run.get("model")),
        ("Suite", f"sgp-conformance {versions.get('suite')}"),
        ("Schemas", f"{versions.get('schemas')} ({versions.get('schemas_digest')})"),
        ("Runner", f"Python {versions.get('python')}, pytest {versions.get('pytest')}, "
                   f"pytest-html {versions.get('pytest_html')}"),
        ("Date", (run.get("started") or "").replace("T", " ").replace("Z", " UTC")),
        ("Duration", f"{run.get('duration_s', 0):.1f} s"),
        ("Requests sent", f"{req.get('sent', 0)} (429 seen: {req.get('throttled', 0)}, retries: "
                          f"{req.get('retries', 0)}, transport errors: {req.get('transport_errors', 0)}"
                          f"{'; by status ' + by_status if by_status else ''})"),
        ("Depth / fail on", f"{run.get('depth')} / {fail_on}"),
    ]
    if run.get("seed") is not None:
        rows.append(("Seed", f"{run['seed']} (--seed {run['seed']} repeats the generated cases)"))
    held_to = run.get("claims") or {}
    rows.append(("Claims", f"without: {', '.join(held_to.get('without') or []) or 'nothing (every feature)'}; "
                           f"choices: {', '.join(held_to.get('choices') or []) or 'none (open points observed)'}"))
    if doc.get("unreachable"):
        rows.append(("Unreachable", doc["unreachable"]))
    verdict_class = "verdict-ok" if good else "verdict-bad"
    out = [STYLE, SCRIPT, '<section id="sgp-summary" class="sgp">',
           f'<h2 id="sgp-verdict" class="{verdict_class}">{_e(str(doc.get("verdict", "")).upper())}'
           f'{_e(claims.verdict_suffix(held_to.get("without") or []) if good else "")} '
           f'<span class="msg">(--fail-on {_e(fail_on)})</span></h2>',
           '<table id="sgp-run">']
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    counts, verdicts = doc.get("counts", {}), doc.get("verdicts", {})
    out.append('<table id="sgp-levels"><tr><th>Level</th><th>Verdict</th>'
               + "".join(f"<th>{_e(s)}</th>" for s in STATUSES) + "</tr>")
    for level in (*catalogue.LEVELS, "total"):
        row = counts.get(level, {})
        if level != "total" and not any(row.values()):
            continue
        shown = verdicts.get(level, doc.get("verdict", "")) if level != "total" else doc.get("verdict", "")
        cls = "verdict-ok" if shown == "conformant" else "verdict-bad"
        why = left_out_by_settings(doc.get("results", []), level)
        if why is not None and shown != "conformant":
            # a level the run's settings left out (smoke depth) is no finding: shown neutral, saying why
            cls, shown = "verdict-neutral", f"{shown}: left out ({why})"
        out.append(f'<tr><th>{_e(level)}</th><td class="{cls}">{_e(shown)}</td>'
                   + "".join(f"<td>{row.get(s, 0)}</td>" for s in STATUSES) + "</tr>")
    out.append("</table>")
    out += open_points_html(doc.get("open_points") or [])
    out.append("</section>")
    return "\n".join(out)


def left_out_by_settings(results: Iterable[Mapping[str, Any]], level: str) -> str | None:
    """The reason the run's settings left out every requirement of `level` (depth smoke: "depth smoke runs
    MUST requirements only"), or None when the level had one judged or left out for another reason."""
    rows = [r for r in results if r.get("level") == level]
    if not rows or any(r.get("status") != "not run" or r.get("not_run") != "settings" for r in rows):
        return None
    reasons = {str(r.get("message") or "") for r in rows}
    return reasons.pop() if len(reasons) == 1 else "settings of the run"


def matrix_html(doc: Mapping[str, Any]) -> str:
    out = ['<section id="sgp-matrix" class="sgp"><h2>Requirements</h2><table>',
           "<thead><tr><th>ID</th><th>Level</th><th>Statement</th><th>Status</th><th>Evidence</th></tr></thead>",
           "<tbody>"]
    for r in doc.get("results", []):
        message = f'<div class="msg">{_e(r.get("message"))}</div>' if r.get("message") else ""
        link = ""
        if r.get("status") in SHOWN:
            link = f'<a href="#{_e(evidence_anchor(r["id"]))}">evidence</a>'
        elif r.get("needs"):
            # not judged because of another requirement's finding: point at it
            link = f'needs <a href="#{_e(matrix_anchor(r["needs"]))}">{_e(r["needs"])}</a>'
        # as text: the page travels without docs/, and the evidence quotes the passage itself
        ref = f'<div class="ref">{_e(r.get("contract"))}</div>' if r.get("contract") else ""
        out.append(f'<tr id="{_e(matrix_anchor(r["id"]))}" class="row-{_e(_css(r["status"]))}"><td>{_e(r["id"])}</td>'
                   f'<td>{_e(r["level"])}</td><td>{_e(r["statement"])}{ref}{message}</td>'
                   f"<td>{_status(r['status'])}</td><td>{link}</td></tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)


@functools.cache
def _markdown() -> MarkdownIt:
    # CommonMark with tables; raw HTML in the source is escaped, never passed through
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(source: str) -> str:
    """Markdown as HTML (markdown-it-py): tables, code spans, emphasis and lists rendered, any HTML escaped."""
    return _markdown().render(source)


def contract_html(reference: str, compact: bool = False) -> str:
    """A failure's "What the contract says": the passage of docs/contract.md under the anchor of `reference`
    ("docs/contract.md#auth-status"), rendered from its markdown (tables, code, emphasis) with links reduced
    to their text, at most document.PASSAGE_LIMIT characters, with the reference beside it. `compact` (the
    evidence budget is spent) keeps the reference only."""
    passage, note = "", ""
    if compact:
        note = "passage left out: the report's evidence budget is spent"
    else:
        try:
            passage = render_markdown(document.passage_markdown(reference.partition("#")[2]))
        except KeyError:
            # a requirement of another plugin may name an anchor this page does not have
            note = "the contract page has no such anchor"
    shown_note = f" <span class='note'>{_e(note)}</span>" if note else ""
    head = (f"<div class='sgp-contract-head'><b>What the contract says</b> <span class='msg'>({_e(reference)}, "
            f"in the contract page that ships with the suite)</span>{shown_note}</div>")
    return head + (f"<blockquote class='sgp-contract'>{passage}</blockquote>" if passage else "")


def _headers(pairs: Iterable[Iterable[str]]) -> str:
    return "\n".join(": ".join(str(x) for x in pair) for pair in pairs)


def _excerpt(schema: Any) -> str:
    text = json.dumps(schema, indent=1, ensure_ascii=False)
    if len(text) > SCHEMA_EXCERPT_LIMIT:
        text = text[:SCHEMA_EXCERPT_LIMIT] + f"\n… [{len(text) - SCHEMA_EXCERPT_LIMIT} more characters cut]"
    return text


def _violations(result: Result, limit: int) -> str:
    if not result.violations:
        return ""
    rows = ["<table class='sgp-violations'><tr><th>rule</th><th>JSON pointer</th><th>what is wrong</th>"
            "<th>scenario</th></tr>"]
    excerpts: list[str] = []
    for v in result.violations[:limit]:
        pointer = v.get("pointer")
        rows.append(f"<tr><td>{_e(v.get('requirement'))}</td><td><code>{_e(pointer if pointer else '(whole)')}"
                    f"</code></td><td>{_e(v.get('message'))}</td><td>{_e(v.get('scenario', ''))}</td></tr>")
        if v.get("schema_excerpt") is not None:
            excerpt = _excerpt(v["schema_excerpt"])
            if excerpt not in excerpts:
                excerpts.append(excerpt)
    rows.append("</table>")
    listed = min(limit, len(result.violations))
    if result.violation_count > listed:
        rows.append(f"<p class='note'>… and {result.violation_count - listed} more violation(s), not listed</p>")
    for excerpt in excerpts[: max(1, limit // 5)]:
        rows.append(f"<div><b>schema excerpt</b><pre>{_e(excerpt)}</pre></div>")
    return "".join(rows)


class _Budget:
    """Characters of evidence still to spend."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    @property
    def spent(self) -> bool:
        return self.left <= 0


def _exchange(item: Mapping[str, Any], anchor: str, budget: _Budget) -> str:
    request, response = item.get("request") or {}, item.get("response")
    status = f"→ {response.get('status')}" if response else "→ no response"
    head = (f"<h4>{_e(item.get('scenario', ''))}: {_e(request.get('method', ''))} {_e(request.get('url', ''))} "
            f"{_e(status)}</h4>")
    curl = (f"<div><b>reproduce</b> (reads the key from $SGP_API_KEY)<pre class='curl'>{_e(item.get('curl'))}"
            "</pre></div>")
    # every failure shows its exchanges whole, even one another failure shows too: its entry is read on its own,
    # collapsed beside the others (the evidence budget bounds the page)
    parts = [f"<div class='sgp-exchange' id='{_e(anchor)}'>", head, curl]
    if item.get("error"):
        parts.append(f"<div><b>transport</b><pre>{_e(item['error'])}</pre></div>")
    if budget.spent:
        parts.append("<p class='note'>headers and bodies left out: the report's evidence budget is spent "
                     "(the curl line above reproduces the request)</p>")
    else:
        parts.append(f"<div><b>request</b><pre>{_e(_headers(request.get('headers', [])))}\n\n"
                     f"{_e(request.get('body', ''))}</pre></div>")
        if response is not None:
            cut = f" ({_e(response['truncated'])})" if response.get("truncated") else ""
            parts.append(f"<div><b>response {_e(response.get('status'))}</b>{cut}<pre>"
                         f"{_e(_headers(response.get('headers', [])))}\n\n{_e(response.get('body', ''))}</pre></div>")
    parts.append("</div>")
    return "".join(parts)


def failure_order(result: Result) -> tuple[int, int]:
    """Failures first by level (MUST, then SHOULD), observations (INFO) last; the catalogue's order within."""
    level = catalogue.LEVELS.index(result.level) if result.level in catalogue.LEVELS else len(catalogue.LEVELS)
    return (result.status == "observed" or result.level == catalogue.INFO, level)


def evidence_html(results: Iterable[Result], budget_chars: int = EVIDENCE_BUDGET) -> str:
    """One collapsed <details> per result that did not pass, anchored as the matrix and JSON point to.

    Once `budget_chars` of evidence are written, later failures keep their rule, first violations and curl
    lines, but lose headers, bodies and the other violations: the page stays small however many fail.
    """
    budget = _Budget(budget_chars)
    sections = []
    for r in sorted(results, key=failure_order):
        if r.status not in SHOWN:
            continue
        anchor = evidence_anchor(r.id)
        compact = budget.spent
        body = [f"<details id='{_e(anchor)}' class='sgp-evidence'><summary>{_status(r.status)} <b>{_e(r.id)}</b> "
                f"{_e(r.level)} — {_e(r.message)}</summary>",
                f"<p><b>rule</b>: {_e(r.statement)} <span class='msg'>({_e(r.source)})</span></p>",
                contract_html(r.contract, compact)]
        if r.generated and r.generated.get("seed") is not None:
            seed = r.generated["seed"]
            body.append(f"<p><b>generated cases</b>: seed {_e(seed)}; the first exchange below is the minimal "
                        f"failing case (rerun: <code>--seed {_e(seed)} --only {_e(r.id)}</code>)</p>")
        if r.baseline:
            body.append(f"<p><b>baseline</b>: {_e(r.baseline.get('reason'))}"
                        f"{' (expires ' + _e(r.baseline['expires']) + ')' if r.baseline.get('expires') else ''}</p>")
        body.append(_violations(r, COMPACT_VIOLATIONS if compact else len(r.violations)))
        for i, item in enumerate(r.evidence[:COMPACT_EXCHANGES] if compact else r.evidence):
            shown = _exchange(item, f"{anchor}-{i + 1}", budget)
            if i:
                # the first exchange says what went wrong; the others are there for whoever wants them
                request, response = item.get("request") or {}, item.get("response") or {}
                shown = (f"<details class='sgp-more'><summary>{_e(item.get('scenario', ''))}: "
                         f"{_e(request.get('method', ''))} → {_e(response.get('status', 'no response'))}</summary>"
                         f"{shown}</details>")
            body.append(shown)
        if not r.evidence and r.tests:
            body.append(f"<p class='note'>no exchange recorded; see the test {_e(', '.join(r.tests))} below</p>")
        body.append("</details>")
        section = "".join(body)
        budget.left -= len(section)
        sections.append(section)
    if not sections:
        return '<section id="sgp-failures" class="sgp"><h2>Failures</h2><p>None.</p></section>'
    return ('<section id="sgp-failures" class="sgp"><h2>Failures and their evidence</h2>'
            f"<p class='msg'>{len(sections)} result(s); click one to show its evidence.</p>"
            + "\n".join(sections) + "</section>")
