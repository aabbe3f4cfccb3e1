"""Inside a company network: a forward proxy (HTTPS_PROXY / HTTP_PROXY / --proxy), a locally made CA
(--ca-bundle), --insecure, and extra request headers (--header) that reach the server while a secret one
reaches no output.

The proxy below is written here: threaded, it forwards plain HTTP requests (one a connection) and tunnels
CONNECT, and counts what it relayed. It knows a name nothing else resolves, TARGET: a run that reaches
TARGET went through it.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trustme
from cli_runs import REFERENCE_KEY, Outcome, run_cli, run_in_process
from report_fixtures import files_with_secret, secret_forms_found

from conformance.audit import sdk_clients
from conformance.config import Config, ConfigError, network, resolve, settings
from conformance.config.secrets import config_secrets
from conformance.contract.profiles import get_profile
from conformance.redact import MASK, Scrubber
from conformance.report.evidence import curl_line
from conformance.server import RunningServer, ServerSettings, start_server
from conformance.server.app import create_app
from conformance.suite.scenarios import BUILDERS, WRONG_KEY, Context, build
from conformance.transport import network as transport_network
from conformance.transport.client import Client
from conformance.transport.exchange import Exchange

SGP = get_profile("sgp")
# a name that resolves nowhere but in the test proxy
TARGET = "sgp-target.test"
ACCOUNT = "acct-network"
# the value of a secret extra header, and the password of the proxy: neither may reach any output
HEADER_CANARY = "tok-HEADERCANARY-5e4d3c2b1a"
PROXY_CANARY = "pw-PROXYCANARY-9f8e7d6c"
PROXY_USER = "tester"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def no_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy and CA settings stay out of these tests (and of the runs they start)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- a forward proxy --------------------------------------------------------------------------------------------


def _read_head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Relay bytes both ways until one side closes."""
    while True:
        readable, _, _ = select.select([a, b], [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


class ForwardProxy:
    """A threaded HTTP forward proxy on loopback. `hosts` maps names to the addresses it connects to;
    `credentials` (user, password) makes it demand Basic Proxy-Authorization (407 otherwise).

    `relayed` lists what it passed on ("POST http://host:port/path", "CONNECT host:port"); `forwarded`
    the headers of each plain request as it sent them on."""

    def __init__(self, hosts: dict[str, str] | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.hosts = hosts or {}
        self.credentials = credentials
        self.relayed: list[str] = []
        self.forwarded: list[dict[str, str]] = []
        self.refused = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{user}:{password}@" if user else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return headers.get("proxy-authorization") == expected

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        read = _read_head(conn)
        if read is None:
            return
        head, rest = read
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        pairs = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
        headers = {k.lower(): v for k, v in pairs}
        if not self._authorised(headers):
            with self._lock:
                self.refused += 1
            conn.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\n'
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            with socket.create_connection((self.hosts.get(host, host), int(port)), timeout=10) as upstream:
                with self._lock:
                    self.relayed.append(f"CONNECT {target}")
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                _pipe(conn, upstream)
            return
        parts = urlsplit(target)
        host = parts.hostname or ""
        body = rest
        while len(body) < int(headers.get("content-length", "0")):
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        hop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        kept = [(k, v) for k, v in pairs if k.lower() not in hop]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept)
        with socket.create_connection((self.hosts.get(host, host), parts.port or 80), timeout=10) as upstream:
            with self._lock:
                self.relayed.append(f"{method} {target}")
                self.forwarded.append({k.lower(): v for k, v in kept})
            upstream.sendall(request.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
            _pipe(conn, upstream)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    made = ForwardProxy(hosts={TARGET: "127.0.0.1"})
    yield made
    made.close()


# -- targets: the reference server recording headers, and over TLS with a locally made CA ---------------------------


class HeaderRecorder:
    """ASGI middleware keeping the headers of every HTTP request it sees (lower-case names)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@dataclass
class Recorded:
    server: RunningServer
    recorder: HeaderRecorder


def _settings() -> ServerSettings:
    return ServerSettings(profile=SGP, api_keys=(REFERENCE_KEY,), account_ids=(ACCOUNT,),
                          models=("openai/gpt-4o-mini",))


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorder = HeaderRecorder(create_app(_settings()))
    server = start_server(recorder, profile=SGP)
    yield Recorded(server, recorder)
    server.stop()


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA made here, and the server certificate it signs for TARGET and 127.0.0.1."""
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert(TARGET, "127.0.0.1", "localhost")
    files = TLSFiles(where / "ca.pem", where / "server.pem", where / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    for i, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(files.cert), append=i > 0)
    issued.private_key_pem.write_to_path(str(files.key))
    return files


@pytest.fixture(scope="module")
def tls_server(tls_files: TLSFiles) -> Iterator[RunningServer]:
    server = start_server(_settings(), certfile=str(tls_files.cert), keyfile=str(tls_files.key))
    yield server
    server.stop()


def _config(base_url: str, **fields: Any) -> Config:
    return Config(base_url=base_url, api_key=REFERENCE_KEY, account_id=ACCOUNT, **fields)


def _send(config: Config) -> Exchange:
    client = Client(config, SGP, config.base_url or "")
    try:
        return client.send(build("basic", Context(config, SGP)))
    finally:
        client.close()


def _on(server: RunningServer, host: str) -> str:
    return server.base_url.replace("127.0.0.1", host)


# -- which route a request takes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://api.example.com", None),
        ({"HTTPS_PROXY": "http://p:1"}, "https://api.example.com", ("http://p:1", "HTTPS_PROXY")),
        ({"HTTPS_PROXY": "http://p:1"}, "http://api.example.com", None),
        ({"HTTP_PROXY": "http://p:2"}, "http://api.example.com", ("http://p:2", "HTTP_PROXY")),
        ({"ALL_PROXY": "http://p:3"}, "https://api.example.com", ("http://p:3", "ALL_PROXY")),
        ({"HTTPS_PROXY": "http://p:1", "ALL_PROXY": "http://p:3"}, "https://a.example", ("http://p:1", "HTTPS_PROXY")),
        # lower case wins over upper case; an empty lower-case one unsets it
        ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}, "https://a.example", ("http://low:1",
                                                                                            "https_proxy")),
        ({"https_proxy": "", "HTTPS_PROXY": "http://up:1"}, "https://a.example", None),
        # as httpx reads it: a bare host:port is an http proxy
        ({"HTTPS_PROXY": "p:8080"}, "https://a.example", ("http://p:8080", "HTTPS_PROXY")),
        # NO_PROXY: everything, a domain and its subdomains, subdomains only, an address block, a port
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://a.example", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://api.example.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://example.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://badexample.com",
         ("http://p:1", "HTTPS_PROXY")),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "https://example.com",
         ("http://p:1", "HTTPS_PROXY")),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": "10.0.0.0/8"}, "https://10.1.2.3", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.example:8443"}, "https://a.example:8443", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.example:8443"}, "https://a.example", ("http://p:1",
                                                                                           "HTTPS_PROXY")),
        # a CGI script ignores HTTP_PROXY (it may come from a request header), as urllib does
        ({"HTTP_PROXY": "http://p:2", "REQUEST_METHOD": "GET"}, "http://api.example.com", None),
    ],
)
def test_environment_proxies_are_read_as_httpx_reads_them(env: dict[str, str], url: str,
                                                          expected: tuple[str, str] | None) -> None:
    via = network.route(Config(), url, env)
    assert ((via.proxy, via.source) if via.proxy else None) == expected


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000/v1", "https://[::1]:8443",
                                 "http://127.5.6.7"])
