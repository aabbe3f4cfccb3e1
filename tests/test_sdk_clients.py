"""The official SDKs against targets (CLIENT-001..004): the reference server passes in both profiles, and
servers that break what the SDKs rely on are reported with the SDK's own error.

Canned answers go through httpx.MockTransport under the recording transport (no server, milliseconds);
stream terminators and key echoes go through a wrapped reference server and the CLI, as a user runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_runs import run_cli, run_in_process

from conformance.audit import client_matrix, sdk_clients
from conformance.checks import NotJudged
from conformance.config import Config
from conformance.contract import catalogue
from conformance.contract.profiles import get_profile
from conformance.server import ServerSettings, start_server
from conformance.server.app import create_app
from conformance.transport.client import BudgetExhausted

pytest.importorskip("scale_gp", reason=sdk_clients.INSTALL_HINT)
pytest.importorskip("openai", reason=sdk_clients.INSTALL_HINT)

KEY = "sk-sdk-test-key-5d1c0ffee"
ACCOUNT = "acct-sdk-test"
MODEL = "openai/gpt-4o-mini"
PROFILES = ["sgp", "openai"]

COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "1 2 3"}, "finish_reason": "stop",
                           "logprobs": None}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}


STREAM = [chunk("", role="assistant"), chunk("1 2"), chunk(finish="stop")]


def sse(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, str) else json.dumps(p)).encode() + b"\n\n" for p in payloads)


def canned(body: bytes | dict[str, Any], status: int = 200, media: str = "application/json",
           seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, headers={"content-type": media}, content=raw)

    return httpx.MockTransport(handler)


def config(profile: str, base_url: str = "http://127.0.0.1:9", **overrides: Any) -> Config:
    if profile == "openai" and not base_url.endswith("/v1"):
        base_url += "/v1"
    fields: dict[str, Any] = {"base_url": base_url, "api_key": KEY, "profile": profile, "model": MODEL,
                              "account_id": ACCOUNT if profile == "sgp" else None, "timeout": 5.0, **overrides}
    return Config(**fields)


def call(profile: str, transport: httpx.BaseTransport, stream: bool = False, **kw: Any) -> sdk_clients.Call:
    return sdk_clients.call_sdk(get_profile(profile), config(profile), stream, inner=transport, **kw)


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


# -- the catalogue ---------------------------------------------------------------------------------------


def test_levels_follow_the_contract() -> None:
    assert catalogue.get("CLIENT-001").level == catalogue.MUST
    # [DONE] is open for SGP: its SDK failing on it is observed; for openai a stream its SDK cannot read is MUST
    assert catalogue.get("CLIENT-002").level == catalogue.INFO and catalogue.get("CLIENT-002").profiles == ("sgp",)
    assert catalogue.get("CLIENT-003").level == catalogue.MUST and catalogue.get("CLIENT-003").profiles == ("openai",)
    # the SDK's strict types hold the body to open points (absent versus null): observed
    assert catalogue.get("CLIENT-004").level == catalogue.INFO


# -- the calls as the SDKs make them ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_the_sdk_request_is_bounded_and_authenticated(profile: str) -> None:
    seen: list[httpx.Request] = []
    result = call(profile, canned(COMPLETION, seen=seen))
    assert result.error is None and len(seen) == 1
    request = seen[0]
    body = json.loads(request.content)
    assert body["max_tokens"] == 16 and body["model"] == MODEL
    assert request.url.path == {"sgp": "/v4/beta/chat/completions", "openai": "/v1/chat/completions"}[profile]
    if profile == "sgp":
        assert request.headers["x-api-key"] == KEY and request.headers["x-selected-account-id"] == ACCOUNT
    else:
        assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("profile", PROFILES)
def test_a_conformant_answer_passes_every_client_requirement(profile: str) -> None:
    sdk = sdk_clients.sdk_for(profile)
    completion = call(profile, canned(COMPLETION))
    stream = call(profile, canned(sse(*STREAM, *(["[DONE]"] if profile == "openai" else [])),
                                  media="text/event-stream"), stream=True)
    assert sdk_clients.completion_parsed(completion, sdk) == []
    assert sdk_clients.stream_consumed(stream, sdk, sdk_clients.STREAM_REQUIREMENT[profile]) == []
    assert sdk_clients.strict_types(completion, stream, sdk) == []
    assert len(stream.chunks) == 3 and stream.exchange is not None and stream.exchange.request.stream


def test_done_breaks_the_sgp_sdk_and_says_why() -> None:
    stream = call("sgp", canned(sse(*STREAM, "[DONE]"), media="text/event-stream"), stream=True)
    found = sdk_clients.stream_consumed(stream, sdk_clients.sdk_for("sgp"), "CLIENT-002")
    assert ids(found) == ["CLIENT-002"]
    assert "raised after 3 chunk(s)" in found[0].message and "JSONDecodeError" in found[0].message
    assert "data: [DONE], which this SDK parses as JSON" in found[0].message


def test_a_stream_the_openai_sdk_cannot_read_fails_client_003() -> None:
    stream = call("openai", canned(sse(STREAM[0], "{not json", "[DONE]"), media="text/event-stream"), stream=True)
    found = sdk_clients.stream_consumed(stream, sdk_clients.sdk_for("openai"), "CLIENT-003")
    assert ids(found) == ["CLIENT-003"] and "JSONDecodeError" in found[0].message


def test_an_error_answer_is_not_judged_the_sdk_rightly_raises() -> None:
    result = call("sgp", canned({"detail": "Invalid API key"}, status=401))
    (found,) = sdk_clients.completion_parsed(result, sdk_clients.sdk_for("sgp"))
    assert isinstance(found, NotJudged) and found.needs == "BASIC-001" and "HTTP 401" in found.message
    # no 200 at all: strict types have nothing to judge, and say so instead of passing
    (found,) = sdk_clients.strict_types(result, None, sdk_clients.sdk_for("sgp"))
    assert isinstance(found, NotJudged) and found.requirement == "CLIENT-004"
    # a streamed request answered 500 (a gateway that fails every stream) points at STRM-001, not BASIC-001
    failed = call("openai", canned({"status": "failure"}, status=500), stream=True)
    (found,) = sdk_clients.stream_consumed(failed, sdk_clients.sdk_for("openai"), "CLIENT-003")
    assert isinstance(found, NotJudged) and found.needs == "STRM-001" and "HTTP 500" in found.message


def test_a_2xx_the_sdk_cannot_read_fails_client_001_with_the_sdk_error() -> None:
    result = call("sgp", canned(b"<html>not json</html>"))
    found = sdk_clients.completion_parsed(result, sdk_clients.sdk_for("sgp"))
    assert ids(found) == ["CLIENT-001"] and "create() raised" in found[0].message


def test_a_chunk_shaped_completion_is_mis_parsed_by_the_sgp_sdk() -> None:
    # the SGP SDK's return type is a union of completion and chunk: a delta-shaped body becomes a chunk
    result = call("sgp", canned(chunk("hi", finish="stop")))
    found = sdk_clients.completion_parsed(result, sdk_clients.sdk_for("sgp"))
    assert ids(found) == ["CLIENT-001"] and "ChatCompletionChunkV5" in found[0].message


def test_types_outside_the_sdk_types_are_a_should_not_a_parse_failure() -> None:
    odd = {**COMPLETION, "service_tier": "ultra"}
    for profile in PROFILES:
        result = call(profile, canned(odd))
        sdk = sdk_clients.sdk_for(profile)
        assert sdk_clients.completion_parsed(result, sdk) == []
        found = sdk_clients.strict_types(result, None, sdk)
        assert ids(found) == ["CLIENT-004"] and found[0].pointer == "/service_tier"


def test_a_200_that_is_no_completion_is_a_mis_parse_not_a_pass() -> None:
    # the SDKs build whatever came without validating: the user's `completion.choices` is what breaks
    for profile in PROFILES:
        result = call(profile, canned({"detail": "quota exceeded"}))
        found = sdk_clients.completion_parsed(result, sdk_clients.sdk_for(profile))
        assert "/choices" in {v.pointer for v in found} and set(ids(found)) == {"CLIENT-001"}, profile


def test_a_body_that_is_not_json_fails_client_001() -> None:
    result = call("openai", canned(b"<html>502</html>", media="text/html"))
    assert ids(sdk_clients.completion_parsed(result, sdk_clients.sdk_for("openai"))) == ["CLIENT-001"]


def test_differences_name_the_path_of_a_mis_parse() -> None:
    sent = {"a": {"b": [1, 2]}, "c": 1.0, "d": True}
    assert list(sdk_clients.differences({"a": {"b": [1, 2]}, "c": 1, "d": True}, sent)) == []
    found = dict(sdk_clients.differences({"a": {"b": [1, 3]}, "d": 1, "e": None}, sent))
    assert set(found) == {"/a/b/1", "/c", "/d", "/e"}


# -- the transport: budget, bounds, records --------------------------------------------------------------


def test_the_budget_stops_the_sdk_and_is_not_reported_as_its_failure() -> None:
    def spent() -> None:
        raise BudgetExhausted("request budget of 1 reached (--max-requests)")

    with pytest.raises(BudgetExhausted):
        call("sgp", canned(COMPLETION), before_send=spent)


def test_throttling_is_retried_like_the_suite_retries_it() -> None:
    answers = [httpx.Response(429, headers={"retry-after-ms": "1"}, json={"detail": "slow down"}),
               httpx.Response(200, json=COMPLETION)]
    retried: list[Any] = []
    result = call("sgp", httpx.MockTransport(lambda request: answers.pop(0)), on_retry=retried.append)
    assert result.error is None and [e.status for e in result.exchanges] == [429, 200]
    assert [e.status for e in retried] == [429]
    always = sdk_clients.call_sdk(get_profile("sgp"), config("sgp", retries=1), False, inner=canned(
        {"detail": "slow down"}, status=429))
    # given up after the configured retries: the caller reports it as not run, as for its own requests
    assert [e.status for e in always.exchanges] == [429, 429] and always.error is not None


def test_every_sdk_request_is_recorded_and_cut_at_the_size_limit() -> None:
    recorded: list[Any] = []
    big = {**COMPLETION, "pad": "x" * 5000}
    result = sdk_clients.call_sdk(get_profile("sgp"), config("sgp", max_body_bytes=1000), False,
                                  record=recorded.append, inner=canned(big))
    assert len(recorded) == 1 and recorded[0] is result.exchange
    assert recorded[0].response.truncated and len(recorded[0].response.body) == 1000
    assert result.error is not None  # the SDK was given the cut body, as the limit says


def test_a_missing_sdk_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sdk_clients.importlib.import_module

    def hide(name: str, *args: Any) -> Any:
        if name == "openai":
            raise ImportError("No module named 'openai'")
        return real(name, *args)

    monkeypatch.setattr(sdk_clients.importlib, "import_module", hide)
    # from this source checkout, the hint installs its extra; from a wheel, the package's
    hint = sdk_clients.missing_sdk("openai") or ""
    assert "[clients]'" in hint and ("pip install -e '" in hint or "pip install 'sgp-conformance[clients]'" in hint)
    assert sdk_clients.missing_sdk("sgp") is None


def test_an_sdk_whose_types_moved_is_not_judged_with(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_clients.layout_problem("sgp") is None and sdk_clients.layout_problem("openai") is None
    moved = sdk_clients.SDK("openai", "openai", "openai.types.chat:NoSuchCompletion", "openai.types.chat:X")
    monkeypatch.setitem(sdk_clients.SDKS, "openai", moved)
    assert "not supported" in (sdk_clients.layout_problem("openai") or "")


# -- the whole run, as a user starts it ------------------------------------------------------------------


class Rewrite:
    """Wraps the reference app: `rewrite(request_headers, body_chunks) -> body_chunks` on every answer
    whose request matches `when`, so one test changes exactly one thing the SDK meets."""

    def __init__(self, app: Any, rewrite: Callable[[dict[bytes, bytes], bytes], bytes],
                 when: Callable[[dict[bytes, bytes]], bool] = lambda headers: True, status: int | None = None) -> None:
        self.app, self.rewrite, self.when, self.status = app, rewrite, when, status

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if scope["type"] != "http" or not self.when(headers):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def collect(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        content = self.rewrite(headers, b"".join(body))
        start["headers"] = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        start["headers"].append((b"content-length", str(len(content)).encode()))
        if self.status is not None:
            start["status"] = self.status
        await send(start)
        await send({"type": "http.response.body", "body": content})


@pytest.fixture
def wrapped() -> Iterator[Callable[..., str]]:
    servers = []

    def start(profile: str, rewrite: Callable[[dict[bytes, bytes], bytes], bytes], **kw: Any) -> str:
        settings = ServerSettings(profile=get_profile(profile), api_keys=(KEY,), models=(MODEL,))
        server = start_server(Rewrite(create_app(settings), rewrite, **kw), profile=get_profile(profile))
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


def _run(base_url: str, profile: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    # in this interpreter: the SDKs' verdicts are the run's, not the process's (the other tests run the command)
    return run_in_process(["run", "--profile", profile, "--base-url", base_url, "-k", "CLIENT or STRM-005", *extra],
                          tmp_path / "reports", env={"SGP_API_KEY": KEY, **(env or {})})


@pytest.mark.parametrize("profile", PROFILES)
def test_reference_server_passes_the_sdk_requirements(profile: str, tmp_path: Path) -> None:
    out = run_in_process(["run", "--profile", profile, "--clients", "-k", "CLIENT"], tmp_path / "reports")
    assert out.code == 0, out.output[-2000:]
    statuses = {r["id"]: r["status"] for r in out.doc["results"]}
    assert {k: v for k, v in statuses.items() if k.startswith("CLIENT")} == {
        r.id: "pass" for r in catalogue.for_profile(profile) if r.area == "CLIENT"}
    # the SDK's requests count against the run's budget like the suite's own (and the preflight's one): two
    # SDK calls, and one per capability of each client of the client matrix (CLIENT-005)
    matrix = len(client_matrix.clients_for(profile)) * len(client_matrix.CAPABILITIES)
    assert out.doc["requests"]["sent"] == 3 + matrix


def test_done_under_sgp_is_reported_against_the_sgp_sdk(wrapped: Callable[..., str], tmp_path: Path) -> None:
    def append_done(headers: dict[bytes, bytes], body: bytes) -> bytes:
        return body + b"data: [DONE]\n\n" if body.startswith(b"data:") else body

    out = _run(wrapped("sgp", append_done), "sgp", tmp_path, "--clients")
    # INFO only (the terminator is open under sgp): the run stays conformant at the default --fail-on must
    assert out.code == 0, out.output[-2000:]
    results = {r["id"]: r for r in out.doc["results"]}
    assert results["CLIENT-001"]["status"] == "pass"
    assert results["CLIENT-002"]["status"] == "observed" and results["CLIENT-002"]["level"] == "INFO"
    assert "[DONE]" in results["CLIENT-002"]["message"] and "JSONDecodeError" in results["CLIENT-002"]["message"]
    assert results["STRM-005"]["status"] == "observed"  # INFO: an observation, never a failure
    scenarios = results["CLIENT-002"]["evidence"]["scenarios"]
    assert [s["scenario"] for s in scenarios] == ["sdk_stream"] and scenarios[0]["status"] == 200
    assert "JSONDecodeError" in (tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8")
    assert run_in_process(["run", "--profile", "sgp", "--base-url", wrapped("sgp", append_done), "--clients",
                           "--fail-on", "should", "-k", "CLIENT"], tmp_path / "should",
                          env={"SGP_API_KEY": KEY}).code == 1


def test_a_key_echoed_into_an_sdk_error_never_reaches_the_reports(wrapped: Callable[..., str],
                                                                  tmp_path: Path) -> None:
    def answer_echoing(headers: dict[bytes, bytes], body: bytes) -> bytes:
        # a 200 the SDK cannot parse, whose text (and so the SDK's exception) carries the key
        return f"key {headers[b'x-api-key'].decode()} is not welcome here".encode()

    # only the SDK's requests (they carry x-stainless-lang): the suite's own are answered as usual
    url = wrapped("sgp", answer_echoing, when=lambda headers: b"x-stainless-lang" in headers)
    out = _run(url, "sgp", tmp_path, "--clients")
    assert out.code == 1, out.output[-2000:]
    assert out.status("CLIENT-001") == "fail" and "SECRET LEAK" not in out.output
    message = next(r["message"] for r in out.doc["results"] if r["id"] == "CLIENT-001")
    assert KEY not in message
    for path in (tmp_path / "reports").iterdir():
        assert KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_an_unreachable_target_is_not_an_sdk_failure(tmp_path: Path) -> None:
    refused = call("sgp", httpx.MockTransport(lambda request: (_ for _ in ()).throw(
        httpx.ConnectError("Connection refused", request=request))))
    assert refused.unreachable and "connection refused" in refused.unreachable
    out = run_in_process(["run", "--base-url", "http://127.0.0.1:9", "--api-key", "k", "--clients", "-k", "CLIENT"],
                         tmp_path / "reports")
    assert out.code == 3, out.output[-2000:]
    assert {r["status"] for r in out.doc["results"]} == {"not run"}


def test_without_clients_or_without_the_sdk_the_requirements_say_why(tmp_path: Path) -> None:
    out = run_in_process(["run", "-k", "CLIENT"], tmp_path / "reports")
    clients = [r for r in out.doc["results"] if r["id"].startswith("CLIENT")]
    assert out.code == 0 and {(r["status"], r["not_run"], r["message"]) for r in clients} == {
        ("not run", "settings", "pass --clients to drive the official SDKs")}
    # --clients without the SDK is a configuration error before anything is sent, with the install line (a
    # fresh interpreter: the SDK is hidden from its imports by PYTHONPATH)
    hidden = tmp_path / "hidden"
    (hidden / "scale_gp").mkdir(parents=True)
    (hidden / "scale_gp" / "__init__.py").write_text("raise ImportError('hidden by a test')\n")
    out = run_cli(["run", "--clients", "-k", "CLIENT"], tmp_path / "hidden-reports",
                  env={"PYTHONPATH": str(hidden)})
    assert out.code == 2, out.output[-2000:]
    assert "--clients: the scale-gp SDK is not installed" in out.stderr and "[clients]'" in out.stderr
    assert not (tmp_path / "hidden-reports" / "conformance.json").exists()
