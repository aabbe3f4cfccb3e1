"""`sgp-conformance diff OLD.json NEW.json`: what changed between two releases' results.

A regression is a requirement that was not failing (pass, stale, not judged, not run) and now fails or errs.
Lost coverage is a requirement that passed and is now not judged or not run: nothing shows it still holds
(a run that could not reach its target loses everything). Both fail the diff when the requirement's level
gates the new run (`fail_on` of NEW: must, or must and should), so the diff and the run agree on what blocks
a release; they are listed apart. A requirement newly accepted in the baseline (now `known`) is listed apart
and does not fail the diff: accepting it was a decision, not an accident. Results written before the outcome
model had `not judged` and `not run` read their old `skip` as `not run`. A requirement not run because its
feature was declared absent (`--without`) is listed apart too, and a change of the claims (features declared
absent, choices claimed) heads the output, since the same status means something else under other claims.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from conformance.inputs import InputError, read_capped
from conformance.pipes import write_lines

FAILING = frozenset({"fail", "error"})
# passing now, or never judged as failing: a change from here to FAILING is a regression
NOT_FAILING = frozenset({"pass", "stale", "observed", "not judged", "not run"})
UNJUDGED = frozenset({"not judged", "not run"})
# the statuses of results written before the outcome model
OLD_STATUSES = {"skip": "not run"}
FIXED = frozenset({"pass", "stale"})
WAS_FAILING = frozenset({"fail", "error", "known"})
GATING_LEVELS = {"must": {"MUST"}, "should": {"MUST", "SHOULD"}}
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2
# the largest conformance.json read (a deep run with every evidence kept is a few megabytes)
MAX_RESULT_BYTES = 200_000_000


def _load(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_capped(path, MAX_RESULT_BYTES, "results file"))
        if not all(isinstance(r, dict) and {"id", "status", "level"} <= r.keys() for r in doc["results"]):
            raise ValueError
        return dict(doc)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValueError(f"{path} is not a conformance.json written by sgp-conformance run") from None


def _results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: {**r, "status": OLD_STATUSES.get(r["status"], r["status"])} for r in doc["results"]}


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]],
            gating_levels: set[str] | None = None) -> dict[str, list[str]]:
    """The changes, by kind; `regressions` holds only those at a gating level, the rest go to
    `regressions_not_gating`."""
    gating_levels = {"MUST"} if gating_levels is None else gating_levels
    out: dict[str, list[str]] = {"regressions": [], "lost": [], "regressions_not_gating": [], "lost_not_gating": [],
                                 "accepted": [], "not_claimed": [], "fixes": [], "new": [], "removed": [],
                                 "changed": []}
    for rid, result in new.items():
        before = old.get(rid)
        status, level = result["status"], result["level"]
        if before is None:
            out["new"].append(f"{rid} {level} {status}")
            continue
        was = before["status"]
        line = f"{rid} {level} {was} -> {status}"
        message = result.get("message") or ""
        if was in NOT_FAILING and status in FAILING:
            kind = "regressions" if level in gating_levels else "regressions_not_gating"
            out[kind].append(f"{line}: {message}" if message else line)
        elif status == "not run" and result.get("not_run") == "not claimed" and was != status:
            # the feature was declared absent (--without): a decision, stated in the verdict, not lost coverage
            out["not_claimed"].append(line)
        elif was == "pass" and status in UNJUDGED:
            kind = "lost" if level in gating_levels else "lost_not_gating"
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
    "lost": "coverage lost (passed before, not judged or not run now)",
    "regressions_not_gating": "regressions below the gating level",
    "lost_not_gating": "coverage lost below the gating level",
    "accepted": "newly accepted in the baseline (known)",
    "not_claimed": "no longer claimed (a feature declared absent with --without)",
    "fixes": "fixes",
    "new": "new requirements",
    "removed": "requirements no longer judged",
    "changed": "other changes",
}


def _claims(doc: dict[str, Any]) -> dict[str, list[str]]:
    held_to = (doc.get("run") or {}).get("claims") or {}
    return {"without": list(held_to.get("without") or []), "choices": list(held_to.get("choices") or [])}


def claims_changes(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[str]:
    """A line per kind of claim that differs between the runs: the same results mean something else when
    the server is held to other features or choices (results written before claims count as none)."""
    old, new = _claims(old_doc), _claims(new_doc)
    lines = []
    for kind, title in (("without", "features declared absent"), ("choices", "choices claimed")):
        if old[kind] != new[kind]:
            lines.append(f"{title} changed: {', '.join(old[kind]) or 'none'} -> {', '.join(new[kind]) or 'none'}")
    return lines


def _target(run: dict[str, Any]) -> str:
    # every embedded reference server is the same target, whatever port it had
    return "the embedded reference server" if run.get("embedded") else str(run.get("target") or "").rstrip("/")


def incomparable(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[str]:
    """Why two runs' results cannot be compared requirement by requirement: a different profile (other
    levels, other requirements), target or claims (other rules gate). Empty when they can."""
    old, new = old_doc.get("run") or {}, new_doc.get("run") or {}
    why = []
    if old.get("profile") != new.get("profile"):
        why.append(f"profile {old.get('profile')} vs {new.get('profile')}")
    if _target(old) != _target(new):
        why.append(f"target {_target(old) or '?'} vs {_target(new) or '?'}")
    # the same results mean something else when the server is held to other features or choices
    return why + claims_changes(old_doc, new_doc)


def command_diff(old_path: str, new_path: str, force: bool = False) -> int:
    """Print the changes from OLD to NEW; exit 1 on a gating regression or lost coverage, 2 on a usage error
    (unreadable results, or runs of different profiles, targets or claims without --force)."""
    try:
        old_doc, new_doc = _load(old_path), _load(new_path)
    except ValueError as exc:
        print(f"sgp-conformance diff: {exc}", file=sys.stderr)
        return EXIT_USAGE
    why = incomparable(old_doc, new_doc)
    if why and not force:
        print(f"sgp-conformance diff: the runs are not comparable ({'; '.join(why)}): their requirements and "
              "levels differ, so a change would mean nothing; pass --force to compare them anyway", file=sys.stderr)
        return EXIT_USAGE
    fail_on = (new_doc.get("run") or {}).get("fail_on", "must")
    changes = compare(_results(old_doc), _results(new_doc), GATING_LEVELS.get(fail_on, {"MUST"}))
    lines = [f"compared although not comparable (--force): {'; '.join(why)}"] if why else []
    if new_doc.get("verdict") in ("unreachable", "interrupted", "key refused"):
        why = new_doc.get("unreachable") or (new_doc.get("run") or {}).get("halted") or "interrupted"
        lines.append(f"the new run could not judge: {new_doc['verdict']} ({why})")
    for kind, rows in changes.items():
        if rows:
            lines.append(f"{TITLES[kind]} ({len(rows)}):")
            lines += [f"  {row}" for row in rows]
    if not any(changes.values()):
        lines.append("no change")
    n, lost = len(changes["regressions"]), len(changes["lost"])
    lines.append(f"{n} regression(s) and {lost} lost (--fail-on {fail_on}), {len(changes['fixes'])} fix(es), "
                 f"{len(changes['new'])} new requirement(s)")
    # the exit code stands whether or not the reader read every line (`| head -1`)
    write_lines(lines)
    return EXIT_REGRESSION if n or lost else EXIT_OK
