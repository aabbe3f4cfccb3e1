"""A user's mistake is named as theirs, never reported as the server's fault: a wrong model, base URL,
profile or no key at all ends the run with exit 2 and one line naming the fix, before the run spends its
budget, leaving an earlier run's reports as they were; a refused key or account ends it with exit 3 and
reports that say so. Each case drives the real CLI against the reference server, counting what reached it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from agreement import agree, one_line, plant, read_page, snapshot
from cli_runs import REFERENCE_KEY, Outcome, run_cli, run_in_process
from counting import counting_server

from conformance.server import RunningServer

KEY_ENV = {"SGP_API_KEY": REFERENCE_KEY}
# the preflight's request, and the other forms of the base URL it tries at most (preflight.MAX_GUESSES)
AT_MOST_SENT = 1 + 3

# (case, the flags given the sgp and the openai server, what the one stderr line must say); the reference
# server answers a model it does not serve with 404 naming it
Flags = Callable[[RunningServer, RunningServer], list[str]]
Says = Callable[[RunningServer, RunningServer], list[str]]
CASES: list[tuple[str, Flags, Says]] = [
    ("unknown-model",
     lambda sgp, oai: ["--base-url", sgp.base_url, "--model", "no/such-model"],
     lambda sgp, oai: ["the target refused model 'no/such-model' (HTTP 404): pass --model"]),
    ("endpoint-as-base-url",
     lambda sgp, oai: ["--base-url", sgp.url],
     lambda sgp, oai: [f"no chat-completions endpoint at {sgp.url}/v4/beta/chat/completions (HTTP 404)",
                       "the sgp profile expects --base-url https://host",
                       f"try --base-url {sgp.base_url}"]),
    ("openai-without-v1",
     lambda sgp, oai: ["--profile", "openai", "--base-url", oai.base_url.removesuffix("/v1")],
     lambda sgp, oai: [f"no chat-completions endpoint at {oai.base_url.removesuffix('/v1')}/chat/completions",
                       "the openai profile expects --base-url https://host/v1", "/v1 is missing",
                       f"try --base-url {oai.base_url}"]),
    ("sgp-server-as-openai",
     lambda sgp, oai: ["--profile", "openai", "--base-url", sgp.base_url],
     lambda sgp, oai: [f"no chat-completions endpoint at {sgp.base_url}/chat/completions (HTTP 404)",
                       f"try --base-url {sgp.base_url} --profile sgp"]),
    ("openai-server-as-sgp",
     lambda sgp, oai: ["--profile", "sgp", "--base-url", oai.base_url],
     lambda sgp, oai: [f"no chat-completions endpoint at {oai.base_url}/v4/beta/chat/completions (HTTP 404)",
                       f"try --base-url {oai.base_url} --profile openai"]),
]


@pytest.mark.parametrize(("case", "flags", "says"), [pytest.param(*c, id=c[0]) for c in CASES])
def test_a_wrong_target_is_a_configuration_error_that_leaves_earlier_reports(
        case: str, flags: Flags, says: Says, earlier_run: Outcome, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = plant(earlier_run.report_dir, reports)
    with counting_server("sgp") as (sgp, sgp_count), counting_server("openai") as (oai, oai_count):
        # in this interpreter: the line and the exit code are the run's (the tests below run the command)
        out = run_in_process(["run", *flags(sgp, oai)], reports, env=KEY_ENV)
        sent = sgp_count.count + oai_count.count
    assert out.code == 2, out.output[-3000:]
    line = one_line(out.stderr)
    for part in says(sgp, oai):
        assert part in line, f"{part!r} not in {line!r}"
    assert "Traceback" not in out.output
    # no run, so no banner: nothing could be taken for a verdict of the server
    assert "=" * 72 not in out.stdout
    # the earlier reports are kept, byte for byte, but set aside in previous/: none reads as this run's verdict
    assert snapshot(reports) == {f"previous/{name}": data for name, data in before.items()}
    if case == "unknown-model":
        # the preflight said it all: no guess is tried for a model
        assert sent == 1, sent
    else:
        assert 1 <= sent <= AT_MOST_SENT, sent
    # the guess never sends the user somewhere they would need --profile for when the profile was right
    if "--profile" not in " ".join(flags(sgp, oai)) and "try --base-url" in line:
        assert "--profile" not in line.split("try --base-url", 1)[1]


def test_no_key_for_a_base_url_sends_nothing(earlier_run: Outcome, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = plant(earlier_run.report_dir, reports)
    with counting_server("sgp") as (sgp, count):
        out = run_cli(["run", "--base-url", sgp.base_url], reports, timeout=120)
        sent = count.count
    assert out.code == 2, out.output[-3000:]
    line = one_line(out.stderr)
    assert "SGP_API_KEY" in line and "--api-key" in line, line
    assert sent == 0
    assert snapshot(reports) == before
    assert "=" * 72 not in out.stdout and "Traceback" not in out.output


def test_an_account_the_server_refuses_is_named_and_exits_3(tmp_path: Path) -> None:
    with counting_server("sgp", account_ids=("acct-known",)) as (sgp, count):
        out = run_in_process(["run", "--base-url", sgp.base_url, "--account-id", "acct-not-known"],
                             tmp_path / "reports", env=KEY_ENV)
        sent = count.count
    doc = agree(out)
    assert out.code == 3 and doc["verdict"] == "key refused", out.output[-3000:]
    # the preflight alone was sent, and every output names the account as the thing to check
    assert sent == 1 and doc["requests"]["sent"] == 1
    head = one_line(out.stdout)
    assert head.startswith("sgp-conformance: KEY REFUSED:") and "--account-id" in head, head
    assert "--account-id" in doc["run"]["halted"] and "(HTTP 403)" in doc["run"]["halted"]
    assert {(r["status"], r["not_run"]) for r in doc["results"]} == {("not run", "halted")}
    assert read_page(out.report_dir / "conformance.html").verdict.startswith("KEY REFUSED")


def test_the_same_run_with_a_known_account_is_judged(tmp_path: Path) -> None:
    # the control of the case above: the server and the key are fine, only the account was wrong
    with counting_server("sgp", account_ids=("acct-known",)) as (sgp, _):
        out = run_in_process(["run", "--base-url", sgp.base_url, "--account-id", "acct-known", "-k",
                              "BASIC-001 or HDR-002"], tmp_path / "reports", env=KEY_ENV)
    doc = agree(out)
    assert out.code == 0 and doc["verdict"] == "partial", out.output[-3000:]
    assert {r["id"] for r in doc["results"] if r["status"] == "pass"} == {"BASIC-001", "HDR-002"}


def test_a_wrong_target_leaves_no_empty_report_folder_behind(tmp_path: Path) -> None:
    # the folder the run made for its reports goes again when the run stopped before writing any;
    # one the user made stays, empty as it was
    made_by_user = tmp_path / "mine"
    made_by_user.mkdir()
    with counting_server("sgp") as (sgp, _):
        for reports in (tmp_path / "new" / "{timestamp}", made_by_user):
            out = run_in_process(["run", "--base-url", sgp.url, "--report-dir", str(reports)], env=KEY_ENV)
            assert out.code == 2, out.output[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    # a path through a folder that does not exist makes none, and removes no folder that existed
    with counting_server("sgp") as (sgp, _):
        out = run_in_process(["run", "--base-url", sgp.url, "--report-dir",
                              str(tmp_path / "nope" / ".." / "mine" / "new")], env=KEY_ENV)
    assert out.code == 2, out.output[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and not any(made_by_user.iterdir())
    assert made_by_user.is_dir() and not any(made_by_user.iterdir())
