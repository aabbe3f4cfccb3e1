"""Rules across two answers to one request, and logprobs against usage (issue 25).

AGREE-001/002 compare a seeded temperature-0 request answered whole with the same request streamed (the
stream assembled as a client builds it, conformance.checks.streaming.assemble). LOGP-006..008 hold the
logprob entries of one answer against its usage and against their own alternatives. Sources and levels:
docs/contract.md#stream-agreement and #logprob-consistency.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import NotJudged, Violation, is_int
from conformance.checks.semantics import EPSILON, _is_number, choices, document, params
from conformance.checks.shape import brief
from conformance.transport.exchange import Exchange


def _by_index(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {c["index"] if is_int(c.get("index")) else j: c for j, c in choices(doc)}


def _message(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice.get("message")
    return message if isinstance(message, dict) else {}


def _calls(choice: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(name, arguments) of each tool call: the ids are the server's to pick, and differ between answers."""
    calls = _message(choice).get("tool_calls")
    out = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        function = function if isinstance(function, dict) else {}
        out.append((function.get("name"), function.get("arguments")))
    return out


def _tokens(choice: dict[str, Any]) -> list[Any] | None:
    logprobs = choice.get("logprobs")
    entries = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(entries, list):
        return None
    return [e.get("token") if isinstance(e, dict) else e for e in entries]


def _usage(doc: dict[str, Any]) -> dict[str, Any] | None:
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    return {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _pair(whole: Exchange, stream: Exchange, requirement_id: str) -> tuple[Any, Any, list[Violation]]:
    doc_w, stop_w = document(whole, requirement_id)
    doc_s, stop_s = document(stream, requirement_id)
    return doc_w, doc_s, stop_w + stop_s


def _side_by_side(what: str, whole: Any, stream: Any) -> str:
    return f"{what} differs: whole answer {brief(whole)}, assembled stream {brief(stream)}"


def stream_structure_agrees(whole: Exchange, stream: Exchange) -> list[Violation]:
    """AGREE-002: the whole answer and the assembled stream of one seeded temperature-0 request have the same
    choices, a tool call in both or in neither, and the same finish_reason per choice. Pointers and the
    scenario refer to the stream."""
    doc_w, doc_s, stops = _pair(whole, stream, "AGREE-002")
    if doc_w is None or doc_s is None:
        return stops
    out: list[Violation] = []
    first, second = _by_index(doc_w), _by_index(doc_s)
    for index in sorted(set(first) | set(second)):
        where = f"/choices/{index}"
        a, b = first.get(index), second.get(index)
        if a is None or b is None:
            present = ("present" if a is not None else "absent", "present" if b is not None else "absent")
            out.append(Violation("AGREE-002", _side_by_side(f"choice {index}", *present), where, stream.scenario))
            continue
        if bool(_calls(a)) != bool(_calls(b)):
            out.append(Violation("AGREE-002", _side_by_side(f"whether choice {index} calls a tool", bool(_calls(a)),
                                                            bool(_calls(b))), f"{where}/message", stream.scenario))
        if a.get("finish_reason") != b.get("finish_reason"):
            out.append(Violation("AGREE-002", _side_by_side(f"finish_reason of choice {index}", a.get("finish_reason"),
                                                            b.get("finish_reason")), f"{where}/finish_reason",
                                 stream.scenario))
    return out


def stream_content_agrees(whole: Exchange, stream: Exchange) -> list[Violation]:
    """AGREE-001: beyond the structure (AGREE-002's), the same content, tool calls (name and arguments),
    logprob tokens per choice and, where both carry it, the same usage. Each difference shows both values."""
    doc_w, doc_s, stops = _pair(whole, stream, "AGREE-001")
    if doc_w is None or doc_s is None:
        return stops
    out: list[Violation] = []
    first, second = _by_index(doc_w), _by_index(doc_s)
    for index in sorted(set(first) & set(second)):
        a, b = first[index], second[index]
        where = f"/choices/{index}"
        pairs = (
            ("content", _message(a).get("content"), _message(b).get("content"), f"{where}/message/content"),
            ("tool calls", _calls(a), _calls(b), f"{where}/message/tool_calls"),
            ("logprob tokens", _tokens(a), _tokens(b), f"{where}/logprobs/content"),
        )
        for what, left, right, pointer in pairs:
            if left != right:
                out.append(Violation("AGREE-001", _side_by_side(f"{what} of choice {index}", left, right), pointer,
                                     stream.scenario))
    usage_w, usage_s = _usage(doc_w), _usage(doc_s)
    if usage_w is not None and usage_s is not None and usage_w != usage_s:
        out.append(Violation("AGREE-001", _side_by_side("usage", usage_w, usage_s), "/usage", stream.scenario))
    return out


def _reasoning_tokens(usage: dict[str, Any]) -> int:
    details = usage.get("completion_tokens_details")
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if is_int(value) else 0


def logprobs_match_usage(exchange: Exchange) -> list[Violation]:
    """LOGP-006: with logprobs and one choice that calls no tool, logprobs.content has one entry per
    completion token: usage.completion_tokens less completion_tokens_details.reasoning_tokens (tokens that
    carry no logprob). Not judged without usage, logprobs.content or n = 1."""
    doc, stop = document(exchange, "LOGP-006")
    if doc is None:
        return stop
    found = choices(doc)
    usage = doc.get("usage")
    counted = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if len(found) != 1 or not is_int(counted):
        return [NotJudged("LOGP-006", "needs one choice and usage.completion_tokens", "", exchange.scenario)]
    _, choice = found[0]
    entries = _tokens(choice)
    if _calls(choice) or entries is None:
        return [NotJudged("LOGP-006", "the choice calls a tool or carries no logprobs.content", "",
                          exchange.scenario)]
    expected = counted - _reasoning_tokens(usage)
    if len(entries) == expected:
        return []
    return [Violation("LOGP-006", f"{len(entries)} logprobs.content entries for {expected} completion tokens "
                      f"(usage.completion_tokens {counted})", "/choices/0/logprobs/content", exchange.scenario)]


def _chosen_and_top(doc: dict[str, Any]) -> list[tuple[str, float, list[float]]]:
    """(pointer, chosen logprob, the numeric logprobs of its top_logprobs) per content entry that has both."""
    out = []
    for j, choice in choices(doc):
        logprobs = choice.get("logprobs")
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        for k, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict) or not _is_number(entry.get("logprob")):
                continue
            top = entry.get("top_logprobs")
            values = [t["logprob"] for t in top if isinstance(t, dict) and _is_number(t.get("logprob"))] \
                if isinstance(top, list) else []
            if values:
                out.append((f"/choices/{j}/logprobs/content/{k}", float(entry["logprob"]), values))
    return out


