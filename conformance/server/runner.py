"""Running an ASGI app under uvicorn: in a background thread (tests, the embedded target) or in the
foreground (the `serve` command); over TLS when given a certificate (certfile: PEM chain, keyfile: its key)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from conformance.contract.profiles import Profile
from conformance.server.app import AccessLog, create_app
from conformance.server.settings import ServerSettings


class ServerStartError(RuntimeError):
    pass


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def base_url(profile: Profile, host: str, port: int, tls: bool = False) -> str:
    url = profile.base_url_template.format(host=_url_host(host), port=port)
    return "https://" + url.removeprefix("http://") if tls else url


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; binding it ourselves gives the real port at once when port is 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets of a TCP-proto listener,
    # and without it every response on a kept-alive connection waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _config(app: ASGIApp, certfile: str | None = None, keyfile: str | None = None) -> uvicorn.Config:
    # log_config=None leaves the process's logging alone; warnings still reach the root logger.
    # A short graceful timeout: stop() must not hang on a client that keeps a stream open.
    return uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def _resolve(app_or_settings: ASGIApp | ServerSettings, profile: Profile | None) -> tuple[ASGIApp, Profile]:
    if isinstance(app_or_settings, ServerSettings):
        return create_app(app_or_settings), profile or app_or_settings.profile
    if profile is None:
        raise TypeError("start_server(app) needs profile= to know the base URL; settings carry their own")
    return app_or_settings, profile


class _Server(uvicorn.Server):
    """uvicorn's server, stopped without its fixed pauses: the main loop wakes at once when asked to stop
    (`wake`) instead of at its next tick (TICK_S), and a shutdown with no connection open skips the 0.1 s
    uvicorn gives open connections to act on theirs. A stop took 0.16 s and now takes about 1 ms; with an idle
    kept-alive connection 0.1 s; a response still being sent (a stream) is waited for as uvicorn waits, up to
    the graceful time-out of 2 s. A connection the server has not accepted yet is not served. A test session
    stops servers by the hundred, and every `sgp-conformance run` against the embedded server stops one."""

    # seconds between two ticks of the main loop: uvicorn's (its date header, its checks of should_exit)
    TICK_S = 0.1

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Future[None] | None = None

    async def main_loop(self) -> None:
        # uvicorn's own loop (Server.main_loop), whose sleep between ticks `wake` ends early: a future resolved
        # by a timer, not asyncio.wait_for (a task made and cancelled at every tick: more CPU for an idle
        # server)
        self._loop = loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            self._tick = loop.create_future()
            timer = loop.call_later(self.TICK_S, self._end_tick)
            await self._tick
            timer.cancel()
            should_exit = await self.on_tick(counter)

    def _end_tick(self) -> None:
        # in the loop's thread: the tick waited for now, whichever it is when this runs
        if self._tick is not None and not self._tick.done():
            self._tick.set_result(None)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # one turn of the loop first: a client that closed its connection just before the stop is then
        # seen to have gone (its connection_lost has run)
        await asyncio.sleep(0)
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        # no connection open: uvicorn's shutdown, without its pause for connections to act on theirs
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def wake(self) -> None:
        """From another thread: end the current tick now (after `should_exit` was set, the loop ends)."""
        loop = self._loop
        if loop is not None:
            # a loop that has already ended has nothing to wake
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._end_tick)


class RunningServer:
    """A server listening on loopback in a daemon thread; stop() or use it as a context manager."""

    def __init__(
        self,
        server: _Server,
        thread: threading.Thread,
        host: str,
        port: int,
        profile: Profile,
        settings: ServerSettings | None = None,
        tls: bool = False,
    ) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.profile = profile
        # None when an arbitrary ASGI app was started
        self.settings = settings
        self.base_url = base_url(profile, host, port, tls)

    @property
    def url(self) -> str:
        """The operation's full URL."""
        return self.profile.url(self.base_url)

    def request_stop(self) -> None:
        """Ask the server to stop, without waiting: `stop` then waits (see `stop_all`; the server notices at
        once, then closes its connections)."""
        self._server.should_exit = True
        self._server.wake()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.base_url!r}, profile={self.profile.name!r})"


def stop_all(servers: Iterable[RunningServer]) -> None:
    """Stop several servers together: each is asked first, then each is waited for (one after the other, the
    waits add up where connections are still open: see `_Server`)."""
    servers = list(servers)
    for server in servers:
        server.request_stop()
    for server in servers:
        server.stop()


def start_server(
    app_or_settings: ASGIApp | ServerSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    profile: Profile | None = None,
    timeout: float = 10.0,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> RunningServer:
    """Serve settings (via create_app) or any ASGI app; returns once connections are accepted. With
    certfile (and keyfile, unless the certfile holds the key too) it speaks TLS and its base URL is https."""
    app, profile = _resolve(app_or_settings, profile)
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    server = _Server(_config(app, certfile, keyfile))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from uvicorn's startup included
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"reference-server-{actual_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            reason = repr(failure[0]) if failure else "it did not start in time"
            raise ServerStartError(f"the server on {host}:{actual_port} failed to start: {reason}")
        time.sleep(0.005)
    settings = app_or_settings if isinstance(app_or_settings, ServerSettings) else None
    return RunningServer(server, thread, host, actual_port, profile, settings, tls=certfile is not None)


def serve_forever(
    settings: ServerSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_listening: Callable[[str], None] | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    access_log: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted; on_listening gets the base URL once bound, access_log (if
    given) one line per request."""
    sock = bind(host, port)
    url = base_url(settings.profile, host, sock.getsockname()[1], tls=certfile is not None)
    app = create_app(settings)
    if access_log is not None:
        app = AccessLog(app, access_log)
    server = uvicorn.Server(_config(app, certfile, keyfile))
    if on_listening is not None:
        on_listening(url)
    with contextlib.closing(sock):
        # uvicorn handles SIGINT/SIGTERM here (main thread): Ctrl-C stops it gracefully
        server.run(sockets=[sock])
