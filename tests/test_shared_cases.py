"""The cases that the suite once judged wrongly (tests/fixtures/cases, from shared/cases): each gives the
verdict its README states, and each `.ok` twin, the same exchange done right, validates clean."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runs import run_cli, run_in_process

from conformance.config import Config
from conformance.contract.profiles import OPENAI
from conformance.transport.client import Client
from conformance.transport.exchange import RequestSpec

CASES = Path(__file__).resolve().parent / "fixtures" / "cases"
# file: the requirement that must fail (and be the only one) and its level's --fail-on
RECORDED = {
    "stream-labelled-json.har": "STRM-001",
    "plain-answer-labelled-sse.har": "HDR-003",
    "logprob-bytes-are-code-points.json": "LOGP-003",
    "stop-string-kept.har": "SEM-010",
    # the rule on later tool-call fragments, and the openai SDK's assembly that differs from the suite's
    "tool-call-id-every-delta.sse": "STRM-020 STRM-022",
}
BAD = ("fail", "error", "observed", "stale")
# the level a case's rule is judged at, where the cases' README names it
LEVELS = {"stop-string-kept.har": "SHOULD"}


def failed(report_dir: Path, doc: dict[str, Any]) -> set[str]:
    return {r["id"] for r in doc["results"] if r["status"] in BAD}


@pytest.mark.parametrize("name", RECORDED)
def test_a_recorded_case_fails_exactly_its_rule(name: str, tmp_path: Path) -> None:
    out = run_in_process(["validate", "--profile", "openai", "--fail-on", "should", str(CASES / name)],
                         tmp_path / "bad")
    assert out.code == 1, out.output[-2000:]
    # the rule, and no cascade of findings that follow from it
    assert failed(out.report_dir, out.doc) == set(RECORDED[name].split()), out.output[-2000:]
    if name in LEVELS:
        assert {r["level"] for r in out.doc["results"] if r["id"] in RECORDED[name].split()} == {LEVELS[name]}
    twin = name.replace(".har", ".ok.har").replace(".json", ".ok.json").replace(".sse", ".ok.sse")
    ok = run_in_process(["validate", "--profile", "openai", "--fail-on", "should", str(CASES / twin)],
                        tmp_path / "ok")
    assert ok.code == 0 and failed(ok.report_dir, ok.doc) == set(), ok.output[-2000:]
    assert ok.doc["verdict"] == "conformant"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closing_server() -> Iterator[str]:
    """close-after-500.py: a 500, then the kept-alive connection closed without `Connection: close`."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(CASES / "close-after-500.py"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(10)


def test_the_request_after_a_500_is_judged_on_its_real_answer(closing_server: str) -> None:
    client = Client(Config(base_url=closing_server, api_key="k", profile="openai"), OPENAI, closing_server)
    try:
        headers = {"content-type": "application/json", "authorization": "Bearer k"}
        crash = client.send(RequestSpec("no_messages", headers=headers, body=b'{"model": "m"}'))
        assert crash.status == 500
        # the server closed the connection the next request would have reused: it is sent again on a fresh
        # one, and its answer (400) is what is judged, not a reset
        after = client.send(RequestSpec("valid", headers=headers, body=b'{"model": "m", "messages": []}'))
        assert after.status == 400 and after.error is None, after.error
        assert client.stats.retries >= 1 and client.stats.transport_errors == 0
    finally:
        client.close()


def test_no_requirement_fails_for_the_closed_connection(closing_server: str, tmp_path: Path) -> None:
    # VAL-001's request (no messages) draws the 500 and the close; the requests after it must not suffer
    out = run_cli(["run", "--profile", "openai", "--base-url", closing_server, "--depth", "smoke", "-k",
                   "VAL-00 or BASIC or ERR-005"], tmp_path / "reports", env={"SGP_API_KEY": "k"})
    messages = [r["message"] for r in out.doc["results"]]
    assert not [m for m in messages if "reset" in m or "closed the connection" in m], messages
    assert out.doc["requests"]["transport_errors"] == 0
    # the server answers 400 to everything: the minimal request fails, and the rest points at it
    assert {r["id"] for r in out.doc["results"] if r["status"] == "fail"} <= {"BASIC-001", "ERR-005", "PROP-002"}
