"""`sgp-conformance replay`: a report's failing exchanges sent again and judged again, through the CLI's own
entry point (in this interpreter; the first replay of the broken report also as the command a user types).

The report is the broken server's run (report_fixtures.broken_run: completions lack `id`, so RESP-001 fails,
and PROP-001 leaves the generated cases' finding to it: one fault, one failure); replayed against that
server the failures reproduce, against the reference server (the fix) they no longer do. The key is read
from the environment, never from the report.
"""

from __future__ import annotations

import json

import pytest
from cli_runs import Outcome, run_either, run_in_process
from report_fixtures import BROKEN_KEY, broken_run, broken_server  # noqa: F401 - fixtures


def _replay(args: list[str], key: str | None = BROKEN_KEY, as_command: bool = False) -> Outcome:
    return run_either(["replay", *args], env={"SGP_API_KEY": key} if key else None, as_command=as_command)


def test_the_report_keeps_each_failing_request_whole_without_the_key(broken_run: Outcome) -> None:  # noqa: F811
    resp = next(r for r in broken_run.doc["results"] if r["id"] == "RESP-001")
    scenarios = resp["evidence"]["scenarios"]
    assert all(s["failed"] for s in scenarios if s["scenario"] == "basic")
    replay = scenarios[0]["replay"]
    assert replay["method"] == "POST" and replay["url"].endswith("/chat/completions")
    assert ["x-api-key", "${SGP_API_KEY}"] in replay["headers"]
    assert BROKEN_KEY not in (broken_run.report_dir / "conformance.json").read_text(encoding="utf-8")


def test_replay_reproduces_against_the_broken_server_and_not_against_the_fixed_one(
        broken_run: Outcome, reference_server) -> None:  # noqa: F811
    report = str(broken_run.report_dir)
    again = _replay([report, "--failed"], as_command=True)
    assert again.code == 1, again.output
    lines = [line for line in again.stdout.splitlines() if "still fails" in line]
    assert any(line.startswith("RESP-001") and "missing required field 'id'" in line for line in lines), again.stdout
    # the generated cases found the same fault, which RESP-001 reports: PROP-001 has nothing of its own
    assert not any(line.startswith("PROP-001") for line in lines), again.stdout
    assert "no longer reproduces" not in again.stdout and BROKEN_KEY not in again.output

    fixed = reference_server("sgp", api_keys=(BROKEN_KEY,), account_ids=("acct-1",))
    after = _replay([str(broken_run.report_dir / "conformance.json"), "--failed", "--only", "RESP",
                     "--base-url", fixed.base_url])
    assert after.code == 0, after.output
    assert "still fails" not in after.stdout
    assert all(line.startswith("RESP-001") for line in after.stdout.splitlines()[:-1]), after.stdout
    assert "no longer reproduces" in after.stdout and BROKEN_KEY not in after.output


def test_replay_refuses_in_one_line(broken_run: Outcome, tmp_path) -> None:  # noqa: F811
    report = str(broken_run.report_dir)
    no_key = _replay([report], key=None)
    assert no_key.code == 2 and "SGP_API_KEY" in no_key.stderr and no_key.stdout == ""
    assert len(no_key.stderr.strip().splitlines()) == 1
    wrong_case = _replay([report, "--only", "resp"])
    assert wrong_case.code == 2 and "did you mean RESP?" in wrong_case.stderr
    missing = _replay([str(tmp_path)])
    assert missing.code == 2 and "no such file" in missing.stderr


def test_junit_failure_text_says_where_what_and_how_to_send_it_again(broken_run: Outcome) -> None:  # noqa: F811
    from xml.etree import ElementTree

    junit = ElementTree.parse(broken_run.report_dir / "junit.xml").getroot()
    case = next(c for c in junit.iter("testcase") if "RESP-001" in (c.get("name") or ""))
    text = case.find("failure").text or ""
    # six answers broke the rule the same way: one entry, naming every scenario, not six identical lines
    assert text.count("missing required field 'id'") == 1, text
    assert "pointer: (the document root)" in text
    assert "scenario: basic, " in text and "n2" in text
    curl = next(line for line in text.splitlines() if "reproduce (basic): curl " in line)
    assert '"${SGP_API_KEY}"' in curl and BROKEN_KEY not in text


