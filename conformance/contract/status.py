"""The status of each rule per profile, read from docs/contract.md section 14 (`#levels`), and the level
it gives: settled -> MUST, recommended -> SHOULD, open -> INFO (observed), a claimed open point -> MUST.

The table's rows look like "| `auth-status` | settled | settled | why |"; a `-` marks a profile the
anchor's rules do not apply to. `Requirement.level_for` (catalogue.py) reads its level from here, and
tests/test_levels.py holds the catalogue's stated levels to it.
"""

from __future__ import annotations

import re
from functools import cache

from conformance.contract import document

SETTLED, RECOMMENDED, OPEN = "settled", "recommended", "open"
STATUSES = (SETTLED, RECOMMENDED, OPEN)
# the level each status gives (catalogue.MUST, SHOULD, INFO; spelt out here: catalogue imports this module)
LEVEL_OF = {SETTLED: "MUST", RECOMMENDED: "SHOULD", OPEN: "INFO"}
PROFILE_COLUMNS = ("sgp", "openai")

_ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (settled|recommended|open|-) \| (settled|recommended|open|-) \|")


class StatusError(LookupError):
    """An anchor the table does not list, or lists as not applying to the profile asked for."""


@cache
def table(page: str | None = None) -> dict[str, dict[str, str | None]]:
    """anchor -> {profile: status, or None where the anchor's rules do not apply}, from section 14."""
    text = page if page is not None else document.text()
    start = text.find('<a id="levels"></a>')
    out: dict[str, dict[str, str | None]] = {}
    for line in text[start:].splitlines() if start >= 0 else ():
        match = _ROW.match(line)
        if match:
            anchor, *statuses = match.groups()
            out[anchor] = {p: (s if s != "-" else None) for p, s in zip(PROFILE_COLUMNS, statuses, strict=True)}
    return out


def status(anchor: str, profile: str) -> str:
    """The status of `anchor`'s rules under `profile` (STATUSES); StatusError when the table has none."""
    found = table().get(anchor, {}).get(profile)
    if found is None:
        raise StatusError(f"docs/contract.md section 14 gives no status for #{anchor} under {profile}")
    return found


def level(anchor: str, profile: str, open_claimed: bool = False) -> str:
    """The level of a rule stated at `anchor` under `profile`: an open point claimed by the server is MUST."""
    found = status(anchor, profile)
    if found == OPEN and open_claimed:
        return "MUST"
    return LEVEL_OF[found]
