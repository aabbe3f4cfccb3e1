"""Targets and helpers for the report tests: the reference server made to fail one requirement, or to echo
the key back; and a search for a secret in every form it could take in a file.

Import with `from report_fixtures import ...`; the fixtures are plain functions the test modules re-export.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import textwrap
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from cli_runs import Outcome, run_cli

from conformance.contract.profiles import get_profile
from conformance.server import RunningServer, ServerSettings, start_server
from conformance.server.app import create_app

# the key of the echo tests: specials that URL-quoting and base64 treat differently, and long enough to
# find in any form
CANARY = "sk-CANARY-7q/+Zx=9w8e7r6t5y4u3i2o1p0LEAK"
# a second secret, given only as the password of the base URL's userinfo
URL_CANARY = "pw-URLCANARY-3f9a8b7c6d5e4f"
BROKEN_KEY = "sk-report-tests-0a1b2c3d4e5f"

Scope = dict[str, Any]
Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyRewriter:
    """ASGI middleware that rewrites complete JSON responses and adds headers; streams pass through."""

    def __init__(self, app: App, rewrite: Callable[[Scope, Any], Any],
                 headers: Callable[[Scope], list[tuple[bytes, bytes]]] | None = None,
                 raw: Callable[[Scope, bytes], bytes] | None = None) -> None:
        self.app, self.rewrite, self.headers, self.raw = app, rewrite, headers, raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []
        extra = self.headers(scope) if self.headers else []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = {**message, "headers": [*message.get("headers", []), *extra]}
                return
            content_type = dict(start.get("headers", [])).get(b"content-type", b"")
            if not content_type.startswith(b"application/json"):
                if start:
                    await send(start)
                    start = {}
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            # a body that is not JSON (a deliberately broken one) passes as it is
            with contextlib.suppress(ValueError):
                body = json.dumps(self.rewrite(scope, json.loads(body))).encode()
                body = self.raw(scope, body) if self.raw else body
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _drop_id(scope: Scope, doc: Any) -> Any:
    if isinstance(doc, dict) and doc.get("object") == "chat.completion":
        doc.pop("id", None)
    return doc


def _sent_key(scope: Scope) -> str:
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    value = headers.get("x-api-key") or headers.get("authorization", "")
    return value.removeprefix("Bearer ").strip()


def echoed_forms(key: str) -> dict[str, str]:
    """Every form a hostile target may echo a key in (issue 20): case changed, hex, HTML entities, JSON
    escapes, split by zero-width and other format characters, URL-quoted, base64 at each alignment."""
    raw = key.encode()
    third, half = len(key) // 3, len(key) // 2
    return {"upper": key.upper(), "lower": key.lower(), "swapped": key.swapcase(), "hex": raw.hex(),
            "HEX": raw.hex().upper(), "decimal-entities": "".join(f"&#{ord(c)};" for c in key),
            "hex-entities": "".join(f"&#x{ord(c):X};" for c in key),
            "named-entities": html.escape(key).replace("/", "&sol;").replace("+", "&plus;").replace("=", "&equals;"),
            "zero-width": key[:third] + "\u200b" + key[third:half] + "\u2060" + key[half:] + "\ufeff",
            "soft-hyphen-bidi": key[:half] + "\u00ad\u202e" + key[half:],
            "quoted": quote(key, safe=""), "b64": base64.b64encode(raw).decode(),
            "basic": base64.b64encode(b"user:" + raw).decode(), "b64-shift-1": base64.b64encode(b"k" + raw).decode(),
            "b64-shift-2": base64.b64encode(b"ke" + raw + b"!").decode()}


def deep_echoed_forms(key: str) -> dict[str, str]:
    """The forms the attacker of issue 20 still got through before the deep view of conformance.secret_forms:
    base64 with line breaks, encoded case variants, layered and other escapes, hex with separators, other
    encodings, invisible fillers and markup, full-width forms."""
    raw = key.encode()
    upper, lower = key.upper().encode(), key.lower().encode()

    def fullwidth(text: str) -> str:
        return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else c for c in text)

    forms = {
        # L1: base64 broken into lines, at every alignment
        **{f"b64-mime-{pad}": base64.encodebytes(b"p" * (40 + pad) + raw).decode() for pad in range(6)},
        **{f"b64-crlf-{pad}": base64.encodebytes(b"q" * (50 + pad) + raw).decode().replace("\n", "\r\n")
           for pad in range(3)},
        "b64-json-newlines": json.dumps(base64.encodebytes(b"q" * 51 + raw).decode())[1:-1],
        "b64-pem-64": "\n".join(textwrap.wrap(base64.b64encode(b"z" * 40 + raw).decode(), 64)),
        # L2: a case variant, then encoded
        "url-of-upper": "".join(f"%{b:02X}" for b in upper),
        "b64-of-upper": base64.b64encode(upper).decode(),
        "b64-of-lower": base64.b64encode(lower).decode(),
        "hex-of-upper": upper.hex(),
        "hex-of-lower": lower.hex().upper(),
        # L3: layered and other escapes
        "url-twice": "".join(f"%25{b:02X}" for b in raw),
        "url-percent-u": "".join(f"%u{ord(c):04X}" for c in key),
        "json-U8": "".join(f"\\U{ord(c):08x}" for c in key),
        "octal": "".join(f"\\{b:o}" for b in raw),
        "css": "".join(f"\\{ord(c):x} " for c in key),
        "entity-in-url": quote("".join(f"&#{ord(c)};" for c in key), safe=""),
        # L4: hex with separators
        "hex-colons": ":".join(f"{b:02x}" for b in raw),
        "hex-spaces": " ".join(f"{b:02X}" for b in raw),
        "hex-c-array": ", ".join(f"0x{b:02x}" for b in raw),
        # L5: other encodings
        "base32": base64.b32encode(raw).decode(),
        "base32-shifted": base64.b32encode(b"xy" + raw).decode().lower(),
        "quoted-printable": "".join(f"={b:02X}" for b in raw),
        "quoted-printable-soft-break": "".join(f"={b:02X}" for b in raw[:20]) + "=\n" + "".join(
            f"={b:02X}" for b in raw[20:]),
        "utf16-hex": key.encode("utf-16-le").hex(),
        "utf16-b64": base64.b64encode(key.encode("utf-16-be")).decode(),
        "utf16-nul-interleaved": key.encode("utf-16-le").decode("latin-1"),
        "base85": base64.b85encode(raw).decode(),
        "ascii85": base64.a85encode(raw).decode(),
        "b64-of-b64": base64.b64encode(base64.b64encode(raw)).decode(),
        # L7: compatibility forms
        "fullwidth": fullwidth(key),
        "fullwidth-upper": fullwidth(key.upper()),
    }
    # L6: split by invisible characters that are not Cf, by markup and control sequences
    for name, filler in (("cgj", "\u034f"), ("vs16", "\ufe0f"), ("vs1", "\ufe00"), ("mongolian-fvs", "\u180b"),
                         ("hangul-filler", "\u3164"), ("braille-blank", "\u2800"), ("combining-acute", "\u0301"),
                         ("enclosing-circle", "\u20dd"), ("ansi-reset", "\x1b[0m"), ("html-tags", "<b></b>"),
                         ("nul", "\x00"), ("cdata-seam", "]]><![CDATA["), ("line-break", "\n")):
        forms[f"split-{name}"] = filler.join([key[:9], key[9:21], key[21:]])
    forms["split-every-char-cgj-upper"] = "\u034f".join(key.upper())
    return forms



def _echo(scope: Scope, doc: Any) -> Any:
    key = _sent_key(scope)
    if isinstance(doc, dict) and key:
        doc["echo"] = {"key": key, "b64": base64.b64encode(key.encode()).decode(), "quoted": quote(key, safe=""),
                       "note": f"your key {key} was accepted", **echoed_forms(key), "u-escapes": U_ESCAPES,
                       "deep": deep_echoed_forms(key)}
    return doc


# stands in the echoed document for the key written as JSON \u escapes, put in after json.dumps
U_ESCAPES = "sgp-u-escapes-here"


def _echo_raw(scope: Scope, body: bytes) -> bytes:
    key = _sent_key(scope)
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    return body.replace(U_ESCAPES.encode(), escaped.encode())


def _echo_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    key = _sent_key(scope)
    headers = {k.decode().lower(): v for k, v in scope.get("headers", [])}
    out = [(b"x-echo-authorization", headers.get("authorization", b""))]
    if key:
        out += [(b"x-echo-key", key.encode()), (b"x-echo-b64", base64.b64encode(f"k:{key}".encode()))]
        out += [(f"x-echo-{name}".lower().encode(), value.encode()) for name, value in echoed_forms(key).items()]
    return out


def broken_app(settings: ServerSettings) -> App:
    """The reference server whose completions lack `id` (a MUST of the response shape)."""
    return BodyRewriter(create_app(settings), _drop_id)


def echo_app(settings: ServerSettings) -> App:
    """The reference server that echoes the key it is sent: in JSON bodies (plain, base64, quoted, JSON \\u
    escapes, and every form of `echoed_forms`) and in response headers, on every answer, refusals included."""
    return BodyRewriter(create_app(settings), _echo, _echo_headers, _echo_raw)


def serve(make: Callable[[ServerSettings], App], key: str, profile: str = "sgp") -> RunningServer:
    settings = ServerSettings(profile=get_profile(profile), api_keys=(key,), account_ids=("acct-1",),
                              models=("openai/gpt-4o-mini",))
    return start_server(make(settings), profile=settings.profile)


# test modules import these fixtures, and pytest would make one per importing module: the caches keep one
# server and one run for the whole session
_CACHE: dict[str, Any] = {}


@pytest.fixture(scope="session")
def broken_server() -> Iterator[RunningServer]:
    if "server" not in _CACHE:
        _CACHE["server"] = serve(broken_app, BROKEN_KEY)
    yield _CACHE["server"]
    # session fixtures end with the session: no other module needs it any more
    server = _CACHE.pop("server", None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def broken_run(broken_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """One suite run against the broken server: RESP-001 and PROP-001 fail, the rest pass."""
    if "run" not in _CACHE:
        reports = tmp_path_factory.mktemp("broken") / "reports"
        _CACHE["run"] = run_cli(["run", "--base-url", broken_server.base_url, "--account-id", "acct-1",
                                 "--max-examples", "3"], reports, env={"SGP_API_KEY": BROKEN_KEY})
    outcome: Outcome = _CACHE["run"]
    return outcome


# -- finding a secret, independently of conformance.redact ---------------------------------------------------

_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{12,}={0,2}")


def _b64_decodings(token: bytes) -> Iterator[bytes]:
    """A base64 run decoded at each alignment (it may start mid-quantum inside a longer encoding)."""
    token = token.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    for start in range(4):
        piece = token[start:]
        piece = piece[: len(piece) - len(piece) % 4]
        if piece:
            try:
                yield base64.b64decode(piece, validate=True)
            except ValueError:
                continue


# every Unicode format character (Cf: zero-width space and joiners, BOM, bidi marks, soft hyphen), to delete
_FORMAT = {cp: None for block in (range(0x30000), range(0xE0000, 0xE1000)) for cp in block
           if unicodedata.category(chr(cp)) == "Cf"}
_ESCAPE = re.compile(r"\\+(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([nrt])|([/\"']))")
_CONTROLS = {"n": "\n", "r": "\r", "t": "\t"}


def _unescape(match: re.Match[str]) -> str:
    code, byte, control, literal = match.groups()
    if code or byte:
        return chr(int(code or byte, 16))
    return _CONTROLS[control] if control else literal


def canonical(text: str) -> str:
    """`text` as a reader would see it once every escape is undone (HTML entities, JSON, Python and URL
    escapes, twice over for an escape inside an escape), format characters deleted, case folded."""
    for _ in range(3):
        text = unquote(_ESCAPE.sub(_unescape, html.unescape(text)))
    return text.translate(_FORMAT).casefold()


def secret_forms_found(data: bytes, secret: str) -> list[str]:
    """The forms of `secret` in `data`: plain, URL-quoted, JSON-escaped, base64 at any offset, and, once
    every escape is undone and format characters deleted, in any case or as hex."""
    raw = secret.encode()
    found = []
    for form, needle in (("plain", raw), ("url-quoted", quote(secret, safe="").encode()),
                         ("url-quoted-path", quote(secret).encode()),
                         ("json-escaped", json.dumps(secret)[1:-1].encode())):
        if needle in data:
            found.append(form)
    # the middle of the secret, so a base64 run that starts or ends inside it is caught too
    core = raw[3:-3]
    if any(core in decoded for token in _B64_RUN.findall(data) for decoded in _b64_decodings(token)):
        found.append("base64")
    text = canonical(data.decode("utf-8", errors="replace"))
    if secret.translate(_FORMAT).casefold() in text:
        found.append("escaped, case-changed or split")
    folded = core.decode("utf-8", errors="replace").casefold()
    if any(folded in decoded for run in _HEX_RUN.findall(text) for decoded in _hex_decodings(run)):
        found.append("hex")
    return found


_HEX_RUN = re.compile(r"[0-9a-f]{16,}")


def _hex_decodings(run: str) -> Iterator[str]:
    for start in (0, 1):
        piece = run[start:]
        yield bytes.fromhex(piece[: len(piece) - len(piece) % 2]).decode("utf-8", errors="replace").casefold()


def files_with_secret(root: Path, secret: str) -> dict[str, list[str]]:
    return {str(p): forms for p in sorted(root.rglob("*")) if p.is_file()
            if (forms := secret_forms_found(p.read_bytes(), secret))}
