"""The reference server (or any ASGI app) with a count of the requests that reached it, to prove what a run
sent: nothing before a configuration error, one request before a refused key, a signal once the n-th arrived.

    with counting_server("sgp", latency_ms=300) as (server, count):
        ...
        assert count.wait_for(3, timeout=30)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cli_runs import REFERENCE_KEY
from starlette.types import ASGIApp, Receive, Scope, Send

from conformance.contract.profiles import get_profile
from conformance.server import RunningServer, ServerSettings, create_app, start_server


class Counting:
    """ASGI middleware that counts the HTTP requests reaching `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0
        self._changed = threading.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with self._changed:
                self.count += 1
                self._changed.notify_all()
        await self.app(scope, receive, send)

    def wait_for(self, n: int, timeout: float) -> bool:
        """Whether the n-th request arrived within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= n, timeout)


@contextmanager
def counting_server(profile: str = "sgp", app: ASGIApp | None = None,
                    **fields: Any) -> Iterator[tuple[RunningServer, Counting]]:
    """The reference server of `profile` (ServerSettings `fields`; the key is REFERENCE_KEY), or `app`, counted."""
    fields.setdefault("api_keys", (REFERENCE_KEY,))
    settings = ServerSettings(profile=get_profile(profile), **fields)
    counting = Counting(app if app is not None else create_app(settings))
    server = start_server(counting, profile=settings.profile)
    try:
        yield server, counting
    finally:
        server.stop()
