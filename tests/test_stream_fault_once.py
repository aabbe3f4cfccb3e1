"""One fault, one failure for streams: a server that answers every streamed request with a 500 (Portkey's gateway
1.15.2 in the interop registry, `TypeError: immutable`) fails STRM-001, which owns the minimal stream; the other
requirements whose requests are streamed (STRM-020's tool stream, AGREE-002's pairs, FORM-001's stream_options,
PROP-002's valid streamed cases) point at it rather than report the same 500 again. A server whose streams work
but whose tool stream crashes is still failed by STRM-020."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_runs import run_in_process
from mutants import KEY, MODEL, settings_for, variant

from conformance.contract.profiles import get_profile
from conformance.server import start_server
from conformance.server.app import create_app

CRASH = b'{"status":"failure","message":"Something went wrong"}'


def _crashing_streams(app: Any, tools_only: bool) -> Any:
    """The app, but a stream it serves (to a request with tools, when `tools_only`) becomes a 500 in a
    gateway's own shape: what the backend refuses stays refused, as behind Portkey's gateway."""
    async def gateway(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        messages, body, more = [], b"", True
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        target = isinstance(doc, dict) and (bool(doc.get("tools")) or not tools_only)
        replay = iter(messages)
        crashed = False

        async def again() -> Any:
            return next(replay, None) or await receive()

        async def answer(message: Any) -> None:
            nonlocal crashed
            if message["type"] == "http.response.start" and target and message["status"] == 200 \
                    and b"text/event-stream" in dict(message.get("headers", [])).get(b"content-type", b""):
                crashed = True
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": CRASH})
            elif not crashed:
                await send(message)

        await app(scope, again, answer)
    return gateway


def _run(tmp_path: Path, tools_only: bool, *extra: str) -> dict[str, dict[str, Any]]:
    settings = settings_for("openai")
    with start_server(_crashing_streams(create_app(settings), tools_only), profile=get_profile("openai")) as server:
        out = run_in_process(["run", "--profile", "openai", "--base-url", server.base_url, "--model", MODEL,
                              "--seed", "1", "--max-examples", "5", *extra], tmp_path / "reports",
                             env={"SGP_API_KEY": KEY})
    return {r["id"]: r for r in out.doc["results"]}


def test_every_stream_crashing_is_strm_001s_fault_alone(tmp_path: Path) -> None:
    results = _run(tmp_path, tools_only=False)
    assert results["STRM-001"]["status"] == "fail"
    failed = sorted(rid for rid, r in results.items() if r["status"] == "fail" and r["level"] != "INFO")
    # CLIENT-002/003 and the matrix are the SDKs' view of the same 500 (the SDK raises), judged by them alone
    assert [rid for rid in failed if not rid.startswith("CLIENT")] == ["STRM-001"], failed
    for rid in ("STRM-020", "AGREE-002"):
        assert results[rid]["status"] == "not judged" and results[rid]["needs"] == "STRM-001", results[rid]
    # their own rule still judged what it could: the forms of plain requests, the generated cases not streamed
    assert results["FORM-001"]["status"] == "pass"
    assert results["PROP-002"]["status"] == "pass"


def test_a_crashing_tool_stream_alone_is_still_strm_020s(tmp_path: Path) -> None:
    results = _run(tmp_path, True)
    assert results["STRM-001"]["status"] == "pass"
    assert results["STRM-020"]["status"] == "fail", results["STRM-020"]


def test_the_client_matrix_leaves_a_refused_stream_to_strm_001(tmp_path: Path) -> None:
    # every client's stream gets the 500 STRM-001 reports: the matrix's parse and typed-error cells still judged
    # (a crashing tool stream alone is STRM-020's, test_a_crashing_tool_stream_alone_is_still_strm_020s)
    # --retries 0: the clients' own retries of a 500 back off for seconds, and this test is about whose fault
    # the refused stream is, not about retrying it
    results = _run(tmp_path, False, "--clients", "--only", "STRM-001,CLIENT-005", "--retries", "0")
    assert results["STRM-001"]["status"] == "fail"
    assert results["CLIENT-005"]["status"] == "pass", results["CLIENT-005"]


def _auth_refusals_in_fastapi_shape(app: Any) -> Any:
    """The app, but every 401 carries FastAPI's {"detail": ...} (llama-cpp-python's server) rather than the
    openai profile's envelope; its validation errors keep the envelope."""
    async def server(scope: Any, receive: Any, send: Any) -> None:
        refused = False

        async def answer(message: Any) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                refused = True
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"detail":"Invalid API key"}'})
            elif not refused:
                await send(message)

        await app(scope, receive, answer)
    return server


