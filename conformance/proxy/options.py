"""The settings of one `sgp-conformance proxy` and their validation: bad input is a one-line `ConfigError`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from conformance.config import ConfigError, is_loopback
from conformance.contract.profiles import PROFILES

DEFAULT_PORT = 8089
DEFAULT_BIND = "127.0.0.1"
# bytes of one request or response body kept for judging; past it the body is still forwarded whole
DEFAULT_MAX_BODY_BYTES = 2_000_000


@dataclass(frozen=True)
class Upstream:
    """Where requests go: `origin` is scheme://host[:port]; `prefix` is a path put before every request's
    path ("" or "/something", no trailing slash)."""

    origin: str
    prefix: str

    @property
    def url(self) -> str:
        return self.origin + self.prefix

    @property
    def host(self) -> str:
        return urlsplit(self.origin).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.origin)
        return parts.port or (443 if parts.scheme == "https" else 80)


def parse_upstream(url: str, allow_insecure_http: bool = False) -> Upstream:
    """The upstream of `--upstream URL`: an http(s) URL without query or fragment. Plain http to a host
    other than loopback carries the clients' keys in the clear, so it needs `allow_insecure_http`.
    ConfigError (one line naming the fix) otherwise."""
    text = url.strip()
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in text):
        raise ConfigError(f"--upstream {url!r} holds a space or a control character: give the URL percent-encoded, "
                          "e.g. https://api.example.com/v1")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"--upstream {url!r} is not a URL ({exc}): give e.g. https://api.example.com") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if "://" not in text and text:
            host = urlsplit(f"http://{text}").hostname or ""
            scheme = "http" if is_loopback(host) else "https"
            raise ConfigError(f"--upstream {url!r} has no scheme: did you mean {scheme}://{text}?")
        raise ConfigError(f"--upstream {url!r} is not an http(s) URL: give e.g. https://api.example.com")
    if parts.query or parts.fragment:
        raise ConfigError(f"--upstream {url!r} must not carry a query or fragment: give the server's base URL")
    if parts.username or parts.password:
        raise ConfigError(f"--upstream {url!r} must not carry user:password: clients send their own keys")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"refusing to forward the clients' keys over plain http to {parts.hostname}: use https, "
            "or pass --allow-insecure-http if this network is trusted"
        )
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is not None:
        netloc += f":{port}"
    return Upstream(f"{parts.scheme}://{netloc}", parts.path.rstrip("/"))


@dataclass(frozen=True)
class ProxyOptions:
    """What `sgp-conformance proxy` was asked to do (flags as given, validated by `check`)."""

    upstream: Upstream
    profile: str = "sgp"
    bind: str = DEFAULT_BIND
    # 0 picks a free port (tests, benchmarks); the banner says which
    port: int = DEFAULT_PORT
    har: str | None = None
    # write the reports after every N chat-completions exchanges (0: only at the end)
    report_every: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    quiet: bool = False

    def check(self) -> None:
        """ConfigError for a setting the proxy cannot start with."""
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}: use --profile {' or '.join(sorted(PROFILES))}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535 (0 picks a free one), got {self.port}")
        if self.report_every < 0:
            raise ConfigError(f"--report-every must be 0 (only at the end) or more, got {self.report_every}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"--max-body-bytes must be at least 1024, got {self.max_body_bytes}")
        if not self.bind.strip():
            raise ConfigError("--bind needs an address, e.g. 127.0.0.1 or 0.0.0.0")
        every_interface = self.bind in ("0.0.0.0", "::")
        if (
            self.upstream.port == self.port
            and is_loopback(self.upstream.host)
            and (every_interface or is_loopback(self.bind))
        ):
            raise ConfigError(
                f"--upstream {self.upstream.url} is the proxy's own address: give the server's URL, or another --port"
            )

    @property
    def listens_on_loopback(self) -> bool:
        return is_loopback(self.bind)
