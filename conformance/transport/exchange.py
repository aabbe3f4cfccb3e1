"""One request and what came back for it: the unit every check judges.

A response is parsed once: the strict JSON parse and the SSE events are cached on the exchange, and a
check's own view of it (the chunks, the assembled stream, the lenient parse) is cached there too by
`per_exchange`, so dozens of checks on one case never parse it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from conformance.transport import sse, strictjson


@dataclass(frozen=True)
class RequestSpec:
    """A request the suite means to send; the body is kept raw so invalid bodies can be sent as they are."""

    scenario: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # the parsed request, where the body is JSON: checks compare the response with it
    params: dict[str, Any] | None = None
    stream: bool = False
    # the operation's URL, where it is not the client's own (the preflight's guesses at a mistyped base URL)
    url: str | None = None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_ms: float = 0.0
    # the body was cut at the configured size limit, or the stream at its time limit
    truncated: str | None = None
    # milliseconds from the response's headers to the end of its body: how long a stream lasted (STRM-019
    # needs one that lasted a second to see a clock cross a second boundary); None where unknown
    body_ms: float | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Exchange:
    scenario: str
    url: str
    request: RequestSpec
    response: Response | None
    # a transport failure (refused, reset, timeout, TLS): no response, or a response cut short
    error: str | None = None
    # what kind of failure `error` is: "connect" (no connection), "timeout" (no answer in time), "closed"
    # (the server closed the connection: before any byte of an answer, or mid-answer when a response is
    # set), "cut" (the client stopped reading at its own size or time limit), "other"
    error_kind: str | None = None
    # what `per_exchange` functions computed from this exchange, by function: read-only to every check
    views: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.response is not None and self.error is None and 200 <= self.response.status < 300

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None

    @cached_property
    def json(self) -> Any:
        """The body parsed as strict JSON, or None (see json_error)."""
        return self._parsed[0]

    @cached_property
    def json_error(self) -> str | None:
        return self._parsed[1]

    @cached_property
    def _parsed(self) -> tuple[Any, str | None]:
        if self.response is None:
            return None, "no response"
        try:
            return strictjson.loads(self.response.body), None
        except strictjson.StrictJSONError as exc:
            return None, str(exc)

    @cached_property
    def events(self) -> sse.Stream:
        if self.response is None:
            return sse.Stream()
        return sse.parse(self.response.text)

    def to_wire(self) -> dict[str, Any]:
        """The exchange as plain data (for an xdist worker: the preflight's answer, not sent twice)."""
        spec, response = self.request, self.response
        return {"scenario": self.scenario, "url": self.url, "error": self.error, "error_kind": self.error_kind,
                "request": {"scenario": spec.scenario, "method": spec.method, "headers": dict(spec.headers),
                            "body": spec.body, "params": spec.params, "stream": spec.stream, "url": spec.url},
                "response": None if response is None else {
                    "status": response.status, "headers": [list(h) for h in response.headers],
                    "body": response.body, "elapsed_ms": response.elapsed_ms, "truncated": response.truncated,
                    "body_ms": response.body_ms}}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Exchange:
        r = data["response"]
        response = None if r is None else Response(r["status"], [(k, v) for k, v in r["headers"]], r["body"],
                                                   r["elapsed_ms"], r["truncated"], r.get("body_ms"))
        return cls(data["scenario"], data["url"], RequestSpec(**data["request"]), response, data["error"],
                   data["error_kind"])

    def describe(self) -> str:
        if self.response is None:
            return f"{self.scenario}: no response ({self.error})"
        return f"{self.scenario}: HTTP {self.response.status}"


T = TypeVar("T")


def per_exchange(function: Callable[[Exchange], T]) -> Callable[[Exchange], T]:
    """Compute `function(exchange)` once per exchange and keep it in `exchange.views`. For pure views of a
    response (what it parses to): their results are shared, so a caller must not change them."""
    key = f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def cached(exchange: Exchange) -> T:
        views = exchange.views
        if key not in views:
            views[key] = function(exchange)
        value: T = views[key]
        return value

    return cached
