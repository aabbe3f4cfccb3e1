"""The effective configuration of a run: flags > environment > config file > defaults.

The same fields are set by `sgp-conformance run` flags and by the pytest options of the plugin, so the
suite behaves the same whichever way it is started.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from conformance.redact import safe_url
from conformance.secret_forms import MASK, is_secret_name

DEPTHS = ("smoke", "standard", "deep")
# the default request budget per depth: above what each plans (about 33, 160 and 1170 requests)
BUDGETS = {"smoke": 100, "standard": 500, "deep": 1500}
# the concurrency probe's overlapping requests per depth: smoke keeps within its 30 requests without one
PROBE_SIZES = {"smoke": 0, "standard": 4, "deep": 8}
FAIL_ON = ("must", "should")
JUNIT_SHOULD = ("failure", "skip", "pass")
ENV_VARS = {
    "base_url": "SGP_BASE_URL",
    "api_key": "SGP_API_KEY",
    "account_id": "SGP_ACCOUNT_ID",
    "model": "SGP_MODEL",
    "profile": "SGP_PROFILE",
}
REDACTED = MASK
ENV_PREFIX = "env:"


class ConfigError(ValueError):
    """A configuration the run cannot start with; the message names the fix."""


@dataclass
class Config:
    base_url: str | None = None
    api_key: str | None = None
    account_id: str | None = None
    model: str = "openai/gpt-4o-mini"
    profile: str = "sgp"
    # seconds: connect, and each read of a response; a stream as a whole gets stream_timeout
    timeout: float = 20.0
    stream_timeout: float = 60.0
    # the largest body read before it is cut, in bytes
    max_body_bytes: int = 2_000_000
    max_tokens: int = 16
    # the hard cap on requests sent; None: the depth's (BUDGETS), which its planned requests fit in
    max_requests: int | None = None
    rate_limit: float = 0.0
    concurrency: int = 1
    # overlapping requests the concurrency probe sends (CONC-*), each also sent alone; None: the depth's
    # (PROBE_SIZES); 0: no probe
    concurrency_probe: int | None = None
    retries: int = 2
    max_retry_wait: float = 30.0
    # the total seconds a run may spend waiting for a target that answers 429/503 before it stops sending
    # and ends incomplete; None: max(60, 2 x timeout) (throttle_budget)
    max_throttle_wait: float | None = None
    depth: str = "standard"
    fail_on: str = "must"
    # may hold {timestamp}, replaced by the run's start (UTC, e.g. 20261130T101500Z)
    report_dir: str = "reports"
    # keep earlier reports: each run writes into a new timestamped subfolder of report_dir
    keep: bool = False
    max_examples: int | None = None
    seed: int | None = None
    allow_insecure_http: bool = False
    baseline: str | None = None
    clients: bool = False
    # print the requests each requirement would send, and send none
    dry_run: bool = False
    # names of extra request headers whose values are secret (scrubbed like the key)
    secret_headers: list[str] = field(default_factory=list)
    # how junit.xml shows a SHOULD failure: failure, skip or pass; None: failure at --fail-on should, else skip
    junit_should: str | None = None
    # the forward proxy of every request, http://[user:password@]host:port; None: the environment's
    # HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY, never for a loopback target (conformance.network)
    proxy: str | None = None
    # a PEM file of the CA certificates to trust instead of the default ones (or SSL_CERT_FILE / SSL_CERT_DIR)
    ca_bundle: str | None = None
    # verify no TLS certificate (a loud warning, and recorded in conformance.json)
    insecure: bool = False
    # extra request headers, each "Name: value" or "Name: env:VARIABLE" (the value read from the environment)
    headers: list[str] = field(default_factory=list)
    # features the server is declared not to offer (contract.claims.FEATURES): their requirements are not run
    without: frozenset[str] = frozenset()
    # positions on open points the server claims (contract.claims.CHOICES): their requirements become MUST
    claims: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.max_requests is None:
            self.max_requests = BUDGETS.get(self.depth, BUDGETS["standard"])

    def secrets(self) -> list[str]:
        return [s for s in (self.api_key,) if s]

    def redacted(self) -> dict[str, Any]:
        """The configuration fit to print: the key, the proxy's userinfo and secret header values masked."""
        out = asdict(self)
        if out.get("api_key"):
            out["api_key"] = REDACTED
        out["proxy"] = safe_url(self.proxy)
        out["headers"] = masked_header_specs(self)
        out["without"], out["claims"] = sorted(self.without), sorted(self.claims)
        return out

    def junit_should_as(self) -> str:
        """How junit.xml shows a SHOULD failure: as the exit code treats it unless --junit-should says."""
        return self.junit_should or ("failure" if self.fail_on == "should" else "skip")

    def probe_size(self) -> int:
        """How many overlapping requests the concurrency probe sends (it sends each alone too)."""
        if self.concurrency_probe is not None:
            return self.concurrency_probe
        return PROBE_SIZES[self.depth]

    def throttle_budget(self) -> float:
        """Seconds of waiting on 429/503 answers (Retry-After, backoff) the whole run may spend."""
        if self.max_throttle_wait is not None:
            return self.max_throttle_wait
        return max(60.0, 2 * self.timeout)

    def property_examples(self) -> int:
        if self.max_examples is not None:
            return self.max_examples
        # smoke: one valid and one invalid case, so the whole smoke run stays within 30 requests
        return {"smoke": 1, "standard": 25, "deep": 300}[self.depth]




def unsendable(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value, or None. RFC 9110 §5.5 allows visible characters,
    spaces and tabs (CR, LF and NUL never: they would end or split the header); httpx sends header values as
    ASCII, so a character past it cannot be sent either; a leading or trailing space or tab is not part of a
    field value (h11 refuses to send it). The value itself is never quoted (it may be a key)."""
    if value != value.strip(" \t"):
        return "begins or ends with a space or tab"
    for position, char in enumerate(value, 1):
        if char in "\r\n":
            return f"holds a line break (CR or LF) at character {position}"
        if char == "\0":
            return f"holds a NUL byte at character {position}"
        if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            return f"holds the control character U+{ord(char):04X} at character {position}"
        if ord(char) > 0x7E:
            return f"holds the non-ASCII character U+{ord(char):04X} at character {position}"
    return None


def is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def masked_header_specs(config: Config) -> list[str]:
    """config.headers fit to print: a secret header's literal value becomes the mask (env:VAR stays)."""

    out = []
    for spec in config.headers:
        name, sep, raw = spec.partition(":")
        literal = raw.strip() and not raw.strip().startswith(ENV_PREFIX)
        out.append(f"{name.strip()}: {MASK}" if sep and literal and is_secret_name(name.strip(),
                                                                                   config.secret_headers) else spec)
    return out

