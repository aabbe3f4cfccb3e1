"""The committed interop results and the regression gate over them.

    interop/results/interop-results.json          every target's run, as `python -m interop.run` records it
    interop/results/<target>-<profile>/conformance.json   that run's report (the key masked by the suite)

docs/interop.md is generated from these files alone (`python -m interop.docs`), so anyone can check the page
against its data without running a server. `python -m interop.run` compares a new run with them and fails on
a difference; `--update` rewrites them deliberately.

The gate (`problems`) is what makes a run red besides a difference: a failed requirement without a verdict,
or with the verdict FALSE (the suite's or the recipe's fault) or DUP (another requirement reports the same
root cause). Both are the suite's to fix, not the page's (interop/README.md, "Grading rules").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COMMITTED_DIR = HERE / "results"
COMMITTED_FILE = COMMITTED_DIR / "interop-results.json"
REPORT_NAME = "conformance.json"
CLASSIFICATION_FILE = HERE / "classification.toml"
LEVELS = ("MUST", "SHOULD", "INFO")
# the verdicts of interop/classification.toml; the gate accepts TRUE only
CLASSES = ("TRUE", "FALSE", "DUP")


def key(run: dict[str, Any]) -> tuple[str, str]:
    """A run's identity: (target, profile)."""
    return run["server"], run["profile"]


def load(path: Path | None = None) -> dict[str, Any]:
    """A results file (default: the committed one); an empty one (no runs) when it does not exist.
    ValueError for one that is not JSON."""
    try:
        text = (path or COMMITTED_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"runs": []}
    data: dict[str, Any] = json.loads(text)
    return data


def signature(run: dict[str, Any]) -> dict[str, Any]:
    """What must repeat from run to run of the same target with the same seed: the exit code, whether it
    could run at all, the counts per level and outcome, and each failed requirement with its level and
    status. Times, ports, request counts and messages may differ."""
    return {
        "exit_code": run.get("exit_code"),
        "not_run": run.get("error") is not None,
        "counts": {level: {k: v for k, v in (run.get("counts") or {}).get(level, {}).items() if v}
                   for level in LEVELS},
        "failures": sorted((f["id"], f["level"], f["status"]) for f in run.get("failures", [])),
    }


def differences(committed: dict[str, Any], current: list[dict[str, Any]]) -> list[str]:
    """One line per target of `current` whose signature differs from the committed run (or that has none)."""
    before = {key(r): r for r in committed.get("runs", [])}
    out = []
    for run in current:
        name = "/".join(key(run))
        old = before.get(key(run))
        if old is None:
            out.append(f"{name}: no committed result (a new target: run with --update to commit it)")
            continue
        a, b = signature(old), signature(run)
        if a == b:
            continue
        what = []
        if a["exit_code"] != b["exit_code"]:
            what.append(f"exit {a['exit_code']} -> {b['exit_code']}")
        if a["not_run"] != b["not_run"]:
            what.append("did not run" if b["not_run"] else "runs again")
        for level in LEVELS:
            if a["counts"][level] != b["counts"][level]:
                what.append(f"{level} {_cell(a['counts'][level])} -> {_cell(b['counts'][level])}")
        gone = sorted(set(a["failures"]) - set(b["failures"]))
        new = sorted(set(b["failures"]) - set(a["failures"]))
        what += [f"now fails {' '.join(f[0] for f in new)}"] if new else []
        what += [f"no longer fails {' '.join(f[0] for f in gone)}"] if gone else []
        out.append(f"{name}: differs from the committed result: {'; '.join(what)}")
    return out


def _cell(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing"


def verdict(classification: dict[str, Any], run: dict[str, Any], requirement: str) -> dict[str, Any]:
    """The entry of classification.toml for one failed requirement of `run` ({} when there is none)."""
    target = classification.get(run["server"], {})
    table = target.get(run["profile"], {}) if isinstance(target, dict) else {}
    entry = table.get(requirement, {}) if isinstance(table, dict) else {}
    return entry if isinstance(entry, dict) else {}


def problems(runs: list[dict[str, Any]], classification: dict[str, Any]) -> list[str]:
    """One line per failed requirement that is not a TRUE deviation of the server (unclassified, FALSE or
    DUP), and one per run whose verdicts predate the written rules (its table lacks graded = "rules")."""
    out = []
    for run in runs:
        table = classification.get(run["server"], {}).get(run["profile"], {})
        if run.get("failures") and table.get("graded") != "rules":
            out.append(f"{'/'.join(key(run))}: its verdicts were given before the written grading rules "
                       "(regrade them by interop/README.md, then set graded = \"rules\")")
        for failure in run.get("failures", []):
            entry = verdict(classification, run, failure["id"])
            kind = entry.get("class")
            name = f"{'/'.join(key(run))} {failure['id']}"
            if kind is None:
                out.append(f"{name}: unclassified (add a verdict to interop/classification.toml)")
            elif kind == "FALSE":
                out.append(f"{name}: FALSE, a fault of the suite or the recipe: {entry.get('fix', 'no fix given')}")
            elif kind == "DUP":
                out.append(f"{name}: DUP of {entry.get('of', '?')}: one root cause reported twice")
    return out


def classification_errors(classification: dict[str, Any]) -> list[str]:
    """What is malformed in classification.toml: an unknown class, a DUP that names no `of`, a `fixture`
    mark on anything but a TRUE, an entry without evidence."""
    out = []
    for target, profiles in classification.items():
        if not isinstance(profiles, dict):
            continue
        for profile, entries in profiles.items():
            if not isinstance(entries, dict):
                continue
            for requirement, entry in entries.items():
                if not isinstance(entry, dict):
                    continue
                where = f"[{target}.{profile}.{requirement}]"
                kind = entry.get("class")
                if kind not in CLASSES:
                    out.append(f"{where}: class {kind!r} is not one of {', '.join(CLASSES)}")
                if kind == "DUP" and not isinstance(entry.get("of"), str):
                    out.append(f"{where}: a DUP names the requirement that reports the root cause (of = ...)")
                if entry.get("fixture") and kind != "TRUE":
                    out.append(f"{where}: only a TRUE can come from the recipe's fixture")
                if not entry.get("evidence"):
                    out.append(f"{where}: no evidence")
    return out
