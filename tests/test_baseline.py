"""Accepted deviations: a listed failure is `known` and passes the run; a listed pass is `stale` and fails
it; an expired entry fails it. Against the reference server made to fail RESP-001."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cli_runs import Outcome, run_in_process
from report_fixtures import BROKEN_KEY, broken_server  # noqa: F401 - fixture

from conformance.config import ConfigError
from conformance.report.baseline import Entry, load
from conformance.server import RunningServer


def run_with(server: RunningServer, tmp_path: Path, baseline: str, select: str) -> Outcome:
    path = tmp_path / "baseline.toml"
    path.write_text(baseline, encoding="utf-8")
    # in this interpreter: what is judged is the run's use of the baseline, not the process
    return run_in_process(["run", "--base-url", server.base_url, "--account-id", "acct-1", "--baseline", str(path),
                           "-k", select], tmp_path / "reports", env={"SGP_API_KEY": BROKEN_KEY})


def result(out: Outcome, req_id: str) -> dict:
    return next(r for r in out.doc["results"] if r["id"] == req_id)


def test_a_listed_failure_is_known_and_does_not_fail_the_run(
        broken_server: RunningServer, tmp_path: Path) -> None:  # noqa: F811
    out = run_with(broken_server, tmp_path, '[[accepted]]\nid = "RESP-001"\nreason = "ids come in v2"\n'
                                            'expires = 2999-12-31\n', "RESP-001 or AUTH-001")
    assert out.code == 0, out.output[-3000:]
    known = result(out, "RESP-001")
    assert known["status"] == "known" and "ids come in v2" in known["message"]
    assert known["baseline"] == {"reason": "ids come in v2", "expires": "2999-12-31", "expired": False}
    assert known["evidence"] is not None
    assert result(out, "AUTH-001")["status"] == "pass"
    # -k left the other requirements out: partial, and the accepted deviation does not fail it
    assert out.doc["verdict"] == "partial" and out.doc["counts"]["MUST"]["known"] == 1
    assert "known (accepted in the baseline): RESP-001" in out.stdout
    page = (out.report_dir / "conformance.html").read_text(encoding="utf-8")
    assert '<tr id="req-RESP-001" class="row-known">' in page and "ids come in v2" in page


def test_a_listed_requirement_that_passes_is_stale_and_fails_the_run_at_any_level(
        broken_server: RunningServer, tmp_path: Path) -> None:  # noqa: F811
    # AUTH-004 is a SHOULD: with --fail-on must its failure would not count, its staleness does
    out = run_with(broken_server, tmp_path, '[[accepted]]\nid = "AUTH-004"\nreason = "was broken"\n',
                   "AUTH-004 or AUTH-001")
    assert out.code == 1, out.output[-3000:]
    stale = result(out, "AUTH-004")
    assert stale["status"] == "stale" and "now passes" in stale["message"]
    assert out.doc["verdict"] == "not conformant"
    assert "AUTH-004" in out.stdout and "stale" in out.stdout


def test_an_expired_entry_fails_the_run(broken_server: RunningServer, tmp_path: Path) -> None:  # noqa: F811
    out = run_with(broken_server, tmp_path, '[[accepted]]\nid = "RESP-001"\nreason = "ids come in v2"\n'
                                            'expires = 2020-01-31\n', "RESP-001")
    assert out.code == 1, out.output[-3000:]
    expired = result(out, "RESP-001")
    assert expired["status"] == "error" and "expired on 2020-01-31" in expired["message"]
    assert expired["baseline"]["expired"] is True


# -- the file ---------------------------------------------------------------------------------------------------


def test_the_example_baseline_loads() -> None:
    entries = load(Path(__file__).resolve().parents[1] / "examples" / "baseline.toml")
    assert entries and all(e.reason for e in entries.values())


def test_json_baselines_load_too(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"accepted": [{"id": "SEM-005", "reason": "r", "expires": "2027-03-31"}]}', encoding="utf-8")
    assert load(path) == {"SEM-005": Entry("SEM-005", "r", dt.date(2027, 3, 31))}


def test_an_entry_expires_after_its_day() -> None:
    entry = Entry("SEM-005", "r", dt.date(2027, 3, 31))
    assert not entry.expired(dt.date(2027, 3, 31)) and entry.expired(dt.date(2027, 4, 1))
    assert not Entry("SEM-005", "r").expired(dt.date(9999, 1, 1))


@pytest.mark.parametrize(("text", "message"), [
    ("[[accepted]]\nid = \"NOPE-001\"\nreason = \"r\"\n", "unknown requirement 'NOPE-001'"),
    ("[[accepted]]\nid = \"SEM-005\"\n", "needs an id and a reason"),
    ("[[accepted]]\nid = \"SEM-005\"\nreason = \"r\"\n[[accepted]]\nid = \"SEM-005\"\nreason = \"s\"\n",
     "listed twice"),
    ("[[accepted]]\nid = \"SEM-005\"\nreason = \"r\"\nexpires = \"soon\"\n", "is not a date"),
    ("accepted = 3\n", "expected a list of [[accepted]]"),
    ("[[accepted\n", "is not valid TOML"),
])
def test_a_bad_baseline_is_refused_with_the_fix(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "baseline.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load(path)


def test_a_missing_baseline_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--baseline"):
        load(tmp_path / "nope.toml")
