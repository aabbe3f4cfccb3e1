"""Targets and helpers for the report tests: the reference server made to fail one requirement, or to echo
the key back; and a search for a secret in every form it could take in a file.

Import with `from report_fixtures import ...`; the fixtures are plain functions the test modules re-export.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
                 headers: Callable[[Scope], list[tuple[bytes, bytes]]] | None = None) -> None:
        self.app, self.rewrite, self.headers = app, rewrite, headers

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


def _echo(scope: Scope, doc: Any) -> Any:
    key = _sent_key(scope)
    if isinstance(doc, dict) and key:
        doc["echo"] = {"key": key, "b64": base64.b64encode(key.encode()).decode(), "quoted": quote(key, safe=""),
                       "note": f"your key {key} was accepted"}
    return doc


def _echo_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    key = _sent_key(scope)
    headers = {k.decode().lower(): v for k, v in scope.get("headers", [])}
    out = [(b"x-echo-authorization", headers.get("authorization", b""))]
    if key:
        out += [(b"x-echo-key", key.encode()), (b"x-echo-b64", base64.b64encode(f"k:{key}".encode()))]
    return out


def broken_app(settings: ServerSettings) -> App:
    """The reference server whose completions lack `id` (a MUST of the response shape)."""
    return BodyRewriter(create_app(settings), _drop_id)


def echo_app(settings: ServerSettings) -> App:
    """The reference server that echoes the key it is sent: in JSON bodies (plain, base64, quoted) and in
    response headers, on every answer, refusals included."""
    return BodyRewriter(create_app(settings), _echo, _echo_headers)


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


def secret_forms_found(data: bytes, secret: str) -> list[str]:
    """The forms of `secret` in `data`: plain, URL-quoted, JSON- or HTML-escaped, base64 at any offset."""
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
    return found


def files_with_secret(root: Path, secret: str) -> dict[str, list[str]]:
    return {str(p): forms for p in sorted(root.rglob("*")) if p.is_file()
            if (forms := secret_forms_found(p.read_bytes(), secret))}
