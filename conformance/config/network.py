"""How the suite reaches a target inside a company network: the proxy, the TLS trust, extra headers.

One place decides, from a `Config` and the environment, what every HTTP stack of a run uses: the suite's
own client (`conformance.transport.client`) and the official SDKs of `--clients`
(`conformance.audit.sdk_clients`) both get their transport from `conformance.transport.network`, built on
`route` and `ssl_context` here, and the scenarios and the SDKs both add `request_headers`.

Proxy (`route`): an explicit `--proxy URL` carries every request. Otherwise the environment is read as
httpx reads it with trust_env (`https_proxy`/`HTTPS_PROXY` for https targets, `http_proxy`/`HTTP_PROXY` for
http ones, `all_proxy`/`ALL_PROXY` for both; lower case wins; `NO_PROXY` exempts hosts), with one
deliberate difference: a loopback target (the embedded reference server, a local mock) is never sent
through an environment proxy, which httpx would do unless NO_PROXY named it.

TLS (`ssl_context`): `--insecure` verifies nothing; else `--ca-bundle FILE` is the only trust; else
`SSL_CERT_FILE` / `SSL_CERT_DIR`; else certifi's bundle, as httpx does.

Extra headers (`extra_headers`): each `--header` is "Name: value", or "Name: env:VARIABLE" to read the
value from the environment. A header whose name looks secret (`conformance.secret_forms.is_secret_name`,
or listed in secret_headers) is a secret of the run, scrubbed by value from every output like the key.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from conformance.config.settings import ENV_PREFIX, Config, ConfigError, is_loopback, unsendable
from conformance.contract.profiles import get_profile
from conformance.redact import safe_url
from conformance.secret_forms import is_secret_name, url_passwords

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# lower case first: it wins over upper case, as in urllib and httpx
PROXY_VARIABLES = {"https": ("https_proxy", "HTTPS_PROXY"), "http": ("http_proxy", "HTTP_PROXY"),
                   "all": ("all_proxy", "ALL_PROXY")}
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
# headers the suite sets on each request itself: an extra one would contradict what a scenario sends
SET_PER_REQUEST = frozenset({"content-type", "accept", "content-length", "host", "transfer-encoding",
                             "connection"})
INSECURE_WARNING = ("sgp-conformance: WARNING: --insecure: TLS certificates are NOT verified: whoever sits "
                    "between here and the target can read the key and forge every answer; give the CA with "
                    "--ca-bundle FILE instead")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- extra request headers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraHeader:
    """One `--header`: its name as given, its value (read from the environment for `env:VAR`), the
    variable it came from (or None), and whether it is a secret."""

    name: str
    value: str
    variable: str | None
    secret: bool


def parse_header(spec: str, env: Mapping[str, str], declared: tuple[str, ...] | list[str] = ()) -> ExtraHeader:
    """`"Name: value"` or `"Name: env:VAR"` as an ExtraHeader; ConfigError naming the fix when malformed or
    when VAR is unset. The value of a secret header never appears in the error."""
    if not isinstance(spec, str):
        raise ConfigError(f"headers: {spec!r} is not a string: give each header as 'Name: value'")
    name, sep, raw = spec.partition(":")
    name, raw = name.strip(), raw.strip()
    if not sep or not _TOKEN.match(name):
        # what was given, short of anything that could be a secret value
        leading = re.match(r"[^\s:=]*", spec.strip())
        lead = leading.group() if leading else ""
        if sep and name:
            shown = f"'{name}: ...'"
        elif is_secret_name(lead, declared) and spec.strip() != lead:
            shown = repr(f"{lead}...")
        else:
            shown = repr(spec if len(spec) <= 40 else spec[:40] + "...")
        raise ConfigError(f"--header {shown} is not 'Name: value': give e.g. --header 'X-Tenant-Id: acme' "
                          "(or 'Name: env:VARIABLE' to read the value from the environment)")
    secret = is_secret_name(name, declared)
    if not raw:
        raise ConfigError(f"--header '{name}:' has no value: give 'Name: value' or 'Name: env:VARIABLE'")
    if "\r" in raw or "\n" in raw:
        raise ConfigError(f"--header '{name}': a value cannot span lines")
    variable = None
    if raw.startswith(ENV_PREFIX):
        variable = raw[len(ENV_PREFIX):].strip()
        if not _VARIABLE.match(variable):
            raise ConfigError(f"--header '{name}: {raw}': {variable!r} is not an environment variable name")
        raw = env.get(variable, "")
        if not raw:
            raise ConfigError(f"--header '{name}: env:{variable}': ${variable} is not set: export it, "
                              "or give the value itself")
        if "\r" in raw or "\n" in raw:
            raise ConfigError(f"--header '{name}: env:{variable}': the value of ${variable} spans lines")
    why = unsendable(raw)
    if why:
        source = f"the value of ${variable}" if variable else "its value"
        raise ConfigError(f"--header '{name}': {source} cannot be sent in an HTTP header: it {why}")
    return ExtraHeader(name, raw, variable, secret)


def extra_headers(config: Config, env: Mapping[str, str] | None = None) -> list[ExtraHeader]:
    """The run's `--header`s, checked against the profile: ConfigError when one names the profile's auth or
    account header, a header the suite sets per request, Proxy-Authorization, or a name given twice."""
    env = os.environ if env is None else env
    profile = get_profile(config.profile)
    out: list[ExtraHeader] = []
    seen: set[str] = set()
    for spec in config.headers:
        header = parse_header(spec, env, config.secret_headers)
        lowered = header.name.lower()
        if lowered == profile.auth_header:
            raise ConfigError(f"--header {header.name}: the key goes in SGP_API_KEY (or --api-key), not in "
                              f"--header: the suite sends {profile.auth_header} itself, wrong on purpose where a "
                              "requirement needs it")
        if profile.account_header and lowered == profile.account_header:
            raise ConfigError(f"--header {header.name}: give the account with --account-id, not --header")
        if lowered == "proxy-authorization":
            raise ConfigError("--header Proxy-Authorization: give the proxy's credentials in the proxy URL, "
                              "--proxy http://user:password@host:port")
        if lowered in SET_PER_REQUEST:
            raise ConfigError(f"--header {header.name}: the suite sets {lowered} on each request itself; "
                              "drop this --header")
        if lowered in seen:
            raise ConfigError(f"--header {header.name} is given twice: give each header once")
        seen.add(lowered)
        out.append(header)
    return out


def request_headers(config: Config, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The extra headers to put on every request, name to value."""
    return {h.name: h.value for h in extra_headers(config, env)}


