"""The reference server as an ASGI app: `create_app(settings)`.

No module-level state: every app gets its own settings, so tests can run several side by side and wrap
one in middleware (deliberately broken variants) without affecting the others.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.contract.profiles import Profile
from conformance.server import errors
from conformance.server.model import complete
from conformance.server.render import Envelope, chunks, completion_body, sse_event
from conformance.server.request import check_body, parse_body
from conformance.server.settings import ServerSettings

REQUEST_ID_HEADER = "x-request-id"
STREAM_MEDIA_TYPE = "text/event-stream; charset=utf-8"


def route_path(profile: Profile) -> str:
    """Where the operation lives: the path part of the profile's base URL, then the profile's path."""
    base_path = urlsplit(profile.base_url_template.format(host="localhost", port=1)).path
    return base_path.rstrip("/") + profile.path


class RequestIdMiddleware:
    """Gives every HTTP response a fresh request id, error responses of the framework included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER.encode()]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


# nginx's "client closed request": the status the access log shows for a client that went away mid-request
CLIENT_GONE = 499


class AccessLog:
    """Writes one line per HTTP request once its answer is complete (a stream: its last event): method, path,
    status and the time taken in ms, e.g. `POST /v4/beta/chat/completions 200 3.1 ms`. Headers, query and
    bodies are never written, so neither is a key."""

    def __init__(self, app: ASGIApp, write: Callable[[str], None]) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            shown = "-" if status is None else str(status)
            if status == CLIENT_GONE:
                shown += " (the client went away)"
            self.write(f"{scope.get('method', '-')} {scope.get('path', '-')} {shown} {elapsed_ms:.1f} ms")


class ConcurrencyLimit:
    """Handles at most `limit` HTTP requests at once, each until its answer is sent whole (a stream: its last
    event); the others wait in arrival order. Waiting is the server's business: a client sees a slower
    answer, never a different one (CONC-001..004 hold at any limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        # created in the server's event loop, on the first request
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)


def _error_response(error: errors.ApiError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status, headers=error.headers or None)


class ChatCompletions:
    """The endpoint; a class so each app holds its own settings."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.profile = settings.profile

    def _check_auth(self, request: Request) -> None:
        value = request.headers.get(self.profile.auth_header)
        prefix = self.profile.auth_prefix
        if value is None:
            raise errors.unauthorized(self.profile)
        if prefix:
            # the auth scheme is case-insensitive (RFC 9110 §11.1): "bearer K" is as good as "Bearer K"
            if value[: len(prefix)].lower() != prefix.lower():
                raise errors.unauthorized(self.profile)
            value = value[len(prefix) :]
        key = value.strip()
        # compare every configured key in constant time, so timing does not reveal a prefix match
        matches = [hmac.compare_digest(key.encode(), k.encode()) for k in self.settings.api_keys]
        if not key or not any(matches):
            raise errors.unauthorized(self.profile)

    def _check_account(self, request: Request) -> None:
        header = self.profile.account_header
        if header is None or header not in request.headers:
            return
        account = request.headers[header].strip()
        allowed = account in self.settings.account_ids if self.settings.account_ids else bool(account)
        if not allowed:
            raise errors.forbidden_account(self.profile)

    async def handle(self, request: Request) -> Response:
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        try:
            self._check_auth(request)
            self._check_account(request)
            try:
                raw = await request.body()
            except ClientDisconnect:
                # the client went away mid-body: nobody reads an answer, and it is no fault of the server
                return Response(status_code=CLIENT_GONE)
            try:
                body = check_body(parse_body(request.headers.get("content-type"), raw))
            except errors.InvalidRequest as invalid:
                raise errors.invalid_request(self.profile, invalid.issues) from None
            model = body["model"]
            if self.settings.models and model not in self.settings.models:
                raise errors.model_not_found(self.profile, model)
        except errors.ApiError as error:
            return _error_response(error)
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> Response:
        completion = complete(body)
        envelope = Envelope(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body["model"])
        if body.get("stream") is not True:
            return JSONResponse(completion_body(completion, envelope))
        options = body.get("stream_options") or {}
        include_usage = options.get("include_usage") is True
        terminator = self.profile.stream_terminator

        async def events() -> AsyncIterator[bytes]:
            for chunk in chunks(completion, envelope, include_usage=include_usage):
                yield sse_event(chunk)
            if terminator is not None:
                yield sse_event(terminator)

        # no-cache and no proxy buffering: a client must see each event as soon as it is sent
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(events(), media_type=STREAM_MEDIA_TYPE, headers=headers)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: ServerSettings) -> ASGIApp:
    profile = settings.profile

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        # unknown paths and methods answer in the profile's error style too, so clients parse one shape
        response = _error_response(errors.http_error(profile, exc.status_code, str(exc.detail)))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error_response(errors.http_error(profile, 500, "Internal Server Error"))

    app = Starlette(
        routes=[
            Route(route_path(profile), ChatCompletions(settings).handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    # outside Starlette, so that even the 500 of its ServerErrorMiddleware carries a request id
    wrapped: ASGIApp = RequestIdMiddleware(app)
    return ConcurrencyLimit(wrapped, settings.max_concurrency) if settings.max_concurrency else wrapped
