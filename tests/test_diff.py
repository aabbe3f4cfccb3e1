"""`sgp-conformance diff OLD NEW`: regressions, fixes and new requirements; non-zero on a regression that
gates the new run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_runs import Outcome
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

from conformance.cli import main
from conformance.report.diff import compare


def doc(statuses: dict[str, tuple[str, str]], fail_on: str = "must") -> dict[str, Any]:
    return {"run": {"fail_on": fail_on},
            "results": [{"id": rid, "level": level, "status": status, "message": f"{rid} says {status}"}
                        for rid, (level, status) in statuses.items()]}


def diff(tmp_path: Path, old: dict[str, Any], new: dict[str, Any],
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    (tmp_path / "new.json").write_text(json.dumps(new), encoding="utf-8")
    code = main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    return code, capsys.readouterr().out


OLD = {"BASIC-001": ("MUST", "pass"), "RESP-001": ("MUST", "pass"), "AUTH-004": ("SHOULD", "pass"),
       "SEM-005": ("SHOULD", "fail"), "HDR-007": ("INFO", "pass"), "VAL-001": ("MUST", "known"),
       "VAL-002": ("MUST", "pass")}


def test_compare_sorts_every_change() -> None:
    new = {**OLD, "RESP-001": ("MUST", "fail"), "AUTH-004": ("SHOULD", "error"), "SEM-005": ("SHOULD", "pass"),
           "VAL-001": ("MUST", "pass"), "VAL-002": ("MUST", "known"), "HDR-007": ("INFO", "observed"),
           "STRM-001": ("MUST", "fail")}
    del new["BASIC-001"]
    changes = compare({r["id"]: r for r in doc(OLD)["results"]}, {r["id"]: r for r in doc(new)["results"]})
    assert changes["regressions"] == ["RESP-001 MUST pass -> fail: RESP-001 says fail"]
    assert changes["regressions_not_gating"] == ["AUTH-004 SHOULD pass -> error: AUTH-004 says error"]
    assert changes["fixes"] == ["SEM-005 SHOULD fail -> pass", "VAL-001 MUST known -> pass"]
    assert changes["accepted"] == ["VAL-002 MUST pass -> known"]
    assert changes["new"] == ["STRM-001 MUST fail"]
    assert changes["removed"] == ["BASIC-001 MUST pass"]
    assert changes["changed"] == ["HDR-007 INFO pass -> observed"]


def test_lost_coverage_is_a_regression_at_a_gating_level(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = {**OLD, "RESP-001": ("MUST", "not judged"), "VAL-002": ("MUST", "not run"), "AUTH-004": ("SHOULD", "not run")}
    code, out = diff(tmp_path, doc(OLD), doc(new), capsys)
    assert code == 1
    assert "coverage lost (passed before, not judged or not run now) (2):" in out
    assert "RESP-001 MUST pass -> not judged" in out and "coverage lost below the gating level (1)" in out
    assert "0 regression(s) and 2 lost" in out
    code, out = diff(tmp_path, doc(OLD), doc({**OLD, "AUTH-004": ("SHOULD", "not run")}, fail_on="should"), capsys)
    assert code == 1 and "AUTH-004 SHOULD pass -> not run" in out


def test_results_of_the_old_format_read_skip_as_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = diff(tmp_path, doc({**OLD, "SEM-005": ("SHOULD", "skip")}), doc({**OLD, "SEM-005": ("SHOULD", "fail")}),
                     capsys)
    assert code == 0 and "SEM-005 SHOULD not run -> fail" in out


def test_a_must_regression_fails_the_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = diff(tmp_path, doc(OLD), doc({**OLD, "RESP-001": ("MUST", "fail")}), capsys)
    assert code == 1
    assert "regressions (1):\n  RESP-001 MUST pass -> fail" in out
    assert out.rstrip().endswith("1 regression(s) and 0 lost (--fail-on must), 0 fix(es), 0 new requirement(s)")


def test_a_should_regression_gates_only_a_run_that_fails_on_should(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = {**OLD, "AUTH-004": ("SHOULD", "fail")}
    code, out = diff(tmp_path, doc(OLD), doc(new), capsys)
    assert code == 0 and "regressions below the gating level (1)" in out
    code, out = diff(tmp_path, doc(OLD), doc(new, fail_on="should"), capsys)
    assert code == 1 and "regressions (1):\n  AUTH-004 SHOULD pass -> fail" in out


def test_fixes_new_requirements_and_accepted_deviations_pass(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = {**OLD, "SEM-005": ("SHOULD", "pass"), "VAL-002": ("MUST", "known"), "STRM-001": ("MUST", "fail")}
    code, out = diff(tmp_path, doc(OLD), doc(new), capsys)
    assert code == 0
    assert "fixes (1):\n  SEM-005 SHOULD fail -> pass" in out
    assert "new requirements (1):\n  STRM-001 MUST fail" in out
    assert "newly accepted in the baseline (known) (1):\n  VAL-002 MUST pass -> known" in out


def test_no_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = diff(tmp_path, doc(OLD), doc(OLD), capsys)
    assert code == 0 and "no change" in out


@pytest.mark.parametrize("content", ["not json", '{"results": [{"id": "X"}]}', '{"run": {}}'])
def test_a_file_that_is_not_results_is_a_usage_error(
        content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")
    (tmp_path / "good.json").write_text(json.dumps(doc(OLD)), encoding="utf-8")
    assert main(["diff", str(tmp_path / "good.json"), str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json is not a conformance.json written by sgp-conformance run" in err


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    assert "a.json does not exist" in capsys.readouterr().err


def test_diff_of_real_results(broken_run: Outcome, tmp_path: Path,  # noqa: F811
                              capsys: pytest.CaptureFixture[str]) -> None:
    new = broken_run.doc
    old = json.loads(json.dumps(new))
    for r in old["results"]:
        r["status"], r["message"] = "pass", ""
    code, out = diff(tmp_path, old, new, capsys)
    assert code == 1
    assert "RESP-001 MUST pass -> fail: missing required field 'id'" in out


def test_runs_of_different_targets_or_profiles_are_refused_unless_forced(
        broken_run: Outcome, earlier_run: Outcome, tmp_path: Path) -> None:  # noqa: F811
    from cli_runs import run_cli, run_in_process

    old, new = earlier_run.report_dir / "conformance.json", broken_run.report_dir / "conformance.json"
    refused = run_cli(["diff", str(old), str(new)])
    assert refused.code == 2 and refused.stdout == "", refused.output
    assert "not comparable (target the embedded reference server vs http://127.0.0.1:" in refused.stderr
    assert "--force" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    forced = run_in_process(["diff", str(old), str(new), "--force"])
    assert forced.code == 1, forced.output
    assert forced.stdout.startswith("compared although not comparable (--force): target the embedded")
    # an openai run of the same target: another profile, other levels
    other = json.loads(new.read_text(encoding="utf-8"))
    other["run"]["profile"] = "openai"
    (tmp_path / "openai.json").write_text(json.dumps(other), encoding="utf-8")
    profiles = run_in_process(["diff", str(new), str(tmp_path / "openai.json")])
    assert profiles.code == 2 and "profile sgp vs openai" in profiles.stderr
    # the same target and profile, but the new run claims a position on an open point: other levels
    claimed = json.loads(new.read_text(encoding="utf-8"))
    claimed["run"]["claims"] = {"without": [], "choices": ["refuses-null"]}
    (tmp_path / "claimed.json").write_text(json.dumps(claimed), encoding="utf-8")
    claims = run_in_process(["diff", str(new), str(tmp_path / "claimed.json")])
    assert claims.code == 2 and "choices claimed changed: none -> refuses-null" in claims.stderr, claims.output
