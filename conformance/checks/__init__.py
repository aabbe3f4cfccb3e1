"""Pure check functions: an exchange (or a parsed document) in, violations out.

Every violation names the requirement it breaks, so the same function serves the hand-written tests, the
property tests and offline validation, and a requirement is judged the same way wherever it is hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
