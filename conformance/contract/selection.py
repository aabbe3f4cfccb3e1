"""`--only VAL-005,AUTH`: a selection of requirements by ID or area prefix that cannot match by accident.

pytest's `-k` matches substrings case-insensitively in every test's keywords, so `-k VAL` also picks tests whose
names say "valid" or "invalid". `--only` takes exact requirement IDs (`VAL-005`) and area prefixes (`AUTH`:
every AUTH-NNN), case-sensitive, comma-separated; anything else is refused with the closest names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from conformance.contract import catalogue


class SelectionError(ValueError):
    """A selection naming no requirement and no area: one line, with the closest names."""


def areas() -> frozenset[str]:
    """The area prefixes of the catalogue: AUTH, VAL, RESP, ..."""
    return frozenset(r.id.split("-", 1)[0] for r in catalogue.REQUIREMENTS)


def _spelled(name: str, known_areas: frozenset[str]) -> list[str]:
    """The ID or area `name` means when only its case or zero-padding is off: val -> VAL, VAL-5 -> VAL-005."""
    found = re.fullmatch(r"([A-Za-z]+)(?:-?(\d+))?", name)
    if found is None:
        return []
    area, number = found.group(1).upper(), found.group(2)
    meant = f"{area}-{int(number):03d}" if number else area
    return [meant] if meant in catalogue.BY_ID or meant in known_areas else []


@dataclass(frozen=True)
class Selection:
    """Requirement IDs and areas; a requirement matches when its ID is one of `ids` or its area one of `areas`."""

    ids: frozenset[str]
    areas: frozenset[str]

    @classmethod
    def parse(cls, text: str, what: str = "--only") -> Selection:
        """`VAL-005,AUTH` -> Selection; SelectionError for an empty one or a name that is neither."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise SelectionError(f"{what} {text!r} names nothing: give IDs or areas, e.g. {what} VAL-005,AUTH")
        known_areas = areas()
        ids, found_areas = set(), set()
        for name in names:
            if name in catalogue.BY_ID:
                ids.add(name)
            elif name in known_areas:
                found_areas.add(name)
            else:
                close = _spelled(name, known_areas) or difflib.get_close_matches(
                    name, [*sorted(known_areas), *catalogue.BY_ID], n=1, cutoff=0.6)
                hint = f": did you mean {close[0]}?" if close else " (IDs and areas are case-sensitive; " \
                    "see sgp-conformance list)"
                raise SelectionError(f"{what} {name}: no such requirement or area{hint}")
        return cls(frozenset(ids), frozenset(found_areas))

    def matches(self, req_id: str) -> bool:
        return req_id in self.ids or req_id.split("-", 1)[0] in self.areas

    def narrowed(self, ids: list[str]) -> Selection:
        """Only the `ids` this selection also matches."""
        return Selection(frozenset(i for i in ids if self.matches(i)), frozenset())

    def __str__(self) -> str:
        return ",".join([*sorted(self.areas), *sorted(self.ids)])
