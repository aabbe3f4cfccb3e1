"""What the values mean: usage, choices, time, model, token limits, logprobs, tools, JSON mode."""

from __future__ import annotations

import time

import pytest

from conformance.checks import semantics, transport
from conformance.plugin import Judge, requirement
from conformance.scenarios import WEATHER_TOOL
from conformance.suite._common import COMPLETIONS, completions, needs_ok


@requirement("SEM-001", *COMPLETIONS)
def test_usage_adds_up(req, judge: Judge) -> None:
    judge(v for e in completions(judge) for v in semantics.usage_adds_up(e))


@requirement("SEM-002", "basic", "n2")
def test_choice_count_and_indices(req, judge: Judge) -> None:
    basic, n2 = needs_ok(judge, "basic"), needs_ok(judge, "n2")
    judge([*semantics.choice_count(basic, 1), *semantics.choice_count(n2, 2)])


@requirement("SEM-003", "basic")
def test_created_is_seconds(req, judge: Judge) -> None:
    judge(semantics.created_seconds(needs_ok(judge, "basic")))


@requirement("SEM-004", "basic")
def test_created_near_now(req, judge: Judge) -> None:
    judge(semantics.created_near(needs_ok(judge, "basic"), time.time()))


@requirement("SEM-005", "basic")
def test_model_answers_request(req, judge: Judge) -> None:
    judge(semantics.model_answers(needs_ok(judge, "basic"), judge.run.config.model))


@requirement("SEM-006", "max_tokens_1")
def test_max_tokens_respected(req, judge: Judge) -> None:
    judge(semantics.max_tokens_respected(needs_ok(judge, "max_tokens_1"), 1))


@requirement("SEM-007", "max_tokens_1")
def test_cut_output_has_finish_reason_length(req, judge: Judge) -> None:
    judge(semantics.cut_by_length(needs_ok(judge, "max_tokens_1")))


@requirement("SEM-008", "max_completion_tokens_1")
def test_max_completion_tokens_respected(req, judge: Judge) -> None:
    exchange = needs_ok(judge, "max_completion_tokens_1")
    found = [*semantics.max_tokens_respected(exchange, 1), *semantics.cut_by_length(exchange)]
    judge(v.__class__(req.id, v.message, v.pointer, v.scenario) for v in found)


@requirement("SEM-009", "seed_a", "seed_b")
def test_seed_reproducible(req, judge: Judge) -> None:
    judge(semantics.same_content(needs_ok(judge, "seed_a"), needs_ok(judge, "seed_b")))


@requirement("LOGP-001", "logprobs")
def test_logprobs_present(req, judge: Judge) -> None:
    judge(semantics.logprobs_present(needs_ok(judge, "logprobs")))


@requirement("LOGP-002", "logprobs")
def test_logprob_values(req, judge: Judge) -> None:
    judge(semantics.logprob_values(needs_ok(judge, "logprobs")))


@requirement("LOGP-003", "logprobs")
def test_logprob_bytes(req, judge: Judge) -> None:
    judge(semantics.logprob_bytes(needs_ok(judge, "logprobs")))


@requirement("LOGP-004", "logprobs")
def test_top_logprobs_count(req, judge: Judge) -> None:
    judge(semantics.top_logprobs_count(needs_ok(judge, "logprobs"), 2))


@requirement("LOGP-005", "logprobs")
def test_top_logprobs_sorted(req, judge: Judge) -> None:
    judge(semantics.top_logprobs_sorted(needs_ok(judge, "logprobs")))


@requirement("TOOL-001", "tools")
def test_tool_calls_present(req, judge: Judge) -> None:
    judge(semantics.tool_calls_present(needs_ok(judge, "tools")))


@requirement("TOOL-002", "tools")
def test_tool_call_fields(req, judge: Judge) -> None:
    judge(semantics.tool_call_fields(needs_ok(judge, "tools"), [WEATHER_TOOL["function"]["name"]]))


@requirement("TOOL-003", "tools")
def test_tool_call_arguments(req, judge: Judge) -> None:
    judge(semantics.tool_call_arguments(needs_ok(judge, "tools")))


@requirement("TOOL-004", "tools")
def test_tool_finish_reason(req, judge: Judge) -> None:
    judge(semantics.tool_finish_reason(needs_ok(judge, "tools")))


@requirement("FMT-001", "json_object")
def test_json_object_content(req, judge: Judge) -> None:
    exchange = needs_ok(judge, "json_object")
    body = transport.judged_json(exchange)[0] if exchange is not None else None
    reasons = [c.get("finish_reason") for c in (body if isinstance(body, dict) else {}).get("choices") or []
               if isinstance(c, dict)]
    if reasons and all(r == "length" for r in reasons):
        pytest.skip("not judged: the JSON answer was cut at max_tokens; raise --max-tokens")
    judge(semantics.json_content(exchange))
