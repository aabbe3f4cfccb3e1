"""The compare report: compare.json (the data) and compare.html (the same, readable), differences grouped by
requirement with both exchanges side by side. Every string has passed the run's Scrubber before it gets
here, so neither file can hold a key (docs/reports.md#compare-report).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.compare.fields import Difference
from conformance.contract import catalogue
from conformance.report.folder import write_new

JSON_NAME, HTML_NAME = "compare.json", "compare.html"


def grouped(differences: list[Difference], evidence: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per requirement, in catalogue order: its differences and the two exchanges of each case involved."""
    order = {r.id: n for n, r in enumerate(catalogue.REQUIREMENTS)}
    out = []
    for req_id in sorted({d.requirement for d in differences}, key=lambda r: order.get(r, len(order))):
        mine = [d for d in differences if d.requirement == req_id]
        req = catalogue.BY_ID.get(req_id)
        cases = list(dict.fromkeys(d.case for d in mine))
        out.append({
            "requirement": req_id,
            "statement": req.statement if req else "",
            "contract": req.contract if req else "",
            "differences": [d.to_json() for d in mine],
            "exchanges": {case: evidence[case] for case in cases if case in evidence},
        })
    return out


def document(targets: Mapping[str, Any], seed: int, cases: int, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "targets": dict(targets),
        "seed": seed,
        "cases": cases,
        "differences": sum(len(g["differences"]) for g in groups),
        "requirements": groups,
    }


def _pre(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"<pre>{html.escape(text)}</pre>"


def render_html(doc: Mapping[str, Any]) -> str:
    """A self-contained page: the two targets, then per requirement a table of differences and, per case,
    target A's exchange beside target B's."""
    e = html.escape
    a, b = doc["targets"]["a"], doc["targets"]["b"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sgp-conformance compare</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.3em .5em;vertical-align:top}pre{white-space:pre-wrap;word-break:break-all;margin:0}"
        ".pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}</style></head><body>",
        "<h1>Compare</h1>",
        f"<p>A: {e(str(a['base_url']))} ({e(a['profile'])}, {e(a['model'])})<br>"
        f"B: {e(str(b['base_url']))} ({e(b['profile'])}, {e(b['model'])})<br>"
        f"{doc['cases']} case(s), seed {doc['seed']}: <strong>{doc['differences']} difference(s)</strong></p>",
    ]
    if not doc["requirements"]:
        parts.append("<p>No differences.</p>")
    for group in doc["requirements"]:
        parts.append(f"<section id='{e(group['requirement'])}'><h2>{e(group['requirement'])}</h2>"
                     f"<p>{e(group['statement'])} <small>{e(group['contract'])}</small></p>")
        parts.append("<table><tr><th>case</th><th>field</th><th>A</th><th>B</th></tr>")
        for d in group["differences"]:
            parts.append(f"<tr><td>{e(d['case'])}</td><td>{e(d['field'])}</td><td>{_pre(d['a'])}</td>"
                         f"<td>{_pre(d['b'])}</td></tr>")
        parts.append("</table>")
        for case, pair in group["exchanges"].items():
            parts.append(f"<details><summary>{e(case)}: both exchanges</summary><div class='pair'>"
                         f"<div><h3>A</h3>{_pre(pair['a'])}</div><div><h3>B</h3>{_pre(pair['b'])}</div></div>"
                         "</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(report_dir: Path, doc: Mapping[str, Any]) -> list[Path]:
    """Write compare.json and compare.html into `report_dir` (created if needed); returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_dir / JSON_NAME, report_dir / HTML_NAME
    # created new and renamed into place: a link planted where a report goes is replaced, never written through
    write_new(json_path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
    write_new(html_path, render_html(doc).encode())
    return [html_path, json_path]
