"""Request validation: invalid requests get 4xx with the profile's error body, never 2xx or 5xx."""

from __future__ import annotations

import pytest

from conformance.checks import errors
from conformance.plugin import Judge, requirement

INVALID = {
    "VAL-001": "val_missing_messages",
    "VAL-002": "val_missing_model",
    "VAL-003": "val_messages_string",
    "VAL-004": "val_model_integer",
    "VAL-005": "val_message_without_role",
    "VAL-006": "val_malformed_json",
    "VAL-007": "val_json_array",
    "VAL-008": "val_text_plain",
    "VAL-009": "val_temperature",
    "VAL-010": "val_n_zero",
    "VAL-011": "val_top_logprobs",
    "VAL-012": "val_stop_five",
    "VAL-013": "val_max_tokens_negative",
    "VAL-014": "val_empty_messages",
    "VAL-015": "val_nan",
    "VAL-016": "val_top_p",
    "VAL-017": "val_presence_penalty",
    "VAL-018": "val_frequency_penalty",
}
# the invalid requests every run sends (their requirements are MUST), used to judge the error bodies
CORE_INVALID = ("val_missing_messages", "val_missing_model", "val_messages_string", "val_malformed_json")


def _invalid_case(req_id: str, scenario: str):
    @requirement(req_id, scenario)
    def test(req, judge: Judge) -> None:
        judge(errors.client_error(judge.exchange(scenario), req.id))

    test.__name__ = f"test_invalid_request_refused_{scenario.removeprefix('val_')}"
    test.__doc__ = f"{req_id}: the {scenario} request is refused with 4xx."
    return test


for _req_id, _scenario in INVALID.items():
    _test = _invalid_case(_req_id, _scenario)
    globals()[_test.__name__] = _test


@requirement("ERR-001", *CORE_INVALID)
def test_validation_error_is_json(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in CORE_INVALID]
    judge(v for e in exchanges if e.status and 400 <= e.status < 500 for v in errors.error_body_json(e, req.id))


@requirement("ERR-002", *CORE_INVALID)
def test_validation_status_of_profile(req, judge: Judge) -> None:
    expected = judge.run.profile.validation_status
    exchanges = [judge.exchange(s) for s in CORE_INVALID]
    judge(v for e in exchanges for v in errors.status_is(e, req.id, expected))


@requirement("ERR-003", *CORE_INVALID)
def test_422_body_is_fastapi_validation(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in CORE_INVALID]
    if not any(e.status == 422 for e in exchanges):
        pytest.skip("not run: no invalid request was answered with 422")
    judge(v for e in exchanges for v in errors.fastapi_validation_body(e))


@requirement("ERR-004", *CORE_INVALID, "unknown_model")
def test_error_body_in_profile_shape(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in (*CORE_INVALID, "unknown_model")]
    profile = judge.run.profile
    judge(v for e in exchanges if e.status and 400 <= e.status < 500 for v in errors.error_shape(e, profile, req.id))


@requirement("MODEL-001", "unknown_model")
def test_unknown_model_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("unknown_model"), req.id))


@requirement("MODEL-002", "unknown_model")
def test_unknown_model_is_404(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("unknown_model"), req.id, 404))
