"""Request and response headers: accounts, content types, case, unknown headers, charset."""

from __future__ import annotations

import pytest

from conformance.checks import errors, transport
from conformance.plugin import Judge, requirement
from conformance.suite._common import completions


@requirement("HDR-001", "account_valid")
def test_configured_account_accepted(req, judge: Judge) -> None:
    if not judge.run.config.account_id:
        pytest.skip("not run: no --account-id configured")
    judge(errors.status_is(judge.exchange("account_valid"), req.id, 200))


@requirement("HDR-002", "account_unknown")
def test_unknown_account_refused(req, judge: Judge) -> None:
    judge(errors.refused(judge.exchange("account_unknown"), req.id, allowed=(403, 404)))


@requirement("HDR-003", "basic")
def test_json_content_type(req, judge: Judge) -> None:
    judge(v for e in completions(judge, ("basic",)) for v in transport.content_type(e, "application/json", req.id))


@requirement("HDR-004", "header_case")
def test_header_names_case_insensitive(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("header_case"), req.id, 200))


@requirement("HDR-005", "unknown_header")
def test_unknown_header_ignored(req, judge: Judge) -> None:
    judge(errors.status_is(judge.exchange("unknown_header"), req.id, 200))


@requirement("HDR-006", "basic", "no_key", "val_missing_model")
def test_json_is_utf8(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in ("basic", "no_key", "val_missing_model")]
    judge(v for e in exchanges for v in transport.json_charset(e))


@requirement("HDR-007", "basic")
def test_request_id_header(req, judge: Judge) -> None:
    judge(transport.request_id(judge.exchange("basic")))
