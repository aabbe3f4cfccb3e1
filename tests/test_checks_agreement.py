"""AGREE-001/002, LOGP-006..008 and CONC-001..004 as pure checks: the exchanges built by hand."""

from __future__ import annotations

from typing import Any

from builders import (
    MODEL,
    PROMPT,
    choice,
    completion,
    logprob_entry,
    logprobs,
    make_exchange,
    sse_body,
    stream_chunks,
    tool_call,
    top_entry,
    usage,
)

from conformance.checks import NotJudged, agreement, concurrency
from conformance.transport.exchange import Exchange

T0 = {"model": MODEL, "messages": PROMPT, "seed": 7, "temperature": 0}


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found if not isinstance(v, NotJudged)]


def whole(doc: Any = None, scenario: str = "agree_whole", **params: Any) -> Exchange:
    return make_exchange(scenario, body=completion() if doc is None else doc, params={**T0, **params})


def streamed(chunks: list[Any] | None = None, scenario: str = "agree_stream") -> Exchange:
    chunks = stream_chunks(include_usage=True) if chunks is None else chunks
    return make_exchange(scenario, body=sse_body(chunks), stream=True, params={**T0, "stream": True})


# --- stream and whole answer ------------------------------------------------------------------------


def test_a_stream_that_assembles_to_the_whole_answer_agrees() -> None:
    doc = completion(usage=usage(5, 3))
    assert agreement.stream_structure_agrees(whole(doc), streamed()) == []
    assert agreement.stream_content_agrees(whole(doc), streamed()) == []


def test_a_different_finish_reason_is_a_structure_difference() -> None:
    found = agreement.stream_structure_agrees(whole(), streamed(stream_chunks(finish_reason="length")))
    assert ids(found) == ["AGREE-002"]
    assert "'stop'" in found[0].message and "'length'" in found[0].message and found[0].scenario == "agree_stream"


def test_a_tool_call_in_one_delivery_only_is_a_structure_difference() -> None:
    calls = completion(choices=[choice(content=None, finish_reason="stop", tool_calls=[tool_call()])])
    assert ids(agreement.stream_structure_agrees(whole(calls), streamed())) == ["AGREE-002"]


def test_content_and_usage_differences_show_both_versions() -> None:
    doc = completion(choices=[choice(content="Hi!")], usage=usage(5, 4))
    found = agreement.stream_content_agrees(whole(doc), streamed())
    assert ids(found) == ["AGREE-001", "AGREE-001"]
    assert "'Hi!'" in found[0].message and "'Hello!'" in found[0].message
    assert found[1].pointer == "/usage"
    # a difference of content alone is no structure difference
    assert agreement.stream_structure_agrees(whole(doc), streamed()) == []


def test_tool_call_ids_may_differ_between_deliveries() -> None:
    a = completion(choices=[choice(content=None, finish_reason="tool_calls", tool_calls=[tool_call("call_a")])])
    b = completion(choices=[choice(content=None, finish_reason="tool_calls", tool_calls=[tool_call("call_b")])])
    assert agreement.stream_content_agrees(whole(a), whole(b, "agree_stream")) == []


def test_no_answer_is_not_judged() -> None:
    found = agreement.stream_content_agrees(whole(), make_exchange("agree_stream", status=500, body=b""))
    assert found and all(isinstance(v, NotJudged) for v in found)


# --- logprobs against usage and their alternatives ---------------------------------------------------------


def test_logprob_entries_match_completion_tokens() -> None:
    doc = completion(choices=[choice(logprobs=logprobs(["a", "b", "c"]))], usage=usage(5, 3))
    assert agreement.logprobs_match_usage(whole(doc)) == []
    off = completion(choices=[choice(logprobs=logprobs(["a", "b"]))], usage=usage(5, 3))
    found = agreement.logprobs_match_usage(whole(off))
    assert ids(found) == ["LOGP-006"] and "2 logprobs.content entries for 3" in found[0].message


def test_reasoning_tokens_carry_no_logprob_entry() -> None:
    details = {"reasoning_tokens": 2}
    doc = completion(choices=[choice(logprobs=logprobs(["a"]))], usage=usage(5, 3, completion_tokens_details=details))
    assert agreement.logprobs_match_usage(whole(doc)) == []


def test_logprob_count_not_judged_with_tools_or_two_choices() -> None:
    calls = completion(choices=[choice(content=None, tool_calls=[tool_call()], logprobs=logprobs(["a"]))])
    assert isinstance(agreement.logprobs_match_usage(whole(calls))[0], NotJudged)
    two = completion(choices=[choice(logprobs=logprobs()), choice(1, logprobs=logprobs())])
    assert isinstance(agreement.logprobs_match_usage(whole(two))[0], NotJudged)


def _with_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return completion(choices=[choice(logprobs={"content": [entry], "refusal": None})])


def test_chosen_token_against_its_alternatives() -> None:
    likeliest = _with_entry(logprob_entry("a", -0.1))
    assert agreement.chosen_within_top(whole(likeliest)) == []
    assert agreement.chosen_is_likeliest(whole(likeliest)) == []
    second = _with_entry(logprob_entry("b", -0.5, top=[top_entry("a", -0.2), top_entry("b", -0.5)]))
    assert agreement.chosen_within_top(whole(second)) == []
    assert ids(agreement.chosen_is_likeliest(whole(second))) == ["LOGP-008"]
    below = _with_entry(logprob_entry("c", -3.0, top=[top_entry("a", -0.2), top_entry("b", -0.5)]))
    found = agreement.chosen_within_top(whole(below))
    assert ids(found) == ["LOGP-007"] and found[0].pointer == "/choices/0/logprobs/content/0"


