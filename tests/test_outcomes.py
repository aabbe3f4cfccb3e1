"""One honest verdict: whatever stops or limits a run, its exit code, banner, conformance.json, junit.xml and
conformance.html say the same, and none of them calls conformant what was not judged. An interrupted run
says so (130, 143); a recording cut short fails JSON-001 alone; a diff against a run that reached nothing
shows the coverage lost; a target that refuses everything fails BASIC-001 alone; a server with one fault
fails the requirements about that fault alone.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import misbehaving
import pytest
from agreement import BAD, UNJUDGED, agree, banner, plant, read_junit, read_page
from cli_runs import REFERENCE_KEY, Outcome, clean_environment, run_in_process
from counting import counting_server
from mutants import ACCOUNT, KEY, MODEL, Call, Mutant, on_body, on_error, settings_for, variant

import conformance.suite
from conformance.contract import catalogue
from conformance.contract.profiles import SGP, get_profile
from conformance.server import create_app, start_server
from conformance.suite.needs import Answered, Basic, Carried

SUITE_DIR = Path(conformance.suite.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures"
# a hang guard only, not a speed limit: a run here takes 3-15 s on a quiet machine and several times that on
# a busy CI runner; a run that hangs fails its test instead of stalling the session. The runs that check a
# verdict share the test session's interpreter (cli_runs.run_in_process, under its own hang guard); the
# interrupted runs are the command itself
HARD_TIMEOUT = 600


def needs_of_every_requirement() -> dict[str, tuple[Any, ...]]:
    """What each requirement needs, read from the @requirement marks of the suite's own modules."""
    found: dict[str, tuple[Any, ...]] = {}
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        with warnings.catch_warnings():
            # the plugin registers the suite's marks only in a session that runs the suite
            warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
            module = importlib.import_module(f"conformance.suite.{path.stem}")
        for test in vars(module).values():
            for mark in getattr(test, "pytestmark", []):
                if mark.name != "parametrize":
                    continue
                for param in mark.args[1]:
                    marks = {m.name: m for m in param.marks}
                    if "requirement" in marks:
                        found[marks["requirement"].args[0]] = tuple(marks["needs"].args)
    return found


# -- interrupted -------------------------------------------------------------------------------------------

