"""Request and response headers: accounts, content types, case, unknown headers, charset, request ids."""

from __future__ import annotations

from conformance.checks import errors, transport
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Basic, Configured, NoServerError

# every answer here is a 200 or a refusal whose body is judged for its encoding
ENCODED = ("basic", "no_key", "val_missing_model", "stream")


@requirement("HDR-001", "account_valid", needs=(Configured("account_id", "--account-id"), Answered("account_valid")))
def test_configured_account_accepted(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("account_valid"), req.id, 200))


@requirement("HDR-002", "account_unknown", needs=(Basic(), NoServerError("account_unknown")))
def test_unknown_account_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("account_unknown"), req.id, allowed=(403, 404)))


@requirement("HDR-003", "basic", needs=(Answered("basic"),))
def test_json_content_type(req, judge: Judge) -> None:
    judge(transport.content_type(judge.exchange("basic"), "application/json", req.id))


@requirement("HDR-004", "header_case", needs=(Answered("header_case"),))
def test_header_names_case_insensitive(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("header_case"), req.id, 200))


@requirement("HDR-005", "unknown_header", needs=(Answered("unknown_header"),))
def test_unknown_header_ignored(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("unknown_header"), req.id, 200))


@requirement("HDR-006", *ENCODED)
def test_json_is_utf8(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in ENCODED], transport.json_charset)


@requirement("HDR-007", "basic", "seed_a", "seed_b")
def test_request_id_header(req, judge: Judge) -> None:
    # seed_a and seed_b are the same request sent twice: a request id must still differ between them
    first, second = judge.exchange("seed_a"), judge.exchange("seed_b")
    judge([*transport.request_id(judge.exchange("basic")), *transport.request_ids_differ(first, second)])


@requirement("HDR-008", *ENCODED)
def test_charset_says_utf8(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in ENCODED], transport.json_charset)
