"""What the proxy tests share: a proxy started in-process, the official SDKs pointed at a base URL, and small
upstreams that misbehave on purpose (endless streams, resets, echoes, huge bodies)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from conformance.cli import build_parser
from conformance.contract.profiles import get_profile
from conformance.proxy.cli import options_from
from conformance.proxy.service import ProxyService
from conformance.server import RunningServer, start_server

MODEL = "openai/gpt-4o-mini"
PROMPT = "Count from 1 to 5, separated by spaces."


class Lines(io.StringIO):
    """The proxy's terminal, kept for the test to read."""

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@contextmanager
def running_proxy(upstream: str, tmp_path: Path, *flags: str, profile: str = "sgp") -> Iterator[ProxyService]:
    """A proxy on a free loopback port in front of `upstream`, reports to tmp_path/reports; stopped after."""
    args = build_parser().parse_args(
        [
            "proxy",
            "--upstream",
            upstream,
            "--port",
            "0",
            "--profile",
            profile,
            "--report-dir",
            str(tmp_path / "reports"),
            *flags,
        ]
    )
    options, settings = options_from(args, env={})
    service = ProxyService(options, settings, out=Lines())
    service.start()
    try:
        yield service
    finally:
        service.stop()


def terminal(service: ProxyService) -> list[str]:
    out = service.printer.stream
    assert isinstance(out, Lines)
    return out.lines()


def wait_for_lines(service: ProxyService, count: int, timeout: float = 10.0) -> list[str]:
    """The proxy's exchange lines once there are `count` of them (judging runs on its own thread)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        lines = [line for line in terminal(service) if line.startswith("#")]
        if len(lines) >= count:
            return lines
        done.wait(0.01)
    raise AssertionError(f"expected {count} exchange lines, got: {terminal(service)}")


def sdk_client(profile: str, base_url: str, key: str, account: str = "acct-proxy-test") -> Any:
    """The profile's official SDK client for `base_url` (the root URL for sgp, .../v1 for openai)."""
    http = httpx.Client(trust_env=False, timeout=10)
    if profile == "sgp":
        from scale_gp import SGPClient

        return SGPClient(api_key=key, account_id=account, base_url=base_url, max_retries=0, http_client=http)
    from openai import OpenAI

    return OpenAI(api_key=key, base_url=base_url, max_retries=0, http_client=http)


def sdk_create(client: Any, profile: str, stream: bool) -> Any:
    """One SDK call as an application makes it; a stream is read to its end (its chunks returned)."""
    completions = client.beta.chat.completions if profile == "sgp" else client.chat.completions
    kwargs: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16}
    if not stream:
        return completions.create(**kwargs)
    return list(completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))


def comparable(value: Any) -> Any:
    """An SDK result as plain data without what differs from call to call (ids, times)."""
    data = value.model_dump() if hasattr(value, "model_dump") else value
    if isinstance(data, list):
        return [comparable(item) for item in data]
    if isinstance(data, dict):
        return {k: comparable(v) for k, v in data.items() if k not in ("id", "created")}
    return data


def report_doc(service: ProxyService) -> dict[str, Any]:
    return json.loads((Path(service.settings.report_dir) / "conformance.json").read_text(encoding="utf-8"))


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in doc["results"]}


# -- upstreams that misbehave on purpose ----------------------------------------------------------------

Asgi = Callable[[dict[str, Any], Any, Any], Any]


def chunk(content: str, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": content}, "logprobs": None, "finish_reason": finish}
        ],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def answered_health(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Drain the request; True when it needed no more than this: not HTTP, or a GET (a short 200)."""
    if scope["type"] != "http":
        return True
    await drain(receive)
    if scope["method"] != "GET":
        return False
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
    return True


async def drain(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


class EndlessStream:
    """An SSE upstream that never ends: a chunk every `gap` seconds, padded to `size` bytes; `closed` is set
    when its client (the proxy) goes away. A GET gets a short 200."""

    def __init__(self, gap: float = 0.02, size: int = 200) -> None:
        self.gap = gap
        self.size = size
        self.closed = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answered_health(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            while not gone.done():
                await send({"type": "http.response.body", "body": chunk("x" * self.size), "more_body": True})
                await asyncio.sleep(self.gap)
        finally:
            gone.cancel()
            self.closed.set()


async def _wait_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class Slow:
    """Takes `delay` seconds to answer; `gone` is set when its client (the proxy) leaves before that."""

    def __init__(self, delay: float = 10.0) -> None:
        self.delay = delay
        self.gone = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await drain(receive)
        waiter = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({waiter}, timeout=self.delay)
        if waiter in done:
            self.gone.set()
            return
        waiter.cancel()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"late"})


class Echo:
    """Answers every request with what it received, as JSON (status 200), and extra headers of its own."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await drain(receive)
        seen = {
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_bytes": len(body),
            "body_head": body[:200].decode("latin-1"),
        }
        raw = json.dumps(seen).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"x-upstream", b"echo"),
                    (b"set-cookie", b"session=abc123secretcookie"),
                    (b"Date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})


class Scripted:
    """Answers with a fixed status, headers and body chunks; `fail_after` breaks the connection after that
    many chunks (an exception in an ASGI app mid-answer makes uvicorn close the connection). A GET gets a
    short 200."""

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes], fail_after: int | None = None
    ) -> None:
        self.status, self.headers, self.chunks, self.fail_after = status, headers, chunks, fail_after

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answered_health(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        for number, piece in enumerate(self.chunks):
            if self.fail_after is not None and number == self.fail_after:
                raise ConnectionResetError("the upstream breaks off on purpose")
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def serve(app: Asgi, profile: str = "sgp", port: int = 0) -> RunningServer:
    return start_server(app, port=port, profile=get_profile(profile))
