"""One request streamed and answered whole (AGREE), and logprobs held against usage and their alternatives
(LOGP-006..008): rules across answers that no single-answer check sees."""

from __future__ import annotations

import time

from conformance.checks import agreement, findings
from conformance.checks.response import completion_checks, stream_checks
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Answered, Stream

# (whole, streamed) pairs of the same seeded temperature-0 request
PAIRS = (("agree_whole", "agree_stream"), ("agree_tools_whole", "agree_tools_stream"))
SCENARIOS = tuple(s for pair in PAIRS for s in pair)
NEEDS = tuple(Answered(s) for s in SCENARIOS) + tuple(Stream(stream) for _, stream in PAIRS)
# the answers that carry logprobs at temperature 0 (the agreement pair) and the logprobs scenario's
LOGPROB_SCENARIOS = ("agree_whole", "agree_stream")


# the single-answer rules on choices, finish reasons and tool calls: an answer that breaks one of them differs
# from its twin because of that fault, which its owner reports (one fault, one failure)
STRUCTURE_OWNERS = frozenset({"RESP-003", "RESP-007", "TOOL-005", "SEM-002", "SEM-007", "STRM-011", "STRM-012",
                              "STRM-015", "STRM-017"})


def _structure_fault(judge: Judge) -> str | None:
    """The first structure rule an answer of the pairs breaks on its own, or None."""
    profile, now = judge.run.profile, time.time()
    for whole, stream in PAIRS:
        found = [*completion_checks(judge.exchange(whole), profile, now),
                 *stream_checks(judge.exchange(stream), profile, now)]
        owners = sorted({v.requirement for v in findings(found)} & STRUCTURE_OWNERS)
        if owners:
            return owners[0]
    return None


@requirement("AGREE-002", *SCENARIOS, needs=NEEDS)
def test_stream_structure_agrees(req, judge: Judge) -> None:
    owner = _structure_fault(judge)
    if owner is not None:
        judge.not_judged(f"an answer of the pair breaks {owner} on its own, which reports it", owner)
    judge(v for whole, stream in PAIRS
          for v in agreement.stream_structure_agrees(judge.exchange(whole), judge.exchange(stream)))


@requirement("AGREE-001", *SCENARIOS, needs=NEEDS)
def test_stream_content_agrees(req, judge: Judge) -> None:
    judge(v for whole, stream in PAIRS
          for v in agreement.stream_content_agrees(judge.exchange(whole), judge.exchange(stream)))


@requirement("LOGP-006", "logprobs", *LOGPROB_SCENARIOS,
             needs=(Answered("logprobs"), Answered("agree_whole"), Answered("agree_stream")))
def test_logprobs_match_usage(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in ("logprobs", *LOGPROB_SCENARIOS)], agreement.logprobs_match_usage)


@requirement("LOGP-007", *LOGPROB_SCENARIOS, needs=(Answered("agree_whole"), Answered("agree_stream")))
def test_chosen_within_top(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in LOGPROB_SCENARIOS], agreement.chosen_within_top)


@requirement("LOGP-008", *LOGPROB_SCENARIOS, needs=(Answered("agree_whole"), Answered("agree_stream")))
def test_chosen_is_likeliest(req, judge: Judge) -> None:
    judge.each([judge.exchange(s) for s in LOGPROB_SCENARIOS], agreement.chosen_is_likeliest)
