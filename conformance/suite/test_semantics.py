"""What the values mean: usage, choices, time, model, token limits, stop sequences, logprobs, tools, JSON mode."""

from __future__ import annotations

import time

from conformance.checks import semantics
from conformance.suite._common import COMPLETIONS, completions
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Carried, Held
from conformance.suite.scenarios import WEATHER_TOOL

BASIC = Answered("basic")
LOGPROBS = (Answered("logprobs"), Carried(("logprobs",), ("choices.*.logprobs.content",), "logprob entries",
                                          "LOGP-001"))
TOOL_CALLS = (Answered("tools"), Carried(("tools",), ("choices.*.message.tool_calls",), "tool calls", "TOOL-001"))


@requirement("SEM-001", *COMPLETIONS, needs=(BASIC, Carried(COMPLETIONS, ("usage",), "usage")))
def test_usage_adds_up(req, judge: Judge) -> None:
    judge.each(completions(judge), semantics.usage_adds_up)


@requirement("SEM-002", "basic", "n2", needs=(BASIC, Answered("n2")))
def test_choice_count_and_indices(req, judge: Judge) -> None:
    judge([*semantics.choice_count(judge.exchange("basic"), 1), *semantics.choice_count(judge.exchange("n2"), 2)])


@requirement("SEM-003", "basic", needs=(BASIC,))
def test_created_is_seconds(req, judge: Judge) -> None:
    judge(semantics.created_seconds(judge.exchange("basic")))


@requirement("SEM-004", "basic", needs=(BASIC,))
def test_created_near_now(req, judge: Judge) -> None:
    judge(semantics.created_near(judge.exchange("basic"), time.time()))


@requirement("SEM-005", "basic", needs=(BASIC,))
def test_model_answers_request(req, judge: Judge) -> None:
    judge(semantics.model_answers(judge.exchange("basic"), judge.run.config.model))


@requirement("SEM-006", "max_tokens_1", needs=(Answered("max_tokens_1"),))
def test_max_tokens_respected(req, judge: Judge) -> None:
    judge(semantics.max_tokens_respected(judge.exchange("max_tokens_1"), 1))


# an answer that ignored max_tokens was not cut, and rightly says "stop": that fault is SEM-006's
@requirement("SEM-007", "max_tokens_1", needs=(
    Answered("max_tokens_1"), Held("RESP-003", "max_tokens_1", semantics.finish_reason_documented),
    Held("SEM-006", "max_tokens_1", lambda e: semantics.max_tokens_respected(e, 1))))
def test_cut_output_has_finish_reason_length(req, judge: Judge) -> None:
    judge(semantics.cut_by_length(judge.exchange("max_tokens_1")))


# a server that ignores both limits fails SEM-006 alone; one that lies about the reason, RESP-003 alone
@requirement("SEM-008", "max_completion_tokens_1", "max_tokens_1", needs=(
    Answered("max_completion_tokens_1"),
    Held("RESP-003", "max_completion_tokens_1", semantics.finish_reason_documented),
    Held("SEM-006", "max_tokens_1", lambda e: semantics.max_tokens_respected(e, 1)),
    Held("SEM-007", "max_tokens_1", semantics.cut_by_length)))
def test_max_completion_tokens_respected(req, judge: Judge) -> None:
    exchange = judge.exchange("max_completion_tokens_1")
    found = semantics.max_tokens_respected(exchange, 1, "SEM-008")
    if not found:
        found = semantics.cut_by_length(exchange)
    judge(v.__class__(req.id, v.message, v.pointer, v.scenario) if v.requirement != req.id else v for v in found)


@requirement("SEM-009", "seed_a", "seed_b", needs=(Answered("seed_a"), Answered("seed_b")))
def test_seed_reproducible(req, judge: Judge) -> None:
    judge(semantics.same_content(judge.exchange("seed_a"), judge.exchange("seed_b")))


@requirement("SEM-010", "stop", needs=(Answered("stop"),))
def test_stop_sequence_excluded(req, judge: Judge) -> None:
    judge(semantics.stop_excluded(judge.exchange("stop")))


@requirement("SEM-011", "n2", "stream", needs=(Answered("n2"), Carried(("n2", "stream"), ("usage",), "usage")))
def test_usage_counts_every_choice(req, judge: Judge) -> None:
    judge.each(completions(judge, ("n2", "stream")), semantics.usage_counts_choices)


@requirement("LOGP-001", "logprobs", needs=(Answered("logprobs"),))
def test_logprobs_present(req, judge: Judge) -> None:
    judge(semantics.logprobs_present(judge.exchange("logprobs")))


@requirement("LOGP-002", "logprobs", needs=LOGPROBS)
def test_logprob_values(req, judge: Judge) -> None:
    judge(semantics.logprob_values(judge.exchange("logprobs")))


@requirement("LOGP-003", "logprobs", needs=LOGPROBS)
def test_logprob_bytes(req, judge: Judge) -> None:
    judge(semantics.logprob_bytes(judge.exchange("logprobs")))


@requirement("LOGP-004", "logprobs", needs=LOGPROBS)
def test_top_logprobs_count(req, judge: Judge) -> None:
    judge(semantics.top_logprobs_count(judge.exchange("logprobs"), 2))


@requirement("LOGP-005", "logprobs", needs=LOGPROBS)
def test_top_logprobs_sorted(req, judge: Judge) -> None:
    judge(semantics.top_logprobs_sorted(judge.exchange("logprobs")))


@requirement("TOOL-001", "tools", needs=(Answered("tools"),))
def test_tool_calls_present(req, judge: Judge) -> None:
    judge(semantics.tool_calls_present(judge.exchange("tools")))


@requirement("TOOL-002", "tools", needs=TOOL_CALLS)
def test_tool_call_fields(req, judge: Judge) -> None:
    judge(semantics.tool_call_fields(judge.exchange("tools"), [WEATHER_TOOL["function"]["name"]]))


@requirement("TOOL-003", "tools", needs=TOOL_CALLS)
def test_tool_call_arguments(req, judge: Judge) -> None:
    judge(semantics.tool_call_arguments(judge.exchange("tools")))


@requirement("TOOL-004", "tools", needs=(*TOOL_CALLS, Held("RESP-003", "tools", semantics.finish_reason_documented)))
def test_tool_finish_reason(req, judge: Judge) -> None:
    judge(semantics.tool_finish_reason(judge.exchange("tools")))


@requirement("TOOL-005", *COMPLETIONS, needs=(BASIC,))
def test_tool_calls_finish_only_with_calls(req, judge: Judge) -> None:
    judge.each(completions(judge), semantics.tool_finish_without_calls)


@requirement("FMT-001", "json_object", needs=(Answered("json_object"),))
def test_json_object_content(req, judge: Judge) -> None:
    judge(semantics.json_content(judge.exchange("json_object")))
