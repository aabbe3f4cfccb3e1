"""The forwarding ASGI app: every request goes to the upstream unchanged, every answer comes back as it arrives.

Unchanged means: the method, the raw path and query (with the upstream's path prefix put before them), every
header but the hop-by-hop ones (RFC 9110 7.6.1: Connection and the headers it names, Keep-Alive,
Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade) and Host (the upstream's) and Expect (the proxy
answers 100-continue itself), and the body, streamed through. The answer's status, headers (hop-by-hop ones
dropped, Content-Encoding and Content-Length kept) and raw bytes go back the same way: the body is never
decoded on the way, so a gzip answer reaches the client as the upstream compressed it, and each SSE event is
sent on as soon as its bytes arrive. The proxy adds no header to a forwarded answer (uvicorn's `server` and
`date` are off).

While forwarding, the app keeps what judging needs, bounded (`recording.Capped`), and hands a finished
`Observed` to `on_done` (called on the event loop: it must not block). An exchange ends with one named
result (`recording.OUTCOMES`): the client went away (the upstream request is dropped), the upstream could
not be reached (the client gets a 502 whose JSON body says so), the upstream broke off mid-answer (the
client's connection is closed the same way), or a body passed the cap (forwarded whole, recorded up to the
cap, and the exchange is handed over for judging at that moment, so an endless stream is judged too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from conformance.contract.profiles import Profile
from conformance.offline.recorded import is_operation
from conformance.proxy import recording
from conformance.proxy.options import Upstream
from conformance.proxy.recording import Capped, Observed
from conformance.transport.client import describe_error, host_port, unanswered

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# request headers the proxy does not pass on: Host names the upstream, and 100-continue is answered here
NOT_FORWARDED = HOP_BY_HOP | {b"host", b"expect"}
PROXY_HEADER = b"x-sgp-conformance-proxy"
CONNECT_TIMEOUT = 10.0
# shorter than the 5 s a uvicorn or gunicorn upstream keeps an idle connection: the pool drops it first
KEEPALIVE_EXPIRY = 4.0
# uvicorn logs this when an app ends without finishing its answer: the forwarder does so on purpose, to
# pass an upstream's broken-off answer on as a broken-off answer
_UNFINISHED = "ASGI callable returned without completing response"


class ClientGone(Exception):
    """The client disconnected while its request body was still being forwarded."""


class QuietUnfinished(logging.Filter):
    """Drops uvicorn's error line for an answer the forwarder left unfinished on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_UNFINISHED)


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """The header names a Connection header lists: hop-by-hop too (RFC 9110 7.6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    }


def forwardable(headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """`headers` without the `dropped` names and those the Connection header lists; order and case kept."""
    named = _connection_tokens(headers)
    return [(k, v) for k, v in headers if k.lower() not in dropped and k.lower() not in named]


def describe(exc: httpx.HTTPError, url: httpx.URL, got_response: bool) -> str:
    """One line naming a failure to reach or read the upstream. The async connect of httpx says only "All
    connection attempts failed": the operating system's reason is further down the exception's chain."""
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        for _ in range(8):
            if cause is None:
                break
            if isinstance(cause, ConnectionRefusedError):
                return f"connection refused by {host_port(url)}"
            if isinstance(cause, OSError) and cause.errno is not None and not isinstance(cause, httpx.HTTPError):
                exc = httpx.ConnectError(cause.strerror or str(cause))
                break
            cause = cause.__cause__ or cause.__context__
    return describe_error(exc, url, CONNECT_TIMEOUT, got_response=got_response)


