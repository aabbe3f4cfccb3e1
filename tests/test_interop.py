"""The interop registry without any server: docs/interop.md is what the committed results give, the
committed reports agree with them and carry no key, and the regression exit of `python -m interop.run`
fails on a difference, on a FALSE, DUP or unclassified failure, and on verdicts given before the rules."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # interop/ is a folder of the checkout, not part of the installed package

from interop import docs, results, run  # noqa: E402


def committed_runs() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = results.load()["runs"]
    return runs


def test_the_page_is_what_the_committed_data_gives() -> None:
    page = docs.render(results.load(), docs.load_classification(results.CLASSIFICATION_FILE))
    assert (ROOT / "docs" / "interop.md").read_text(encoding="utf-8") == page, (
        "docs/interop.md is stale: python -m interop.docs")


def test_docs_check_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "interop.md"
    assert docs.main(["--out", str(out), "--check"]) == 1
    assert docs.main(["--out", str(out)]) == 0
    assert docs.main(["--out", str(out), "--check"]) == 0
    bad = tmp_path / "classification.toml"
    bad.write_text('[prism.sgp.AUTH-003]\nclass = "MAYBE"\nevidence = "x"\n', encoding="utf-8")
    assert docs.main(["--out", str(out), "--classification", str(bad)]) == 2


@pytest.mark.parametrize("run_record", committed_runs(), ids=lambda r: "/".join(results.key(r)))
def test_each_committed_run_states_its_row(run_record: dict[str, Any]) -> None:
    # every field a row shows is recorded; where a run predates the record, it says where its figures come from
    for field in ("version", "model", "claims", "seed", "command", "server_command", "install_s", "ready_s",
                  "wall_s", "requests_sent", "counts", "failures", "suite"):
        assert field in run_record, field
    assert run_record.get("report") or run_record.get("source"), "neither a committed report nor a source"
    fails = sum(run_record["counts"][level].get("fail", 0) for level in results.LEVELS)
    assert fails == len(run_record["failures"])


@pytest.mark.parametrize("run_record", [r for r in committed_runs() if r.get("report")],
                         ids=lambda r: "/".join(results.key(r)))
def test_committed_report_agrees_with_the_results_and_holds_no_key(run_record: dict[str, Any]) -> None:
    text = (results.COMMITTED_DIR / run_record["report"]).read_text(encoding="utf-8")
    assert not run.GENERATED_KEY.search(text)
    report = json.loads(text)
    assert run._counts(report) == run_record["counts"]
    assert sorted(f["id"] for f in run._failures(report)) == sorted(f["id"] for f in run_record["failures"])


def test_every_failure_of_a_committed_run_has_a_well_formed_verdict_or_is_listed() -> None:
    classification = docs.load_classification(results.CLASSIFICATION_FILE)  # raises on a malformed entry
    page = (ROOT / "docs" / "interop.md").read_text(encoding="utf-8")
    for line in results.problems(committed_runs(), classification):
        target = line.split()[0].split(":")[0]
        assert f"## {target.replace('/', ' / ')}" in page


# --- the regression exit, on made-up runs ------------------------------------------------------------------


def made_run(failures: tuple[str, ...] = ("AUTH-003",)) -> dict[str, Any]:
    return {"server": "mock", "profile": "sgp", "exit_code": 1 if failures else 0, "error": None,
            "counts": {"MUST": {"pass": 10, "fail": len(failures)}, "SHOULD": {"pass": 3}, "INFO": {}},
            "failures": [{"id": f, "level": "MUST", "status": "fail", "message": "m"} for f in failures]}


GRADED = {"mock": {"sgp": {"graded": "rules", "AUTH-003": {"class": "TRUE", "evidence": "wrong key -> 200"}}}}


def test_a_repeated_run_with_true_verdicts_passes() -> None:
    committed = {"runs": [made_run()]}
    again = copy.deepcopy(made_run())
    again.update(wall_s=99.0, requests_sent=1234, base_url="http://127.0.0.1:1")  # may differ
    assert results.differences(committed, [again]) == []
    assert results.problems([again], GRADED) == []


def test_a_broken_target_or_an_edited_expectation_is_a_difference() -> None:
    committed = {"runs": [made_run()]}
    broken = made_run(("AUTH-003", "SEM-001"))
    (line,) = results.differences(committed, [broken])
    assert "now fails SEM-001" in line and "exit" not in line and "MUST" in line
    fixed = made_run(())
    (line,) = results.differences(committed, [fixed])
    assert "no longer fails AUTH-003" in line and "exit 1 -> 0" in line
    (line,) = results.differences({"runs": []}, [made_run()])
    assert "no committed result" in line
    not_run = made_run(())
    not_run.update(error="start failed", exit_code=None)
    assert "did not run" in results.differences({"runs": [made_run(())]}, [not_run])[0]


@pytest.mark.parametrize(("entry", "expected"), [
    ({}, "unclassified"),
    ({"class": "FALSE", "evidence": "e", "fix": "make it INFO"}, "FALSE"),
    ({"class": "DUP", "evidence": "e", "of": "AUTH-001"}, "DUP of AUTH-001"),
])
def test_a_failure_that_is_not_true_fails_the_gate(entry: dict[str, Any], expected: str) -> None:
    classification = {"mock": {"sgp": {"graded": "rules", **({"AUTH-003": entry} if entry else {})}}}
    (line,) = results.problems([made_run()], classification)
    assert expected in line


def test_verdicts_given_before_the_rules_fail_the_gate() -> None:
    ungraded = copy.deepcopy(GRADED)
    del ungraded["mock"]["sgp"]["graded"]
    (line,) = results.problems([made_run()], ungraded)
    assert "before the written grading rules" in line
    assert results.problems([made_run(())], {}) == []  # nothing failed, nothing to grade


def test_malformed_verdicts_are_named() -> None:
    classification = {"t": {"p": {
        "A-1": {"class": "MAYBE", "evidence": "e"},
        "A-2": {"class": "DUP", "evidence": "e"},
        "A-3": {"class": "FALSE", "fixture": True, "evidence": "e", "fix": "f"},
        "A-4": {"class": "TRUE"},
        "A-5": {"class": "TRUE", "fixture": True, "evidence": "e"},
    }}}
    errors = results.classification_errors(classification)
    assert [e.split("]")[0] + "]" for e in errors] == ["[t.p.A-1]", "[t.p.A-2]", "[t.p.A-3]", "[t.p.A-4]"]


def test_the_page_shows_each_verdict_kind() -> None:
    assert docs.verdict_text({}) == "UNCLASSIFIED"
    assert docs.verdict_text({"class": "TRUE"}) == "TRUE"
    assert docs.verdict_text({"class": "TRUE", "fixture": True}) == "TRUE (fixture)"
    assert docs.verdict_text({"class": "DUP", "of": "STRM-015"}) == "DUP of STRM-015"
    assert docs.verdict_text({"class": "FALSE"}) == "FALSE"


def test_gate_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    committed_file = tmp_path / "interop-results.json"
    committed_file.write_text(json.dumps({"runs": [made_run()]}), encoding="utf-8")
    classification_file = tmp_path / "classification.toml"
    classification_file.write_text('[mock.sgp]\ngraded = "rules"\n[mock.sgp.AUTH-003]\nclass = "TRUE"\n'
                                   'evidence = "wrong key -> 200"\n', encoding="utf-8")
    monkeypatch.setattr(results, "COMMITTED_FILE", committed_file)
    monkeypatch.setattr(results, "CLASSIFICATION_FILE", classification_file)
    assert run.gate([made_run()], tmp_path, update=False) == 0
    assert run.gate([made_run(("AUTH-003", "SEM-001"))], tmp_path, update=False) == 1
    committed_file.write_text("{not json", encoding="utf-8")
    assert run.gate([made_run()], tmp_path, update=False) == 2


def test_claims_are_read_from_the_suite_arguments() -> None:
    assert run._claims([]) == []
    assert run._claims(["--claim", "refuses-nan,clock-created", "--claim=echoes-model", "-k", "x",
                        "--without", "streaming"]) == [
        "refuses-nan", "clock-created", "echoes-model", "without streaming"]