def test_a_scripted_request_replays_with_its_exact_body_against_a_mutant_and_the_fix(
        reference_server, tmp_path) -> None:
    import mutants

    from conformance.contract.profiles import PROFILES
    from conformance.server import start_server

    host = start_server(mutants.MutantHost("sgp"), profile=PROFILES["sgp"])
    try:
        # a body that is not JSON is served as if it were the minimal request: VAL-006 fails
        args = mutants.run_args("val_malformed_json_served", "sgp", host.base_url)
        out = run_in_process([*args, "--only", "VAL-006"], tmp_path / "reports", env={"SGP_API_KEY": mutants.KEY})
        assert out.status("VAL-006") == "fail", out.output[-2000:]
        sent = next(r for r in out.doc["results"] if r["id"] == "VAL-006")["evidence"]["scenarios"][0]["replay"]
        # the exact bytes, JSON cut short: replayed as they were, never parsed and re-encoded
        with pytest.raises(ValueError):
            json.loads(sent["body"])
        again = _replay([str(out.report_dir), "--failed"], key=mutants.KEY)
        assert again.code == 1 and "VAL-006" in again.stdout and "still fails" in again.stdout, again.output
    finally:
        host.stop()
    fixed = reference_server("sgp", api_keys=(mutants.KEY,), account_ids=(mutants.ACCOUNT,))
    after = _replay([str(out.report_dir), "--failed", "--base-url", fixed.base_url], key=mutants.KEY)
    assert after.code == 0 and "no longer reproduces" in after.stdout, after.output
    assert "HTTP 4" in after.stdout  # the fixed server refuses it


def test_a_report_of_the_embedded_server_replays_against_a_fresh_one(broken_run: Outcome, tmp_path) -> None:  # noqa: F811
    # the broken run, as if its target had been the embedded server (gone with its run): replay starts the
    # reference server again, with its own key, and the request goes there
    doc = broken_run.doc
    doc["run"]["embedded"] = True
    (tmp_path / "conformance.json").write_text(json.dumps(doc), encoding="utf-8")
    out = _replay([str(tmp_path), "--failed", "--id", "RESP-001"], key=None)
    assert out.code == 0, out.output
    assert "started a new one at http://127.0.0.1:" in out.stdout
    assert out.stdout.count("no longer reproduces") >= 2 and "PROP-001" not in out.stdout



def test_replay_with_a_refused_key_says_so(
        broken_run: Outcome) -> None:  # noqa: F811
    report = str(broken_run.report_dir)
    refused = _replay([report, "--failed"], key="sk-not-the-key-000000000000")
    assert refused.code == 3 and "KEY REFUSED" in refused.stderr, refused.output
    assert "still fails" not in refused.stdout


def test_an_observation_found_again_is_observed_and_a_kept_rule_still_holds(monkeypatch) -> None:
    from types import SimpleNamespace

    from conformance.checks import Violation
    from conformance.contract.profiles import PROFILES
    from conformance.offline import replay

    answer = SimpleNamespace(response=object(), status=200, error=None)
    monkeypatch.setattr(replay, "rejudge", lambda *a, **k: [Violation("HDR-007", "no request id")])
    seen = replay.Recorded("HDR-007", "basic", {"headers": []}, 200, failed=True, observed=True)
    assert replay._verdict(seen, answer, PROFILES["sgp"])[0] == "still observed"
    kept = replay.Recorded("RESP-001", "basic", {"headers": []}, 200, failed=False)
    assert replay._verdict(kept, answer, PROFILES["sgp"])[0] == "now fails"
    monkeypatch.setattr(replay, "rejudge", lambda *a, **k: [])
    assert replay._verdict(kept, answer, PROFILES["sgp"])[0] == "still holds"
