"""Serving: one server hosts every variant, each under its own path prefix."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from conformance.contract.profiles import PROFILES
from conformance.server.settings import ServerSettings

from .core import ACCOUNT, KEY, MODEL, OPENAI, _send_reply, json_reply
from .features import FEATURELESS
from .registry import CONTROLS, MUTANTS, variant


def settings_for(profile: str) -> ServerSettings:
    return ServerSettings(profile=PROFILES[profile], api_keys=(KEY,), account_ids=(ACCOUNT,), models=(MODEL,))


class MutantHost:
    """Serves `/m/<name>/...` with mutant <name> around its own reference app; one server, every variant."""

    def __init__(self, profile: str) -> None:
        from conformance.server.app import create_app

        self.settings = settings_for(profile)
        self.apps = {name: variant(name).wrap(create_app(self.settings), self.settings)
                     for name in [*MUTANTS, *CONTROLS, *FEATURELESS]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        _, _, name, rest = (scope["path"] + "/").split("/", 3) if scope["path"].startswith("/m/") else ("", "", "", "")
        app = self.apps.get(name)
        if app is None:
            await _send_reply(send, json_reply(404, {"detail": f"no variant {name!r}"}))
            return
        path = "/" + rest.rstrip("/") if rest.rstrip("/") else "/"
        await app({**scope, "path": path, "raw_path": path.encode()}, receive, send)


def base_url(server_base: str, name: str, profile: str) -> str:
    """The base URL under which a `MutantHost` serves variant `name` (openai servers live under /v1)."""
    root = server_base.removesuffix("/v1") if profile == OPENAI else server_base
    return f"{root}/m/{name}" + ("/v1" if profile == OPENAI else "")
