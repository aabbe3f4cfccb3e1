"""`sgp-conformance diff OLD.json NEW.json`: what changed between two releases' results.

A regression is a requirement that was not failing (pass, stale or not judged) and now fails or errs. It
fails the diff when its level gates the new run (`fail_on` of NEW: must, or must and should), so the diff
and the run agree on what blocks a release. A requirement newly accepted in the baseline (now `known`) is
listed apart and does not fail the diff: accepting it was a decision, not an accident.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from conformance.pipes import write_lines

FAILING = frozenset({"fail", "error"})
# passing now, or never judged as failing: a change from here to FAILING is a regression
NOT_FAILING = frozenset({"pass", "stale", "skip"})
FIXED = frozenset({"pass", "stale"})
WAS_FAILING = frozenset({"fail", "error", "known"})
GATING_LEVELS = {"must": {"MUST"}, "should": {"MUST", "SHOULD"}}
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


def _load(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if not all(isinstance(r, dict) and {"id", "status", "level"} <= r.keys() for r in doc["results"]):
            raise ValueError
        return dict(doc)
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a conformance.json written by sgp-conformance run") from None


def _results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in doc["results"]}


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]],
            gating_levels: set[str] | None = None) -> dict[str, list[str]]:
    """The changes, by kind; `regressions` holds only those at a gating level, the rest go to
    `regressions_not_gating`."""
    gating_levels = {"MUST"} if gating_levels is None else gating_levels
    out: dict[str, list[str]] = {"regressions": [], "regressions_not_gating": [], "accepted": [], "fixes": [],
                                 "new": [], "removed": [], "changed": []}
    for rid, result in new.items():
        before = old.get(rid)
        status, level = result["status"], result["level"]
        if before is None:
            out["new"].append(f"{rid} {level} {status}")
            continue
        was = before["status"]
        line = f"{rid} {level} {was} -> {status}"
        if was in NOT_FAILING and status in FAILING:
            message = result.get("message") or ""
            kind = "regressions" if level in gating_levels else "regressions_not_gating"
            out[kind].append(f"{line}: {message}" if message else line)
        elif was in NOT_FAILING and status == "known":
            out["accepted"].append(line)
        elif was in WAS_FAILING and status in FIXED:
            out["fixes"].append(line)
        elif was != status:
            out["changed"].append(line)
    out["removed"] = [f"{rid} {r['level']} {r['status']}" for rid, r in old.items() if rid not in new]
    return out


TITLES = {
    "regressions": "regressions",
    "regressions_not_gating": "regressions below the gating level",
    "accepted": "newly accepted in the baseline (known)",
    "fixes": "fixes",
    "new": "new requirements",
    "removed": "requirements no longer judged",
    "changed": "other changes",
}


def command_diff(old_path: str, new_path: str) -> int:
    try:
        old_doc, new_doc = _load(old_path), _load(new_path)
    except ValueError as exc:
        print(f"sgp-conformance diff: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fail_on = (new_doc.get("run") or {}).get("fail_on", "must")
    changes = compare(_results(old_doc), _results(new_doc), GATING_LEVELS.get(fail_on, {"MUST"}))
    lines = []
    for kind, rows in changes.items():
        if rows:
            lines.append(f"{TITLES[kind]} ({len(rows)}):")
            lines += [f"  {row}" for row in rows]
    if not any(changes.values()):
        lines.append("no change")
    n = len(changes["regressions"])
    lines.append(f"{n} regression(s) (--fail-on {fail_on}), {len(changes['fixes'])} fix(es), "
                 f"{len(changes['new'])} new requirement(s)")
    # the exit code stands whether or not the reader read every line (`| head -1`)
    write_lines(lines)
    return EXIT_REGRESSION if n else EXIT_OK