def test_the_client_matrix_wrong_key_refusal_body_is_auth_006s(tmp_path: Path) -> None:
    # the matrix's typed-error request sends a wrong key: its refusal's body is AUTH-006's rule, not ERR-004's
    # (llama-cpp in the interop registry: ERR-004 failed on the same {"detail": ...} bodies as AUTH-006)
    settings = settings_for("openai")
    with start_server(_auth_refusals_in_fastapi_shape(create_app(settings)), profile=get_profile("openai")) as server:
        out = run_in_process(["run", "--profile", "openai", "--base-url", server.base_url, "--model", MODEL,
                              "--seed", "1", "--clients", "--only", "AUTH-006,ERR-004,CLIENT-005"],
                             tmp_path / "reports", env={"SGP_API_KEY": KEY})
    results = {r["id"]: r for r in out.doc["results"]}
    assert results["AUTH-006"]["status"] == "fail"
    assert results["ERR-004"]["status"] == "pass", results["ERR-004"]["violations"][:2]


def test_the_python_clients_assembly_is_strm_022s_finding(tmp_path: Path) -> None:
    # a tool call whose later fragments repeat its id: STRM-020 (the rule) and STRM-022 (the openai SDK's
    # accumulator, on every stream of the run, the matrix's too) report it; the matrix's Python openai cell, the
    # same SDK on the same stream, no longer reports it a third time (llama-cpp in the interop registry). The
    # TypeScript client, which replaces the id, is judged and passes.
    settings = settings_for("openai")
    app = variant("strm_tool_identity_every_fragment").wrap(create_app(settings), settings)
    with start_server(app, profile=get_profile("openai")) as server:
        out = run_in_process(["run", "--profile", "openai", "--base-url", server.base_url, "--model", MODEL,
                              "--seed", "1", "--clients", "--only", "STRM-020,STRM-022,CLIENT-005"],
                             tmp_path / "reports", env={"SGP_API_KEY": KEY})
    results = {r["id"]: r for r in out.doc["results"]}
    assert results["STRM-020"]["status"] == "fail" and results["STRM-022"]["status"] == "fail"
    assert any(v["scenario"] == "client_openai_tool_calls" for v in results["STRM-022"]["violations"])
    assert results["CLIENT-005"]["status"] == "pass", results["CLIENT-005"]["message"]


def test_a_server_deaf_to_both_token_limits_fails_sem_006_alone(tmp_path: Path) -> None:
    # SEM-008's scripted test needs SEM-006 to hold; its generated cases (max_completion_tokens alone) no longer
    # fail it beside SEM-006 (litellm's mock in the interop registry; the rule of main's 5b39b9e, found on
    # WireMock, covers it)
    settings = settings_for("openai")
    deaf = variant("sem_token_limits_ignored").wrap(create_app(settings), settings)  # the mutant of both limits
    with start_server(deaf, profile=get_profile("openai")) as server:
        out = run_in_process(["run", "--profile", "openai", "--base-url", server.base_url, "--model", MODEL,
                              "--seed", "1", "--only", "SEM-006,SEM-008,PROP-001"], tmp_path / "reports",
                             env={"SGP_API_KEY": KEY})
    results = {r["id"]: r for r in out.doc["results"]}
    assert results["SEM-006"]["status"] == "fail"
    assert results["SEM-008"]["status"] == "not judged" and results["SEM-008"]["needs"] == "SEM-006", \
        results["SEM-008"]
    assert results["PROP-001"]["status"] == "pass"


