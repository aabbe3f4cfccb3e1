"""The concurrency probe's machinery: requests sent together do overlap at the target, the reference server's
--max-concurrency serialises them and stays conformant, and the probe's cost shows in the plan."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from cli_runs import REFERENCE_KEY, run_cli, run_in_process

from conformance.config import Config
from conformance.contract.profiles import get_profile
from conformance.server.app import ConcurrencyLimit
from conformance.server.runner import start_server
from conformance.suite.plan import request_plan
from conformance.transport.client import BudgetExhausted, Client
from conformance.transport.exchange import RequestSpec


class Gauge:
    """An ASGI app that answers once `expected` requests are in flight together (or after a hang guard),
    noting the most it saw at once; with `expected` 0, each request yields to the others a few times."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(200 if self.expected else 3):  # a hang guard of 10 s, far above what this takes
            if self.expected and self.peak >= self.expected:
                break
            await asyncio.sleep(0.05)
        self.in_flight -= 1
        body = json.dumps({"peak": self.peak}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _spec(i: int) -> RequestSpec:
    return RequestSpec(f"overlap_{i}_together", headers={"content-type": "application/json"}, body=b"{}", params={})


def test_send_together_overlaps_whatever_the_concurrency_setting() -> None:
    gauge = Gauge(4)
    with start_server(gauge, profile=get_profile("openai")) as server:
        client = Client(Config(concurrency=1, max_requests=10), get_profile("openai"), server.base_url)
        try:
            found = client.send_together([_spec(i) for i in range(4)])
        finally:
            client.close()
    assert gauge.peak == 4 and [e.status for e in found] == [200] * 4
    assert client.stats.sent == 4
    assert [e.scenario for e in client.exchanges] == [f"overlap_{i}_together" for i in range(4)]


def test_send_together_sends_nothing_past_the_budget() -> None:
    client = Client(Config(max_requests=3), get_profile("openai"), "http://127.0.0.1:9")
    try:
        try:
            client.send_together([_spec(i) for i in range(4)])
        except BudgetExhausted:
            pass
        else:
            raise AssertionError("four requests were sent on a budget of three")
    finally:
        client.close()
    assert client.stats.sent == 0


def test_concurrency_limit_serialises() -> None:
    async def four(app: Any) -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.post("/") for _ in range(4)))
        return [a.json()["peak"] for a in answers]

    # the same four requests overlap without the limit, so the limit is what keeps them apart
    assert max(asyncio.run(four(Gauge(0)))) == 4
    assert asyncio.run(four(ConcurrencyLimit(Gauge(0), 1))) == [1, 1, 1, 1]
    assert max(asyncio.run(four(ConcurrencyLimit(Gauge(0), 2)))) == 2


def test_the_probe_passes_against_a_serialising_reference_server(reference_server: Any, tmp_path: Path) -> None:
    server = reference_server("openai", max_concurrency=1)
    out = run_cli(["run", "--profile", "openai", "--base-url", server.base_url, "--model", "openai/gpt-4o-mini",
                   "-k", "CONC", "--concurrency-probe", "3"], tmp_path / "reports", env={"SGP_API_KEY": REFERENCE_KEY})
    assert out.code == 0, out.output[-3000:]
    statuses = {r["id"]: r["status"] for r in out.doc["results"] if r["id"].startswith("CONC-")}
    assert statuses == dict.fromkeys(("CONC-001", "CONC-002", "CONC-003", "CONC-004"), "pass")
    assert out.doc["requests"]["sent"] == 1 + 6  # the preflight, then three alone and three together


def test_the_plan_counts_the_probe_once() -> None:
    rows, total = request_plan([("CONC-001", ()), ("CONC-003", ()), ("BASIC-001", ("basic",))], 0, probe=4)
    assert total == 9 and rows[0][1] == 8 and rows[1][1] == 0 and "4 request(s) one at a time" in rows[0][2]


def test_a_claimed_determinism_turns_differences_into_failures(tmp_path: Path) -> None:
    from mutants.between import CONTROLS

    from conformance.server.app import create_app
    from conformance.server.settings import ServerSettings

    settings = ServerSettings(profile=get_profile("openai"), api_keys=(REFERENCE_KEY,))
    varying = CONTROLS["open_nondeterministic"]
    with start_server(varying.wrap(create_app(settings), settings), profile=settings.profile) as server:
        args = ["run", "--profile", "openai", "--base-url", server.base_url, "--model", "openai/gpt-4o-mini", "-k",
                "AGREE or CONC", "--concurrency-probe", "2"]
        env = {"SGP_API_KEY": REFERENCE_KEY}
        unclaimed = run_in_process(args, tmp_path / "unclaimed", env=env)
        claimed = run_in_process([*args, "--claim", "deterministic"], tmp_path / "claimed", env=env)
    statuses = {r["id"]: (r["level"], r["status"]) for r in unclaimed.doc["results"] if r["status"] != "not run"}
    assert unclaimed.code == 0 and statuses["AGREE-001"] == ("INFO", "observed")
    assert statuses["CONC-004"] == ("MUST", "pass")
    statuses = {r["id"]: (r["level"], r["status"]) for r in claimed.doc["results"] if r["status"] != "not run"}
    assert claimed.code == 1, claimed.output[-2000:]
    assert statuses["AGREE-001"] == ("MUST", "fail") and statuses["CONC-004"] == ("MUST", "fail")
    assert statuses["AGREE-002"] == ("SHOULD", "pass")


def test_serve_refuses_a_negative_max_concurrency(capsys: Any) -> None:
    from conformance.server.cli import serve_main

    assert serve_main(["--api-key", "k", "--max-concurrency", "-1"]) == 2
    assert "max concurrency must be >= 0" in capsys.readouterr().err


def test_an_answer_given_to_the_wrong_request_is_one_failure_not_two() -> None:
    """Request b answered with a's answer carries a's marker (CONC-004) and a's id: the repeated id is a
    consequence, not a CONC-003 failure of its own. Two answers of their own requests with one id are."""
    from builders import completion, make_exchange

    from conformance.checks import concurrency

    def answer(scenario: str, marker: str, id_: str) -> Any:
        return make_exchange(body=completion(content=f"echo {marker}", id=id_), scenario=scenario)

    mixed = [answer("a", "M-a", "c1"), answer("b", "M-a", "c1")]
    assert [v.requirement for v in concurrency.foreign_markers(mixed, ["M-a", "M-b"])] == ["CONC-004"]
    assert concurrency.distinct_ids(mixed, ["M-a", "M-b"]) == []
    same_id = [answer("a", "M-a", "c1"), answer("b", "M-b", "c1")]
    assert [v.requirement for v in concurrency.distinct_ids(same_id, ["M-a", "M-b"])] == ["CONC-003"]