# a user's terminal delivers Ctrl-C as SIGINT to a process that has Python's default handler; a child of
# this test process may have inherited SIGINT ignored (a CI runner's), so the CLI is started with it restored
CLI_WITH_CTRL_C = [sys.executable, "-c",
                   "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "sys.argv[0] = 'sgp-conformance'; runpy.run_module('conformance.cli', run_name='__main__')"]


def interrupted_run(tmp_path: Path, earlier: Outcome, sig: signal.Signals, nth: int) -> tuple[Outcome, int]:
    """`run` against a slow reference server, sent `sig` once its `nth` request reached the server (the first
    is the preflight's), over the reports of an earlier conformant run. The outcome, and the requests sent."""
    reports = tmp_path / "reports"
    plant(earlier.report_dir, reports)
    env = {**clean_environment(), "SGP_API_KEY": REFERENCE_KEY}
    with counting_server("sgp", latency_ms=150) as (server, count):
        process = subprocess.Popen([*CLI_WITH_CTRL_C, "run", "--base-url", server.base_url, "--report-dir",
                                    str(reports)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env, cwd=tmp_path)
        try:
            assert count.wait_for(nth, timeout=HARD_TIMEOUT), "the run never reached the server"
            process.send_signal(sig)
            stdout, stderr = process.communicate(timeout=HARD_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=HARD_TIMEOUT)
        sent = count.count
    return Outcome(process.returncode, stdout, stderr, reports), sent


@pytest.mark.parametrize("nth", [1, 3], ids=["in-the-preflight", "while-judging"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_says_so_everywhere(sig: signal.Signals, nth: int, earlier_run: Outcome,
                                               tmp_path: Path) -> None:
    out, sent = interrupted_run(tmp_path, earlier_run, sig, nth)
    assert out.code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], out.output[-3000:]
    doc = agree(out)
    # this run's reports, not the earlier run's left in the directory: the verdict is interrupted, nowhere
    # conformant, and what the interrupt cut off is not run for that reason
    assert doc["verdict"] == "interrupted" and doc["run"]["interrupted"] == sig.name
    assert doc["run"]["target"] != json.loads((earlier_run.report_dir / "conformance.json").read_text())["run"][
        "target"]
    head = banner(out.stdout)[0]
    assert head.startswith(f"sgp-conformance: INTERRUPTED: by {sig.name}") and "nothing is conformant" in head
    assert read_page(out.report_dir / "conformance.html").verdict.startswith("INTERRUPTED")
    kinds = {r["not_run"] for r in doc["results"] if r["status"] == "not run"}
    assert "interrupted" in kinds and kinds <= {"interrupted", "settings"}, kinds
    assert {r["status"] for r in doc["results"]} <= {"pass", "not judged", "not run"}
    assert doc["requests"]["sent"] <= sent


def test_no_level_of_an_interrupted_run_is_called_conformant(earlier_run: Outcome, tmp_path: Path) -> None:
    out, _ = interrupted_run(tmp_path, earlier_run, signal.SIGINT, 3)
    doc = agree(out)
    assert any(r["status"] == "pass" for r in doc["results"]), "nothing passed before the interrupt"
    assert "conformant" not in doc["verdicts"].values(), doc["verdicts"]


# -- recorded traffic cut short ------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty-printed"])
def test_a_truncated_recording_fails_json_001_alone(indent: int | None, tmp_path: Path) -> None:
    whole = json.dumps(json.loads((FIXTURES / "chat-completion-200.json").read_text()), indent=indent)
    # cut mid-document: a pretty-printed one then has lines that parse on their own (`105`), none an object
    (tmp_path / "cut.json").write_text(whole[: len(whole) // 2], encoding="utf-8")
    out = run_in_process(["validate", "cut.json"], tmp_path / "reports")
    doc = agree(out)
    assert out.code == 1 and doc["verdict"] == "not conformant", out.output[-3000:]
    by_id = {r["id"]: r for r in doc["results"]}
    assert {rid for rid, r in by_id.items() if r["status"] in BAD} == {"JSON-001"}
    assert doc["recorded"]["records"] == 1
    # every rule about the body's content points at JSON-001: it cannot be judged on a body that is not JSON
    shape = {rid: r for rid, r in by_id.items() if rid.startswith(("RESP-", "SEM-"))}
    assert all(r["status"] in UNJUDGED for r in shape.values()), {k: r["status"] for k, r in shape.items()}
    assert all(r["needs"] == "JSON-001" for rid, r in shape.items() if rid.startswith("RESP-"))
    assert {rid for rid, r in shape.items() if r["needs"] == "JSON-001"} >= {"SEM-001", "SEM-003", "SEM-011"}
    # a body that is not JSON has no keys to repeat: JSON-002 cannot pass there
    assert (by_id["JSON-002"]["status"], by_id["JSON-002"]["needs"]) == ("not judged", "JSON-001")


# -- diff against a run that reached nothing -----------------------------------------------------------------


def test_diff_against_an_unreachable_run_lists_the_coverage_lost(earlier_run: Outcome, tmp_path: Path) -> None:
    port = misbehaving.closed_port()
    dead = run_in_process(["run", "--base-url", f"http://127.0.0.1:{port}", "--depth", "smoke"], tmp_path / "dead",
                          env={"SGP_API_KEY": REFERENCE_KEY})
    dead_doc = agree(dead)
    assert dead.code == 3 and dead_doc["verdict"] == "unreachable", dead.output[-3000:]
    old, new = earlier_run.report_dir / "conformance.json", dead.report_dir / "conformance.json"
    # the earlier run's target was the embedded server: another target, compared only when forced
    out = run_in_process(["diff", str(old), str(new), "--force"])
    assert out.code == 1, out.output
    lines = out.stdout.splitlines()
    assert lines[0].startswith("compared although not comparable (--force): target the embedded reference server")
    assert lines[1] == f"the new run could not judge: unreachable (connection refused by 127.0.0.1:{port})"
    passed = [r for r in json.loads(old.read_text())["results"] if r["status"] == "pass" and r["level"] == "MUST"]
    assert passed
    lost = f"coverage lost (passed before, not judged or not run now) ({len(passed)}):"
    assert lost in lines, lines[:5]
    for r in passed:
        assert any(line.startswith(f"  {r['id']} MUST pass -> not run") for line in lines), r["id"]
    assert lines[-1].startswith(f"0 regression(s) and {len(passed)} lost (--fail-on must)")


# -- a target that refuses everything ------------------------------------------------------------------------


async def refuse_everything(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every request answered with the same 400, whose body names no model (so it is no model error)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"req_400")]})
    await send({"type": "http.response.body", "body": json.dumps({"detail": "bad request"}).encode()})


def test_a_target_refusing_everything_fails_basic_001_alone(tmp_path: Path) -> None:
    needs = needs_of_every_requirement()
    assert set(needs) == {r.id for r in catalogue.REQUIREMENTS}
    needs_2xx = {rid for rid, found in needs.items() if any(isinstance(n, Answered | Basic | Carried) for n in found)}
    assert "BASIC-001" in needs_2xx and len(needs_2xx) > 50
    with counting_server("sgp", app=refuse_everything) as (server, _):
        out = run_in_process(["run", "--base-url", server.base_url], tmp_path / "reports",
                             env={"SGP_API_KEY": REFERENCE_KEY})
    doc = agree(out)
    assert out.code == 1 and doc["verdict"] == "not conformant", out.output[-3000:]
    by_id = {r["id"]: r for r in doc["results"]}
    # of the whole catalogue, nothing that needs a 2xx answer was judged, but the minimal request's own rule
    judged = {rid: by_id[rid]["status"] for rid in needs_2xx & set(by_id) if by_id[rid]["status"] not in UNJUDGED}
    assert judged == {"BASIC-001": "fail"}
    # and the rest point at it
    pointing = {by_id[rid]["needs"] for rid in needs_2xx & set(by_id) if by_id[rid]["status"] == "not judged"}
    assert pointing <= {"BASIC-001", None} and "BASIC-001" in pointing
    assert {rid for rid, r in by_id.items() if r["status"] in BAD and r["level"] == "MUST"} == {"BASIC-001"}


# -- one fault, its requirements alone -----------------------------------------------------------------------


def _ignore_a_valid_max_tokens(body: Any, call: Call) -> None:
    # an invalid value still reaches the reference server, which refuses it: the fault is ignoring, not accepting
    limit = body.get("max_tokens") if isinstance(body, dict) else None
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        del body["max_tokens"]


MAX_TOKENS_IGNORED = Mutant("a valid max_tokens is ignored", "SEM-006", ("sgp",),
                            request=on_body(_ignore_a_valid_max_tokens))


def max_tokens_ignored_run(tmp_path: Path, *flags: str) -> Outcome:
    settings = settings_for("sgp")
    with start_server(MAX_TOKENS_IGNORED.wrap(create_app(settings), settings), profile=SGP) as server:
        return run_in_process(["run", "--base-url", server.base_url, "--account-id", ACCOUNT, "--model", MODEL,
                               "--max-examples", "10", *flags], tmp_path / "reports", env={"SGP_API_KEY": KEY})


def test_a_server_that_ignores_max_tokens_fails_only_what_is_about_it(tmp_path: Path) -> None:
    # a seed whose generated cases pass (see the shrinking test below for one whose cases find the fault)
    out = max_tokens_ignored_run(tmp_path, "--seed", "1")
    doc = agree(out)
    assert out.code == 1, out.output[-3000:]
    by_id = {r["id"]: r for r in doc["results"]}
    failed = {rid for rid, r in by_id.items() if r["status"] in BAD}
    assert "SEM-006" in failed and failed <= {"SEM-006", "PROP-001"}, failed
    # generated cases may find the same fault: then PROP-001 says it is SEM-006's
    if "PROP-001" in failed:
        assert all("SEM-006" in v["message"] for v in by_id["PROP-001"]["violations"])
    # a completion that ignored the limit was not cut, and rightly says "stop": SEM-007 points at SEM-006
    assert (by_id["SEM-007"]["status"], by_id["SEM-007"]["needs"]) == ("not judged", "SEM-006"), by_id["SEM-007"]


def test_shrinking_a_generated_failure_leaves_the_rest_of_the_budget(tmp_path: Path) -> None:
    # with this seed, PROP-001's generated cases find the ignored max_tokens; the budget covers the plan
    out = max_tokens_ignored_run(tmp_path, "--seed", "10", "--max-requests", "150")
    doc = agree(out)
    assert [r["id"] for r in doc["results"] if r["not_run"] == "budget"] == []


# -- a run started by a process that is itself an xdist worker -----------------------------------------------


def test_a_run_started_from_an_xdist_worker_keeps_its_whole_budget(tmp_path: Path) -> None:
    # a CI job's test that runs sgp-conformance inherits PYTEST_XDIST_WORKER_COUNT from its own xdist; the
    # run has no workers of its own, so its budget is all of --max-requests (smoke needs at most 30)
    out = run_in_process(["run", "--depth", "smoke", "--max-requests", "40"], tmp_path / "reports",
                         env={"PYTEST_XDIST_WORKER_COUNT": "4", "PYTEST_XDIST_WORKER": "gw3"})
    doc = agree(out)
    assert out.code == 0 and doc["verdict"] == "conformant", out.output[-3000:]
    assert [r["id"] for r in doc["results"] if r["not_run"] == "budget"] == []


# -- a SHOULD failure in junit.xml ---------------------------------------------------------------------------

# HDR-005 is SHOULD: RFC 9110 recommends ignoring unknown headers (docs/contract.md section 14)
SHOULD_FAULT = "hdr_unknown_header_refused"


@pytest.mark.parametrize(("flags", "shown", "code"), [
    ((), "skipped", 0),                                      # as --fail-on must treats it: not a failure
    (("--fail-on", "should"), "failure", 1),                 # as --fail-on should treats it
    (("--junit-should", "failure"), "failure", 0),           # the CI view asked to show it, the gate unchanged
    (("--junit-should", "pass"), "passed", 0),
])
def test_junit_shows_a_should_failure_as_asked(flags: tuple[str, ...], shown: str, code: int,
                                               tmp_path: Path) -> None:
    mutant = variant(SHOULD_FAULT)
    settings = settings_for("sgp")
    with start_server(mutant.wrap(create_app(settings), settings), profile=SGP) as server:
        out = run_in_process(["run", "--base-url", server.base_url, "--account-id", ACCOUNT, "--model", MODEL,
                              "-k", mutant.requirement, *flags], tmp_path / "reports", env={"SGP_API_KEY": KEY})
    assert out.code == code, out.output[-3000:]
    doc = json.loads((out.report_dir / "conformance.json").read_text(encoding="utf-8"))
    assert {r["id"]: r["status"] for r in doc["results"]}[mutant.requirement] == "fail"
    _, cases = read_junit(out.report_dir / "junit.xml")
    assert {c.outcome for c in cases if c.requirement == mutant.requirement} == {shown}


# -- the evidence of a failure starts with the exchange that broke the rule -----------------------------------


def _detail_body_for_a_bad_temperature(reply: Any, call: Call) -> None:
    body = call.json()
    if isinstance(body, dict) and isinstance(body.get("temperature"), (int, float)) and body["temperature"] > 2:
        reply.set_json({"detail": "temperature out of range"})


BAD_SHAPE_FOR_TEMPERATURE = Mutant('a 400 for temperature out of range comes as {"detail": ...}', "ERR-004",
                                   ("openai",), response=on_error((400,), _detail_body_for_a_bad_temperature))


def test_the_evidence_of_a_run_wide_rule_starts_with_a_failing_exchange(tmp_path: Path) -> None:
    # ERR-004 judges every 4xx of the run; it asks for the scripted invalid requests itself, and this server
    # answers those in the right shape: the one it breaks (val_temperature, VAL-009's) must lead the evidence
    settings = settings_for("openai")
    app = BAD_SHAPE_FOR_TEMPERATURE.wrap(create_app(settings), settings)
    with start_server(app, profile=get_profile("openai")) as server:
        out = run_in_process(["run", "--profile", "openai", "--base-url", server.base_url, "--model", MODEL,
                              "--seed", "1", "--max-examples", "5"], tmp_path / "reports", env={"SGP_API_KEY": KEY})
    doc = json.loads((out.report_dir / "conformance.json").read_text(encoding="utf-8"))
    result = {r["id"]: r for r in doc["results"]}["ERR-004"]
    assert result["status"] == "fail", result
    first = result["evidence"]["scenarios"][0]
    assert first["scenario"] == "val_temperature", result["evidence"]
    # conformance.json alone reproduces it: the curl line (the key from the environment) and both bodies
    assert first["curl"].startswith("curl ") and "${SGP_API_KEY}" in first["curl"] and KEY not in first["curl"]
    assert '"temperature"' in first["request_body"] and "temperature out of range" in first["response_body"]
    # and the HTML's first exchange of ERR-004 is that answer
    page = (out.report_dir / "conformance.html").read_text(encoding="utf-8")
    section = page[page.index("id='evidence-ERR-004'"):]
    assert section.index("temperature out of range") < section.index("</details>"), section[:3000]


# -- the suite's own internal error --------------------------------------------------------------------------


def test_an_internal_error_of_the_suite_never_passes_a_gate(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's exit code 3 (INTERNALERROR) came out as a partial run, exit 0, with nothing judged
    from conformance.config import Config
    from conformance.report.summary import finish

    assert finish(Config(report_dir=str(tmp_path)), 3, tmp_path) == 1
    assert "internal error of the suite" in capsys.readouterr().err
