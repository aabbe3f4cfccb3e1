"""`--only`: requirement IDs and areas, exact and case-sensitive, for run, validate (and replay), through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_runs import run_cli, run_in_process
from report_fixtures import BROKEN_KEY, broken_server  # noqa: F401 - fixtures

from conformance.contract.selection import Selection, SelectionError
from conformance.server import RunningServer

FIXTURES = Path(__file__).parent / "fixtures" / "recorded"


def test_a_selection_matches_ids_and_areas_exactly() -> None:
    only = Selection.parse("VAL-005,AUTH")
    assert only.matches("VAL-005") and only.matches("AUTH-003")
    assert not only.matches("VAL-001") and not only.matches("PROP-001") and not only.matches("ERR-005")
    for wrong, hint in (("val", "did you mean VAL?"), ("VAL-5", "did you mean VAL-005?"), ("", "names nothing")):
        with pytest.raises(SelectionError, match=hint):
            Selection.parse(wrong)


def test_run_only_judges_the_selection_and_nothing_it_finds_on_the_way(
        broken_server: RunningServer, tmp_path: Path) -> None:  # noqa: F811
    out = run_cli(["run", "--base-url", broken_server.base_url, "--account-id", "acct-1", "--max-examples", "2",
                   "--only", "PROP-001"], tmp_path / "reports", env={"SGP_API_KEY": BROKEN_KEY})
    assert out.code == 1, out.output[-2000:]
    judged = {r["id"]: r for r in out.doc["results"] if r["status"] != "not run"}
    # PROP-001's generated case lacks `id` as well: RESP-001 is not reported, it was not selected
    assert list(judged) == ["PROP-001"]
    assert out.status("RESP-001") == "not run"
    resp = next(r for r in out.doc["results"] if r["id"] == "RESP-001")
    assert resp["message"] == "not selected (--only PROP-001)" and resp["not_run"] == "selection"
    assert out.doc["run"]["selection"]["only"] == "PROP-001"
    seed = out.doc["run"]["seed"]
    assert f"(rerun: --only PROP-001 --seed {seed})" in out.stdout


def test_a_wrong_selection_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    out = run_in_process(["run", "--only", "auth"], tmp_path / "reports")
    assert out.code == 2 and out.stderr.strip() == "sgp-conformance: --only auth: no such requirement or area: " \
                                                   "did you mean AUTH?", out.output
    assert not (tmp_path / "reports").exists()


def test_validate_takes_the_same_selection(tmp_path: Path) -> None:
    out = run_in_process(["validate", str(FIXTURES / "broken-completion.json"), "--only", "RESP-001,JSON"],
                         tmp_path / "reports")
    assert out.code == 1, out.output[-2000:]
    judged = {r["id"] for r in out.doc["results"] if r["status"] not in ("not run",)}
    assert "RESP-001" in judged and judged <= {"RESP-001", "JSON-001", "JSON-002"}
    assert "(rerun: --only RESP-001)" in out.stdout
    # the banner says the outcomes: not pytest's dots and "1 failed, 2 passed, 53 skipped"
    assert not re.search(r"\d+ (passed|skipped|failed|deselected)", out.stdout), out.stdout
    assert not re.search(r"^[.sF]+\s", out.stdout, re.MULTILINE), out.stdout
