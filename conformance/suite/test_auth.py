"""Authentication: a key is required, checked, and never echoed."""

from __future__ import annotations

from conformance.checks import errors, transport
from conformance.plugin import Judge, requirement
from conformance.scenarios import WRONG_KEY
from conformance.suite._common import REFUSALS


@requirement("BASIC-001", "basic")
def test_valid_request_accepted(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("basic"), req.id, 200))


@requirement("AUTH-001", "no_key")
def test_missing_key_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("no_key"), req.id))


@requirement("AUTH-002", "empty_key")
def test_empty_key_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("empty_key"), req.id))


@requirement("AUTH-003", "wrong_key")
def test_wrong_key_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("wrong_key"), req.id))


@requirement("AUTH-004", "wrong_header")
def test_key_in_wrong_header_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("wrong_header"), req.id))


@requirement("AUTH-005", *REFUSALS)
def test_refusal_is_401(req, judge: Judge) -> None:
    refused = [e for e in map(judge.exchange, REFUSALS) if e.status in (401, 403)]
    judge(v for e in refused for v in errors.status_is(e, req.id, 401))


@requirement("AUTH-006", *REFUSALS)
def test_refusal_body_in_profile_shape(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in REFUSALS]
    judge(v for e in exchanges for v in errors.error_shape(e, judge.run.profile, req.id))


@requirement("AUTH-007", "basic", "wrong_key", "wrong_header", *REFUSALS)
def test_key_never_echoed(req, judge: Judge) -> None:
    secrets = [*judge.run.config.secrets(), WRONG_KEY]
    for scenario in ("basic", "wrong_key", "wrong_header", *REFUSALS):
        judge.exchange(scenario)
    # every response of the run so far, not only these: an echo anywhere is a leak
    judge(v for e in list(judge.run.client.exchanges) for v in transport.key_not_echoed(e, secrets))
