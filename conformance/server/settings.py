"""What a reference server instance accepts: keys, accounts, models, and how slowly it answers."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.contract.profiles import Profile

DEFAULT_MODELS: tuple[str, ...] = ("openai/gpt-4o-mini",)
# the account `serve` and the embedded server accept unless told otherwise: a mock that accepted any
# account would fail HDR-002 (an account the key cannot use is refused), so the default is a known one
DEFAULT_ACCOUNT = "acct-sgp-conformance"


@dataclass(frozen=True)
class ServerSettings:
    profile: Profile
    api_keys: tuple[str, ...]
    # empty: any non-empty account id is accepted (a mock should not need to know the caller's accounts)
    account_ids: tuple[str, ...] = ()
    # empty: any model name is accepted
    models: tuple[str, ...] = DEFAULT_MODELS
    latency_ms: int = 0
    # requests handled at once (a stream counts until its last event); later ones wait their turn, as on a
    # server with a fixed number of model slots; 0: no limit
    max_concurrency: int = 0

    def __post_init__(self) -> None:
        # tuples, not lists: the settings are hashable so test fixtures can cache a server per settings
        for name in ("api_keys", "account_ids", "models"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, tuple):
                raise TypeError(f"ServerSettings.{name} must be a tuple of strings, got {value!r}")
        if not self.api_keys or any(not key for key in self.api_keys):
            # a server without a key would accept everyone, which hides auth bugs in clients
            raise ValueError("ServerSettings.api_keys needs at least one non-empty key")
        if self.latency_ms < 0:
            raise ValueError("ServerSettings.latency_ms must be >= 0")
        if self.max_concurrency < 0:
            raise ValueError("ServerSettings.max_concurrency must be >= 0")
