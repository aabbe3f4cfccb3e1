"""What a mutant is and sees: the request (`Call`) and answer (`Reply`) its hooks rewrite, the `Mutant` itself
and the ASGI middleware that applies it around the reference app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.contract import catalogue
from conformance.contract.profiles import Profile
from conformance.server.settings import ServerSettings

KEY = "sk-mutant-key-4b1d29a9e6c1"
ACCOUNT = "acct-mutant"
MODEL = "openai/gpt-4o-mini"
SGP, OPENAI = "sgp", "openai"
BOTH = (SGP, OPENAI)


@dataclass
class Call:
    """One request as it reaches the mutant; its hooks may change headers and body before the server."""

    settings: ServerSettings
    headers: dict[str, str]
    body: bytes

    @property
    def profile(self) -> Profile:
        return self.settings.profile

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def set_json(self, value: Any) -> None:
        self.body = json.dumps(value).encode()

    def key(self) -> str | None:
        """The key the request carries in its profile's header, without the scheme prefix."""
        value = self.headers.get(self.profile.auth_header)
        if value is None:
            return None
        prefix = self.profile.auth_prefix
        return value[len(prefix):].strip() if value.lower().startswith(prefix.lower()) else value.strip()

    def authorize(self) -> None:
        """Make the request carry the server's valid key, whatever it sent."""
        self.headers[self.profile.auth_header] = f"{self.profile.auth_prefix}{self.settings.api_keys[0]}"


@dataclass
class Reply:
    """One buffered answer; the response hooks rewrite it before it is sent."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k != name]
        if value is not None:
            self.headers.append((name, value))

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip()

    @property
    def is_json(self) -> bool:
        return self.media_type == "application/json"

    @property
    def is_stream(self) -> bool:
        return self.media_type == "text/event-stream"

    def json(self) -> Any:
        return json.loads(self.body)

    def set_json(self, value: Any, *, allow_nan: bool = False) -> None:
        self.body = json.dumps(value, allow_nan=allow_nan).encode()


def json_reply(status: int, body: Any, content_type: str = "application/json") -> Reply:
    return Reply(status, [("content-type", content_type)], json.dumps(body).encode())


RequestHook = Callable[[Call], Reply | None]
ResponseHook = Callable[[Call, Reply], None]


@dataclass(frozen=True)
class Mutant:
    """One fault. `requirement` is the ID that must fail (None for a negative control)."""

    fault: str
    requirement: str | None
    profiles: tuple[str, ...]
    request: RequestHook | None = None
    response: ResponseHook | None = None
    # for negative controls: the SHOULD/INFO requirements that report this open behaviour (and no others)
    allowed: frozenset[str] = frozenset()
    # extra CLI arguments the run needs to reach the fault (more generated cases for property mutants)
    run_args: tuple[str, ...] = ()
    # the exit code the run must end with, where it is not the level's (3: the credentials were refused)
    exit_code: int | None = None
    # seconds to wait (without blocking the server) before answering a request
    delay: Callable[[Call], float] | None = None
    # seconds over which the events of every 200 stream are spread (a server that streams at a model's pace)
    stream_seconds: float = 0.0

    @property
    def level(self) -> str:
        """The level as the kill table shows it ("SHOULD (MUST under openai)" where the profiles differ)."""
        return catalogue.get(self.requirement).level_text() if self.requirement else "-"

    def wrap(self, app: ASGIApp, settings: ServerSettings) -> ASGIApp:
        return MutantMiddleware(app, self, settings)


class MutantMiddleware:
    """Buffers the request (and, when the mutant rewrites answers, the response) around the reference app."""

    def __init__(self, app: ASGIApp, mutant: Mutant, settings: ServerSettings) -> None:
        self.app = app
        self.mutant = mutant
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        call = Call(self.settings, headers, body)
        wait = self.mutant.delay(call) if self.mutant.delay else 0.0
        if wait:
            await asyncio.sleep(wait)
        early = self.mutant.request(call) if self.mutant.request else None
        if early is not None:
            self._finish(call, early)
            await _send_reply(send, early)
            return
        call.headers["content-length"] = str(len(call.body))
        scope = {**scope, "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in call.headers.items()]}
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": call.body, "more_body": False}
            # later calls wait for the real disconnect: a streaming response listens for it
            return await receive()

        if self.mutant.response is None:
            await self.app(scope, replay, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, capture)
        reply = Reply(start["status"], [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]],
                      b"".join(chunks))
        self._finish(call, reply)
        await _send_reply(send, reply, self.mutant.stream_seconds if reply.is_stream else 0.0)

    def _finish(self, call: Call, reply: Reply) -> None:
        if self.mutant.response is not None:
            self.mutant.response(call, reply)


async def _send_reply(send: Send, reply: Reply, seconds: float = 0.0) -> None:
    """Send a buffered answer: at once, or with `seconds`, its SSE events spread evenly over that time."""
    headers = [(k, v) for k, v in reply.headers if k not in ("content-length", "transfer-encoding")]
    headers.append(("content-length", str(len(reply.body))))
    await send({"type": "http.response.start", "status": reply.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    events = [e + b"\n\n" for e in reply.body.split(b"\n\n") if e] if seconds else []
    if len(events) < 2 or b"".join(events) != reply.body:
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})
        return
    for event in events[:-1]:
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await asyncio.sleep(seconds / (len(events) - 1))
    await send({"type": "http.response.body", "body": events[-1], "more_body": False})
