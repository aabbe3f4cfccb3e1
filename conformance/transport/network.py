"""The HTTP transport every client of a run uses (the suite's own, and the official SDKs of `--clients`):
the route and TLS trust that `conformance.config.network` decides, with a proxy's own failures said as such.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from conformance.config import Config
from conformance.config.network import Route, route, ssl_context
from conformance.redact import safe_url
from conformance.transport.deadline import bounded_backend


class ProxiedTransport(httpx.HTTPTransport):
    """An httpx transport through a proxy that says so when the proxy is what failed: a connection to the
    proxy that fails, or a proxy that refuses (407, a CONNECT not answered 2xx), becomes a ConnectError
    naming the proxy and the fix, so the run ends as unreachable (exit 3) with that line."""

    def __init__(self, via: Route, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.via = via

    def _where(self) -> str:
        return f"the proxy {safe_url(self.via.proxy)} (from {self.via.source})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.ProxyError as exc:
            raise httpx.ConnectError(f"{self._where()} would not open a tunnel: {exc}{self._auth_fix(str(exc))}",
                                     request=request) from exc
        except httpx.ConnectError as exc:
            text = str(exc)
            if isinstance(exc.__context__, ssl.SSLError) or "SSL" in text or "certificate" in text.lower():
                # the TLS handshake with the target, through the tunnel: the target's failure, said as such
                raise
            raise httpx.ConnectError(f"no connection to {self._where()}: {_plain(text)}",
                                     request=request) from exc
        if response.status_code == 407:
            response.close()
            raise httpx.ConnectError(f"{self._where()} answered 407 Proxy Authentication Required"
                                     f"{self._auth_fix('407')}", request=request)
        return response

    def _auth_fix(self, text: str) -> str:
        if "407" not in text:
            return ""
        if urlsplit(self.via.proxy or "").password:
            return ": check the user and password in the proxy URL"
        return ": give its credentials in the proxy URL, http://user:password@host:port"


def _plain(text: str) -> str:
    """The cause in words describe_error does not take for the target's own failure (it reads "refused"
    or a resolver's message as said of the target)."""
    lowered = text.lower()
    if "refused" in lowered:
        return "nothing accepts connections on that port"
    if any(w in lowered for w in ("name or service not known", "nodename", "getaddrinfo", "name resolution",
                                  "no address")):
        return "its host name does not resolve"
    return text or "the connection failed"


def cookieless(client: httpx.Client) -> httpx.Client:
    """`client`, keeping no cookie: every request of a run stands alone, as its curl line in the reports does (a
    target's Set-Cookie is never sent back), and httpx's reading of every answer for cookies (two urllib
    stand-ins per response) was 4% of a run's CPU. Returns the client."""
    setattr(client.cookies, "extract_cookies", lambda response: None)  # noqa: B010 (an instance's, not the class's)
    return client


def http_transport(config: Config, url: str | None = None, env: Mapping[str, str] | None = None,
                   limits: httpx.Limits | None = None) -> httpx.HTTPTransport:
    """The transport for requests to `url` (default: the base URL): its route and TLS context, nothing read
    from the environment by httpx itself (the environment was read here, by `route` and `ssl_context`)."""
    via = route(config, url, env)
    context = ssl_context(config, env)
    options: dict[str, object] = {"verify": context, "trust_env": False}
    if limits is not None:
        options["limits"] = limits
    # every read of a response head is bounded by the request's total deadline (transport.deadline)
    if via.proxy is None:
        return bounded_backend(httpx.HTTPTransport(**options))  # type: ignore[arg-type]
    # an https:// proxy is trusted as the target is (an internal CA signs both, typically)
    proxy = httpx.Proxy(via.proxy, ssl_context=context if via.proxy.startswith("https:") else None)
    return bounded_backend(ProxiedTransport(via, proxy=proxy, **options))


