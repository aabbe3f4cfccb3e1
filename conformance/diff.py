"""`sgp-conformance diff OLD.json NEW.json`: what changed between two releases' results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BAD = frozenset({"fail", "error", "stale"})
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


def _results(path: str) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return {r["id"]: r for r in doc["results"]}
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a conformance.json written by sgp-conformance run") from None


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"regressions": [], "fixes": [], "new": [], "removed": [], "changed": []}
    for rid, result in new.items():
        before = old.get(rid)
        status = result["status"]
        if before is None:
            out["new"].append(f"{rid} {result['level']} {status}")
        elif before["status"] not in BAD and status in BAD:
            out["regressions"].append(f"{rid} {result['level']} {before['status']} -> {status}: "
                                      f"{result.get('message', '')}".rstrip(": "))
        elif before["status"] in BAD and status not in BAD:
            out["fixes"].append(f"{rid} {result['level']} {before['status']} -> {status}")
        elif before["status"] != status:
            out["changed"].append(f"{rid} {result['level']} {before['status']} -> {status}")
    out["removed"] = [f"{rid} {r['level']} {r['status']}" for rid, r in old.items() if rid not in new]
    return out


def command_diff(old_path: str, new_path: str) -> int:
    try:
        old, new = _results(old_path), _results(new_path)
    except ValueError as exc:
        print(f"sgp-conformance diff: {exc}", file=sys.stderr)
        return EXIT_USAGE
    changes = compare(old, new)
    for title, rows in changes.items():
        if rows:
            print(f"{title} ({len(rows)}):")
            for row in rows:
                print(f"  {row}")
    if not any(changes.values()):
        print("no change")
    n = len(changes["regressions"])
    print(f"{n} regression(s), {len(changes['fixes'])} fix(es), {len(changes['new'])} new requirement(s)")
    return EXIT_REGRESSION if n else EXIT_OK
