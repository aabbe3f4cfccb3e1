"""What the server did on each open point of the contract, and the `--claim` line that would pin it.

An open point is never a failure unless claimed (contract.status): its requirements are observed. This
turns those observations into a list per choice (contract.claims.CHOICES), so a team can adopt its
server's own behaviour as a promise: `held` where every judged requirement of the choice passed, `broken`
where one was observed (or failed, when claimed), `unjudged` where none was judged. The list goes into
conformance.json (`open_points`), the summary and the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conformance.contract import catalogue, claims, status

HELD, BROKEN, UNJUDGED = "held", "broken", "unjudged"


def open_points(results: Iterable[Mapping[str, Any]], profile: str,
                claimed: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
    """Per choice with a requirement in `results`: {choice, meaning, claimed, behaviour (HELD, BROKEN,
    UNJUDGED), requirements: {id: status}, message: the first observation, claim: "--claim <choice>"}."""
    by_id = {r["id"]: r for r in results}
    out = []
    for choice, meaning in claims.CHOICES.items():
        reqs = [r for r in catalogue.REQUIREMENTS if r.choice == choice and r.id in by_id and r.applies_to(profile)
                and status.status(r.anchor, profile) == status.OPEN]
        if not reqs:
            continue
        statuses = {r.id: by_id[r.id]["status"] for r in reqs}
        broken = [rid for rid, s in statuses.items() if s in ("observed", "fail", "known", "error")]
        held = [rid for rid, s in statuses.items() if s == "pass"]
        behaviour = BROKEN if broken else HELD if held else UNJUDGED
        out.append({"choice": choice, "meaning": meaning, "claimed": choice in claimed, "behaviour": behaviour,
                    "requirements": statuses, "message": by_id[broken[0]].get("message") if broken else None,
                    "claim": claims.claim_line([choice])})
    return out


def pin_line(points: Iterable[Mapping[str, Any]]) -> str | None:
    """The --claim line that pins every choice the server held and did not claim yet, or None."""
    held = [p["choice"] for p in points if p["behaviour"] == HELD and not p["claimed"]]
    return claims.claim_line(held) if held else None