def _text(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


def new_client(verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The upstream client: no timeout but the connect one (the client decides how long it waits, and its
    going away ends the upstream request), no connection limit (every open stream holds one), no cookie
    jar (a Set-Cookie is the client's, and a jar would grow), no environment proxy. `verify` is the TLS
    trust (`ssl_context` of the proxy's settings: --ca-bundle, --insecure); by default the environment's."""
    if verify is None:
        from conformance.config import Config
        from conformance.config.network import ssl_context

        verify = ssl_context(Config())
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_EXPIRY),
        follow_redirects=False,
        trust_env=False,
        cookies=jar,
        verify=verify,
    )


class Forwarder:
    """The ASGI app (http only). `on_done(observed)` gets each finished exchange, once, on the event loop."""

    def __init__(
        self,
        upstream: Upstream,
        profile: Profile,
        on_done: Callable[[Observed], None],
        max_body_bytes: int,
        client: httpx.AsyncClient | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream
        self.verify = verify
        self.profile = profile
        self.on_done = on_done
        self.max_body_bytes = max_body_bytes
        self._client = client
        self._base = httpx.URL(upstream.origin)
        self._prefix = upstream.prefix.encode("latin-1")
        self._numbers = itertools.count(1)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_client(self.verify)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # websockets are not forwarded: uvicorn refuses the handshake when the app returns
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        path = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        method: str = scope["method"]
        refused = refusal(method, raw_path, list(scope["headers"]))
        if refused is None:
            try:
                target = self._base.copy_with(raw_path=self._prefix + raw_path + (b"?" + query if query else b""))
            except (httpx.InvalidURL, ValueError) as exc:
                refused = f"the request target cannot be forwarded ({exc})"
        if refused is not None:
            await _answer_error(send, self.profile, 400, refused, b"bad-request")
            return
        headers = forwardable(list(scope["headers"]), NOT_FORWARDED)
        observed = Observed(
            next(self._numbers),
            time.time(),
            method,
            str(target),
            path,
            is_operation(method, raw_path.decode("latin-1"), self.profile),
            _text(headers),
        )
        exchange = _Exchange(self, observed, time.perf_counter())
        try:
            await exchange.run(receive, send, target, headers)
        except asyncio.CancelledError:
            exchange.close(recording.PROXY_STOPPED, "the proxy stopped before the answer ended", "cut")
            raise
        except Exception as exc:  # a fault of the proxy itself: named, and the proxy goes on serving
            exchange.close(recording.PROXY_ERROR, f"{type(exc).__name__}: {exc}", "other")
            if not exchange.started:
                await _answer_502(send, self.profile, f"the proxy failed forwarding the request: {type(exc).__name__}")


class _Exchange:
    """One request on its way through: the recording and the single hand-over to `on_done`."""

    def __init__(self, forwarder: Forwarder, observed: Observed, t0: float) -> None:
        self.forwarder = forwarder
        self.observed = observed
        self.t0 = t0
        limit = forwarder.max_body_bytes
        self.request = Capped(limit)
        self.response = Capped(limit)
        self.started = False
        self.handed_over = False

    def close(
        self,
        outcome: str | None = None,
        error: str | None = None,
        kind: str | None = None,
        still_streaming: bool = False,
    ) -> None:
        """Hand the exchange over for judging (once): its bodies as kept, its result."""
        if self.handed_over:
            return
        self.handed_over = True
        observed = self.observed
        observed.elapsed_ms = (time.perf_counter() - self.t0) * 1000
        observed.request_body, observed.request_seen = self.request.bytes(), self.request.seen
        observed.request_over = self.request.over
        observed.response_body, observed.response_seen = self.response.bytes(), self.response.seen
        observed.response_over = self.response.over
        observed.still_streaming = still_streaming
        if error is not None:
            observed.error, observed.error_kind = error, kind
        if outcome is not None:
            observed.outcome = outcome
        elif not observed.operation:
            observed.outcome = recording.FORWARDED
        elif observed.request_over:
            observed.outcome = recording.REQUEST_TOO_LARGE
        self.forwarder.on_done(observed)

    async def _upload(self, first: bytes, receive: Receive) -> AsyncIterator[bytes]:
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            self.request.add(chunk)
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def run(self, receive: Receive, send: Send, target: httpx.URL, headers: list[tuple[bytes, bytes]]) -> None:
        message = await receive()
        if message["type"] == "http.disconnect":
            self.close(recording.CLIENT_GONE, "the client disconnected before sending its request", "cut")
            return
        first = message.get("body", b"")
        self.request.add(first)
        whole = not message.get("more_body", False)
        content: bytes | AsyncIterator[bytes] | None = (first or None) if whole else self._upload(first, receive)
        # a client that gives up while the upstream is still thinking ends the upstream request too; while a
        # body is still being read, the upload itself notices the client going
        watch = asyncio.ensure_future(_disconnected(receive)) if whole else None
        try:
            upstream = await self._upstream_answer(send, target, headers, content, whole, watch)
            if upstream is None:
                return
            try:
                await self._answer(upstream, send, target, watch or asyncio.ensure_future(_disconnected(receive)))
            finally:
                await upstream.aclose()
        finally:
            if watch is not None:
                watch.cancel()

    async def _upstream_answer(
        self,
        send: Send,
        target: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes] | None,
        whole: bool,
        watch: asyncio.Future[None] | None,
    ) -> httpx.Response | None:
        """The upstream's answer (its head: the body is still to be read), or None when the exchange ended
        without one: the client went away, or the upstream could not be reached (the client got a 502)."""
        forwarder = self.forwarder
        sending = asyncio.ensure_future(self._send(target, headers, content, replayable=whole))
        try:
            if watch is not None:
                await asyncio.wait((sending, watch), return_when=asyncio.FIRST_COMPLETED)
                if not sending.done():
                    self.close(recording.CLIENT_GONE, "the client disconnected before the upstream answered", "cut")
                    return None
            return await sending
        except ClientGone:
            self.close(recording.CLIENT_GONE, "the client disconnected while sending its request", "cut")
            return None
        except httpx.HTTPError as exc:
            why = describe(exc, target, got_response=False)
            connect = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol)
            self.observed.proxy_status = 502
            self.close(
                recording.UNREACHABLE if connect else recording.UPSTREAM_CLOSED, why, "connect" if connect else "closed"
            )
            await _answer_502(send, forwarder.profile, f"the upstream {forwarder.upstream.url} did not answer: {why}")
            return None
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError, ClientGone):
                    await sending

    async def _send(
        self,
        target: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes] | None,
        replayable: bool,
    ) -> httpx.Response:
        client = self.forwarder.client
        request = httpx.Request(self.observed.method, target, headers=headers, content=content)
        try:
            return await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            # a kept-alive connection the upstream closed just before this request arrived: the request
            # never reached it, and a body held whole can go again on a fresh connection (as the SDKs do)
            if not (replayable and unanswered(exc, got_response=False)):
                raise
            request = httpx.Request(self.observed.method, target, headers=headers, content=content)
            return await client.send(request, stream=True)

    async def _answer(
        self, upstream: httpx.Response, send: Send, target: httpx.URL, watch: asyncio.Future[None]
    ) -> None:
        observed = self.observed
        raw = list(upstream.headers.raw)
        observed.status = upstream.status_code
        observed.response_headers = _text(forwardable(raw, HOP_BY_HOP))
        await send(
            {"type": "http.response.start", "status": upstream.status_code, "headers": forwardable(raw, HOP_BY_HOP)}
        )
        self.started = True
        pump = asyncio.ensure_future(self._pump(upstream, send, target))
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump.done():
                pump.cancel()
            watch.cancel()
        if not pump.done() or pump.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self.close(
                recording.CLIENT_GONE, f"the client disconnected after {self.response.seen} bytes of the answer", "cut"
            )
            return
        failure = pump.exception()
        if failure is None:
            self.close()
            return
        if not isinstance(failure, httpx.HTTPError):
            raise failure
        why = describe(failure, target, got_response=True)
        self.close(recording.UPSTREAM_RESET, f"{why} (after {self.response.seen} bytes)", "closed")
        # the client's connection is closed unfinished, as the upstream's was: uvicorn does that when the
        # app returns mid-answer (QuietUnfinished keeps its log line off the terminal)

    async def _pump(self, upstream: httpx.Response, send: Send, target: httpx.URL) -> None:
        observed = self.observed
        limit = self.forwarder.max_body_bytes
        async for chunk in upstream.aiter_raw():
            self.response.add(chunk)
            if self.response.seen > limit and not self.handed_over and observed.operation:
                # past the cap the rest is forwarded unrecorded; what was kept is judged now, so an
                # endless stream is judged too (its line says it was still streaming)
                streamed = (observed.header("content-type") or "").lower().startswith("text/event-stream")
                self.close(
                    recording.STREAM_CAPPED if streamed else recording.RESPONSE_TOO_LARGE,
                    f"recording stopped at the proxy's cap of {limit} bytes; the rest was forwarded",
                    "cut",
                    still_streaming=True,
                )
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (or the answer is complete: uvicorn then says disconnect too)."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def error_body(profile: Profile, message: str) -> dict[str, Any]:
    """The proxy's own error answer, in the profile's error shape so the client's SDK shows the message."""
    if profile.error_style == "fastapi":
        return {"detail": message}
    return {"error": {"message": message, "type": "proxy_error", "param": None, "code": "bad_gateway"}}


def refusal(method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request is not forwarded but answered 400 by the proxy itself, or None. The proxy forwards to
    its --upstream only: a request target that is not a path (absolute-form `http://host/...`, `@host`,
    authority-form, `*`) and CONNECT would name another destination or none. A request with both
    Content-Length and Transfer-Encoding is a smuggling pattern a server may refuse (RFC 9112 §6.3)."""
    if method.upper() == "CONNECT":
        return "CONNECT is not supported: the proxy forwards requests to its --upstream only"
    if not raw_path.startswith(b"/"):
        shown = raw_path[:60].decode("latin-1")
        return (f"the request target {shown!r} is not a path (origin-form, RFC 9112 §3.2.1): the proxy forwards "
                "to its --upstream only")
    names = {name.lower() for name, _ in headers}
    if b"content-length" in names and b"transfer-encoding" in names:
        return "both Content-Length and Transfer-Encoding were sent (RFC 9112 §6.3): refused"
    return None


async def _answer_502(send: Send, profile: Profile, why: str) -> None:
    await _answer_error(send, profile, 502, why, b"bad-gateway")


async def _answer_error(send: Send, profile: Profile, status: int, why: str, kind: bytes) -> None:
    """The proxy's own answer, in the profile's error shape, marked with the proxy's header."""
    body = json.dumps(error_body(profile, f"sgp-conformance proxy: {why}")).encode("utf-8")
    extra = [(b"connection", b"close")] if status == 400 else []
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (PROXY_HEADER, kind),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
