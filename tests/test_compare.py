"""`sgp-conformance compare A B`: two identical servers show no difference; a server that changes one thing
shows exactly that thing, filed under its requirement, with both exchanges; the key is in no report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import completion, make_exchange, sse_body, stream_chunks
from cli_runs import run_either, run_in_process
from mutants.core import Call, Mutant, Reply
from mutants.hooks import on_completion, on_error

from conformance.compare import fields
from conformance.contract.profiles import get_profile
from conformance.server.app import create_app
from conformance.server.runner import RunningServer, start_server
from conformance.server.settings import ServerSettings

KEY = "sk-compare-key-7f3e9a1c2b"
ENV = {"SGP_API_KEY": KEY}


def _drop_usage(doc: dict[str, Any], call: Call) -> None:
    doc.pop("usage", None)


def _rename_message(reply: Reply, call: Call) -> None:
    body = reply.json()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        error["msg"] = error.pop("message")
        reply.set_json(body)


VARIANTS: dict[str, Mutant | None] = {
    "same": None,
    "no_usage": Mutant("non-streamed completions lose usage", None, ("openai",), response=on_completion(_drop_usage)),
    "renamed": Mutant("error.message renamed to error.msg", None, ("openai",),
                      response=on_error(range(400, 600), _rename_message)),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, RunningServer]]:
    settings = ServerSettings(profile=get_profile("openai"), api_keys=(KEY,))
    started = {}
    for name, mutant in {"reference": None, **VARIANTS}.items():
        app = create_app(settings)
        started[name] = start_server(mutant.wrap(app, settings) if mutant else app, profile=settings.profile)
    yield started
    for server in started.values():
        server.stop()


def _compare(servers: dict[str, RunningServer], other: str, tmp_path: Path, *extra: str,
             as_command: bool = False) -> Any:
    """`compare` of the reference server and `other`, in this interpreter (the CLI's own entry point), or
    with `as_command` as the command a user types."""
    args = ["compare", servers["reference"].base_url, servers[other].base_url, "--a-profile", "openai",
            "--b-profile", "openai", "--max-examples", "3", "--report-dir", str(tmp_path), *extra]
    return run_either(args, env=ENV, as_command=as_command)


def _doc(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))


def test_identical_servers_show_no_difference(servers: dict[str, RunningServer], tmp_path: Path) -> None:
    out = _compare(servers, "same", tmp_path, "--fail-on-difference", as_command=True)
    assert out.code == 0, out.output[-2000:]
    doc = _doc(tmp_path)
    assert doc["differences"] == 0 and doc["requirements"] == [] and doc["cases"] > 50
    assert "No differences" in (tmp_path / "compare.html").read_text(encoding="utf-8")


def test_dropped_usage_is_the_only_difference(servers: dict[str, RunningServer], tmp_path: Path) -> None:
    out = _compare(servers, "no_usage", tmp_path, "--fail-on-difference")
    assert out.code == 1, out.output[-2000:]
    doc = _doc(tmp_path)
    groups = {g["requirement"]: g for g in doc["requirements"]}
    assert set(groups) == {"RESP-005"}
    found = {(d["field"], d["a"], d["b"]) for d in groups["RESP-005"]["differences"]}
    assert found == {("/usage", "object", "absent")}
    case = groups["RESP-005"]["differences"][0]["case"]
    pair = groups["RESP-005"]["exchanges"][case]
    assert '"usage"' in pair["a"]["response"]["body"] and '"usage"' not in pair["b"]["response"]["body"]
    # without --fail-on-difference, differences are reported, not failed
    assert _compare(servers, "no_usage", tmp_path / "again").code == 0


def test_renamed_error_field_is_the_only_difference(servers: dict[str, RunningServer], tmp_path: Path) -> None:
    out = _compare(servers, "renamed", tmp_path)
    assert out.code == 0, out.output[-2000:]
    doc = _doc(tmp_path)
    assert [g["requirement"] for g in doc["requirements"]] == ["ERR-004"]
    found = {(d["field"], d["a"], d["b"]) for d in doc["requirements"][0]["differences"]}
    assert found == {("/error/message", "string", "absent"), ("/error/msg", "absent", "string")}
    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert "ERR-004" in html and "/error/msg" in html


def test_no_report_holds_the_key(servers: dict[str, RunningServer], tmp_path: Path) -> None:
    out = _compare(servers, "renamed", tmp_path)
    for path in (tmp_path / "compare.json", tmp_path / "compare.html"):
        assert KEY not in path.read_text(encoding="utf-8")
    assert KEY not in out.output


def test_a_missing_key_is_one_line_and_exit_2(servers: dict[str, RunningServer], tmp_path: Path) -> None:
    out = run_in_process(["compare", servers["reference"].base_url, servers["same"].base_url, "--b-key-env",
                          "NO_SUCH_VAR", "--report-dir", str(tmp_path)], env=ENV)
    assert out.code == 2 and "NO_SUCH_VAR" in out.stderr and "Traceback" not in out.output


def test_a_url_without_scheme_names_the_target(tmp_path: Path) -> None:
    out = run_in_process(["compare", "localhost:8000", "http://127.0.0.1:9", "--report-dir", str(tmp_path)], env=ENV)
    assert out.code == 2 and "target A 'localhost:8000' has no scheme" in out.stderr
    assert not (tmp_path / "compare.json").exists()


def test_dry_run_counts_and_sends_nothing(tmp_path: Path) -> None:
    # a closed port: a dry run that sent anything would find it unreachable (exit 3)
    out = run_in_process(["compare", "http://127.0.0.1:9", "http://127.0.0.1:9", "--max-examples", "2", "--dry-run",
                          "--report-dir", str(tmp_path)], env=ENV)
    assert out.code == 0, out.output[-2000:]
    line = out.stdout.strip().splitlines()[-1]
    scripted = int(line.split()[1])
    assert line == (f"planned: {scripted} scripted and 2 generated case(s), each sent to A and to B: "
                    f"{2 * (scripted + 2)} request(s) ({scripted + 2} per target)")
    assert not (tmp_path / "compare.json").exists()


def test_stream_framing_differences() -> None:
    profile = get_profile("openai")
    with_usage = make_exchange("stream", body=sse_body(stream_chunks(include_usage=True)), stream=True)
    without = make_exchange("stream", body=sse_body(stream_chunks(), terminator=None), stream=True)
    found = {(d.requirement, d.field) for d in fields.compare("stream", with_usage, without, profile)}
    assert ("STRM-004", "stream: ends with [DONE]") in found and ("STRM-016", "stream: usage chunk") in found
    assert fields.compare("stream", with_usage, with_usage, profile) == []


def test_null_and_absent_differ_and_values_do_not() -> None:
    profile = get_profile("openai")
    a = make_exchange("basic", body=completion(id="chatcmpl-a", created=1, system_fingerprint=None))
    b = make_exchange("basic", body=completion(id="chatcmpl-b", created=2))
    found = fields.compare("basic", a, b, profile)
    assert [(d.requirement, d.field, d.a, d.b) for d in found] == [
        ("RESP-001", "/system_fingerprint", "null", "absent")]
    status = fields.compare("basic", a, make_exchange("basic", status=500, body={"error": {}}), profile)
    assert [(d.requirement, d.field, d.a, d.b) for d in status] == [("BASIC-001", "status", 200, 500)]