def test_alternatives_judged_at_temperature_0_only() -> None:
    below = _with_entry(logprob_entry("c", -3.0, top=[top_entry("a", -0.2)]))
    found = agreement.chosen_within_top(whole(below, temperature=1))
    assert len(found) == 1 and isinstance(found[0], NotJudged)


# --- overlapping requests --------------------------------------------------------------------------------


def _answer(position: int, marker: str, **kw: Any) -> Exchange:
    doc = completion(id=f"chatcmpl-{position}", choices=[choice(content=f"{marker} Count")])
    return make_exchange(f"overlap_{position}", body=doc, params=T0, **kw)


def test_a_failure_only_under_overlap() -> None:
    alone = [_answer(0, "m0"), _answer(1, "m1")]
    together = [_answer(0, "m0"), make_exchange("overlap_1", status=500, body={"error": {}})]
    found = concurrency.overlap_failures(alone, together)
    assert ids(found) == ["CONC-001"] and found[0].scenario == "overlap_1"
    # the same failure alone is not the overlap's doing
    assert concurrency.overlap_failures(together, together) == []
    reset = make_exchange("overlap_1", no_response=True, error="connection reset")
    reset.error_kind = "closed"
    assert ids(concurrency.overlap_failures(alone, [alone[0], reset])) == ["CONC-001"]


def test_ids_distinct_across_overlapping_answers() -> None:
    assert concurrency.distinct_ids([_answer(0, "m0"), _answer(1, "m1")]) == []
    same = [_answer(0, "m0"), make_exchange("overlap_1", body=completion(id="chatcmpl-0"), params=T0)]
    assert ids(concurrency.distinct_ids(same)) == ["CONC-003"]


def test_a_marker_in_another_answer_is_a_mix() -> None:
    markers = ["zqk0q", "zqk1q"]
    assert concurrency.foreign_markers([_answer(0, markers[0]), _answer(1, markers[1])], markers) == []
    swapped = [_answer(0, markers[1]), _answer(1, markers[0])]
    found = concurrency.foreign_markers(swapped, markers)
    assert ids(found) == ["CONC-004", "CONC-004"] and "not its own marker" in found[0].message
    # a model that does not repeat its prompt carries no marker: nothing to find
    assert concurrency.foreign_markers([_answer(0, "x"), _answer(1, "y")], markers) == []


def test_equal_to_the_twin_where_determinism_is_claimed() -> None:
    alone = [_answer(0, "m0")]
    assert concurrency.equals_twin(alone, [_answer(0, "m0")], claimed=True) == []
    assert ids(concurrency.equals_twin(alone, [_answer(0, "M0")], claimed=True)) == ["CONC-004"]
    # unclaimed, a model that does not repeat its prompt may answer otherwise the second time
    assert concurrency.equals_twin(alone, [_answer(0, "M0")]) == []


def _echo(position: int, content: str, prompt: str) -> Exchange:
    doc = completion(id=f"chatcmpl-{position}", choices=[choice(content=content)])
    params = {**T0, "messages": [{"role": "user", "content": prompt}]}
    return make_exchange(f"overlap_{position}", body=doc, params=params)


def test_an_echo_model_answers_the_same_under_overlap() -> None:
    prompt = "zqk0q Count from 1 to 40, separated by spaces."
    alone = [_echo(0, "zqk0q Count from", prompt)]
    assert concurrency.echoes(alone[0]) and not concurrency.echoes(_echo(0, "Sure! zqk0q", prompt))
    assert concurrency.equals_twin(alone, [_echo(0, "zqk0q Count from", prompt)]) == []
    found = concurrency.equals_twin(alone, [_echo(0, "zqk0q Cuont form", prompt)])
    assert ids(found) == ["CONC-004"] and "'zqk0q Cuont form'" in found[0].message


def test_new_findings_name_only_must_rules_broken_under_overlap() -> None:
    from conformance.checks import Violation

    before = [Violation("STRM-019", "x")]
    under = [Violation("STRM-013", "id changes", "/1/id", "overlap_1"), Violation("STRM-019", "x"),
             Violation("SEM-004", "clock")]
    found = concurrency.new_findings(before, under, _answer(1, "m1"), frozenset({"STRM-013", "STRM-019"}))
    # reported once, under the rule it breaks (one fault, one failure), marked as found only under overlap
    assert ids(found) == ["STRM-013"] and found[0].message.startswith("under overlap only: ")


def test_a_choice_in_one_delivery_only() -> None:
    two = completion(choices=[choice(), choice(1)])
    found = agreement.stream_structure_agrees(whole(two), streamed())
    assert ids(found) == ["AGREE-002"] and "'present'" in found[0].message and "'absent'" in found[0].message


def test_a_claim_makes_the_open_point_a_must() -> None:
    from conformance.contract import catalogue

    for req_id, claim in (("AGREE-001", "deterministic"), ("LOGP-008", "greedy-logprobs")):
        req = catalogue.get(req_id)
        assert req.level_for("sgp") == catalogue.INFO and req.choice == claim
        assert req.level_for("openai", frozenset({claim})) == catalogue.MUST
        assert req.level_for("openai", frozenset({"something-else"})) == catalogue.INFO
    # a requirement without a choice keeps its level whatever is claimed
    assert catalogue.get("AGREE-002").level_for("sgp", frozenset({"deterministic"})) == catalogue.SHOULD
