"""The attack matrix: hostile targets on 127.0.0.1 and hostile input, one test per attack and kind.

Each test asserts what a user relies on: the exit code or the verdict, one clear line (never a traceback),
no form of the key in what is written, and a bound where one applies (a hang guard, >= 10x the normal
time, never a timing assertion). Most attacks are tried in-process (the preflight against a hostile socket,
the input readers, the proxy and the reference server in a thread); whole runs prove the whole path for a
target that never answers HTTP (the command a user types, `run_cli`), one that answers JSON nested 100,000
deep and one that always throttles (the CLI's own entry point in this interpreter, `run_in_process`: they
judge the run, not the process).

Kinds: the verdict (`target`), what cannot be sent (`unsendable`), user input (`input`), bounded reading
(`bounded`), report files (`files`), an early end (`early`), the proxy (`proxy`), serve (`serve`), the HTML
(`cosmetic`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import misbehaving
import pytest
from cli_runs import run_cli, run_in_process

from conformance import signals
from conformance.cli import main
from conformance.config import Config, ConfigError, resolve
from conformance.contract.profiles import get_profile
from conformance.inputs import InputError, read_capped
from conformance.offline.recorded import RecordError, read_bytes, read_files
from conformance.report.folder import (
    PREVIOUS,
    claim_report_dir,
    set_aside,
    settle,
    write_new,
)
from conformance.report.html import _e
from conformance.report.outcomes import level_verdicts, verdict
from conformance.suite.preflight import preflight
from conformance.suite.run import Run
from conformance.transport import strictjson
from conformance.transport.exchange import Exchange, RequestSpec, Response

KEY = "sk-attack-0123456789abcdef"
# far above the 0.5 s timeout the in-process attacks use: only a hang trips it
HANG_GUARD_S = 30.0
DEEP = misbehaving.DEEP_NESTING


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "INTERNALERROR" not in text, text[-3000:]


def key_absent(folder: Path) -> None:
    """No file under `folder` holds the key, plainly or in a common encoding."""
    import base64

    forms = [KEY, KEY.upper(), base64.b64encode(KEY.encode()).decode(), KEY.encode().hex()]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_text(encoding="utf-8", errors="replace")
            assert not any(form in data for form in forms), f"a form of the key is in {path}"


# -- target: a target that never produces an HTTP answer is unreachable, promptly, never conformant ----------

SOCKET_ATTACKS = {
    "close_at_once": "closed the connection without answering",
    "reset_at_once": "closed the connection without answering",
    "banner": "closed the connection without answering",
    "huge_header": "sent a response head too large to parse",
    "many_headers": "sent a response head too large to parse",
    "bare_cr": "closed the connection without answering",
    "never_answer": "did not answer within 0.5 s",
    # V1/V2: each read resets a per-read timeout; the whole head has one deadline
    "continue_forever": "did not answer within 0.5 s",
    "headers_drip": "did not answer within 0.5 s",
}


@pytest.mark.parametrize("kind", sorted(SOCKET_ATTACKS))
def test_target_without_an_http_answer_is_unreachable(kind: str) -> None:
    with misbehaving.serve(kind) as server:
        config = Config(base_url=server.base_url, api_key=KEY, timeout=0.5, profile="openai")
        run = Run(config)
        started = time.monotonic()
        try:
            halted = preflight(run)
        finally:
            run.close()
        elapsed = time.monotonic() - started
    assert halted is None
    reason = run.client.dead
    assert reason and SOCKET_ATTACKS[kind] in reason, reason
    assert KEY not in reason
    # no result of the run can turn it conformant: the verdict asks whether anything was answered
    passing = [{"id": "X", "level": "MUST", "status": "pass"}]
    assert verdict(passing, "must", unreachable=reason) == "unreachable"
    # one timeout (or none), not one per retry or per requirement
    assert elapsed < HANG_GUARD_S
    assert run.client.stats.sent == 1


def test_a_target_that_always_throttles_spends_the_throttle_budget_then_stops() -> None:
    """V3: 429 with a huge Retry-After forever: the run waits at most --max-throttle-wait in all, then sends
    nothing more (ThrottledOut, a BudgetExhausted: every caller ends its requirement not run)."""
    from conformance.transport.client import BudgetExhausted, Client, ThrottledOut

    with misbehaving.serve("throttle_forever") as server:
        config = Config(base_url=server.base_url, api_key=KEY, timeout=0.5, profile="openai", max_throttle_wait=1.0)
        profile = get_profile("openai")
        client = Client(config, profile, server.base_url)
        spec = RequestSpec("basic", "POST", {"content-type": "application/json"}, b"{}", {}, False)
        started = time.monotonic()
        try:
            first = client.send(spec)
            with pytest.raises(ThrottledOut, match="raise --max-throttle-wait") as caught:
                client.send(spec)
        finally:
            client.close()
        elapsed = time.monotonic() - started
    assert first.status == 429 and client.stats.sent == 1
    assert isinstance(caught.value, BudgetExhausted)
    assert "budget" not in str(caught.value).lower() and "429" in str(caught.value)
    assert elapsed < HANG_GUARD_S
    assert Config(timeout=20).throttle_budget() == 60.0 and Config(timeout=45).throttle_budget() == 90.0


def test_a_target_that_always_throttles_ends_the_run_incomplete_end_to_end(tmp_path: Path) -> None:
    with misbehaving.serve("throttle_forever") as server:
        out = run_in_process(["run", "--base-url", server.base_url, "--timeout", "0.5", "--depth", "smoke",
                              "--max-throttle-wait", "1"], tmp_path / "reports", env={"SGP_API_KEY": KEY})
    no_traceback(out.output)
    assert out.code == 4, out.output[-3000:]
    assert "INCOMPLETE" in out.output and "--max-throttle-wait" in out.output, out.output[-3000:]
    key_absent(tmp_path / "reports")


def test_a_must_left_unjudged_for_want_of_an_answer_is_never_conformant() -> None:
    passing = {"id": "BASIC-001", "level": "MUST", "status": "pass"}
    blind = {"id": "RESP-001", "level": "MUST", "status": "not judged",
             "message": "no response to judge: 127.0.0.1:9 closed the connection without answering"}
    owned = {"id": "RESP-002", "level": "MUST", "status": "not judged", "message": "needs BASIC-001: not 2xx"}
    info = {**blind, "id": "SEM-009", "level": "INFO"}
    assert verdict([passing, blind], "must") == "incomplete"
    assert level_verdicts([passing, blind])["MUST"] == "incomplete"
    assert verdict([passing, owned, info], "must") == "conformant"


def test_target_that_closes_at_once_ends_the_run_unreachable_end_to_end(tmp_path: Path) -> None:
    with misbehaving.serve("close_at_once") as server:
        out = run_cli(["run", "--base-url", server.base_url, "--timeout", "0.5", "--depth", "smoke"],
                      tmp_path / "reports", env={"SGP_API_KEY": KEY}, timeout=120)
    no_traceback(out.output)
    assert out.code == 3, out.output[-3000:]
    assert out.doc["verdict"] == "unreachable" and "closed the connection" in out.doc["unreachable"]
    assert "TARGET UNREACHABLE" in out.stdout
    key_absent(out.report_dir)


def test_target_answering_deeply_nested_json_is_a_named_violation(tmp_path: Path) -> None:
    with misbehaving.serve("deep_json") as server:
        out = run_in_process(["run", "--base-url", server.base_url, "--timeout", "2", "--depth", "smoke"],
                             tmp_path / "reports", env={"SGP_API_KEY": KEY})
    no_traceback(out.output)
    assert out.code == 1, out.output[-3000:]
    results = {r["id"]: r for r in out.doc["results"]}
    assert not [r["id"] for r in results.values() if "RecursionError" in str(r.get("message"))]
    assert results["JSON-001"]["status"] == "fail"
    assert strictjson.PAST_LIMITS in results["JSON-001"]["message"]
    key_absent(out.report_dir)


def _answer(body: bytes) -> Exchange:
    spec = RequestSpec("basic", headers={"content-type": "application/json"}, body=b"{}")
    return Exchange("basic", "http://127.0.0.1/v1/chat/completions", spec,
                    Response(200, [("content-type", "application/json")], body))


@pytest.mark.parametrize("body", [b"[" * DEEP + b"]" * DEEP, b'{"a": ' * 150 + b"1" + b"}" * 150],
                         ids=["100000-deep", "150-deep"])
def test_deep_json_answer_is_judged_by_every_check_without_recursion(body: bytes) -> None:
    from conformance.checks.response import completion_checks

    exchange = _answer(body)
    assert exchange.json is None and exchange.json_error.startswith(strictjson.PAST_LIMITS)
    found = completion_checks(exchange, get_profile("openai"), time.time(), include_info=True)
    json001 = [v for v in found if v.requirement == "JSON-001"]
    assert json001 and strictjson.PAST_LIMITS in json001[0].message


def test_5000_digit_integer_is_valid_json_past_many_parsers() -> None:
    with pytest.raises(strictjson.BeyondLimits, match="valid JSON past what many parsers accept"):
        strictjson.loads(b'{"n": ' + b"7" * 5000 + b"}")


# -- unsendable: a key or header value that cannot be sent is a usage error before anything is sent ------

@pytest.mark.parametrize("key", ["\n", "sk-abc\r\n", "sk-\x00abc", "sk-é-key", "sk-\u200bkey", "sk-\x1b[31m",
                                 "  sk-abc  ", " sk-abc", "sk-abc\t"],
                         ids=["lf", "crlf", "nul", "latin-1", "zero-width", "esc", "spaces", "leading-space",
                              "trailing-tab"])
def test_unsendable_key_is_a_usage_error(key: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the environment cannot hold a NUL: that key comes by --api-key (in-process, as argv never could either)
    given = ["--api-key", key] if "\x00" in key else []
    if not given:
        monkeypatch.setenv("SGP_API_KEY", key)
    with misbehaving.serve("never_answer") as server:
        code = main(["run", "--base-url", server.base_url, *given, "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be sent in an HTTP header" in lines[0], err
    assert key.strip() not in lines[0] or not key.strip()
    assert not (tmp_path / "r").exists()


def test_unsendable_header_value_is_a_usage_error() -> None:
    for value in ("a\x00b", "caf\u00e9", "x\x7f"):
        with pytest.raises(ConfigError, match="cannot be sent in an HTTP header"):
            resolve({"base_url": "http://127.0.0.1:9", "api_key": KEY, "headers": [f"X-Tenant: {value}"]}, env={})
    with pytest.raises(ConfigError, match=r"the value of \$BAD cannot be sent"):
        resolve({"base_url": "http://127.0.0.1:9", "api_key": KEY, "headers": ["X-Tenant: env:BAD"]},
                env={"BAD": "a\x01b"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v\n1", "http://127.0.0.1:9/v 1", "http://127.0.\t0.1:9"])
def test_proxy_upstream_with_a_space_or_control_character_is_refused(url: str) -> None:
    from conformance.proxy.options import parse_upstream

    with pytest.raises(ConfigError, match="space or a control character"):
        parse_upstream(url)


# -- input: every user input is validated where it enters ------------------------------------------------

@pytest.mark.parametrize(("flags", "says"), [
    (["--base-url", "http://[::1"], "is not a valid URL"),
    (["--base-url", "http://127.0.0.1:99999"], "is not a valid URL"),
    (["--base-url", "http://127.0.0.1:0"], "port 0"),
    (["--base-url", "http://127.0.0.1/a b"], "space or a control character"),
    (["--timeout", "nan"], "not a finite number"),
    (["--timeout", "inf"], "not a finite number"),
    (["--timeout", "-1"], "must be a positive number"),
    (["--stream-timeout", "nan"], "not a finite number"),
    (["--rate-limit", "nan"], "not a finite number"),
    (["--max-requests", "-5"], "must be at least 1"),
    (["--max-examples", "-1"], "must be at least 1"),
    (["--rate-limit", "1e-300"], "below 0.001/s"),
    (["--header", "no colon here"], "is not 'Name: value'"),
    (["--model", ""], "--model is empty"),
    (["--model", "  "], "--model is empty"),
    (["--base-url", "http://127.0.0.1:9/v\n1"], "space or a control character"),
    (["--base-url", "http://127.0.0.1:9/v1\n"], "space or a control character"),
    (["--base-url", "http://127.0.\n0.1:9"], "space or a control character"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_bad_user_input_is_one_line_exit_2(flags: list[str], says: str, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SGP_API_KEY", KEY)
    base = [] if "--base-url" in flags else ["--base-url", "http://127.0.0.1:9"]
    code = main(["run", *base, *flags, "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and says in lines[0], err
    no_traceback(err)


# -- bounded: every input read is bounded, counted in bytes read; parsing is depth-bounded ---------------

def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path, says in ((Path("/dev/zero"), "a device"), (fifo, "a FIFO"), (tmp_path, "a directory")):
        with pytest.raises(InputError, match=says):
            read_capped(path, 1000, "input")
    assert time.monotonic() - started < HANG_GUARD_S
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(InputError, match="larger than"):
        read_capped(big, 1000, "input")


@pytest.mark.parametrize("command", [["run", "--base-url", "http://127.0.0.1:9", "--config"],
                                     ["run", "--base-url", "http://127.0.0.1:9", "--baseline"],
                                     ["validate"], ["diff", "/dev/zero"]],
                         ids=["config", "baseline", "validate", "diff"])
def test_dev_zero_and_fifos_are_refused_by_every_command(command: list[str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGP_API_KEY", KEY)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for special in ("/dev/zero", str(fifo)):
        code = main([*command, special])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "not a regular file" in lines[0], err


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", "[" * DEEP + "]" * DEEP),
    ("deep.har", '{"log": {"entries": ' + "[" * DEEP + "]" * DEEP + "}}"),
    ("deep.jsonl", '{"a": 1}\n' + "[" * DEEP + "]" * DEEP + "\n"),
])
def test_deeply_nested_recordings_never_raise_recursion(name: str, text: str) -> None:
    try:
        records = read_bytes(name, text.encode(), get_profile("openai"))
    except RecordError as exc:
        assert "nested deeper" in str(exc) or "neither" in str(exc), exc
    else:
        # a JSONL line nested too deep is a response that is not judged as JSON: the checks say so
        assert records


@pytest.mark.parametrize(("entry", "says"), [
    ({"request": 5, "response": {}}, "request or response is not an object"),
    ({"request": {"method": "POST", "url": "http://h/v1/chat/completions"}, "response": "x"},
     "request or response is not an object"),
    ({"request": {"method": "POST", "url": "http://[::1"}, "response": {}},
     r"bad\.har#0: request\.url 'http://\[::1' is not a valid URL"),
])
def test_malformed_har_entries_are_one_line(entry: dict[str, object], says: str) -> None:
    har = json.dumps({"log": {"entries": [entry]}}).encode()
    with pytest.raises(RecordError, match=says):
        read_bytes("bad.har", har, get_profile("openai"))


def test_a_har_with_an_unparsable_url_is_one_line_exit_2(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    har = tmp_path / "bad.har"
    entry = {"request": {"method": "POST", "url": "http://[::1"}, "response": {"status": 200}}
    har.write_text(json.dumps({"log": {"entries": [entry]}}), encoding="utf-8")
    code = main(["validate", str(har), "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    no_traceback(err)
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"{har}#0: request.url" in err, err


@pytest.mark.parametrize("count", [3, 2_000_000])
def test_jsonl_of_empty_objects_is_named_as_such_not_unparsable(count: int) -> None:
    with pytest.raises(RecordError, match=f"JSONL of {count:,} lines, none of them a record"):
        read_bytes("empty.jsonl", b"{}\n" * count, get_profile("openai"))


def test_har_entry_with_a_string_time_is_read_as_unknown() -> None:
    entry = {"request": {"method": "POST", "url": "http://h/v1/chat/completions", "postData": 7},
             "response": {"status": 200, "content": {"text": "{}"}}, "time": "soon"}
    [record] = read_bytes("t.har", json.dumps({"log": {"entries": [entry]}}).encode(), get_profile("openai"))
    assert record.exchange.response is not None and record.exchange.response.elapsed_ms == 0.0


def test_many_recordings_share_one_bound(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps({"id": "x", "pad": "p" * 400}), encoding="utf-8")
        files.append(path)
    assert len(read_files(files[:2], get_profile("openai"), cap=2000)) == 2
    with pytest.raises(RecordError, match="larger than"):
        read_files(files, get_profile("openai"), cap=2000)


def test_a_deep_config_file_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        resolve({}, env={}, config_file=str(config))


# -- files: reports are never written through a link ------------------------------------------------------

@pytest.mark.parametrize("name", ["conformance.json", "conformance.html", "junit.xml"])
@pytest.mark.parametrize("dangling", [True, False], ids=["dangling", "to-a-file"])
def test_a_link_where_a_report_goes_is_refused(name: str, dangling: bool, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim"
    if not dangling:
        victim.write_text("the user's", encoding="utf-8")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / name).symlink_to(victim)
    assert claim_report_dir(Config(report_dir=str(reports))) is None
    err = capsys.readouterr().err
    assert "is a symbolic link" in err and len(err.strip().splitlines()) == 1
    assert victim.exists() != dangling
    if not dangling:
        assert victim.read_text(encoding="utf-8") == "the user's"


@pytest.mark.parametrize("where", ["/dev/null", "/proc/self", "/proc/1", "a-file"])
def test_a_report_dir_that_takes_no_files_is_one_line(where: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    if where == "a-file":
        where = str(tmp_path / "a-file")
        Path(where).write_text("x", encoding="utf-8")
    assert claim_report_dir(Config(report_dir=where)) is None
    err = capsys.readouterr().err
    assert "cannot write reports to" in err and len(err.strip().splitlines()) == 1, err


def test_write_new_replaces_a_link_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the user's", encoding="utf-8")
    link = tmp_path / "conformance.json"
    link.symlink_to(victim)
    write_new(link, b"{}")
    assert victim.read_text(encoding="utf-8") == "the user's"
    assert not link.is_symlink() and link.read_bytes() == b"{}"


def test_a_link_planted_during_the_run_is_removed_before_pytest_writes(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from conformance.report.files import NoWriteThroughLinks

    victim = tmp_path / "victim"
    victim.write_text("the user's", encoding="utf-8")
    junit, page = tmp_path / "junit.xml", tmp_path / "conformance.html"
    junit.symlink_to(victim)
    page.symlink_to(tmp_path / "dangling")
    session = SimpleNamespace(config=SimpleNamespace(option=SimpleNamespace(xmlpath=str(junit), htmlpath=str(page))))
    NoWriteThroughLinks().pytest_sessionfinish(session)  # type: ignore[arg-type]
    assert not junit.is_symlink() and not page.is_symlink()
    assert victim.read_text(encoding="utf-8") == "the user's"


def test_a_link_at_the_har_path_is_refused(tmp_path: Path) -> None:
    from conformance.proxy.har import HarError, HarWriter

    link = tmp_path / "traffic.har"
    link.symlink_to(tmp_path / "elsewhere.har")
    with pytest.raises(HarError, match="symbolic link"):
        HarWriter(link)
    assert not (tmp_path / "elsewhere.har").exists()


@pytest.mark.parametrize("kind", ["empty", "fifo", "foreign"])
def test_a_har_path_this_tool_did_not_write_is_never_unlinked(kind: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """F1: an empty file, a FIFO (or a device, /dev/null) at --har is refused at any size, never replaced."""
    from conformance.proxy.har import _refusal

    path = tmp_path / "traffic.har"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"" if kind == "empty" else b"the user's notes\n")
    before = os.lstat(path)
    code = main(["proxy", "--upstream", "http://127.0.0.1:9", "--har", str(path),
                 "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    no_traceback(err)
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if kind != "fifo":
        assert path.read_bytes() == (b"" if kind == "empty" else b"the user's notes\n")
    # a device is refused by the check alone (never handed to the writer: it would be the system's file)
    says = _refusal(Path("/dev/null"))
    assert says and "not a regular file" in says
    assert Path("/dev/null").is_char_device()


# -- early: a run that ends before its first report never leaves the previous one reading as its own -----

def _earlier_reports(folder: Path, verdict_name: str = "conformant") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    own = {
        "conformance.json": json.dumps({"schema": "https://sgp-conformance.dev/schemas/conformance-result.json",
                                        "verdict": verdict_name}, indent=1).encode(),
        "junit.xml": b'<testsuites><testsuite name="sgp-conformance"/></testsuites>',
        "conformance.html": b"<html><title>SGP conformance report</title></html>",
    }
    for name, data in own.items():
        (folder / name).write_bytes(data)
    return own


def test_previous_reports_are_set_aside_and_kept_after_an_early_end(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = _earlier_reports(reports)
    moved = set_aside(reports)
    assert not list(reports.glob("*.*")), "nothing may read as this run's verdict"
    assert {p.name for p in moved} == set(before)
    assert settle(reports, moved, wrote=False) is not None
    assert {p.name: p.read_bytes() for p in (reports / PREVIOUS).iterdir()} == before


def test_a_chain_of_early_ends_never_loses_the_judged_run(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    judged = _earlier_reports(reports)
    settle(reports, set_aside(reports), wrote=False)
    _earlier_reports(reports, "unreachable")
    settle(reports, set_aside(reports), wrote=False)
    assert (reports / PREVIOUS / "conformance.json").read_bytes() == judged["conformance.json"]


def test_a_selection_that_judged_nothing_puts_the_reports_back(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = _earlier_reports(reports)
    settle(reports, set_aside(reports), wrote=False, judged_nothing=True)
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_in_the_first_moments_sets_the_reports_aside(name: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # what signals.defer() records when the signal comes while the CLI imports and reads its settings
    monkeypatch.setattr(signals, "PENDING", [name])
    monkeypatch.setenv("SGP_API_KEY", KEY)
    reports = tmp_path / "reports"
    before = _earlier_reports(reports)
    with misbehaving.serve("never_answer") as server:
        code = main(["run", "--base-url", server.base_url, "--report-dir", str(reports)])
    err = capsys.readouterr().err
    assert code == (143 if name == "SIGTERM" else 130), err
    assert f"interrupted by {name}" in err and "kept in" in err
    no_traceback(err)
    assert not (reports / "conformance.json").exists()
    assert {p.name: p.read_bytes() for p in (reports / PREVIOUS).iterdir()} == before


def test_ctrl_c_during_the_preflight_stops_it_at_once() -> None:
    """S2: a Ctrl-C while the minimal request waits on a silent target ends the wait at once (the run then
    ends interrupted, plugin.pytest_configure); it never waits out --timeout to call the target unreachable.
    (The attacker's report came from `timeout CMD`, which runs CMD in a process group of its own, so a
    group's SIGINT never reached the run; sent to the run itself, it acts at once, as here.)"""
    import threading

    # Ctrl-C as a terminal's user sends it: a process started in the background by a non-interactive shell (a CI
    # step ending in `&`, nohup) inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with misbehaving.serve("never_answer") as server:
        run = Run(Config(base_url=server.base_url, api_key=KEY, timeout=20, profile="openai"))
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        started = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                timer.start()
                preflight(run)
        finally:
            timer.cancel()
            run.close()
            signal.signal(signal.SIGINT, previous)
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # the timeout is 20 s: only an ignored Ctrl-C waits it out
    assert run.client.dead is None


def test_deferred_signal_is_recorded_then_a_second_one_acts() -> None:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved = list(signals.PENDING)
    signals.PENDING.clear()
    try:
        signals.defer()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert signals.PENDING == ["SIGINT"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        assert signals.release() == "SIGINT"
    finally:
        signals.PENDING[:] = saved
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# -- proxy: malformed or unsupported request targets get a 400 in the profile's error shape ----------------

PROXY_ATTACKS = {
    "absolute-form": b"GET http://evil.example/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "at-host": b"GET @evil.example/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "connect": b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "cl-and-te": (b"POST /v4/beta/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
}


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_proxy_refuses_hostile_request_targets_with_400(tmp_path: Path, reference_server: object,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from proxy_support import running_proxy

    upstream = reference_server("sgp")  # type: ignore[operator]
    with running_proxy(upstream.base_url, tmp_path) as proxy:
        for name, request in PROXY_ATTACKS.items():
            answer = _raw(proxy.port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), (name, answer[:300])
            assert b"x-sgp-conformance-proxy: bad-request" in head.lower(), name
            assert "detail" in json.loads(body), name  # the sgp profile's error shape
    no_traceback(caplog.text)


# -- serve: a client that went away is one access line -----------------------------------------------------

def test_serve_logs_a_client_that_went_away_as_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from conformance.server import ServerSettings, start_server
    from conformance.server.app import AccessLog, create_app

    lines: list[str] = []
    settings = ServerSettings(profile=get_profile("sgp"), api_keys=(KEY,))
    server = start_server(AccessLog(create_app(settings), lines.append), profile=settings.profile)
    try:
        port = int(server.base_url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v4/beta/chat/completions HTTP/1.1\r\nHost: a\r\nx-api-key: " + KEY.encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
            time.sleep(0.2)
        deadline = time.monotonic() + HANG_GUARD_S
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.stop()
    assert len(lines) == 1 and "the client went away" in lines[0], lines
    no_traceback(caplog.text)


# -- cosmetic: control bytes from the target are visible, not raw, in the HTML ------------------------------

def test_control_bytes_from_the_target_are_escaped_in_html() -> None:
    shown = _e("\x1b[2J\x07\x00<b>\x9b")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown), repr(shown)
    assert "\\x1b" in shown and "&lt;b&gt;" in shown


# -- files: the coverage cache in the shared temporary directory --------------------------------------------

def test_the_coverage_cache_is_written_new_and_only_in_a_private_folder_of_this_user(tmp_path: Path) -> None:
    """7: the cache file is created with O_EXCL (never through a link planted at its name) and only in a
    folder of this user that no one else may write to; any other folder is neither written nor read."""
    from conformance.suite import generation
    from conformance.suite.generation import CoverageCase

    cases = (CoverageCase("positive", {"model": "m"}, "a case"),)
    own = tmp_path / "own"
    path = own / "coverage-openai-x.json"
    generation._write_cache(path, cases)
    assert stat_mode(own) == 0o700 and generation._read_cache(path) == cases
    assert [p.name for p in own.iterdir()] == [path.name]
    # a link planted at the cache's name is replaced, its target never written
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's", encoding="utf-8")
    path.unlink()
    path.symlink_to(victim)
    generation._write_cache(path, cases)
    assert not path.is_symlink() and victim.read_text(encoding="utf-8") == "the user's"
    # a folder others may write to, one of another user, or a link: neither written nor read
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    linked = tmp_path / "linked"
    linked.symlink_to(own, target_is_directory=True)
    folders = [shared, linked]
    if os.getuid() == 0:
        os.chown(foreign, 54321, 54321)
        folders.append(foreign)
    for folder in folders:
        planted = folder / "coverage-openai-y.json"
        generation._write_cache(planted, cases)
        assert not planted.exists(), folder
        (folder / "coverage-openai-z.json").write_text(json.dumps([["positive", {"model": "evil"}, "x"]]),
                                                       encoding="utf-8")
        assert generation._read_cache(folder / "coverage-openai-z.json") is None


def stat_mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o777
