"""Request validation: invalid requests get 4xx with the profile's error body, never 2xx or 5xx.

Every refusal here needs a 2xx for the minimal request (a server that refuses everything refuses invalid
requests too, which proves nothing) and no 5xx for its own request (ERR-005 reports a 5xx once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.audit.client_matrix import sends_a_wrong_key
from conformance.checks import NotJudged, Violation, errors, findings, semantics
from conformance.suite._common import answered
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import REFUSAL, Basic, Held, NoServerError, Refused
from conformance.suite.scenarios import SHOULD_REFUSE
from conformance.transport.exchange import Exchange

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
    "VAL-019": "val_role_unknown",
    "VAL-020": "val_response_format_unknown",
    "VAL-021": "val_tool_choice_unknown",
    "VAL-022": "val_stream_missing_messages",
}
# the invalid requests every run sends (their requirements are MUST), used to judge the error bodies
CORE_INVALID = ("val_missing_messages", "val_missing_model", "val_messages_string", "val_malformed_json")
# VAL-023: a parameter of the wrong JSON type, refused or honoured: what honouring it looks like, and the
# same request with the documented type (its twin) with the requirement that owns that parameter
TYPE_PROBES: dict[str, tuple[str, Callable[[Exchange], bool], str, str]] = {
    "type_stream_string": ('"stream": "true"', lambda e: e.response is not None
                           and e.response.media_type == "text/event-stream", "stream", "STRM-001"),
    "type_n_string": ('"n": "2"', lambda e: len(semantics.choices(_doc(e))) == 2, "n2", "SEM-002"),
    "type_logprobs_integer": ('"logprobs": 1', lambda e: any(
        isinstance(c.get("logprobs"), dict) for _, c in semantics.choices(_doc(e))), "logprobs", "LOGP-001"),
}


def _doc(exchange: Exchange) -> dict[str, Any]:
    body = exchange.json
    return body if isinstance(body, dict) else {}


# a rule judged only where another holds: an invalid body with stream: true is refused (VAL-022) as the
# same body without it is (VAL-001); a server that never checks messages fails VAL-001 alone
AFTER = {"VAL-022": ("val_missing_messages", "VAL-001")}


def _invalid_case(req_id: str, scenario: str):
    twin = AFTER.get(req_id)
    after = (Refused((twin[0],), twin[1]),) if twin else ()

    @requirement(req_id, scenario, *(twin[:1] if twin else ()), needs=(Basic(), NoServerError(scenario), *after))
    def test(req, judge: Judge) -> None:
        judge(errors.client_error(judge.exchange(scenario), req.id))

    test.__name__ = f"test_invalid_request_refused_{scenario.removeprefix('val_')}"
    test.__doc__ = f"{req_id}: the {scenario} request is refused with 4xx."
    return test


for _req_id, _scenario in INVALID.items():
    _test = _invalid_case(_req_id, _scenario)
    globals()[_test.__name__] = _test


@requirement("VAL-023", *TYPE_PROBES, *(twin for _, _, twin, _ in TYPE_PROBES.values()), needs=(Basic(),))
def test_wrong_json_type_refused_or_honoured(req, judge: Judge) -> None:
    def probe(exchange: Exchange) -> list[Violation]:
        sent, honoured, twin, owner = TYPE_PROBES[exchange.scenario]
        return errors.wrong_type(exchange, judge.exchange(twin), sent, honoured, owner)

    judge.each([judge.exchange(s) for s in TYPE_PROBES], probe)


@requirement("ERR-001", *CORE_INVALID, needs=(Basic(), Refused(CORE_INVALID, "VAL-001")))
def test_validation_error_is_json(req, judge: Judge) -> None:
    judge.each(answered(judge, CORE_INVALID, REFUSAL), lambda e: errors.error_body_json(e, req.id))


@requirement("ERR-002", *CORE_INVALID, needs=(Basic(), Refused(CORE_INVALID, "VAL-001")))
def test_validation_status_of_profile(req, judge: Judge) -> None:
    expected = judge.run.profile.validation_status
    judge.each(answered(judge, CORE_INVALID, REFUSAL), lambda e: errors.status_is(e, req.id, expected))


# a refusal whose body is no JSON object is ERR-001's: the 422 body's shape is judged on JSON bodies only
@requirement("ERR-003", *CORE_INVALID, needs=(Basic(), Refused(CORE_INVALID, "ERR-002", statuses=(422,)),
                                              *(Held("ERR-001", s, lambda e: errors.error_body_json(e, "ERR-001"))
                                                for s in CORE_INVALID)))
def test_422_body_is_fastapi_validation(req, judge: Judge) -> None:
    judge.each(answered(judge, CORE_INVALID, (422,)), errors.fastapi_validation_body)


@requirement("ERR-004", *CORE_INVALID, "unknown_model", needs=(Basic(),), run_wide=True)
def test_error_body_in_profile_shape(req, judge: Judge) -> None:
    # every 4xx the run saw, scripted and generated (auth refusals are AUTH-006's: the suite's and the client
    # matrix's wrong-key requests)
    for scenario in (*CORE_INVALID, "unknown_model"):
        judge.exchange(scenario)
    auth = {"no_key", "empty_key", "wrong_key", "wrong_header", "stream_no_key", "stream_empty_key",
            "stream_wrong_key", "preflight_guess"}
    refused = [e for e in list(judge.run.client.exchanges)
               if e.status in REFUSAL and e.scenario not in auth and not sends_a_wrong_key(e.scenario)]
    if not refused:
        judge.not_judged("no request of the run was refused with a 4xx", "VAL-001")
    # validation errors answered with no JSON object: ERR-001's finding where its own requests show it too
    unshaped = any(findings(errors.error_body_json(judge.exchange(s), "ERR-001")) for s in CORE_INVALID)
    judge.each(refused, lambda e: _shape(e, judge, req.id, unshaped))


def _shape(exchange: Exchange, judge: Judge, req_id: str, err_001_fails: bool) -> list[Violation]:
    """ERR-004 on one refusal. A validation error (400 or 422) whose body is no JSON object, in a run where
    ERR-001 fails on the same fault, is ERR-001's finding (one fault, one failure): its shape is not judged."""
    if err_001_fails and exchange.status in (400, 422) and findings(errors.error_body_json(exchange, "ERR-001")):
        return [NotJudged(req_id, "the body is no JSON object: ERR-001 reports it", "", exchange.scenario,
                          needs="ERR-001")]
    return errors.error_shape(exchange, judge.run.profile, req_id)


