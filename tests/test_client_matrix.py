"""The client matrix (CLIENT-005, conformance.audit.client_matrix): four official clients in two languages against
the reference server (every cell passes) and against a stream mutant whose tool-call fragments repeat the id (the
Python openai SDK, which appends it, breaks; the TypeScript one, which replaces it, does not). The clients come
with the `clients` extra and, for node's openai, tests/ensure-node-openai.sh (tox runs it first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import completion, make_exchange
from cli_runs import run_cli
from mutants import ACCOUNT, KEY, MODEL, settings_for, variant

from conformance.audit import client_matrix
from conformance.config import Config
from conformance.contract.profiles import get_profile
from conformance.server import RunningServer, start_server
from conformance.server.app import create_app


def serve(profile: str, mutant: str | None = None) -> RunningServer:
    settings = settings_for(profile)
    app = create_app(settings)
    return start_server(variant(mutant).wrap(app, settings) if mutant else app, profile=get_profile(profile))


def matrix(server: RunningServer, profile: str) -> list[client_matrix.Cell]:
    config = Config(base_url=server.base_url, api_key=KEY, profile=profile, model=MODEL, account_id=ACCOUNT)
    return client_matrix.run_matrix(config, get_profile(profile))


@pytest.fixture(params=["sgp", "openai"])
def reference(request: pytest.FixtureRequest) -> Iterator[tuple[str, RunningServer]]:
    with serve(request.param) as server:
        yield request.param, server


def test_four_clients_in_two_languages_pass_every_capability(reference: tuple[str, RunningServer]) -> None:
    profile, server = reference
    cells = matrix(server, profile)
    clients = {(c.client, c.language) for c in cells}
    assert clients == {(k.name, k.language) for k in client_matrix.clients_for(profile)}
    # every client installed (the extra and the npm cache), every cell judged and passed
    assert [(c.client, c.capability, c.status, c.detail) for c in cells if c.status != "pass"] == []
    assert all(c.version != "-" and c.exchanges for c in cells)
    assert len(cells) == 2 * len(client_matrix.CAPABILITIES)


def test_the_clients_tell_apart_what_their_accumulators_do() -> None:
    with serve("openai", "strm_tool_identity_every_fragment") as server:
        cells = {(c.client, c.capability): c for c in matrix(server, "openai")}
    broken = [key for key, cell in cells.items() if cell.status != "pass"]
    assert broken == [("openai", "tool calls")], [(k, cells[k].detail) for k in broken]
    cell = cells[("openai", "tool calls")]
    # the failing exchange is the cell's, and the message shows both assemblies
    assert cell.exchanges[-1].scenario == "client_openai_tool_calls" and "the suite" in cell.detail


def test_a_client_that_is_not_installed_is_not_run_with_its_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_matrix.ClientKind, "version", lambda self: None)
    cells = client_matrix.run_matrix(Config(base_url="http://127.0.0.1:9", api_key="k", profile="sgp"),
                                     get_profile("sgp"))
    assert {c.status for c in cells} == {"not run"}
    assert all("pip install scale-gp" in c.detail for c in cells)
    table = client_matrix.markdown(cells)
    assert "| scale-gp-beta | Python | - | not run | not run | not run | not run |" in table

    # the TypeScript client's line names the npm folder of the run's own environment, read when it is said
    # (a run in a process that imported the module under another environment: the tests' zygote, in-process runs)
    monkeypatch.setenv("SGP_NODE_MODULES", "/elsewhere/node")
    cells = client_matrix.run_matrix(Config(base_url="http://127.0.0.1:9", api_key="k", profile="openai"),
                                     get_profile("openai"))
    assert any("npm install --prefix /elsewhere/node openai" in c.detail for c in cells)
    monkeypatch.setenv("HOME", "/home/another")
    monkeypatch.delenv("SGP_NODE_MODULES")
    assert "--prefix /home/another/.cache/sgp-conformance/node " in client_matrix.CLIENTS[-1].install_line()


def test_judges_of_a_cell() -> None:
    sent = make_exchange(body=completion())
    assert client_matrix.judge_parse(completion(), sent) == ("pass", "")
    assert client_matrix.judge_parse(completion(model="other"), sent)[0] == "fail"
    refused = make_exchange(status=401, body={"error": {"message": "no"}})
    assert client_matrix.judge_error(True, 401, "AuthenticationError", refused) == ("pass", "")
    assert client_matrix.judge_error(False, None, "JSONDecodeError", refused)[0] == "fail"
    assert client_matrix.judge_error(True, 400, "BadRequestError", refused)[0] == "fail"
    assert client_matrix.judge_error(False, None, "", sent)[0] == "not judged"


def test_run_clients_shows_the_matrix_and_judges_client_005(tmp_path: Path) -> None:
    with serve("openai") as server:
        out = run_cli(["run", "--profile", "openai", "--base-url", server.base_url, "--clients", "-k", "CLIENT-005",
                       "--model", MODEL], tmp_path / "reports", env={"SGP_API_KEY": KEY})
    statuses = {r["id"]: r["status"] for r in out.doc["results"]}
    assert statuses.get("CLIENT-005") == "pass", out.output[-2000:]
    # the matrix is the test's output, which the HTML report's Test log shows
    page = (tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8")
    assert "| openai (TypeScript) | TypeScript |" in page and "| openai | Python |" in page
    # and only the three reports are written
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["conformance.html", "conformance.json",
                                                                         "junit.xml"]


def _answer_tools_with_cut_text(body: Any, call: Any) -> None:
    # transformers serve: tool_choice and tools ignored, the answer is text cut at max_tokens
    if isinstance(body, dict) and body.get("tools"):
        body.pop("tools"), body.pop("tool_choice", None)
        body["max_tokens"] = 1


def test_a_client_that_fails_on_an_answer_with_no_tool_call_is_not_a_second_failure() -> None:
    """A server that answers a forced call with text fails TOOL-001; the openai SDK's stream helper then
    raises LengthFinishReasonError on that text. The cell is not judged (TOOL-001 reports it): it used to
    fail CLIENT-005 as well, one fault reported twice."""
    from mutants.core import Mutant
    from mutants.hooks import on_body

    settings = settings_for("openai")
    mutant = Mutant("tool calls answered with cut text", "TOOL-001", ("openai",),
                    request=on_body(_answer_tools_with_cut_text))
    with start_server(mutant.wrap(create_app(settings), settings), profile=get_profile("openai")) as server:
        cells = {(c.client, c.capability): c for c in matrix(server, "openai")}
    python, node = cells[("openai", "tool calls")], cells[("openai (TypeScript)", "tool calls")]
    assert "LengthFinishReasonError" in python.detail, python.detail
    assert python.status == node.status == "not judged" and "TOOL-001 reports it" in python.detail + node.detail
    assert [key for key, cell in cells.items() if cell.status not in ("pass", "not judged")] == []


def _routed(app, name: str, value: str):
    """A gateway's routing: every request without the header `name: value` is refused with a 400."""
    async def gateway(scope, receive, send):
        if scope["type"] == "http" and (name.encode(), value.encode()) not in scope["headers"]:
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"status":"failure","message":"route header missing"}'})
            return
        await app(scope, receive, send)
    return gateway


def test_every_client_sends_the_runs_extra_headers() -> None:
    # as a gateway's users configure their clients (default headers): without the run's --header the
    # gateway refuses every client request, which is the suite's fault, not the server's (interop portkey)
    settings = settings_for("openai")
    with start_server(_routed(create_app(settings), "x-route", "backend-1"), profile=get_profile("openai")) as server:
        config = Config(base_url=server.base_url, api_key=KEY, profile="openai", model=MODEL,
                        headers=["x-route: backend-1"])
        cells = client_matrix.run_matrix(config, get_profile("openai"))
        assert [(c.client, c.capability, c.detail) for c in cells if c.status != "pass"] == []
        assert all(("x-route", "backend-1") in c.exchanges[-1].request.headers.items() for c in cells)
        # a server that needs the header is still failed by a run that does not send it
        bare = client_matrix.run_matrix(Config(base_url=server.base_url, api_key=KEY, profile="openai", model=MODEL),
                                        get_profile("openai"))
        assert {c.capability for c in bare if c.status == "fail"} >= {"parse", "stream"}
