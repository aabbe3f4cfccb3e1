"""Streaming: SSE framing, chunk shape, stream conventions and the assembled result."""

from __future__ import annotations

from conformance.checks import streaming, transport
from conformance.plugin import Judge, requirement
from conformance.suite._common import needs_ok

STREAM = "stream"


def _stream(judge: Judge):
    return needs_ok(judge, STREAM)


@requirement("STRM-001", STREAM)
def test_stream_content_type(req, judge: Judge) -> None:
    judge(transport.content_type(_stream(judge), "text/event-stream", req.id))


@requirement("STRM-002", STREAM)
def test_sse_framing(req, judge: Judge) -> None:
    judge(streaming.sse_framing(_stream(judge)))


@requirement("STRM-003", STREAM)
def test_data_is_json(req, judge: Judge) -> None:
    judge(streaming.data_is_json(_stream(judge), judge.run.profile))


@requirement("STRM-004", STREAM)
def test_done_terminator(req, judge: Judge) -> None:
    judge(streaming.done_terminator(_stream(judge)))


@requirement("STRM-005", STREAM)
def test_no_done_under_sgp(req, judge: Judge) -> None:
    judge(streaming.no_done(_stream(judge)))


@requirement("STRM-006", STREAM)
def test_nothing_after_done(req, judge: Judge) -> None:
    judge(streaming.nothing_after_done(_stream(judge)))


def _chunk_case(req_id: str):
    @requirement(req_id, STREAM)
    def test(req, judge: Judge) -> None:
        judge(v for v in streaming.chunk_shapes(_stream(judge)) if v.requirement == req.id)

    test.__name__ = f"test_chunk_shape_{req_id.replace('-', '_').lower()}"
    return test


for _req_id in ("STRM-010", "STRM-011", "STRM-012"):
    _test = _chunk_case(_req_id)
    globals()[_test.__name__] = _test


@requirement("STRM-013", STREAM)
def test_constant_identity(req, judge: Judge) -> None:
    judge(streaming.constant_identity(_stream(judge)))


@requirement("STRM-019", STREAM)
def test_constant_created(req, judge: Judge) -> None:
    judge(streaming.constant_identity(_stream(judge)))


@requirement("STRM-014", STREAM)
def test_role_in_first_delta(req, judge: Judge) -> None:
    judge(streaming.role_first(_stream(judge)))


@requirement("STRM-015", STREAM)
def test_one_finish_reason_per_choice(req, judge: Judge) -> None:
    judge(streaming.finish_once(_stream(judge)))


@requirement("STRM-016", STREAM)
def test_usage_chunk(req, judge: Judge) -> None:
    judge(streaming.usage_chunk(_stream(judge)))


@requirement("STRM-017", STREAM)
def test_assembled_stream_is_a_completion(req, judge: Judge) -> None:
    judge(streaming.assembled_valid(_stream(judge), 2))

