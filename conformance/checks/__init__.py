"""Pure check functions: an exchange (or a parsed document) in, violations out.

Every violation names the requirement it breaks, so the same function serves the hand-written tests, the
property tests and offline validation, and a requirement is judged the same way wherever it is hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def is_int(value: Any) -> bool:
    """A JSON integer as a response must carry it (bool is not one, although Python says so)."""
    return isinstance(value, int) and not isinstance(value, bool)


def requested_int(value: Any) -> int | None:
    """An integer request parameter; 2.0 counts, as JSON Schema's `integer` accepts it and servers do."""
    if is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class Violation:
    requirement: str
    message: str
    # RFC 6901 pointer into the document judged ("" is the whole document)
    pointer: str = ""
    # the scenario (request) whose response broke the rule
    scenario: str = ""
    schema_excerpt: dict[str, Any] | None = field(default=None, compare=False)

    def render(self) -> str:
        where = f" at {self.pointer}" if self.pointer else ""
        return f"{self.requirement}{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requirement": self.requirement, "message": self.message, "pointer": self.pointer}
        if self.scenario:
            out["scenario"] = self.scenario
        if self.schema_excerpt is not None:
            out["schema_excerpt"] = self.schema_excerpt
        return out


@dataclass(frozen=True)
class NotJudged(Violation):
    """Not a finding: the rule had nothing to judge in this exchange. `message` says why; `needs` names the
    requirement that reports the cause, where one does (a body that is not JSON: JSON-001), so the fault is
    reported once and the rules that depend on it point at it.

    A check returns it where it cannot apply its rule; callers that judge a requirement over several
    exchanges count it as "not judged" only when no exchange could be judged at all (see `split`).
    """

    needs: str = ""

    def render(self) -> str:
        owner = f"needs {self.needs}: " if self.needs else ""
        return f"{self.requirement} not judged: {owner}{self.message}"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["judged"] = False
        if self.needs:
            out["needs"] = self.needs
        return out


def findings(violations: Iterable[Violation]) -> list[Violation]:
    """The real findings among `violations` (NotJudged entries dropped)."""
    return [v for v in violations if not isinstance(v, NotJudged)]


def split(violations: Iterable[Violation]) -> tuple[list[Violation], list[NotJudged]]:
    """(findings, not-judged notes) of a list of check results."""
    found: list[Violation] = []
    notes: list[NotJudged] = []
    for v in violations:
        (notes if isinstance(v, NotJudged) else found).append(v)  # type: ignore[arg-type]
    return found, notes
