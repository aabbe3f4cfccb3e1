"""The embedded default target: the reference server, started in-process on a free loopback port.

This is the one place the suite touches the reference server, and only to start it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from conformance.config import Config
from conformance.contract.profiles import get_profile
from conformance.server.settings import DEFAULT_ACCOUNT as EMBEDDED_ACCOUNT


@dataclass
class Embedded:
    base_url: str
    api_key: str
    account_id: str
    server: Any

    def stop(self) -> None:
        self.server.stop()


def start_embedded(config: Config) -> Embedded:
    from conformance.server.runner import start_server
    from conformance.server.settings import ServerSettings

    key = config.api_key or f"sgp-embedded-{secrets.token_hex(12)}"
    # an account, so the account requirements are judged against the embedded target too
    accounts = (config.account_id or EMBEDDED_ACCOUNT,)
    settings = ServerSettings(profile=get_profile(config.profile), api_keys=(key,), account_ids=accounts,
                              models=(config.model,))
    server = start_server(settings)
    return Embedded(server.base_url, key, accounts[0], server)
