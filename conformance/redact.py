"""Scrubbing secrets by value, wherever they could end up: headers, bodies, URLs, messages, files.

What a secret is and every form it takes (case, URL, JSON, HTML escapes, base64, hex, format characters
inserted) is `conformance.secret_forms`; this module applies it to what a writer holds: text, bytes, JSON
values, headers, pytest's report objects, the terminal stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from conformance.secret_forms import (
    MASK,
    MIN_SECRET,
    SECRET_HEADERS,
    SecretFinder,
    as_bytes,
    as_text,
    bare,
    distinctive,
    url_passwords,
)

__all__ = ["MASK", "MIN_SECRET", "SECRET_HEADERS", "Scrubber", "ScrubbingStream", "distinctive", "safe_url",
           "url_password"]

# how deep scrub_in_place follows attributes of pytest's report objects (they are shallow trees)
_MAX_DEPTH = 12


def url_password(url: str | None) -> str | None:
    """The password of a URL's userinfo (https://user:pass@host), a secret of its own."""
    found = url_passwords(url)
    return found[0] if found else None


def safe_url(url: str | None) -> str | None:
    """A URL fit to print: userinfo replaced by the mask."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


class Scrubber:
    """Masks the secrets it knows in whatever a writer holds. It learns more (`add`): a declared secret
    header's value seen on a request, a key a proxied client sent."""

    def __init__(self, secrets: Iterable[str] = (), secret_headers: Iterable[str] = ()) -> None:
        self.finder = SecretFinder(secrets)
        # headers the configuration declares secret: their values are learnt as secrets when seen
        self.declared = frozenset(h.lower() for h in secret_headers)
        self.secret_headers = SECRET_HEADERS | self.declared

    def add(self, *secrets: str) -> None:
        """Learn more secrets (those shorter than MIN_SECRET are not searched)."""
        new = [s for s in secrets if s and len(s) >= MIN_SECRET and s not in self.finder.secrets]
        if new:
            self.finder = self.finder.with_secrets(new)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.finder.secrets

    @property
    def active(self) -> bool:
        return self.finder.active

    def text(self, value: str) -> str:
        return self.finder.mask(value)

    def data(self, value: bytes) -> bytes:
        if not self.finder.active:
            return value
        return as_bytes(self.finder.mask(as_text(value)))

    def header_value(self, name: str, value: str) -> str:
        lowered = name.lower()
        if lowered in self.declared:
            # its value is a secret wherever else it turns up (an echoing server); the standard credential
            # headers are not learnt so, as the suite sends deliberately wrong keys in them
            self.add(bare(value))
        if lowered in self.secret_headers:
            return MASK
        return self.text(value)

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, self.header_value(k, v)) for k, v in headers]

    def value(self, value: Any, keys: bool = True) -> Any:
        """Scrub a JSON-like value in depth, its keys too (an echoing server may put the key anywhere);
        with `keys` False, a value of the run's own making, whose keys are the run's names (`model`)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {(self.text(str(k)) if keys else k): self.value(v, keys) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, keys) for v in value]
        return value

    def contains_secret(self, data: bytes | str) -> bool:
        return bool(self.finder.search(data if isinstance(data, str) else as_text(data)))

    def scrub_in_place(self, obj: Any, _depth: int = 0) -> Any:
        """Scrub every string inside a tree of plain objects (pytest's longrepr), keeping its structure,
        so the terminal, JUnit and the HTML report still format it as pytest would."""
        if isinstance(obj, str):
            return self.text(obj)
        if _depth > _MAX_DEPTH or obj is None or isinstance(obj, int | float | bool | bytes):
            return obj
        if isinstance(obj, list):
            obj[:] = [self.scrub_in_place(v, _depth + 1) for v in obj]
            return obj
        if isinstance(obj, tuple):
            return tuple(self.scrub_in_place(v, _depth + 1) for v in obj)
        if isinstance(obj, dict):
            return {self.scrub_in_place(k, _depth + 1): self.scrub_in_place(v, _depth + 1) for k, v in obj.items()}
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            for name, value in list(attrs.items()):
                object.__setattr__(obj, name, self.scrub_in_place(value, _depth + 1))
        return obj


class ScrubbingStream:
    """A text stream that masks secrets in whatever is written through it (the terminal)."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber

    def write(self, text: str) -> int:
        self._stream.write(self._scrubber.text(text))
        # callers count what they asked to write, not what the mask made of it
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
