"""Authentication: a key is required, checked, and never echoed; streams are held to the same rules."""

from __future__ import annotations

from conformance.checks import NotJudged, Violation, errors, findings, transport
from conformance.suite._common import REFUSALS, STREAM_REFUSALS
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Basic, NoServerError, Refused
from conformance.suite.scenarios import WRONG_KEY
from conformance.transport.exchange import Exchange

AUTH_STATUSES = (401, 403)


@requirement("BASIC-001", "basic", needs=(Answered("basic"),))
def test_valid_request_accepted(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("basic"), req.id, 200))


@requirement("AUTH-001", "no_key", needs=(Basic(), NoServerError("no_key")))
def test_missing_key_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("no_key"), req.id))


# a server that serves requests without any key serves them with an empty or a wrong one too: one fault,
# AUTH-001's; one that takes any key it is given takes an empty one too: AUTH-003's
@requirement("AUTH-002", "empty_key", "no_key", "wrong_key",
             needs=(Basic(), Refused(("no_key",), "AUTH-001"), Refused(("wrong_key",), "AUTH-003"),
                    NoServerError("empty_key")))
def test_empty_key_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("empty_key"), req.id))


@requirement("AUTH-003", "wrong_key", "no_key",
             needs=(Basic(), Refused(("no_key",), "AUTH-001"), NoServerError("wrong_key")))
def test_wrong_key_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("wrong_key"), req.id))


# a server that serves requests without any key serves them with the key in any header: AUTH-001's
@requirement("AUTH-004", "wrong_header", "no_key",
             needs=(Basic(), Refused(("no_key",), "AUTH-001"), NoServerError("wrong_header")))
def test_key_in_wrong_header_refused(req, judge: Judge) -> None:
    judge(errors.client_error(judge.exchange("wrong_header"), req.id))


@requirement("AUTH-005", *REFUSALS, needs=(Basic(), Refused(REFUSALS, "AUTH-001")))
def test_refusal_is_401_or_403(req, judge: Judge) -> None:
    refused = [e for e in map(judge.exchange, REFUSALS) if e.status is not None and 400 <= e.status < 500]
    judge.each(refused, lambda e: errors.refused(e, req.id, AUTH_STATUSES))


@requirement("AUTH-006", *REFUSALS, needs=(Basic(), Refused(REFUSALS, "AUTH-001")))
def test_refusal_body_in_profile_shape(req, judge: Judge) -> None:
    refused = [e for e in map(judge.exchange, REFUSALS) if e.status is not None and 400 <= e.status < 500]
    judge.each(refused, lambda e: errors.error_shape(e, judge.run.profile, req.id))


@requirement("AUTH-007", "basic", "wrong_key", "wrong_header", *REFUSALS, run_wide=True)
def test_key_never_echoed(req, judge: Judge) -> None:
    secrets = [*judge.run.config.secrets(), WRONG_KEY]
    for scenario in ("basic", "wrong_key", "wrong_header", *REFUSALS):
        judge.exchange(scenario)
    # every response of the run so far, not only these: an echo anywhere is a leak
    judge.each(list(judge.run.client.exchanges), lambda e: transport.key_not_echoed(e, secrets))


@requirement("AUTH-008", *STREAM_REFUSALS, *REFUSALS, needs=(Basic(),))
def test_stream_without_key_refused(req, judge: Judge) -> None:
    # a 5xx among them is ERR-005's; a streamed request served without a key whose plain twin is served too
    # is AUTH-001's (002's, 003's) fault, not a second one: judged only where the twin was refused
    twins = dict(zip(STREAM_REFUSALS, zip(REFUSALS, ("AUTH-001", "AUTH-002", "AUTH-003"), strict=True), strict=True))

    def judged(exchange: Exchange) -> list[Violation]:
        twin, owner = twins[exchange.scenario]
        if not findings(errors.client_error(judge.exchange(twin), owner)):
            return errors.client_error(exchange, req.id)
        return [NotJudged(req.id, f"the {twin} request is served too", "", exchange.scenario, needs=owner)]

    judge.each([judge.exchange(s) for s in STREAM_REFUSALS], judged)

