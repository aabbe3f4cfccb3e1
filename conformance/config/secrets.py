"""Every secret a run's configuration holds, so that each output can be scrubbed of it."""

from __future__ import annotations

from collections.abc import Mapping

from conformance.config.network import proxy_secrets, secret_header_values
from conformance.config.settings import Config
from conformance.secret_forms import url_passwords


def config_secrets(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret a run's configuration holds: the key, a password in the base URL, a password in the
    proxy URL in use (--proxy or the environment's), and the values of the secret extra headers."""
    found = list(config.secrets())
    found += url_passwords(getattr(config, "base_url", None))
    if hasattr(config, "headers"):
        found += proxy_secrets(config, env) + secret_header_values(config, env)
    return [s for s in dict.fromkeys(found) if s]