@requirement("ERR-005", needs=(Basic(),), run_wide=True)
def test_refusals_are_never_server_errors(req, judge: Judge) -> None:
    sent = [s for s in SHOULD_REFUSE if s in judge.run.planned]
    if not sent:
        judge.not_judged("the run sends no request that ought to be refused")
    judge.each([judge.exchange(s) for s in sent], lambda e: errors.not_server_error(e, req.id))


@requirement("ERR-006", run_wide=True)
def test_429_says_when_to_retry(req, judge: Judge) -> None:
    throttles = list(judge.run.client.throttles)
    if not throttles:
        judge.not_judged("the target answered no request with 429")
    judge.each(throttles, errors.retry_after)


@requirement("ERR-007", run_wide=True)
def test_errors_show_no_internals(req, judge: Judge) -> None:
    # every error answer of the run, scripted and generated
    failed = [e for e in list(judge.run.client.exchanges) if e.status is not None and e.status >= 400]
    if not failed:
        judge.not_judged("the target answered no request with an error")
    judge.each(failed, errors.internals_leaked)


@requirement("MODEL-001", "unknown_model", needs=(Basic(), NoServerError("unknown_model")))
def test_unknown_model_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("unknown_model"), req.id))


@requirement("MODEL-002", "unknown_model", needs=(Basic(), Refused(("unknown_model",), "MODEL-001")))
def test_unknown_model_is_404(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("unknown_model"), req.id, 404))

