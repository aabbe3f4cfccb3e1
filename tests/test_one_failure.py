"""One fault, one failure, in the outcome model: a violation seen by several checks is counted once; the
claims of a run travel with its results (open points, diff)."""

from __future__ import annotations

from conformance.report.diff import claims_changes, compare
from conformance.report.open_points import BROKEN, HELD, UNJUDGED, open_points, pin_line
from conformance.report.outcomes import Result


def test_a_violation_seen_by_two_checks_is_counted_once() -> None:
    result = Result("STRM-019", "MUST", "s", "src", "docs/contract.md#streaming-conventions")
    violation = {"requirement": "STRM-019", "message": "expected created 1 as in the first chunk, got 2",
                 "pointer": "/events/2/created", "scenario": "stream"}
    for _ in range(3):  # STRM-013's, STRM-019's and STRM-023's tests all read the same stream
        result.add_violations([dict(violation)])
    assert result.violation_count == 1 and len(result.violations) == 1
    result.add_violations([{**violation, "pointer": "/events/3/created"}])
    assert result.violation_count == 2


def test_open_points_say_what_the_server_did_and_how_to_pin_it() -> None:
    results = [{"id": "VAL-009", "status": "pass"}, {"id": "VAL-010", "status": "pass"},
               {"id": "SEM-005", "status": "observed", "message": "expected model m, got x"},
               {"id": "ERR-006", "status": "not judged"}, {"id": "VAL-001", "status": "pass"}]
    points = {p["choice"]: p for p in open_points(results, "sgp")}
    assert points["refuses-out-of-bounds"]["behaviour"] == HELD
    assert points["echoes-model"]["behaviour"] == BROKEN and points["echoes-model"]["message"]
    assert points["retry-after"]["behaviour"] == UNJUDGED
    assert "VAL-001" not in str(points)  # a settled rule is no open point
    assert pin_line(points.values()) == "--claim refuses-out-of-bounds"
    claimed = {p["choice"]: p for p in open_points(results, "sgp", frozenset({"refuses-out-of-bounds"}))}
    assert claimed["refuses-out-of-bounds"]["claimed"] and pin_line(claimed.values()) is None


def test_diff_names_changed_claims_and_keeps_a_declared_absence_apart() -> None:
    old = {"run": {"claims": {"without": [], "choices": []}}}
    new = {"run": {"claims": {"without": ["logprobs"], "choices": ["refuses-null"]}}}
    assert claims_changes(old, new) == ["features declared absent changed: none -> logprobs",
                                        "choices claimed changed: none -> refuses-null"]
    assert claims_changes({}, old) == []
    changes = compare({"LOGP-001": {"status": "pass", "level": "MUST"}},
                      {"LOGP-001": {"status": "not run", "level": "MUST", "not_run": "not claimed"}})
    assert changes["not_claimed"] and not changes["lost"]
