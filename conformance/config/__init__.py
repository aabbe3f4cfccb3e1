"""A run's configuration: what to test, what it may cost, how to reach the target, where reports go.

Layer 1: it reads the contract's profiles and nothing above. `settings` holds the `Config` record and its
fixed choices, `load` reads flags > environment > TOML file > defaults, `network` what the configuration
says about proxies, TLS and extra headers, `secrets` every secret the configuration holds.
"""

from conformance.config.load import read_config_file, require_key, resolve
from conformance.config.settings import (
    BUDGETS,
    DEPTHS,
    ENV_VARS,
    FAIL_ON,
    JUNIT_SHOULD,
    REDACTED,
    Config,
    ConfigError,
    is_loopback,
)

__all__ = ["BUDGETS", "DEPTHS", "ENV_VARS", "FAIL_ON", "JUNIT_SHOULD", "REDACTED", "Config", "ConfigError",
           "is_loopback", "read_config_file", "require_key", "resolve"]