def secret_header_values(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret extra headers (none when the headers cannot be read: resolve reports that)."""
    try:
        return [h.value for h in extra_headers(config, env) if h.secret]
    except ConfigError:
        return []


def header_variables(config: Config, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """value -> VARIABLE of the secret extra headers read from the environment: a curl line names the
    variable instead of masking the value."""
    try:
        return {h.value: h.variable for h in extra_headers(config, env) if h.secret and h.variable}
    except ConfigError:
        return {}


# -- the proxy ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """How requests to one target travel: through `proxy` (a URL, possibly with userinfo) named by `source`
    ("--proxy" or the environment variable), or directly when proxy is None."""

    proxy: str | None = None
    source: str | None = None

    def describe(self) -> str:
        """One phrase fit to print (userinfo masked)."""

        if self.proxy is None:
            return "directly"
        return f"through the proxy {safe_url(self.proxy)} (from {self.source})"


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when it cannot be read (a port that is no number, a bad IPv6 literal)."""
    try:
        parts = urlsplit(url)
        if parts.port == 0:
            return None
    except ValueError:
        return None
    return parts


def check_proxy_url(url: str, source: str) -> str:
    """The proxy URL as httpx takes it; ConfigError naming the fix when it is not a proxy URL. In the
    environment a value without a scheme (proxy:3128) reads as http://, as httpx reads it."""

    fixed = url.strip()
    if source != "--proxy" and "://" not in fixed:
        fixed = f"http://{fixed}"
    where = "--proxy" if source == "--proxy" else f"{source} in the environment"
    fix = "give e.g. http://proxy.example.com:3128" if source == "--proxy" else "fix or unset it, or give --proxy"
    parts = _split(fixed)
    if parts is None or parts.scheme not in PROXY_SCHEMES or not parts.hostname \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{where} {safe_url(url)!r} is not a proxy URL like http://host:port: {fix}")
    if parts.scheme.startswith("socks") and find_spec("socksio") is None:
        raise ConfigError(f"{where} is a SOCKS proxy, which needs the socksio package: pip install 'httpx[socks]'")
    return fixed


def environment_proxy(url: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(proxy URL, variable) the environment gives for a target URL as httpx's trust_env reads it, or
    (None, None). Loopback is not special here (see `route`)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if no_proxy_matches(host, parts.port or (443 if parts.scheme == "https" else 80), env):
        return None, None
    for scheme in (parts.scheme, "all"):
        if scheme == "http" and "REQUEST_METHOD" in env:
            # a CGI script's HTTP_PROXY may come from a request header (httpoxy): ignored, as urllib does
            continue
        for variable in PROXY_VARIABLES.get(scheme, ()):
            if variable in env:
                value = env[variable].strip()
                if value:
                    return value, variable
                # an empty lower-case variable unsets the upper-case one
                break
    return None, None


def no_proxy_matches(host: str, port: int | None, env: Mapping[str, str]) -> bool:
    """Whether NO_PROXY exempts the host: `*`, an exact name or address, a domain with its subdomains
    (`example.com`), subdomains only (`.example.com`), an address block (`10.0.0.0/8`), each with an
    optional `:port`."""
    value = next((env[v] for v in NO_PROXY_VARIABLES if v in env), "")
    for entry in (e.strip().lower() for e in value.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.split("://", 1)[-1].rstrip("/")
        name, want_port = entry, None
        bracketed = re.match(r"^\[([^\]]+)\](?::(\d+))?$", entry)
        if bracketed:
            name, want_port = bracketed.group(1), bracketed.group(2)
        elif entry.count(":") == 1:
            name, _, want_port = entry.partition(":")
        if want_port and port is not None and str(port) != want_port:
            continue
        if _host_matches(host.strip("[]"), name):
            return True
    return False


def _host_matches(host: str, entry: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        try:
            return address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    if entry.startswith("*."):
        entry = entry[1:]
    if entry.startswith("."):
        return host.endswith(entry)
    return host == entry or host.endswith("." + entry)


def route(config: Config, url: str | None = None, env: Mapping[str, str] | None = None) -> Route:
    """How requests to `url` (default: the base URL) travel. An explicit --proxy applies to every target;
    an environment proxy never to a loopback one. ConfigError when the proxy in force is no proxy URL."""
    env = os.environ if env is None else env
    if config.proxy:
        return Route(check_proxy_url(config.proxy, "--proxy"), "--proxy")
    target = url if url is not None else (config.base_url or "")
    host = urlsplit(target).hostname or ""
    if not host or is_loopback(host):
        return Route()
    proxy, variable = environment_proxy(target, env)
    if proxy is None or variable is None:
        return Route()
    return Route(check_proxy_url(proxy, variable), variable)


def proxy_secrets(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Passwords in the proxy URLs a run may use (--proxy and the environment's), as written and decoded."""
    env = os.environ if env is None else env
    urls = [config.proxy] + [env.get(v) for names in PROXY_VARIABLES.values() for v in names]
    return list(dict.fromkeys(p for url in urls for p in url_passwords(url)))


# -- TLS ------------------------------------------------------------------------------------------------------


def _load_cas(path: str, where: str, fix: str) -> ssl.SSLContext:
    target = Path(path)
    if not target.exists():
        raise ConfigError(f"{where} {path} does not exist: {fix}")
    try:
        if target.is_dir():
            if where == "--ca-bundle":
                raise ConfigError(f"--ca-bundle {path} is a directory: give a PEM file of CA certificates")
            return _context(path, True, None)
        found = target.stat()
        return _context(path, False, (found.st_mtime_ns, found.st_size))
    except ssl.SSLError as exc:
        raise ConfigError(f"{where} {path} holds no PEM CA certificate ({exc.reason or exc}): {fix}") from None
    except OSError as exc:
        raise ConfigError(f"{where} {path} cannot be read ({exc.strerror}): {fix}") from None


def ssl_context(config: Config, env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The TLS context of every connection: nothing verified with --insecure; else the --ca-bundle's CAs
    only; else SSL_CERT_FILE or SSL_CERT_DIR; else certifi's bundle (httpx's default). ConfigError when a
    bundle is missing or holds no certificate."""
    env = os.environ if env is None else env
    if config.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if config.ca_bundle:
        return _load_cas(config.ca_bundle, "--ca-bundle", "give the PEM file of the CA that signed the "
                                                          "target's certificate")
    for variable in CA_VARIABLES:
        if env.get(variable):
            return _load_cas(env[variable], variable, f"fix or unset {variable}, or give --ca-bundle")
    return _certifi_context()


def _certifi_context() -> ssl.SSLContext:
    import certifi

    return _context(certifi.where(), False, None)


@functools.lru_cache(maxsize=8)
def _context(path: str, is_dir: bool, version: tuple[int, int] | None) -> ssl.SSLContext:
    """The context trusting the CAs of a PEM file (or a directory), loaded once per process and version of
    the file (its mtime and size): loading a system bundle takes 60-100 ms, and a run builds several
    clients (a test session, many runs). The context is only read once made, so the clients share it."""
    del version  # part of the cache key only: a file changed since is loaded anew
    return ssl.create_default_context(capath=path) if is_dir else ssl.create_default_context(cafile=path)


def tls_fix(reason: str) -> str:
    """The fix to append to an unreachable target's reason when a certificate was refused, or ""."""
    if "CERTIFICATE_VERIFY_FAILED" not in reason:
        return ""
    if "mismatch" in reason.lower():
        return ": the certificate does not name this host: give --base-url the name it was issued for"
    return (": trust the CA that signed the target's certificate with --ca-bundle FILE (or SSL_CERT_FILE); "
            "--insecure skips verification")


# -- the transport ------------------------------------------------------------------------------------------


def check(config: Config, env: Mapping[str, str] | None = None) -> None:
    """Everything about the network a run cannot start without: the headers, the proxy in force, the CA
    bundle, and the key's safety through a proxy. ConfigError with the fix."""
    env = os.environ if env is None else env
    if config.insecure and config.ca_bundle:
        raise ConfigError("--insecure verifies no certificate, so --ca-bundle would be ignored: give one of them")
    extra_headers(config, env)
    if config.proxy:
        check_proxy_url(config.proxy, "--proxy")
    if not config.insecure and (config.ca_bundle or any(env.get(v) for v in CA_VARIABLES)):
        ssl_context(config, env)
    if not config.base_url:
        return
    via = route(config, config.base_url, env)
    parts = urlsplit(config.base_url)
    proxy_host = urlsplit(via.proxy or "").hostname or ""
    if via.proxy and parts.scheme == "http" and not is_loopback(proxy_host) and not config.allow_insecure_http:
        raise ConfigError(f"refusing to send the key over plain http {via.describe()}: use an https base URL, "
                          "or pass --allow-insecure-http if this network is trusted")
