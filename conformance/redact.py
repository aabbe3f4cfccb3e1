"""Scrubbing secrets by value, wherever they could end up: headers, bodies, URLs, messages."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
# headers whose values are credentials whatever they hold
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-openai-api-key", "proxy-authorization", "cookie",
                            "set-cookie"})


def variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire: as is, URL-quoted, base64 (Basic auth, echoing servers)."""
    out = {secret, quote(secret, safe="")}
    raw = secret.encode("utf-8")
    out.add(base64.b64encode(raw).decode("ascii"))
    out.add(base64.urlsafe_b64encode(raw).decode("ascii"))
    # base64 of the secret inside a longer buffer keeps a stable core, whatever the alignment
    for shift in range(3):
        core = base64.b64encode(b"\0" * shift + raw).decode("ascii")[4 if shift else 0:-4]
        if len(core) >= 8:
            out.add(core)
    return {v for v in out if len(v) >= 4}


class Scrubber:
    def __init__(self, secrets: Iterable[str] = (), secret_headers: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        for secret in secrets:
            if secret:
                self._needles.extend(variants(secret))
        # longest first, so a secret's variant that contains another is masked whole
        self._needles.sort(key=len, reverse=True)
        self.secret_headers = SECRET_HEADERS | {h.lower() for h in secret_headers}

    def add(self, secret: str) -> None:
        if secret:
            self._needles.extend(variants(secret))
            self._needles.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        for needle in self._needles:
            if needle in value:
                value = value.replace(needle, MASK)
        return value

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, MASK if k.lower() in self.secret_headers else self.text(v)) for k, v in headers]

    def value(self, value: Any) -> Any:
        """Scrub a JSON-like value in depth (keys too: an echoing server may put the key anywhere)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def contains_secret(self, data: bytes) -> bool:
        return any(n.encode("utf-8") in data for n in self._needles)