def test_a_loopback_target_never_goes_through_an_environment_proxy(url: str) -> None:
    env = {"HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:1", "ALL_PROXY": "http://p:1"}
    # httpx with trust_env would send these through the proxy: NO_PROXY does not name them
    assert network.route(Config(), url, env).proxy is None
    # an explicit --proxy is meant for every target, loopback included, and beats NO_PROXY
    explicit = network.route(Config(proxy="http://q:2"), url, {**env, "NO_PROXY": "*"})
    assert (explicit.proxy, explicit.source) == ("http://q:2", "--proxy")


def test_the_suites_client_takes_an_environment_proxy_for_a_remote_target_only(
        proxy: ForwardProxy, recorded: Recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    remote = _send(_config(_on(recorded.server, TARGET), allow_insecure_http=True))
    assert remote.status == 200, remote.error
    assert len(proxy.relayed) == 1 and proxy.relayed[0].startswith(f"POST http://{TARGET}:")
    local = _send(_config(recorded.server.base_url))
    assert local.status == 200 and len(proxy.relayed) == 1


def test_the_sdks_go_through_the_same_proxy_with_the_extra_headers(proxy: ForwardProxy, recorded: Recorded) -> None:
    pytest.importorskip("scale_gp")
    config = _config(recorded.server.base_url, proxy=proxy.url(), headers=["X-Tenant-Id: acme"])
    call = sdk_clients.call_sdk(SGP, config, stream=False)
    assert call.error is None, call.error_text()
    assert len(proxy.relayed) == 1
    assert proxy.forwarded[0]["x-tenant-id"] == "acme" and proxy.forwarded[0]["x-api-key"] == REFERENCE_KEY


# -- a proxy that fails says so ------------------------------------------------------------------------------------


def test_a_proxy_nobody_listens_on_makes_the_target_unreachable_naming_the_proxy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _config("https://api.example.com", proxy=f"http://{PROXY_USER}:{PROXY_CANARY}@127.0.0.1:{port}")
    client = Client(config, SGP, config.base_url or "")
    try:
        exchange = client.send(build("basic", Context(config, SGP)))
    finally:
        client.close()
    assert exchange.response is None and client.dead
    assert f"the proxy http://***@127.0.0.1:{port} (from --proxy)" in client.dead
    assert "nothing accepts connections" in client.dead and PROXY_CANARY not in client.dead


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("password", [None, "wrong-password"])
def test_a_proxy_asking_for_credentials_names_the_fix(scheme: str, password: str | None) -> None:
    strict = ForwardProxy(hosts={TARGET: "127.0.0.1"}, credentials=(PROXY_USER, PROXY_CANARY))
    try:
        config = _config(f"{scheme}://{TARGET}:9", allow_insecure_http=True,
                         proxy=strict.url(PROXY_USER if password else None, password))
        client = Client(config, SGP, config.base_url or "")
        try:
            client.send(build("basic", Context(config, SGP)))
        finally:
            client.close()
    finally:
        strict.close()
    assert strict.refused == 1 and client.dead
    assert "407 Proxy Authentication Required" in client.dead
    fix = "check the user and password in the proxy URL" if password else "give its credentials in the proxy URL"
    assert fix in client.dead


# -- TLS: a locally made CA ----------------------------------------------------------------------------------------


def test_the_reference_server_speaks_tls_when_given_a_certificate(tls_server: RunningServer,
                                                                  tls_files: TLSFiles) -> None:
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    trusted = _send(_config(tls_server.base_url, ca_bundle=str(tls_files.ca)))
    assert trusted.status == 200, trusted.error
    refused = _send(_config(tls_server.base_url))
    assert refused.response is None and "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
    assert network.tls_fix(refused.error or "").startswith(": trust the CA")
    assert _send(_config(tls_server.base_url, insecure=True)).status == 200


def test_serve_refuses_a_certificate_it_cannot_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.server.cli import serve_main

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    assert serve_main(["--api-key", "k", "--port", "0", "--certfile", str(junk)]) == 2
    assert "cannot load the certificate of --certfile/--keyfile" in capsys.readouterr().err
    assert serve_main(["--api-key", "k", "--port", "0", "--keyfile", str(junk)]) == 2
    assert "--keyfile needs --certfile" in capsys.readouterr().err


def test_ssl_cert_file_is_honoured_and_ca_bundle_wins(tls_server: RunningServer, tls_files: TLSFiles,
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    assert _send(_config(tls_server.base_url)).status == 200
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    assert _send(_config(tls_server.base_url, ca_bundle=str(other))).response is None


def _through_proxy(upstream: str, tmp_path: Path, *flags: str) -> int:
    """The status a chat completion gets through `sgp-conformance proxy` in front of `upstream`."""
    from proxy_support import running_proxy

    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with running_proxy(upstream, tmp_path, *flags) as service:
        answer = httpx.post(f"{service.client_base_url}/v4/beta/chat/completions", json=body, timeout=10,
                            headers={"x-api-key": REFERENCE_KEY, "x-selected-account-id": ACCOUNT})
    return answer.status_code


def test_the_proxy_trusts_the_upstream_as_told(tls_server: RunningServer, tls_files: TLSFiles,
                                               tmp_path: Path) -> None:
    # an upstream whose CA nothing trusts: 502; with --ca-bundle or --insecure the answer comes through
    assert _through_proxy(tls_server.base_url, tmp_path / "untrusted") == 502
    assert _through_proxy(tls_server.base_url, tmp_path / "bundle", "--ca-bundle", str(tls_files.ca)) == 200
    assert _through_proxy(tls_server.base_url, tmp_path / "insecure", "--insecure") == 200


def test_the_proxy_refuses_a_ca_bundle_it_cannot_read(tmp_path: Path) -> None:
    from conformance.cli import build_parser
    from conformance.proxy.cli import options_from

    missing = tmp_path / "missing.pem"
    args = build_parser().parse_args(["proxy", "--upstream", "https://api.example.com", "--ca-bundle", str(missing)])
    with pytest.raises(ConfigError, match="--ca-bundle"):
        options_from(args, env={})


# -- extra headers -------------------------------------------------------------------------------------------------


def test_extra_headers_ride_on_every_scenario_and_never_override_what_the_suite_varies() -> None:
    config = _config("https://api.example.com", headers=["X-Tenant-Id: acme", "x-openai-api-key: sk-openai-123456"])
    ctx = Context(config, SGP)
    for name in BUILDERS:
        headers = {k.lower(): v for k, v in build(name, ctx).headers.items()}
        assert headers["x-tenant-id"] == "acme" and headers["x-openai-api-key"] == "sk-openai-123456", name
    assert build("basic", ctx).headers["x-api-key"] == REFERENCE_KEY
    assert "x-api-key" not in build("no_key", ctx).headers
    assert build("wrong_key", ctx).headers["x-api-key"] == WRONG_KEY
    assert build("account_unknown", ctx).headers["x-selected-account-id"] != ACCOUNT


def test_a_header_value_may_come_from_the_environment() -> None:
    config = _config("https://a.example", headers=["X-Tenant-Token: env:TENANT_TOKEN", "X-Trace: on: yes"])
    found = network.extra_headers(config, {"TENANT_TOKEN": HEADER_CANARY})
    assert [(h.name, h.value, h.variable, h.secret) for h in found] == [
        ("X-Tenant-Token", HEADER_CANARY, "TENANT_TOKEN", True), ("X-Trace", "on: yes", None, False)]


@pytest.mark.parametrize(
    ("name", "secret"),
    [("X-Api-Key", True), ("X-Tenant-Token", True), ("x-client-secret", True), ("Proxy-Auth-Thing", True),
     ("X-Password", True), ("X-Session-Cookie", True), ("X-Tenant-Id", False), ("X-Gateway", True)],
)
def test_which_headers_are_secret(name: str, secret: bool) -> None:
    # X-Gateway is declared secret in secret_headers
    assert settings.is_secret_name(name, ["x-gateway"]) is secret


@pytest.mark.parametrize(
    ("headers", "env", "says"),
    [
        (["X-Tenant-Id acme"], {}, "--header 'X-Tenant-Id acme' is not 'Name: value'"),
        ([f"X-Tenant-Token={HEADER_CANARY}"], {}, "--header 'X-Tenant-Token...' is not 'Name: value'"),
        (["Bad Name: v"], {}, "is not 'Name: value'"),
        (["X-Tenant-Id:"], {}, "has no value"),
        (["X-Tenant-Token: env:NOT_SET"], {}, "$NOT_SET is not set: export it"),
        (["X-Tenant-Token: env:not-a-name"], {}, "is not an environment variable name"),
        (["x-api-key: k"], {}, "the key goes in SGP_API_KEY"),
        (["X-Selected-Account-Id: a"], {}, "--account-id"),
        (["Content-Type: text/plain"], {}, "the suite sets content-type on each request itself"),
        (["Proxy-Authorization: Basic x"], {}, "in the proxy URL"),
        (["X-A: 1", "x-a: 2"], {}, "given twice"),
    ],
)
def test_bad_headers_name_the_fix(headers: list[str], env: dict[str, str], says: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve({"headers": headers}, env=env, cwd=tmp_path)
    assert says in str(raised.value) and HEADER_CANARY not in str(raised.value)


def test_the_openai_profile_refuses_its_own_auth_header_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the key goes in SGP_API_KEY"):
        resolve({"profile": "openai", "headers": ["Authorization: Bearer x"]}, env={}, cwd=tmp_path)
    config = resolve({"profile": "openai", "headers": ["x-selected-account-id: a"]}, env={}, cwd=tmp_path)
    assert config.headers == ["x-selected-account-id: a"]


# -- settings, their errors and their secrets -------------------------------------------------------------------------


def test_network_settings_flow_through_the_config_precedence(tmp_path: Path, tls_files: TLSFiles) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.sgp-conformance]\nproxy = "http://file-proxy:3128"\nheaders = ["X-Tenant-Id: file", "X-B: 1, 2"]\n'
        f'ca-bundle = "{tls_files.ca}"\n', encoding="utf-8")
    from_file = resolve({}, env={}, cwd=tmp_path)
    assert from_file.proxy == "http://file-proxy:3128" and from_file.headers == ["X-Tenant-Id: file", "X-B: 1, 2"]
    assert from_file.ca_bundle == str(tls_files.ca) and from_file.insecure is False
    flags = resolve({"proxy": "http://flag-proxy:8080", "headers": ["X-Tenant-Id: flag"]}, env={}, cwd=tmp_path)
    assert flags.proxy == "http://flag-proxy:8080" and flags.headers == ["X-Tenant-Id: flag"]
    # one header a line where a string carries them (the pytest option): a value keeps its commas
    assert resolve({"headers": "X-A: 1, 2\nX-B: 3"}, env={}, cwd=tmp_path).headers == ["X-A: 1, 2", "X-B: 3"]


@pytest.mark.parametrize(
    ("flags", "env", "says"),
    [
        ({"proxy": "proxy.example.com:3128"}, {}, "--proxy 'proxy.example.com:3128' is not a proxy URL"),
        ({"proxy": "ftp://p:21"}, {}, "is not a proxy URL like http://host:port: give e.g. http://"),
        ({"proxy": "http://p:notaport"}, {}, "is not a proxy URL"),
        ({"proxy": f"http://u:{PROXY_CANARY}@p:1/path"}, {}, "--proxy 'http://***@p:1/path' is not a proxy URL"),
        ({"ca_bundle": "{tmp}/missing.pem"}, {}, "--ca-bundle {tmp}/missing.pem does not exist: give the PEM file"),
        ({"ca_bundle": "{tmp}"}, {}, "is a directory: give a PEM file"),
        ({"ca_bundle": "{tmp}/pyproject.toml"}, {}, "holds no PEM CA certificate"),
        ({"insecure": True, "ca_bundle": "x.pem"}, {}, "give one of them"),
        ({}, {"SSL_CERT_FILE": "{tmp}/gone.pem"},
         "SSL_CERT_FILE {tmp}/gone.pem does not exist: fix or unset SSL_CERT_FILE, or give --ca-bundle"),
        ({"base_url": "https://a.example"}, {"HTTPS_PROXY": "http://p:x"},
         "HTTPS_PROXY in the environment 'http://p:x' is not a proxy URL like http://host:port: fix or unset it"),
        ({"base_url": "http://127.0.0.1:8000", "proxy": "http://proxy.corp:3128"}, {},
         "refusing to send the key over plain http through the proxy http://proxy.corp:3128 (from --proxy)"),
    ],
)
def test_bad_network_settings_name_the_fix(flags: dict[str, Any], env: dict[str, str], says: str,
                                           tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")

    def placed(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v for k, v in values.items()}

    with pytest.raises(ConfigError) as raised:
        resolve(placed(flags), env=placed(env), cwd=tmp_path)
    message = str(raised.value)
    assert says.replace("{tmp}", str(tmp_path)) in message
    assert PROXY_CANARY not in message and "\n" not in message


def test_plain_http_through_a_remote_proxy_is_allowed_when_asked(tmp_path: Path) -> None:
    config = resolve({"base_url": "http://a.example", "proxy": "http://proxy.corp:3128", "allow_insecure_http": True},
                     env={}, cwd=tmp_path)
    assert network.route(config).describe() == "through the proxy http://proxy.corp:3128 (from --proxy)"


def test_proxy_passwords_and_secret_header_values_are_secrets_and_masked_in_the_configuration() -> None:
    env = {"HTTPS_PROXY": "http://u:pw-env-proxy-4321@p:1", "TENANT_TOKEN": HEADER_CANARY}
    config = _config("https://a.example", proxy=f"http://{PROXY_USER}:{PROXY_CANARY.replace('-', '%2D')}@p:3128",
                     headers=["X-Tenant-Token: env:TENANT_TOKEN", "X-Other-Secret: literal-secret-77",
                              "X-Tenant-Id: acme"])
    found = config_secrets(config, env)
    assert REFERENCE_KEY in found and PROXY_CANARY in found and "pw-env-proxy-4321" in found
    assert HEADER_CANARY in found and "literal-secret-77" in found and "acme" not in found
    shown = json.dumps(Config.redacted(config))
    assert PROXY_CANARY.replace("-", "%2D") not in shown and "literal-secret-77" not in shown
    assert '"proxy": "http://***@p:3128"' in shown
    assert "X-Tenant-Token: env:TENANT_TOKEN" in shown and f"X-Other-Secret: {MASK}" in shown


def test_the_curl_line_reads_a_secret_header_from_its_variable_and_uses_the_proxy_and_ca(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANT_TOKEN", HEADER_CANARY)
    config = _config("https://a.example", proxy=f"http://{PROXY_USER}:{PROXY_CANARY}@p:3128",
                     ca_bundle="/etc/corp-ca.pem",
                     headers=["X-Tenant-Token: env:TENANT_TOKEN", "X-Other-Secret: literal-secret-77"])
    spec = build("basic", Context(config, SGP))
    exchange = Exchange("basic", SGP.url(config.base_url or ""), spec, None)
    curl = curl_line(exchange, Scrubber(config_secrets(config)), SGP, config)
    for secret in (HEADER_CANARY, PROXY_CANARY, "literal-secret-77", REFERENCE_KEY):
        assert secret not in curl
    assert "-x 'http://***@p:3128'" in curl and "--cacert /etc/corp-ca.pem" in curl
    script = tmp_path / "args.sh"
    script.write_text("printf '%s\\n' " + curl.removeprefix("curl ") + "\n", encoding="utf-8")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True,
                          env={"SGP_API_KEY": REFERENCE_KEY, "TENANT_TOKEN": HEADER_CANARY, "PATH": "/usr/bin:/bin"})
    args = done.stdout.splitlines()
    assert f"X-Tenant-Token: {HEADER_CANARY}" in args and f"X-Other-Secret: {MASK}" in args
    assert f"x-api-key: {REFERENCE_KEY}" in args
    insecure = curl_line(exchange, Scrubber(), SGP, _config("https://a.example", insecure=True))
    assert " -k " in insecure and "--cacert" not in insecure


# -- whole runs ----------------------------------------------------------------------------------------------------


def _no_secret_anywhere(out: Outcome, *secrets: str) -> None:
    for secret in secrets:
        assert files_with_secret(out.report_dir, secret) == {}, secret
        assert secret_forms_found(out.stdout.encode(), secret) == [], secret
        assert secret_forms_found(out.stderr.encode(), secret) == [], secret


def test_a_run_through_proxy_with_credentials_carries_the_extra_headers_and_leaks_no_secret(
        recorded: Recorded, tmp_path: Path) -> None:
    pytest.importorskip("scale_gp")
    strict = ForwardProxy(credentials=(PROXY_USER, PROXY_CANARY))
    try:
        out = run_cli(["run", "--base-url", recorded.server.base_url, "--account-id", ACCOUNT, "--depth", "smoke",
                       "-k", "BASIC or AUTH or CLIENT", "--clients", "--proxy", strict.url(PROXY_USER, PROXY_CANARY),
                       "--header", "X-Tenant-Id: acme", "--header", "X-Tenant-Token: env:TENANT_TOKEN"],
                      tmp_path / "reports", env={"SGP_API_KEY": REFERENCE_KEY, "TENANT_TOKEN": HEADER_CANARY})
    finally:
        strict.close()
    assert out.code == 0, out.output[-3000:]
    assert out.status("BASIC-001") == "pass" and out.status("AUTH-003") == "pass" and out.status("CLIENT-001") == "pass"
    sent = out.doc["requests"]["sent"]
    # every request of the run, the SDK's included, went through the proxy and arrived with the headers
    assert sent >= 5 and len(strict.relayed) == sent == len(recorded.recorder.seen) and strict.refused == 0
    assert all(h["x-tenant-id"] == "acme" and h["x-tenant-token"] == HEADER_CANARY for h in recorded.recorder.seen)
    assert not any("proxy-authorization" in h for h in recorded.recorder.seen)
    agents = {h.get("user-agent", "").split("/")[0] for h in recorded.recorder.seen}
    assert "sgp-conformance" in agents and len(agents) > 1
    # the auth scenarios still varied the key
    keys = [h.get("x-api-key") for h in recorded.recorder.seen]
    assert REFERENCE_KEY in keys and None in keys and any(k and "-wrong-key-" in k for k in keys)
    assert f"go through the proxy http://***@127.0.0.1:{strict.port} (from --proxy)" in out.stdout
    configuration = out.doc["run"]["configuration"]
    assert configuration["proxy"] == f"http://***@127.0.0.1:{strict.port}"
    assert configuration["headers"] == ["X-Tenant-Id: acme", "X-Tenant-Token: env:TENANT_TOKEN"]
    _no_secret_anywhere(out, HEADER_CANARY, PROXY_CANARY)


def test_a_run_through_https_proxy_reaches_a_tls_target_with_the_ca_bundle(
        tls_server: RunningServer, tls_files: TLSFiles, proxy: ForwardProxy, tmp_path: Path) -> None:
    pytest.importorskip("scale_gp")
    out = run_in_process(["run", "--base-url", _on(tls_server, TARGET), "--account-id", ACCOUNT, "--depth", "smoke",
                          "-k", "BASIC or CLIENT-001", "--clients", "--ca-bundle", str(tls_files.ca)],
                         tmp_path / "reports", env={"SGP_API_KEY": REFERENCE_KEY, "HTTPS_PROXY": proxy.url()})
    assert out.code == 0, out.output[-3000:]
    assert out.status("BASIC-001") == "pass" and out.status("CLIENT-001") == "pass"
    # TARGET resolves only in the proxy: the suite's client and the SDK both tunnelled through it
    assert proxy.relayed and set(proxy.relayed) == {f"CONNECT {TARGET}:{tls_server.port}"}
    assert out.doc["requests"]["sent"] == 2
    assert "(from HTTPS_PROXY)" in out.stdout
    assert out.doc["run"]["configuration"]["ca_bundle"] == str(tls_files.ca)


def test_a_tls_target_signed_by_an_unknown_ca_is_unreachable_with_the_fix(
        tls_server: RunningServer, tmp_path: Path) -> None:
    out = run_in_process(["run", "--base-url", tls_server.base_url, "--account-id", ACCOUNT, "--depth", "smoke",
                          "-k", "BASIC"], tmp_path / "reports", env={"SGP_API_KEY": REFERENCE_KEY})
    assert out.code == 3, out.output[-3000:]
    assert "Traceback" not in out.output
    verdict = next(line for line in out.stdout.splitlines() if "TARGET UNREACHABLE" in line)
    assert f"TLS handshake with 127.0.0.1:{tls_server.port} failed" in verdict
    assert "CERTIFICATE_VERIFY_FAILED" in verdict and "--ca-bundle FILE" in verdict


def test_insecure_reaches_the_tls_target_and_says_so_loudly(tls_server: RunningServer, tmp_path: Path) -> None:
    out = run_in_process(["run", "--base-url", tls_server.base_url, "--account-id", ACCOUNT, "--depth", "smoke",
                          "-k", "BASIC", "--insecure"], tmp_path / "reports", env={"SGP_API_KEY": REFERENCE_KEY})
    assert out.code == 0, out.output[-3000:]
    warnings = [line for line in out.stderr.splitlines() if "--insecure" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "NOT verified" in warnings[0]
    assert out.doc["run"]["configuration"]["insecure"] is True


def test_the_tls_context_of_insecure_verifies_nothing() -> None:
    context = network.ssl_context(Config(insecure=True), {})
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert network.ssl_context(Config(), {}).verify_mode == ssl.CERT_REQUIRED


def test_a_transport_per_route() -> None:
    direct = transport_network.http_transport(Config(), "https://a.example", {})
    proxied = transport_network.http_transport(Config(proxy="http://p:1"), "https://a.example", {})
    assert type(direct) is httpx.HTTPTransport
    assert isinstance(proxied, transport_network.ProxiedTransport) and proxied.via.source == "--proxy"


def test_a_server_that_compresses_what_the_client_accepts_is_judged_on_its_json(tmp_path: Path) -> None:
    """A server that gzips every answer the client accepts gzip for (WireMock, nginx, Starlette's
    GZipMiddleware) is judged on its JSON, not on compressed bytes: the suite asks for `identity`. Before,
    httpx offered gzip, the suite read the raw bytes, and HDR-006, RESP-001 and JSON-001 failed on `1f 8b`."""
    from cli_runs import in_process
    from starlette.middleware.gzip import GZipMiddleware

    from conformance.server.settings import DEFAULT_MODELS

    profile = get_profile("openai")
    app = GZipMiddleware(create_app(ServerSettings(profile=profile, api_keys=(REFERENCE_KEY,))), minimum_size=0)
    server = start_server(app, profile=profile)
    try:
        # the same server does gzip what a client accepts gzip for
        answer = httpx.post(f"{server.base_url}/chat/completions", headers={
            "authorization": f"Bearer {REFERENCE_KEY}", "accept-encoding": "gzip"},
            json={"model": DEFAULT_MODELS[0], "messages": [{"role": "user", "content": "hi"}]}, trust_env=False)
        assert answer.headers.get("content-encoding") == "gzip" and answer.json()["object"] == "chat.completion"
        reports = tmp_path / "reports"
        argv = ["run", "--base-url", server.base_url, "--profile", "openai", "--depth", "smoke", "--model",
                DEFAULT_MODELS[0], "--report-dir", str(reports)]
        code, out, err = in_process(argv, env={"SGP_API_KEY": REFERENCE_KEY})
    finally:
        server.stop()
    statuses = {r["id"]: r["status"] for r in json.loads((reports / "conformance.json").read_text())["results"]}
    assert code == 0, out + err
    assert statuses["RESP-001"] == statuses["JSON-001"] == statuses["HDR-006"] == "pass"


def test_a_run_keeps_no_cookie_a_target_sets() -> None:
    """Every request of a run stands alone, as its curl line does: a Set-Cookie is never sent back."""
    import httpx

    from conformance.transport.network import cookieless

    seen: list[str | None] = []

    def target(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "route=replica-2; Path=/"}, json={})

    with cookieless(httpx.Client(transport=httpx.MockTransport(target))) as client:
        client.post("http://target.test/v1/chat/completions", json={})
        client.post("http://target.test/v1/chat/completions", json={})
        assert not client.cookies
    assert seen == [None, None]
