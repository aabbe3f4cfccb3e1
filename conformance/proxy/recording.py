"""What the proxy saw of one exchange (`Observed`), bounded, and the named results an exchange ends with.

The forwarder fills an `Observed` on the event loop with as little work as it can (bytes appended up to a
cap); turning it into the suite's `Exchange` (decoding the body, parsing the request) happens later on the
judging thread (`to_exchange`).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance.transport.exchange import Exchange, RequestSpec, Response

# the named results: every exchange ends with exactly one, shown on its terminal line and counted in the
# report's `proxy.outcomes`
JUDGED = "judged"
FORWARDED = "forwarded"  # not the chat-completions operation: forwarded, never judged
CLIENT_GONE = "client disconnected"
UNREACHABLE = "upstream unreachable"
UPSTREAM_CLOSED = "upstream closed without answering"
UPSTREAM_RESET = "upstream reset mid-answer"
REQUEST_TOO_LARGE = "request too large to judge"
RESPONSE_TOO_LARGE = "response too large to judge"
STREAM_CAPPED = "stream recorded up to the cap"
ENCODING = "content-encoding not decoded"
PROXY_STOPPED = "proxy stopped mid-answer"
BACKLOG = "judging fell behind"
PROXY_ERROR = "proxy error"
OUTCOMES = (
    JUDGED,
    FORWARDED,
    CLIENT_GONE,
    UNREACHABLE,
    UPSTREAM_CLOSED,
    UPSTREAM_RESET,
    REQUEST_TOO_LARGE,
    RESPONSE_TOO_LARGE,
    STREAM_CAPPED,
    ENCODING,
    PROXY_STOPPED,
    BACKLOG,
    PROXY_ERROR,
)
# results after which nothing of the exchange is judged
NOT_JUDGED = frozenset(
    {FORWARDED, UNREACHABLE, UPSTREAM_CLOSED, REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE, ENCODING, BACKLOG, PROXY_ERROR}
)

DECODERS = ("gzip", "x-gzip", "deflate", "identity")


class Capped:
    """Bytes appended up to `limit`; past it they are counted, not kept."""

    __slots__ = ("chunks", "kept", "limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.seen = 0

    def add(self, data: bytes) -> None:
        self.seen += len(data)
        room = self.limit - self.kept
        if room <= 0 or not data:
            return
        piece = data if len(data) <= room else data[:room]
        self.chunks.append(piece)
        self.kept += len(piece)

    @property
    def over(self) -> bool:
        return self.seen > self.limit

    def bytes(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Observed:
    """One request the proxy forwarded and what came back, as far as it was kept.

    Times: `started` is the Unix time the request arrived; `elapsed_ms` runs to the end of the answer (or
    to the moment the exchange was closed for judging). Headers are (name, value) pairs as they crossed
    the proxy, latin-1 decoded. Bodies are kept up to the proxy's cap; `request_seen` / `response_seen`
    count every byte forwarded.
    """

    number: int
    started: float
    method: str
    # the URL the request was forwarded to (the upstream's), and the path as the client asked for it
    url: str
    path: str
    operation: bool
    request_headers: list[tuple[str, str]]
    request_body: bytes = b""
    request_seen: int = 0
    request_over: bool = False
    status: int | None = None
    # the status the proxy answered itself, where the upstream gave none (502)
    proxy_status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    response_seen: int = 0
    response_over: bool = False
    elapsed_ms: float = 0.0
    outcome: str = JUDGED
    # what went wrong, where something did (one line, never the key: it names no header value)
    error: str | None = None
    # Exchange.error_kind of the failure: "closed" (the upstream broke off), "cut" (recording stopped:
    # the cap, the client, the proxy's stop), "connect"
    error_kind: str | None = None
    # the response was still being forwarded when the exchange was closed for judging (the recording cap)
    still_streaming: bool = False

    def header(self, name: str, response: bool = True) -> str | None:
        pairs = self.response_headers if response else self.request_headers
        return next((v for k, v in pairs if k.lower() == name), None)

    @property
    def size(self) -> int:
        """Bytes this record holds: what the judging queue is bounded by."""
        return len(self.request_body) + len(self.response_body)

    @cached_property
    def params(self) -> dict[str, Any] | None:
        """The request body as a JSON object, where it is one and arrived whole (read once the exchange is
        handed over: the body is set then)."""
        if self.request_over or not self.request_body:
            return None
        try:
            value = json.loads(self.request_body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def model(self) -> str | None:
        params = self.params
        model = params.get("model") if params else None
        return model if isinstance(model, str) else None

    @property
    def streamed(self) -> bool:
        media = (self.header("content-type") or "").split(";")[0].strip().lower()
        params = self.params
        return media == "text/event-stream" or bool(params and params.get("stream") is True)

    def decoded_body(self, limit: int) -> tuple[bytes, str | None]:
        """(the response body as the client's HTTP library would hand it over, why it is incomplete or
        cannot be decoded); gzip and deflate are undone, at most `limit` bytes come out (a small body
        may inflate to any size)."""
        encoding = (self.header("content-encoding") or "identity").strip().lower()
        body = self.response_body
        if encoding in ("", "identity"):
            return body, None
        if encoding not in DECODERS:
            return body, f"content-encoding {encoding!r} is not decoded by the proxy"
        try:
            if encoding in ("gzip", "x-gzip"):
                decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out = decoder.decompress(body, limit)
            else:
                try:
                    decoder = zlib.decompressobj()
                    out = decoder.decompress(body, limit)
                except zlib.error:
                    # "deflate" is raw deflate to some servers
                    decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    out = decoder.decompress(body, limit)
        except zlib.error as exc:
            return b"", f"the {encoding} body does not decode ({exc})"
        if decoder.unconsumed_tail:
            return out, f"the decoded body is over {limit} bytes"
        return out, None

    def to_exchange(self, limit: int) -> tuple[Exchange, str | None]:
        """The suite's Exchange of what was observed (the body decoded, cut as the recording was), and why
        its body could not be decoded, if so."""
        params = self.params
        headers: dict[str, str] = {}
        for name, value in self.request_headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        stream = bool(params and params.get("stream") is True)
        spec = RequestSpec(f"proxied #{self.number}", self.method, headers, self.request_body, params, stream)
        if self.status is None:
            return Exchange(spec.scenario, self.url, spec, None, self.error, self.error_kind), None
        body, problem = self.decoded_body(limit)
        truncated = None
        if self.response_over or self.error_kind == "cut":
            truncated = self.error or f"recording stopped at {len(self.response_body)} bytes"
        response = Response(self.status, list(self.response_headers), body, self.elapsed_ms, truncated)
        return Exchange(spec.scenario, self.url, spec, response, self.error, self.error_kind), problem
