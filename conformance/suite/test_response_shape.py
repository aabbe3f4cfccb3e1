"""The 200 response, field by field, against schemas/chat-completion.json, and JSON hygiene.

A rule about an optional part (usage, logprobs, tool calls, annotations, service_tier) is judged only
where an answer carried that part: a run where no answer carried annotations says so (not judged).
"""

from __future__ import annotations

from conformance.checks import Violation, presence, shape, transport
from conformance.suite._common import COMPLETIONS, completions
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Carried, Need
from conformance.transport.exchange import Exchange

BASIC = Answered("basic")
SHAPE_NEEDS: dict[str, tuple[Need, ...]] = {
    "RESP-001": (BASIC,),
    "RESP-002": (BASIC, Carried(COMPLETIONS, ("object",), "object")),
    "RESP-003": (BASIC,),
    "RESP-004": (BASIC,),
    "RESP-005": (BASIC, Carried(COMPLETIONS, ("usage",), "usage")),
    "RESP-006": (BASIC, Carried(COMPLETIONS, ("choices.*.logprobs",), "logprobs", "LOGP-001")),
    "RESP-007": (BASIC, Carried(COMPLETIONS, ("choices.*.message.tool_calls",), "tool calls", "TOOL-001")),
    "RESP-008": (BASIC, Carried(COMPLETIONS, ("choices.*.message.annotations", "choices.*.message.audio",
                                              "choices.*.message.function_call"),
                                "annotations, audio or function_call")),
    "RESP-009": (BASIC, Carried(COMPLETIONS, ("service_tier",), "service_tier")),
    "RESP-011": (BASIC, Carried(COMPLETIONS, ("service_tier",), "service_tier")),
}


def _violations(judge: Judge, exchange: Exchange) -> list[Violation]:
    """Schema findings of one completion, computed once a run: nine requirements read the same ones."""
    cache: dict[str, list[Violation]] = judge.run.shared.setdefault("shape", {})
    if exchange.scenario not in cache:
        body = transport.judged_json(exchange)[0]
        cache[exchange.scenario] = shape.schema_violations(body, "chat-completion", exchange.scenario)
    return cache[exchange.scenario]


def _shape_case(req_id: str):
    @requirement(req_id, *COMPLETIONS, needs=SHAPE_NEEDS[req_id])
    def test(req, judge: Judge) -> None:
        judge.each(completions(judge), lambda e: [v for v in _violations(judge, e) if v.requirement == req.id])

    test.__name__ = f"test_response_shape_{req_id.replace('-', '_').lower()}"
    return test


for _req_id in SHAPE_NEEDS:
    _test = _shape_case(_req_id)
    globals()[_test.__name__] = _test


@requirement("RESP-010", *COMPLETIONS, "stream", needs=(BASIC,))
def test_openai_keys_present(req, judge: Judge) -> None:
    exchanges = [*completions(judge), *completions(judge, ("stream",))]
    judge.each(exchanges, presence.openai_keys)


@requirement("JSON-001", *COMPLETIONS, "stream", "no_key", "val_missing_model")
def test_strict_json(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in (*COMPLETIONS, "stream", "no_key", "val_missing_model")],
               transport.strict_json)


@requirement("JSON-002", *COMPLETIONS, needs=(BASIC,))
def test_unique_keys(req, judge: Judge) -> None:
    judge.each(completions(judge), transport.duplicate_keys)
