"""Cost and pace on a live target: the request budget, 429 handling with Retry-After, the rate limit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agreement import agree
from cli_runs import run_in_process

from conformance.config import ConfigError, resolve
from conformance.contract.profiles import SGP
from conformance.server import ServerSettings, create_app, start_server
from conformance.transport import client as client_module
from conformance.transport.client import RateLimiter, retry_delay
from conformance.transport.exchange import Response

KEY = "sk-budget-test-key-0b1c"
ACCOUNT = "acct-budget"


def throttling(app: Any, every: int, header: tuple[bytes, bytes] | None) -> Any:
    """Answer every `every`-th POST with 429 (all of them when every is 1)."""
    count = {"n": 0}

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            count["n"] += 1
            if count["n"] % every == 0:
                headers = [(b"content-type", b"application/json")] + ([header] if header else [])
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": json.dumps({"detail": "slow down"}).encode()})
                return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def throttled_server(request: pytest.FixtureRequest) -> Iterator[str]:
    every, header = request.param
    settings = ServerSettings(profile=SGP, api_keys=(KEY,), account_ids=(ACCOUNT,))
    app = throttling(create_app(settings), every, header)
    with start_server(app, profile=SGP) as server:
        yield server.base_url


def test_budget_stops_sending_and_marks_the_rest_not_run(tmp_path: Path) -> None:
    out = run_in_process(["run", "--max-requests", "8"], tmp_path / "reports")
    assert out.code == 4, out.output[-2000:]
    doc = out.doc
    assert doc["requests"]["sent"] <= 8
    not_run = [r for r in doc["results"] if r["status"] == "not run" and r["not_run"] == "budget"]
    assert not_run and all("budget" in r["message"] for r in not_run)
    assert doc["verdict"] == "incomplete"
    assert "INCOMPLETE" in out.stdout
    # and junit.xml and conformance.html say the same
    agree(out)


@pytest.mark.parametrize("throttled_server", [(3, (b"retry-after-ms", b"20"))], indirect=True)
def test_retry_after_is_honoured_and_429s_do_not_fail(throttled_server: str, tmp_path: Path) -> None:
    out = run_in_process(["run", "--base-url", throttled_server, "--max-examples", "5", "--account-id", ACCOUNT,
                          "--clients"], tmp_path / "reports", env={"SGP_API_KEY": KEY})
    assert out.code == 0, out.output[-3000:]
    requests = out.doc["requests"]
    assert requests["retries"] > 0 and requests["throttled"] > 0
    assert {r["status"] for r in out.doc["results"]} <= {"pass", "not judged"}
    # the 429s carried retry-after-ms: the rule on what a 429 says was judged, and held
    assert next(r for r in out.doc["results"] if r["id"] == "ERR-006")["status"] == "pass"


@pytest.mark.parametrize("throttled_server", [(1, (b"retry-after", b"0"))], indirect=True)
def test_a_target_that_always_throttles_is_incomplete_not_failed(throttled_server: str, tmp_path: Path) -> None:
    out = run_in_process(["run", "--base-url", throttled_server, "--depth", "smoke", "--retries", "1"],
                          tmp_path / "reports", env={"SGP_API_KEY": KEY})
    assert out.code == 4, out.output[-3000:]
    statuses = {r["status"] for r in out.doc["results"]}
    assert "fail" not in statuses and "not run" in statuses
    assert out.doc["verdict"] == "incomplete"


def test_retry_delay_reads_the_headers() -> None:
    def response(**headers: str) -> Response:
        return Response(429, list(headers.items()), b"")

    assert retry_delay(response(**{"retry-after-ms": "250"}), 0, 30) == 0.25
    assert retry_delay(response(**{"retry-after": "3"}), 0, 30) == 3
    assert retry_delay(response(**{"retry-after": "3600"}), 0, 30) == 30
    assert retry_delay(response(**{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}), 0, 30) == 0
    assert retry_delay(response(), 2, 30) == 2.0
    # what is neither seconds nor a date is ignored (backoff), never a crash
    assert retry_delay(response(**{"retry-after": "soon"}), 0, 30) == 0.5
    assert retry_delay(response(**{"retry-after-ms": "nan"}), 1, 30) == 1.0


def test_rate_limiter_spaces_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 100.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(client_module.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(client_module.time, "sleep", sleep)
    limiter = RateLimiter(4.0)
    for _ in range(5):
        limiter.wait()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])


def test_key_not_sent_over_plain_http_to_remote_hosts() -> None:
    with pytest.raises(ConfigError, match="allow-insecure-http"):
        resolve({"base_url": "http://api.example.com"}, env={})
    assert resolve({"base_url": "http://api.example.com", "allow_insecure_http": True}, env={}).base_url
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/v1", "http://[::1]:8000", "https://api.example.com"):
        assert resolve({"base_url": url}, env={}).base_url == url


@pytest.mark.parametrize("depth", ["smoke", "standard", "deep"])
def test_each_depth_plans_within_its_default_budget(depth: str, tmp_path: Path) -> None:
    """A run at any depth against a correct server completes with the default budget: a deep run that ran
    out of requests by default would say `incomplete` of a conformant server."""
    out = run_in_process(["run", "--dry-run", "--depth", depth, "--base-url", "http://127.0.0.1:9", "--api-key", "k"],
                         tmp_path / "reports")
    assert out.code == 0, out.output[-2000:]
    total = next(line for line in out.stdout.splitlines() if line.startswith("total:"))
    planned, budget = (int(n) for n in re.findall(r"(\d+) request\(s\) at most, budget (\d+)", total)[0])
    assert planned <= budget, total


def test_property_tests_run_after_the_hand_written_ones(tmp_path: Path) -> None:
    """A budget that runs out cuts generated cases, never a fixed requirement that comes after them."""
    out = run_in_process(["run", "--max-requests", "80"], tmp_path / "reports")
    results = {r["id"]: r for r in out.doc["results"]}
    cut = [i for i, r in results.items() if r["status"] == "not run" and r.get("not_run") == "budget"]
    assert cut, "the budget of 80 should have cut some generated cases"
    assert all(i.startswith("PROP-") for i in cut), cut


def test_an_outer_xdist_session_does_not_split_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI started inside a user's pytest-xdist worker inherits PYTEST_XDIST_WORKER_COUNT: its own run has
    no workers, so the whole budget is its own."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    out = run_in_process(["run", "--depth", "smoke", "--max-requests", "20"], tmp_path / "reports")
    assert out.doc["requests"]["sent"] == 20, out.doc["requests"]
