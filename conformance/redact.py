"""Scrubbing secrets by value, wherever they could end up: headers, bodies, URLs, messages, files.

A secret is masked by its value, not by where it is expected, because an echoing server, an exception
message or a URL with userinfo can carry it anywhere. Each secret is searched in every form it takes on
the wire or in a report: as is, URL-quoted, base64 at any alignment, JSON-, HTML- and XML-escaped.
Secrets shorter than MIN_SECRET characters are not searched: masking them would mangle ordinary text.
A secret that is not `distinctive` (a word such as `test` or `token`, a short key) is masked as it is only
where it stands alone, not inside a longer word or name (`pytest`, `max_tokens`): there it cannot be the
secret, and masking it would corrupt the reports' own text. An escape right before it (`\n`, `%20`) counts as
a boundary, and its encoded forms (URL-quoted, escaped, base64) are masked wherever they occur.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 4
# headers whose values are credentials whatever they hold
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-openai-api-key", "proxy-authorization", "cookie",
                            "set-cookie"})
# how deep scrub_in_place follows attributes of pytest's report objects (they are shallow trees)
_MAX_DEPTH = 12


def distinctive(secret: str) -> bool:
    """Whether `secret` can only be itself wherever it occurs: 16 characters or more, or 8 or more that mix
    letters and digits, as generated keys do. A shorter key, or a word (`conformance`, `prompt_tokens`),
    also occurs as part of ordinary text."""
    if len(secret) >= 16:
        return True
    return len(secret) >= 8 and any(c.isdigit() for c in secret) and any(c.isalpha() for c in secret)


# what may stand right before a secret that stands alone: the end of an escape (JSON's \n, \t, \u0022 ...;
# URL's %20) ends in a letter or digit that belongs to the escape, not to a word the secret is part of
_ESCAPE_BEFORE = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf])|(?<=\\u[0-9A-Fa-f]{4})|(?<=%[0-9A-Fa-f]{2}))"


def _alone(needle: str) -> re.Pattern[str]:
    """`needle` where it is not part of a longer word or name: no letter, digit or underscore on either side,
    except one that ends an escape before it."""
    return re.compile(_ESCAPE_BEFORE + re.escape(needle) + r"(?![A-Za-z0-9_])")


def variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire and in reports."""
    out = {secret, quote(secret, safe=""), quote(secret), html.escape(secret), html.escape(secret, quote=False),
           json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    raw = secret.encode("utf-8")
    out.add(base64.b64encode(raw).decode("ascii"))
    out.add(base64.urlsafe_b64encode(raw).decode("ascii"))
    out.add(base64.b64encode(raw).decode("ascii").rstrip("="))
    # base64 of the secret inside a longer buffer (Basic auth's user:key, an echoed JSON document) keeps a
    # stable core whatever the alignment: the characters that depend only on the secret's own bytes
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = 4 if shift else 0
        # the last quantum may mix in the bytes that follow the secret
        core = encoded[start:-4]
        if len(core) >= 8:
            out.add(core)
            out.add(core.replace("+", "-").replace("/", "_"))
    return {v for v in out if len(v) >= MIN_SECRET}


def url_password(url: str | None) -> str | None:
    """The password of a URL's userinfo (https://user:pass@host), a secret of its own."""
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


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
    def __init__(self, secrets: Iterable[str] = (), secret_headers: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        self._bytes: list[bytes] = []
        # the forms of the secrets that are not distinctive: masked only where they stand alone
        self._words: dict[str, re.Pattern[str]] = {}
        self._word_bytes: dict[bytes, re.Pattern[bytes]] = {}
        # headers the configuration declares secret: their values are learnt as secrets when seen
        self.declared = frozenset(h.lower() for h in secret_headers)
        self.secret_headers = SECRET_HEADERS | self.declared
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Learn another secret (a declared-secret header's value seen on a request)."""
        if secret and len(secret) >= MIN_SECRET:
            forms = variants(secret)
            if not distinctive(secret):
                # only the secret as it is can be part of ordinary text; its encoded forms (quoted, escaped,
                # base64) are masked wherever they occur
                self._words.setdefault(secret, _alone(secret))
                self._word_bytes.setdefault(secret.encode("utf-8"),
                                            re.compile(self._words[secret].pattern.encode("utf-8")))
            self._needles = sorted(set(self._needles) | forms, key=len, reverse=True)
            self._bytes = [n.encode("utf-8") for n in self._needles]

    @property
    def active(self) -> bool:
        return bool(self._needles)

    def text(self, value: str) -> str:
        # longest first, so a secret's variant that contains another is masked whole
        for needle in self._needles:
            if needle in value:
                word = self._words.get(needle)
                value = word.sub(MASK, value) if word is not None else value.replace(needle, MASK)
        return value

    def data(self, value: bytes) -> bytes:
        for needle in self._bytes:
            if needle in value:
                word = self._word_bytes.get(needle)
                value = word.sub(MASK.encode("ascii"), value) if word is not None \
                    else value.replace(needle, MASK.encode("ascii"))
        return value

    def header_value(self, name: str, value: str) -> str:
        lowered = name.lower()
        if lowered in self.declared:
            # its value is a secret wherever else it turns up (an echoing server); the standard credential
            # headers are not learnt so, as the suite sends deliberately wrong keys in them
            bare = value.split(" ", 1)[1] if value.lower().startswith(("bearer ", "basic ")) else value
            self.add(bare.strip())
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
        if isinstance(data, str):
            return any(n in data and (n not in self._words or self._words[n].search(data)) for n in self._needles)
        return any(n in data and (n not in self._word_bytes or self._word_bytes[n].search(data))
                   for n in self._bytes)

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
