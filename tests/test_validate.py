"""`sgp-conformance validate`: readers of each recorded format, which requirements a record can judge,
and whole runs over the fixtures recorded from the reference server (tests/fixtures/recorded/record.py)
and over broken recordings: same report formats as `run`, same exit codes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from builders import completion
from cli_runs import run_cli, run_in_process

from conformance import cli
from conformance.config import Config
from conformance.contract.profiles import get_profile
from conformance.offline import validate
from conformance.offline.recorded import RecordError, har_document, read_bytes, read_file, recorded_keys
from conformance.server import ServerSettings, start_server
from conformance.suite.scenarios import Context, build
from conformance.transport.client import Client

FIXTURES = Path(__file__).parent / "fixtures" / "recorded"
SCHEMA = Path(__file__).parent.parent / "schemas" / "conformance-result.json"
SGP = get_profile("sgp")
OPENAI = get_profile("openai")
FIXTURE_KEY = "sgp-fixture-key-not-a-secret-0001"


def records_of(name: str, text: str | bytes, profile: Any = SGP) -> list[Any]:
    return read_bytes(name, text.encode() if isinstance(text, str) else text, profile)


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in doc["results"]}


# what the reference recordings give nothing to judge of
NOT_IN_THE_RECORDINGS = {"SEM-008": "not judged", "SEM-010": "not judged", "FMT-001": "not judged",
                         "ERR-006": "not judged"}


# -- reading ---------------------------------------------------------------------------------------------


def test_each_format_is_recognised_by_its_content() -> None:
    body = json.dumps(completion())
    assert [r.kind for r in records_of("a.txt", body)] == ["completion"]
    assert [r.format for r in records_of("a.json", f"[{body}, {body}]")] == ["json", "json"]
    jsonl = records_of("a.log", f"{body}\n{{broken\n{json.dumps({'detail': 'x'})}\n")
    assert [(r.format, r.kind) for r in jsonl] == [("jsonl", "completion"), ("jsonl", "completion"),
                                                   ("jsonl", "error")]
    assert jsonl[1].exchange.json_error is not None
    broken = records_of("pretty.json", '{\n  "id": "x",\n  "choices": [\n')
    assert len(broken) == 1 and broken[0].exchange.json_error is not None
    stream = records_of("s", "data: {}\n\n")[0]
    assert (stream.format, stream.kind, stream.headers_known) == ("sse", "stream", False)
    assert records_of("c", json.dumps({"choices": [{"index": 0, "delta": {}}]}))[0].kind == "chunk"


def test_http_transcripts_keep_status_and_headers_after_interim_heads() -> None:
    text = ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\n"
            "x-request-id: r1\r\n\r\n" + json.dumps({"detail": [{"loc": ["body"], "msg": "m", "type": "t"}]}))
    record = records_of("t.http", text)[0]
    assert (record.kind, record.headers_known, record.exchange.status) == ("error", True, 422)
    assert record.exchange.response.header("x-request-id") == "r1"


def test_openai_batch_lines_are_unwrapped() -> None:
    line = {"id": "b1", "custom_id": "r1", "response": {"status_code": 400, "request_id": "req-9",
                                                          "body": {"error": {"message": "m", "type": "t"}}}}
    record = records_of("batch.jsonl", json.dumps(line) + "\n" + json.dumps(line), OPENAI)[0]
    assert record.exchange.status == 400 and record.kind == "error"


def har(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}})


def entry(url: str = "https://api.example.com/v4/beta/chat/completions", method: str = "POST", status: int = 200,
          text: str | None = None, encoding: str | None = None, headers: list[dict[str, str]] | None = None,
          comment: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"mimeType": "application/json", "size": 0}
    if text is not None:
        content["text"] = text
    if encoding:
        content["encoding"] = encoding
    if comment:
        content["comment"] = comment
    return {"startedDateTime": "2023-11-14T22:13:20.000Z", "time": 5,
            "request": {"method": method, "url": url, "headers": headers or [{"name": "x-api-key", "value": "k-1234"}],
                        "postData": {"mimeType": "application/json", "text": json.dumps({"model": "m", "n": 1})}},
            "response": {"status": status, "headers": [{"name": "content-type", "value": "application/json"}],
                         "content": content}}


def test_har_entries_of_other_requests_are_left_out_and_bodies_decoded() -> None:
    body = json.dumps(completion())
    records = records_of("x.har", har([
        entry(url="https://example.com/logo.png", method="GET"),
        entry(text=base64.b64encode(body.encode()).decode(), encoding="base64"),
        entry(text=body[:20], comment="Body truncated: 20 of 300 bytes recorded"),
        entry(status=0),
    ]))
    assert [r.source for r in records] == ["x.har#1", "x.har#2", "x.har#3"]
    assert records[0].exchange.json == completion() and records[0].time == 1_700_000_000
    assert records[0].request_known and records[0].exchange.request.params == {"model": "m", "n": 1}
    assert records[1].exchange.response.truncated and records[1].exchange.error
    assert records[2].exchange.response is None and records[2].kind == "none"


def test_a_recorded_5xx_fails_prop_002_and_nothing_else() -> None:
    records = records_of("x.har", har([entry(status=502, text="<html>bad gateway</html>"), entry(
        text=json.dumps(completion()))]))
    assert records[0].kind == "server_error"
    assert [v.requirement for v in validate.record_findings(records[0], SGP)] == ["PROP-002"]
    assert validate.judgeable("PROP-002", records[1], SGP) and not validate.judgeable(
        "PROP-002", records_of("a.json", json.dumps(completion()))[0], SGP)


def test_a_har_entry_without_its_body_is_judged_on_headers_only() -> None:
    stream = entry()
    stream["request"]["postData"]["text"] = json.dumps({"model": "m", "stream": True})
    stream["response"]["headers"] = [{"name": "content-type", "value": "text/event-stream"}]
    record = records_of("browser.har", har([stream]))[0]
    assert record.kind == "stream" and not record.body_known
    assert validate.judgeable("STRM-001", record, SGP) and validate.judgeable("PROP-002", record, SGP)
    assert not validate.judgeable("STRM-017", record, SGP) and not validate.judgeable("JSON-001", record, SGP)


def test_recorded_keys_skip_the_masks_exporters_put_in() -> None:
    records = records_of("x.har", har([
        entry(text="{}", headers=[{"name": "Authorization", "value": "Bearer sk-real-1234"}]),
        entry(text="{}", headers=[{"name": "x-api-key", "value": "[Filtered]"}]),
    ]))
    assert recorded_keys(records) == ["sk-real-1234"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.json", b"  \n", "is empty"),
    ("bin.json", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("notes.txt", b"hello world", "not recognised"),
    ("x.har", har([entry(url="https://example.com/", method="GET")]).encode(), "none of its 1 HAR entries"),
    ("x.jsonl", b"{a\n{b\n", "does not parse"),
])
def test_unreadable_recordings_are_named_in_one_line(name: str, data: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message) as caught:
        read_bytes(name, data, SGP)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_har_written_and_read_back_is_the_same_exchange() -> None:
    records = read_file(FIXTURES / "reference-sgp.har", SGP)
    again = read_bytes("again.har", json.dumps(har_document((r.exchange, r.time or 0) for r in records)).encode(),
                       SGP)
    for a, b in zip(records, again, strict=True):
        assert a.exchange.response.body == b.exchange.response.body
        assert a.exchange.response.headers == b.exchange.response.headers
        assert a.exchange.request.params == b.exchange.request.params and a.time == b.time


# -- what a record can judge -----------------------------------------------------------------------------


def test_rules_are_judged_only_where_the_record_holds_what_they_need() -> None:
    bare = records_of("a.json", json.dumps(completion()))[0]
    assert validate.judgeable("RESP-001", bare, SGP)
    for req_id in ("HDR-003", "SEM-002", "SEM-004", "SEM-006", "AUTH-007", "LOGP-001", "STRM-002"):
        assert not validate.judgeable(req_id, bare, SGP), req_id
    recorded = read_file(FIXTURES / "reference-sgp.har", SGP)
    basic, stream, logprobs, tools, invalid, no_key = recorded
    assert validate.judgeable("HDR-003", basic, SGP) and validate.judgeable("SEM-004", basic, SGP)
    assert validate.judgeable("SEM-006", basic, SGP) and validate.judgeable("AUTH-007", basic, SGP)
    assert validate.judgeable("LOGP-001", logprobs, SGP) and not validate.judgeable("LOGP-001", basic, SGP)
    assert validate.judgeable("TOOL-003", tools, SGP) and not validate.judgeable("TOOL-003", basic, SGP)
    assert validate.judgeable("STRM-016", stream, SGP)
    assert validate.judgeable("ERR-003", invalid, SGP) and not validate.judgeable("ERR-003", no_key, SGP)
    assert "max_tokens" in validate.why_not_judged("SEM-006")
    assert "response headers" in validate.why_not_judged("HDR-003")


def test_findings_of_a_broken_document() -> None:
    record = read_file(FIXTURES / "broken-completion.json", SGP)[0]
    found = {v.requirement for v in validate.record_findings(record, SGP)}
    assert {"RESP-001", "RESP-003", "RESP-004", "SEM-001", "SEM-003"} <= found


def test_a_bare_error_body_is_held_to_the_profile_error_shapes() -> None:
    good, bad = records_of("e.jsonl", json.dumps({"detail": "Not authenticated"}) + "\n"
                           + json.dumps({"error": "nope"}) + "\n")
    assert validate.record_findings(good, SGP) == []
    assert [v.requirement for v in validate.record_findings(bad, SGP)] == ["ERR-004"]


# -- whole runs ------------------------------------------------------------------------------------------


def _validate(tmp_path: Path, *args: str, name: str = "reports") -> Any:
    # in this interpreter (what is judged is the recording's); the first test runs the command itself
    return run_in_process(["validate", *args], tmp_path / name)


def test_reference_recordings_conform_and_reports_have_the_run_formats(tmp_path: Path) -> None:
    files = [str(FIXTURES / n) for n in ("reference-sgp.har", "completion-sgp.json", "responses-sgp.jsonl",
                                         "stream-sgp.sse", "stream-sgp.http")]
    out = run_cli(["validate", *files], tmp_path / "reports")
    assert out.code == 0, out.output[-3000:]
    doc = out.doc
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    judged = statuses(doc)
    # everything a recording can hold is judged, but what these recordings lack: three kinds of request and a 429
    assert {r for r, s in judged.items() if s not in ("pass", "not run")} == set(NOT_IN_THE_RECORDINGS)
    assert {r: s for r, s in judged.items() if r in NOT_IN_THE_RECORDINGS} == NOT_IN_THE_RECORDINGS
    # what no recording can hold (auth, validation, the SDKs) needs a run of its own requests: not run, a setting
    unlisted = [r for r in doc["results"] if r["status"] == "not run"]
    assert unlisted and {r["not_run"] for r in unlisted} == {"settings"} and doc["verdict"] == "conformant"
    assert doc["run"]["target"] == ", ".join(files) and doc["requests"]["sent"] == 0
    assert doc["recorded"]["records"] == 12 and doc["recorded"]["by_format"] == {"har": 6, "json": 1, "jsonl": 3,
                                                                                 "sse": 1, "http": 1}
    assert doc["census"]["documents"]["chat.completion"] == 7
    assert doc["run"]["model"] == "openai/gpt-4o-mini" and doc["run"]["configuration"]["api_key"] == "***"
    for name in ("conformance.html", "junit.xml", "conformance.json"):
        text = (tmp_path / "reports" / name).read_text(encoding="utf-8")
        assert FIXTURE_KEY not in text
    assert 'id="sgp-census"' in (tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8")
    assert "[RESP-001]" in (tmp_path / "reports" / "junit.xml").read_text(encoding="utf-8")


def test_openai_recordings_conform_under_the_openai_profile(tmp_path: Path) -> None:
    out = _validate(tmp_path, str(FIXTURES / "reference-openai.har"), str(FIXTURES / "stream-openai.sse"),
                    "--profile", "openai")
    assert out.code == 0, out.output[-3000:]
    judged = statuses(out.doc)
    assert judged["STRM-004"] == "pass" and "STRM-005" not in judged and "ERR-003" not in judged
    assert not {s for s in judged.values()} & {"fail", "error", "observed"}
    # the same recording judged as sgp: a [DONE] is reported, at INFO (an observation), and the error bodies do not
    # match
    out = _validate(tmp_path, str(FIXTURES / "stream-openai.sse"), name="as-sgp")
    assert statuses(out.doc)["STRM-005"] == "observed" and out.code == 0
    # JUnit shows the observation as a passed test with the property docs/reports.md promises
    junit = ElementTree.parse(out.report_dir / "junit.xml").getroot()
    case = next(c for c in junit.iter("testcase") if "STRM-005" in (c.get("name") or ""))
    assert case.find("failure") is None and case.find("skipped") is None
    assert any(p.get("name") == "observation" and p.get("value") for p in case.iter("property"))


def test_a_schemathesis_har_is_read_with_its_masked_key(tmp_path: Path) -> None:
    # exported by `st run schemas/openapi.json --report har` against `sgp-conformance serve` (3 entries kept)
    records = read_file(FIXTURES / "schemathesis-sgp.har", SGP)
    assert [r.exchange.status for r in records] == [404, 403, 422] and recorded_keys(records) == []
    out = _validate(tmp_path, str(FIXTURES / "schemathesis-sgp.har"))
    assert out.code == 0, out.output[-2000:]
    judged = statuses(out.doc)
    assert judged["ERR-003"] == judged["ERR-004"] == judged["PROP-002"] == "pass"
    assert judged["AUTH-007"] == "not judged" and judged["RESP-001"] == "not judged"


def test_broken_recordings_fail_with_their_rules(tmp_path: Path) -> None:
    out = _validate(tmp_path, *(str(FIXTURES / n) for n in ("broken-completion.json", "broken-stream.sse",
                                                            "not-json.json")), "--fail-on", "should")
    assert out.code == 1, out.output[-3000:]
    judged = statuses(out.doc)
    for req_id in ("RESP-001", "RESP-003", "RESP-004", "SEM-001", "SEM-003", "STRM-003", "STRM-010", "JSON-001"):
        assert judged[req_id] == "fail", req_id
    evidence = next(r for r in out.doc["results"] if r["id"] == "STRM-003")["evidence"]
    assert evidence["scenarios"][0]["scenario"].endswith("broken-stream.sse")
    assert "NOT CONFORMANT" in out.stdout and "Traceback" not in out.output


def test_a_key_echoed_in_a_recorded_answer_fails_auth_007_and_stays_out_of_reports(tmp_path: Path) -> None:
    key = "sk-live-recorded-key-9f8e7d"
    echoing = completion()
    echoing["choices"][0]["message"]["content"] = f"your key is {key}"
    path = tmp_path / "echo.har"
    path.write_text(har([entry(text=json.dumps(echoing), headers=[{"name": "x-api-key", "value": key}])]))
    out = _validate(tmp_path, str(path))
    assert out.code == 1 and out.status("AUTH-007") == "fail", out.output[-2000:]
    assert "SECRET LEAK" not in out.output and key not in out.output
    for report in (tmp_path / "reports").iterdir():
        assert key not in report.read_text(encoding="utf-8"), report


def test_a_fresh_recording_of_the_reference_server_conforms(tmp_path: Path) -> None:
    # guards the committed fixtures: what the reference server sends today validates too
    key = "sk-fresh-recording-0042"
    server = start_server(ServerSettings(profile=OPENAI, api_keys=(key,)))
    try:
        config = Config(base_url=server.base_url, api_key=key, profile="openai")
        client = Client(config, OPENAI, server.base_url)
        context = Context(config, OPENAI)
        sent = []
        for name in ("basic", "stream", "tools"):
            started = time.time()
            sent.append((client.send(build(name, context)), started))
        client.close()
    finally:
        server.stop()
    path = tmp_path / "fresh.har"
    path.write_text(json.dumps(har_document(sent)))
    out = _validate(tmp_path, str(path), "--profile", "openai")
    assert out.code == 0, out.output[-2000:]
    assert set(statuses(out.doc).values()) <= {"pass", "not judged", "not run"} and out.status("SEM-004") == "pass"
    # the same answers recorded as sent years earlier: `created` is then far from the request's time
    path.write_text(json.dumps(har_document((e, t - 3 * 365 * 86400) for e, t in sent)))
    out = _validate(tmp_path, str(path), "--profile", "openai", name="old")
    # SEM-004 checks an open point (docs/contract.md #open-created-clock): observed, never failed
    assert out.status("SEM-004") == "observed" and out.code == 0, out.output[-2000:]


@pytest.mark.parametrize(("args", "message"), [
    (["missing.json"], "recording missing.json does not exist"),
    (["."], "is a directory"),
    (["--profile", "bogus", "x.json"], "unknown profile"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps(completion()))
    assert cli.main(["validate", *args, "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r" / "conformance.json").exists()
