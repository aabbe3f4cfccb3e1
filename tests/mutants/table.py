"""The kill table (docs/kill-table.md): every mutant with the requirement that catches it, every control with
what it may show.
"""

from __future__ import annotations

import json
from pathlib import Path

from conformance.contract import catalogue

from .registry import CONTROLS, MUTANTS

TABLE_HEADER = """# Kill table

Generated from `tests/mutants/` by `python tests/mutants table > docs/kill-table.md`; a test
(`tests/test_mutation_matrix.py`) fails when this file is out of date.

Each row is one single-fault variant of the reference server (an ASGI middleware around it, kept in
`tests/`, never in the shipped server). For each, `tests/test_mutation_matrix.py` runs `sgp-conformance
run` against it (with a fixed seed) and asserts that the requirement is reported `fail` (`observed` for an
INFO requirement), and that the run exits non-zero at the level: 1 at `--fail-on must` for a MUST; 0 at
`--fail-on must` and 1 at `--fail-on should` for a SHOULD; 0 at both for an INFO (observations never fail a
run). Where a requirement's level differs between the profiles, the level shown is the default one and the
other in brackets; each mutant is judged at its profile's level.
"""

CONTROL_HEADER = """
## Negative controls

Variants that do what the contract leaves open: correct servers that read an open point another way than
the reference server. Against each, run at `--fail-on should`, the suite must report no MUST failure, and
exactly the findings listed: the INFO requirements that describe the open point, observed (STRM-005:
SGP's SDKs cannot parse [DONE]; VAL-005: the documented message type is free-form, refusing a role-less
message is open under sgp; AUTH-004: a gateway may take the key from either header).
"""


def kill_table() -> str:
    targeted = {m.requirement for m in MUTANTS.values()}
    rows = [TABLE_HEADER, f"{len(MUTANTS)} mutants covering {len(targeted)} requirements; {len(CONTROLS)} negative "
            "controls.", "", "| Mutant | Fault | Requirement | Level | Profiles |", "|---|---|---|---|---|"]
    for name, mutant in MUTANTS.items():
        fault = mutant.fault.replace("|", "\\|")
        rows.append(f"| `{name}` | {fault} | {mutant.requirement} | {mutant.level} | {', '.join(mutant.profiles)} |")
    shown = {rid for c in CONTROLS.values() for rid in c.allowed}
    missed = [r.id for r in catalogue.REQUIREMENTS if r.id not in targeted | shown]
    if missed:
        rows += ["", f"Requirements no variant makes fail: {', '.join(missed)} (see the notes below)."]
    rows += [CONTROL_HEADER, "| Control | Open behaviour | Reported | Profiles |", "|---|---|---|---|"]
    for name, control in CONTROLS.items():
        shown = [f"{rid} ({catalogue.get(rid).level_text()})" for rid in sorted(control.allowed)]
        allowed = ", ".join(shown) or "nothing"
        rows.append(f"| `{name}` | {control.fault} | {allowed} | {', '.join(control.profiles)} |")
    rows += failed_ids_table()
    rows += ["", NOTES]
    return "\n".join(rows) + "\n"


def failed_ids_table() -> list[str]:
    """The measured "failed ids per mutant" (FAILED_IDS, written by scripts/failed_ids.py): one fault, one
    failure."""
    if not FAILED_IDS.is_file():
        return []
    data = json.loads(FAILED_IDS.read_text(encoding="utf-8"))
    measured = {name: entry for name, entry in data["mutants"].items() if name in MUTANTS}
    counts = [len(entry["failed"]) for entry in measured.values()]
    exact = sum(entry["failed"] == [MUTANTS[name].requirement] for name, entry in measured.items())
    rows = ["", FAILED_HEADER.format(seed=data["seed"], examples=data["max_examples"]),
            f"Mean: {sum(counts) / max(len(counts), 1):.2f} failed ids per mutant (goal: at most 1.2); {exact} of "
            f"{len(measured)} mutants fail exactly their own requirement.", "",
            "| Mutant | Requirement | Failed ids | Count | Also observed (open points) |", "|---|---|---|---|---|"]
    for name, entry in measured.items():
        rows.append(f"| `{name}` | {MUTANTS[name].requirement} | {', '.join(entry['failed']) or '-'} | "
                    f"{len(entry['failed'])} | {', '.join(entry.get('observed', [])) or '-'} |")
    return rows


FAILED_HEADER = """## Failed ids per mutant

One fault, one failure: the requirements each mutant made `fail` in one run (its own requirement counts
when it is `observed`, an INFO requirement's failure; other observations are listed apart, never
failures), at standard depth, `--fail-on should`, seed {seed}, {examples} generated case(s) per property
(mutants that need more carry their own), in the mutant's first profile. Measured by `python
scripts/failed_ids.py`, which writes `tests/mutants/failed_ids.json`; rerun it, then the table command,
after a change to what the suite reports."""


NOTES = """## Notes

- CLIENT-001..005 judge the official SDKs against the target and run only with `--clients` (the SDKs
  are an optional install); the matrix runs without them. `tests/test_client_matrix.py` drives the four
  clients of CLIENT-005 against the reference server and against `strm_tool_identity_every_fragment`.
- HDR-004 (header names are case-insensitive) has no mutant: an ASGI application only ever sees
  lower-cased header names, so a case-sensitive server cannot be built as middleware.
- HDR-001 (the configured account is accepted) has no mutant: every scripted request carries the
  configured account, so a server that refuses it refuses the minimal request too, and the preflight stops
  the run there as a configuration error ("key refused", exit 3, naming --account-id); tests/test_reports.py
  shows it.
- A 5xx to a request that ought to be refused is ERR-005's (generated invalid ones too), whichever
  validation rule the request probes: `val_malformed_json_500` and `val_role_misspelt_500` are ERR-005's,
  and the rule they probe is not judged, pointing at it.
- `prop_high_temperature_crash` and `prop_negative_seed_crash` answer 500 only to valid boundary values no
  scripted request sends: the coverage phase's boundary cases find them at standard depth, whatever the
  seed (`scripts/seeds.py` shows 20 seeds of 20).
- CONC-002 never fails by itself: a MUST rule an answer breaks only under overlap is reported once, under
  its own ID and marked "under overlap only" (`conc_stream_id_under_overlap` fails STRM-013), and CONC-002
  ends not judged, pointing at that rule."""

KILL_TABLE = Path(__file__).resolve().parent.parent.parent / "docs" / "kill-table.md"
FAILED_IDS = Path(__file__).resolve().parent / "failed_ids.json"
