"""The deterministic reference server: an ASGI app, a thread runner and the `serve` command."""

from conformance.server.app import create_app
from conformance.server.cli import serve_main
from conformance.server.runner import RunningServer, serve_forever, start_server, stop_all
from conformance.server.settings import ServerSettings

__all__ = ["RunningServer", "ServerSettings", "create_app", "serve_forever", "serve_main", "start_server", "stop_all"]