def _temperature_zero(exchange: Exchange) -> bool:
    value = params(exchange).get("temperature")
    return _is_number(value) and value == 0


def _against_top(exchange: Exchange, requirement_id: str, pick: Any, words: str) -> list[Violation]:
    if not _temperature_zero(exchange):
        return [NotJudged(requirement_id, "judged at temperature 0 only", "", exchange.scenario)]
    doc, stop = document(exchange, requirement_id)
    if doc is None:
        return stop
    found = _chosen_and_top(doc)
    if not found:
        return [NotJudged(requirement_id, "no logprob entry carries top_logprobs", "", exchange.scenario)]
    out = []
    for pointer, chosen, values in found:
        bound = pick(values)
        if chosen < bound - EPSILON:
            out.append(Violation(requirement_id, f"the chosen token's logprob {chosen} is below {words} of its "
                                 f"top_logprobs ({bound})", pointer, exchange.scenario))
    return out


def chosen_within_top(exchange: Exchange) -> list[Violation]:
    """LOGP-007: at temperature 0, no chosen token's logprob is below the lowest of its top_logprobs."""
    return _against_top(exchange, "LOGP-007", min, "the lowest")


def chosen_is_likeliest(exchange: Exchange) -> list[Violation]:
    """LOGP-008: at temperature 0, each chosen token's logprob is the highest of its top_logprobs."""
    return _against_top(exchange, "LOGP-008", max, "the highest")
