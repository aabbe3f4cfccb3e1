"""The 200 response, field by field, against schemas/chat-completion.json, and JSON hygiene."""

from __future__ import annotations

from conformance.checks import Violation, shape, transport
from conformance.exchange import Exchange
from conformance.plugin import Judge, requirement
from conformance.suite._common import COMPLETIONS, completions

SHAPE_REQUIREMENTS = ("RESP-001", "RESP-002", "RESP-003", "RESP-004", "RESP-005", "RESP-006", "RESP-007",
                      "RESP-008", "RESP-009")


def _violations(judge: Judge, exchange: Exchange) -> list[Violation]:
    """Schema findings of one completion, computed once a run: nine requirements read the same ones."""
    cache: dict[str, list[Violation]] = judge.run.shared.setdefault("shape", {})
    if exchange.scenario not in cache:
        body = transport.judged_json(exchange)[0]
        cache[exchange.scenario] = shape.schema_violations(body, "chat-completion", exchange.scenario)
    return cache[exchange.scenario]


def _shape_case(req_id: str):
    @requirement(req_id, *COMPLETIONS)
    def test(req, judge: Judge) -> None:
        found = [v for e in completions(judge) for v in _violations(judge, e)]
        judge(v for v in found if v.requirement == req.id)

    test.__name__ = f"test_response_shape_{req_id.replace('-', '_').lower()}"
    return test


for _req_id in SHAPE_REQUIREMENTS:
    _test = _shape_case(_req_id)
    globals()[_test.__name__] = _test


@requirement("JSON-001", *COMPLETIONS, "stream", "no_key", "val_missing_model")
def test_strict_json(req, judge: Judge) -> None:
    exchanges = [judge.exchange(s) for s in (*COMPLETIONS, "stream", "no_key", "val_missing_model")]
    judge(v for e in exchanges for v in transport.strict_json(e))


@requirement("JSON-002", *COMPLETIONS)
def test_unique_keys(req, judge: Judge) -> None:
    judge(v for e in completions(judge) for v in transport.duplicate_keys(e))
