"""Streaming: SSE framing, chunk shape, stream conventions and the assembled result.

One fault of a stream is reported once: an answer that is not an event stream is STRM-001's, broken
framing STRM-002's, a stream without chunks STRM-017's (STRM-003's when its events are not JSON objects);
the rules that depend on them are not judged and say so.
"""

from __future__ import annotations

from conformance.checks import findings, stream_assembly, streaming, transport
from conformance.contract.claims import NOT_CLAIMED
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Carried, Held, Stream

STREAM = "stream"
TOOLS_STREAM = "stream_tools"
ANSWERED = Answered(STREAM)
EVENTS = (ANSWERED, Stream(chunks=False))
CHUNKS = (ANSWERED, Stream())
WHOLE = (ANSWERED, Stream(chunks=False, whole=True))


def _shape(req_id: str) -> Held:
    """STRM-010/011/012's rule holding on the stream: the rules over chunks judge well-formed ones only."""
    return Held(req_id, STREAM, lambda e: [v for v in streaming.chunk_shapes(e) if v.requirement == req_id])


# chunks after the [DONE] are STRM-006's fault: the rules about the last chunks judge a stream without them
AFTER_DONE = Held("STRM-006", STREAM, streaming.nothing_after_done)


def _stream(judge: Judge):
    return judge.exchange(STREAM)


@requirement("STRM-001", STREAM, needs=(ANSWERED,))
def test_stream_content_type(req, judge: Judge) -> None:
    judge(transport.content_type(_stream(judge), "text/event-stream", req.id))


@requirement("STRM-002", STREAM, needs=EVENTS)
def test_sse_framing(req, judge: Judge) -> None:
    judge(streaming.sse_framing(_stream(judge)))


@requirement("STRM-003", STREAM, needs=EVENTS)
def test_data_is_json(req, judge: Judge) -> None:
    judge(streaming.data_is_json(_stream(judge), judge.run.profile))


@requirement("STRM-004", STREAM, needs=EVENTS)
def test_done_terminator(req, judge: Judge) -> None:
    judge(streaming.done_terminator(_stream(judge)))


@requirement("STRM-005", STREAM, needs=EVENTS)
def test_no_done_under_sgp(req, judge: Judge) -> None:
    judge(streaming.no_done(_stream(judge)))


@requirement("STRM-006", STREAM, needs=EVENTS)
def test_nothing_after_done(req, judge: Judge) -> None:
    judge(streaming.nothing_after_done(_stream(judge)))


def _chunk_case(req_id: str):
    @requirement(req_id, STREAM, needs=CHUNKS)
    def test(req, judge: Judge) -> None:
        judge(v for v in streaming.chunk_shapes(_stream(judge)) if v.requirement == req.id)

    test.__name__ = f"test_chunk_shape_{req_id.replace('-', '_').lower()}"
    return test


for _req_id in ("STRM-010", "STRM-011", "STRM-012"):
    _test = _chunk_case(_req_id)
    globals()[_test.__name__] = _test


@requirement("STRM-013", STREAM, needs=CHUNKS)
def test_constant_id(req, judge: Judge) -> None:
    judge(streaming.constant_identity(_stream(judge)))


LONG_STREAM = "stream_long"


@requirement("STRM-019", STREAM, LONG_STREAM, needs=CHUNKS)
def test_constant_created(req, judge: Judge) -> None:
    # the long stream is a probe: a server that stamps each chunk with its clock shows it only across a
    # second boundary, which a short stream on a fast server never crosses
    streams = [_stream(judge), judge.exchange(LONG_STREAM)]
    found = [v for e in streams for v in streaming.constant_identity(e) if v.requirement == req.id]
    if not findings(found):
        unexercised = streaming.crossed_a_second(streams)
        if unexercised is not None:
            judge.not_judged(unexercised.message)
    judge.each(streams, streaming.constant_identity)


@requirement("STRM-023", STREAM, needs=CHUNKS)
def test_constant_model(req, judge: Judge) -> None:
    judge(streaming.constant_identity(_stream(judge)))


# a first chunk lost to broken framing is STRM-002's, a role outside the documented ones STRM-012's
@requirement("STRM-014", STREAM, needs=(*CHUNKS, *WHOLE[1:], _shape("STRM-012")))
def test_role_in_first_delta(req, judge: Judge) -> None:
    judge(streaming.role_first(_stream(judge)))


@requirement("STRM-015", STREAM, needs=(*CHUNKS, *WHOLE[1:], AFTER_DONE))
def test_one_finish_reason_per_choice(req, judge: Judge) -> None:
    judge(streaming.finish_once(_stream(judge)))


@requirement("STRM-016", STREAM, needs=(*CHUNKS, *WHOLE[1:], AFTER_DONE))
def test_usage_chunk(req, judge: Judge) -> None:
    judge(streaming.usage_chunk(_stream(judge)))


# a choice finished twice assembles into a broken completion: that is STRM-015's fault, not a second one
@requirement("STRM-017", STREAM, needs=(*WHOLE, _shape("STRM-010"), _shape("STRM-011"), _shape("STRM-012"),
                                        Held("STRM-015", STREAM, streaming.finish_once)))
def test_assembled_stream_is_a_completion(req, judge: Judge) -> None:
    judge(streaming.assembled_valid(_stream(judge), 2))



@requirement("STRM-020", TOOLS_STREAM, needs=(Answered(TOOLS_STREAM), Stream(TOOLS_STREAM), Carried(
    (TOOLS_STREAM,), ("choices.*.message.tool_calls",), "tool calls in the stream", "TOOL-001")))
def test_later_tool_call_fragments(req, judge: Judge) -> None:
    if "streaming" in getattr(judge.run.config, "without", frozenset()):
        judge.not_run(NOT_CLAIMED)
    judge(stream_assembly.tool_call_fragments(judge.exchange(TOOLS_STREAM)))


@requirement("STRM-021", STREAM, TOOLS_STREAM, needs=CHUNKS)
def test_content_deltas_are_increments(req, judge: Judge) -> None:
    # content in the plain stream, tool-call arguments in the tool stream (where the server offers it)
    streams = [_stream(judge)]
    if "tool_choice" not in getattr(judge.run.config, "without", frozenset()):
        streams.append(judge.exchange(TOOLS_STREAM))
    judge.each(streams, stream_assembly.cumulative_text)


@requirement("STRM-022", STREAM, TOOLS_STREAM, needs=CHUNKS, run_wide=True)
def test_sdk_assembles_as_the_suite(req, judge: Judge) -> None:
    # every stream of the run, scripted and generated: what the SDK builds of each must read as ours
    judge.exchange(TOOLS_STREAM)
    streams = [e for e in list(judge.run.client.exchanges)
               if e.status == 200 and transport.is_event_stream(e)]
    judge.each(streams, stream_assembly.sdk_agreement)
