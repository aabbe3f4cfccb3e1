"""Server-sent events parsing (WHATWG HTML §9.2.6), keeping what a conformance check needs to judge."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KNOWN_FIELDS = frozenset({"data", "event", "id", "retry"})


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None


@dataclass
class Stream:
    events: list[Event] = field(default_factory=list)
    # lines that are neither a known field, a comment nor blank, and whether the text ended mid-event
    unknown_lines: list[str] = field(default_factory=list)
    unterminated: bool = False

    @property
    def data(self) -> list[str]:
        return [e.data for e in self.events]


def parse(text: str) -> Stream:
    stream = Stream()
    data: list[str] = []
    event_type = "message"
    event_id: str | None = None
    pending = False
    lines = _LINE_BREAK.split(text)
    # a final empty string means the text ended with a line break
    ended_with_break = bool(lines) and lines[-1] == ""
    if ended_with_break:
        lines = lines[:-1]
    for line in lines:
        if line == "":
            if data:
                stream.events.append(Event(data="\n".join(data), event=event_type, id=event_id))
            data, event_type, pending = [], "message", False
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name not in _KNOWN_FIELDS:
            stream.unknown_lines.append(line)
            continue
        pending = True
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value or "message"
        elif name == "id":
            event_id = value
    if pending or (not ended_with_break and lines):
        stream.unterminated = True
        if data:
            # a client dispatches nothing here; kept so checks can report what was lost
            stream.events.append(Event(data="\n".join(data), event=event_type, id=event_id))
    return stream
