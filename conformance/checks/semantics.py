"""Semantic checks: what the fields of a 200 response mean, compared with each other and with the request.

Each takes the Exchange. A non-streaming response is judged from its JSON body; a streamed one from the
document its chunks assemble into (streaming.assemble), so pointers then refer to that document.
A check whose exchange cannot be judged at all (no response, not 2xx, body not a JSON object) says so
as a violation of its own requirement. A field of the wrong type is skipped: the schema checks report it,
and a second finding for the same fault would be noise.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from conformance.checks import NotJudged, Violation, is_int, requested_int
from conformance.checks.shape import brief, json_type
from conformance.checks.streaming import assemble, usage_problem
from conformance.checks.transport import is_event_stream, judged_json, unjudgeable
from conformance.transport import strictjson
from conformance.transport.exchange import Exchange

# logprobs are floats that went through exp/log and JSON: a hair above 0 is rounding, not a probability > 1
EPSILON = 1e-6



def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def document(exchange: Exchange, requirement_id: str) -> tuple[dict[str, Any] | None, list[Violation]]:
    """The document to judge (body, or assembled stream), or why there is none, as a violation."""
    stop = unjudgeable(exchange, requirement_id)
    if stop:
        return None, [stop]
    if is_event_stream(exchange):
        doc = assemble(exchange)
        if doc is None:
            return None, [
                NotJudged(requirement_id, "the stream carried no chunks", "", exchange.scenario, needs="STRM-017")
            ]
        return doc, []
    body, error = judged_json(exchange)
    if error is not None:
        return None, [NotJudged(requirement_id, "the body is not JSON", "", exchange.scenario, needs="JSON-001")]
    if not isinstance(body, dict):
        return None, [
            NotJudged(
                requirement_id,
                f"the body is {json_type(body)}, not an object",
                "",
                exchange.scenario,
                needs="RESP-001",
            )
        ]
    return body, []


# the finish reasons docs/contract.md #response-finish-reason lists [C §Response]
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


def finish_reason_documented(exchange: Exchange) -> list[Violation]:
    """RESP-003's finish_reason part: every choice ends with a documented reason. The rules about which
    reason (SEM-007, SEM-008, TOOL-004) judge only an answer on which this holds: an undocumented reason is
    one fault, RESP-003's, not four."""
    doc, _ = document(exchange, "RESP-003")
    if doc is None:
        return []
    return [Violation("RESP-003", f"finish_reason {brief(reason)} is not one of {', '.join(FINISH_REASONS)}",
                      f"/choices/{j}/finish_reason", exchange.scenario)
            for j, choice in choices(doc) if (reason := choice.get("finish_reason")) not in FINISH_REASONS]


def params(exchange: Exchange) -> dict[str, Any]:
    """The request parameters (empty when the request body was not a JSON object)."""
    p = exchange.request.params
    return p if isinstance(p, dict) else {}


def choices(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(position, choice) for the choices that are objects."""
    items = doc.get("choices")
    if not isinstance(items, list):
        return []
    return [(j, c) for j, c in enumerate(items) if isinstance(c, dict)]


def _message(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice.get("message")
    return message if isinstance(message, dict) else {}


def _tool_calls(choice: dict[str, Any]) -> list[tuple[int, Any]]:
    calls = _message(choice).get("tool_calls")
    return list(enumerate(calls)) if isinstance(calls, list) else []


def _logprob_lists(choice: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(key, entries) of logprobs.content and logprobs.refusal where they are lists."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return []
    return [(key, logprobs[key]) for key in ("content", "refusal") if isinstance(logprobs.get(key), list)]


def _entries(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(pointer, entry) of every logprob entry and every top_logprobs entry that is an object."""
    out: list[tuple[str, dict[str, Any]]] = []
    for j, choice in choices(doc):
        for key, entries in _logprob_lists(choice):
            for k, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    continue
                where = f"/choices/{j}/logprobs/{key}/{k}"
                out.append((where, entry))
                top = entry.get("top_logprobs")
                if isinstance(top, list):
                    out.extend(
                        (f"{where}/top_logprobs/{m}", t) for m, t in enumerate(top) if isinstance(t, dict)
                    )
    return out


def usage_adds_up(exchange: Exchange) -> list[Violation]:
    """SEM-001: usage.total_tokens == prompt_tokens + completion_tokens (when all three are integers)."""
    doc, stop = document(exchange, "SEM-001")
    if doc is None:
        return stop
    problem = usage_problem(doc.get("usage"))
    if problem is None:
        return []
    return [Violation("SEM-001", problem[0], f"/usage{problem[1]}", exchange.scenario)]


def choice_count(exchange: Exchange, n: int | None = None) -> list[Violation]:
    """SEM-002: n choices (n from the request when not given, absent or null meaning 1), indices 0..n-1."""
    doc, stop = document(exchange, "SEM-002")
    if doc is None:
        return stop
    if n is None:
        asked = params(exchange).get("n")
        n = requested_int(asked) or 1
    items = doc.get("choices")
    if not isinstance(items, list):
        return []  # RESP-001 reports it
    if len(items) != n:
        return [
            Violation("SEM-002", f"expected {n} choice(s), got {len(items)}", "/choices", exchange.scenario)
        ]
    indices = [c.get("index") if isinstance(c, dict) else None for c in items]
    if sorted(i for i in indices if is_int(i)) != list(range(n)):
        return [
            Violation(
                "SEM-002",
                f"expected choice indices 0..{n - 1}, got {brief(indices, 60)}",
                "/choices",
                exchange.scenario,
            )
        ]
    return []


# 1e11 s is the year 5138: from there on, `created` is milliseconds (>= 1e12 today) or finer, not seconds.
# Below it, it is seconds, right or wrong: a 0 or a 1970 date is a clock fault (SEM-004), not a unit one
_SECONDS_BELOW = 1e11


def _created(doc: dict[str, Any]) -> float | None:
    value = doc.get("created")
    return float(value) if _is_number(value) and math.isfinite(value) else None


def created_seconds(exchange: Exchange) -> list[Violation]:
    """SEM-003: `created` is Unix time in seconds: below 1e11 (milliseconds are >= 1e12 today). A value in
    seconds that is far off the clock (0, a 1970 date) is SEM-004's finding."""
    doc, stop = document(exchange, "SEM-003")
    if doc is None:
        return stop
    created = _created(doc)
    if created is None:
        return []  # missing or not a number: RESP-001 reports it
    if created >= _SECONDS_BELOW:
        unit = "milliseconds" if created < 1e14 else "micro- or nanoseconds"
        return [
            Violation(
                "SEM-003",
                f"expected Unix seconds, got {brief(doc['created'])}, which looks like {unit}",
                "/created",
                exchange.scenario,
            )
        ]
    return []


def created_near(exchange: Exchange, now: float, tolerance_s: float = 600) -> list[Violation]:
    """SEM-004: `created` is within `tolerance_s` of the client's clock `now` (Unix seconds).

    A `created` that is not in seconds at all is SEM-003's finding and is not judged here.
    """
    doc, stop = document(exchange, "SEM-004")
    if doc is None:
        return stop
    created = _created(doc)
    if created is None or created >= _SECONDS_BELOW:
        return []
    off = created - now
    if abs(off) <= tolerance_s:
        return []
    direction = "ahead of" if off > 0 else "behind"
    return [
        Violation(
            "SEM-004",
            f"expected created within {tolerance_s:g} s of the client clock, it is "
            f"{abs(off):.0f} s {direction} it",
            "/created",
            exchange.scenario,
        )
    ]


_VERSION_SEPARATORS = ("-", ":", "@", ".", "_")


def _model_variants(name: str) -> set[str]:
    """The name and every suffix after a '/', case-folded: openai/gpt-4o, gpt-4o."""
    name = name.strip().casefold()
    parts = name.split("/")
    return {"/".join(parts[i:]) for i in range(len(parts)) if parts[i:] != [""]}


def model_matches(answered: str, requested: str) -> bool:
    """Whether a response's model names the requested one.

    Equal up to case, or after dropping a vendor/ prefix from either side; or one is the other plus a
    version suffix (gpt-4o-mini-2024-07-18, llama3.2:latest, claude-3@20240620), in either direction,
    since servers resolve aliases both ways.
    """
    for a in _model_variants(answered):
        for r in _model_variants(requested):
            if a == r:
                return True
            if any(a.startswith(r + sep) or r.startswith(a + sep) for sep in _VERSION_SEPARATORS):
                return True
    return False


def model_answers(exchange: Exchange, requested: str | None = None) -> list[Violation]:
    """SEM-005: the response's model names the requested model (or a dated / prefixed form of it)."""
    doc, stop = document(exchange, "SEM-005")
    if doc is None:
        return stop
    if requested is None:
        requested = params(exchange).get("model")
    answered = doc.get("model")
    if not isinstance(requested, str) or not isinstance(answered, str):
        return []  # nothing asked, or a shape error RESP-001 reports
    if model_matches(answered, requested):
        return []
    return [
        Violation(
            "SEM-005",
            f"expected model {brief(requested)} (or a dated form), got {brief(answered)}",
            "/model",
            exchange.scenario,
        )
    ]


def max_tokens_respected(
    exchange: Exchange, limit: int | None = None, requirement_id: str = "SEM-006"
) -> list[Violation]:
    """SEM-006 (max_tokens) / SEM-008 (max_completion_tokens): usage.completion_tokens <= limit per choice.

    The limit is per choice, so the total may reach limit * number of choices. Where a choice lists
    logprobs.content, that list (one entry per generated token) is held to the limit on its own.
    `limit` defaults to the request's max_tokens (SEM-006) or max_completion_tokens (SEM-008).
    """
    doc, stop = document(exchange, requirement_id)
    if doc is None:
        return stop
    if limit is None:
        key = "max_completion_tokens" if requirement_id == "SEM-008" else "max_tokens"
        asked = params(exchange).get(key)
        limit = requested_int(asked)
    if limit is None or limit < 0:
        return []
    out: list[Violation] = []
    listed = choices(doc)
    usage = doc.get("usage")
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if is_int(completion):
        allowed = limit * max(len(listed), 1)
        if completion > allowed:
            per = f"{limit} x {len(listed)} choices = {allowed}" if len(listed) > 1 else f"{limit}"
            out.append(
                Violation(
                    requirement_id,
                    f"expected completion_tokens <= {per}, got {completion}",
                    "/usage/completion_tokens",
                    exchange.scenario,
                )
            )
    for j, choice in listed:
        for key, entries in _logprob_lists(choice):
            if key == "content" and len(entries) > limit:
                out.append(
                    Violation(
                        requirement_id,
                        f"expected at most {limit} tokens in choice {j}, logprobs list {len(entries)}",
                        f"/choices/{j}/logprobs/content",
                        exchange.scenario,
                    )
                )
    return out


def request_limit(request: dict[str, Any]) -> int | None:
    """The per-choice token limit a request set: the smaller of max_tokens and max_completion_tokens."""
    limits = [request.get(k) for k in ("max_tokens", "max_completion_tokens")]
    ints = [n for n in map(requested_int, limits) if n is not None and n >= 0]
    return min(ints) if ints else None


def cut_by_length(exchange: Exchange, limit: int | None = None) -> list[Violation]:
    """SEM-007: a completion cut by max_tokens has finish_reason "length".

    The caller vouches that the output was cut (a tiny limit and a prompt that needs more), so every
    choice must say "length", except a choice shown to have stopped short of the limit (`limit`, default
    the request's max_tokens / max_completion_tokens): its logprobs list is shorter, or for a single
    choice usage.completion_tokens is below it. Such a choice ended on its own before the limit (an
    end-of-text first token) and was never cut. "content_filter" is accepted: the filter ended it.
    """
    doc, stop = document(exchange, "SEM-007")
    if doc is None:
        return stop
    if limit is None:
        limit = request_limit(params(exchange))
    listed = choices(doc)
    usage = doc.get("usage")
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    out: list[Violation] = []
    for j, choice in listed:
        reason = choice.get("finish_reason")
        if reason in ("length", "content_filter"):
            continue
        if limit is not None:
            content = dict(_logprob_lists(choice)).get("content")
            if content is not None and len(content) < limit:
                continue
            if len(listed) == 1 and is_int(completion) and completion < limit:
                continue
        out.append(
            Violation(
                "SEM-007",
                f"expected finish_reason 'length' for a completion cut at max_tokens, got {brief(reason)}",
                f"/choices/{j}/finish_reason",
                exchange.scenario,
            )
        )
    return out


def _contents(doc: dict[str, Any]) -> dict[int, Any]:
    """Content per choice index (the position where the index is not an integer)."""
    return {c["index"] if is_int(c.get("index")) else j: _message(c).get("content") for j, c in choices(doc)}


def same_content(a: Exchange, b: Exchange) -> list[Violation]:
    """SEM-009 (INFO): two answers to the same seeded, temperature-0 request have the same content per
    choice index. Pointers and the scenario refer to `b`."""
    doc_a, stop_a = document(a, "SEM-009")
    doc_b, stop_b = document(b, "SEM-009")
    if doc_a is None or doc_b is None:
        return stop_a + stop_b
    first, second = _contents(doc_a), _contents(doc_b)
    out: list[Violation] = []
    for index in sorted(set(first) | set(second)):
        if first.get(index) != second.get(index):
            out.append(
                Violation(
                    "SEM-009",
                    f"content of choice {index} differs: {brief(first.get(index))} then "
                    f"{brief(second.get(index))}",
                    "/choices",
                    b.scenario,
                )
            )
    return out


def logprobs_present(exchange: Exchange) -> list[Violation]:
    """LOGP-001: each choice with non-empty content carries a non-empty logprobs.content list."""
    doc, stop = document(exchange, "LOGP-001")
    if doc is None:
        return stop
    out: list[Violation] = []
    for j, choice in choices(doc):
        content = _message(choice).get("content")
        if not (isinstance(content, str) and content):
            continue
        logprobs = choice.get("logprobs")
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        if isinstance(entries, list) and entries:
            continue
        got = "no logprobs" if logprobs is None else f"logprobs.content {brief(entries)}"
        out.append(
            Violation(
                "LOGP-001",
                f"expected logprobs.content for the tokens of choice {j}, got {got}",
                f"/choices/{j}/logprobs",
                exchange.scenario,
            )
        )
    return out


def logprob_values(exchange: Exchange) -> list[Violation]:
    """LOGP-002: every logprob (entries and their top_logprobs) is finite and <= 0 (within 1e-6)."""
    doc, stop = document(exchange, "LOGP-002")
    if doc is None:
        return stop
    out: list[Violation] = []
    for where, entry in _entries(doc):
        value = entry.get("logprob")
        if not _is_number(value):
            continue  # missing or not a number: RESP-006 reports it
        if not math.isfinite(value) or value > EPSILON:
            out.append(
                Violation(
                    "LOGP-002",
                    f"expected a finite logprob <= 0, got {brief(value)}",
                    f"{where}/logprob",
                    exchange.scenario,
                )
            )
    return out


# how servers spell a token that is part of a multi-byte character: a replacement character, vLLM's
# `bytes:\xe2\x80` and `token_id:123`, sentencepiece's `<0xE2>`, an escaped `\xe2`
_FRAGMENT = re.compile(r"\ufffd|^(bytes:|token_id:)|^(<0x[0-9A-Fa-f]{2}>)+$|^(\\x[0-9A-Fa-f]{2})+$")


def is_fragment(token: str) -> bool:
    """Whether `token` stands for part of a character, so its bytes need not be its own UTF-8 encoding.

    Any other token is whole characters, and its `bytes` must be exactly its UTF-8 encoding: `é` with
    bytes [233] (its code point) is wrong, [195, 169] is right.
    """
    return token == "" or bool(_FRAGMENT.search(token))


def logprob_bytes(exchange: Exchange) -> list[Violation]:
    """LOGP-003: where `bytes` is present and the token is whole characters (not a fragment, see
    `is_fragment`), bytes == token.encode("utf-8")."""
    doc, stop = document(exchange, "LOGP-003")
    if doc is None:
        return stop
    out: list[Violation] = []
    for where, entry in _entries(doc):
        token, raw = entry.get("token"), entry.get("bytes")
        if not isinstance(token, str) or not isinstance(raw, list):
            continue
        if not all(is_int(b) and 0 <= b <= 255 for b in raw):
            continue  # RESP-006 reports bytes out of range
        if is_fragment(token):
            continue
        if bytes(raw) != token.encode("utf-8"):
            out.append(
                Violation(
                    "LOGP-003",
                    f"expected bytes of {brief(token)} = {list(token.encode('utf-8'))[:12]}, got {raw[:12]}",
                    f"{where}/bytes",
                    exchange.scenario,
                )
            )
    return out


def top_logprobs_count(exchange: Exchange, k: int | None = None) -> list[Violation]:
    """LOGP-004: each logprobs.content entry has k top_logprobs (k from the request's top_logprobs).

    k + 1 is accepted when k > 0 and the extra one is the sampled token itself: some servers add it when
    it falls outside the top k. With k = 0 there are no alternatives at all.
    """
    doc, stop = document(exchange, "LOGP-004")
    if doc is None:
        return stop
    if k is None:
        asked = params(exchange).get("top_logprobs")
        k = requested_int(asked)
    if k is None or k < 0:
        return []
    out: list[Violation] = []
    for j, choice in choices(doc):
        content = dict(_logprob_lists(choice)).get("content") or []
        for m, entry in enumerate(content):
            top = entry.get("top_logprobs") if isinstance(entry, dict) else None
            if not isinstance(top, list) or len(top) == k:
                continue
            tokens = [t.get("token") for t in top if isinstance(t, dict)]
            if k > 0 and len(top) == k + 1 and entry.get("token") in tokens:
                continue
            out.append(
                Violation(
                    "LOGP-004",
                    f"expected {k} top_logprobs, got {len(top)}",
                    f"/choices/{j}/logprobs/content/{m}/top_logprobs",
                    exchange.scenario,
                )
            )
            break  # one finding per choice: the same cause repeats for every token
    return out


def top_logprobs_sorted(exchange: Exchange) -> list[Violation]:
    """LOGP-005: each top_logprobs list is sorted by logprob, highest first (1e-6 tolerance)."""
    doc, stop = document(exchange, "LOGP-005")
    if doc is None:
        return stop
    out: list[Violation] = []
    for j, choice in choices(doc):
        for key, entries in _logprob_lists(choice):
            for m, entry in enumerate(entries):
                top = entry.get("top_logprobs") if isinstance(entry, dict) else None
                if not isinstance(top, list):
                    continue
                values = [t.get("logprob") for t in top if isinstance(t, dict)]
                values = [v for v in values if _is_number(v) and math.isfinite(v)]
                if any(b > a + EPSILON for a, b in itertools.pairwise(values)):
                    out.append(
                        Violation(
                            "LOGP-005",
                            f"expected top_logprobs highest first, got {brief(values, 60)}",
                            f"/choices/{j}/logprobs/{key}/{m}/top_logprobs",
                            exchange.scenario,
                        )
                    )
    return out


# a choice cut by max_tokens or a filter may stop before its tool call is complete: not judged by TOOL-*
_INTERRUPTED = ("length", "content_filter")


def tool_calls_present(exchange: Exchange) -> list[Violation]:
    """TOOL-001: with tool_choice "required" (or a named function) every choice's message has tool_calls.

    A choice cut by length or a content filter before it said anything is not judged; one that had already
    started answering in text was ignoring the forced call, whatever cut it.
    """
    doc, stop = document(exchange, "TOOL-001")
    if doc is None:
        return stop
    out: list[Violation] = []
    judged = 0
    for j, choice in choices(doc):
        calls = _message(choice).get("tool_calls")
        if isinstance(calls, list) and calls:
            judged += 1
            continue
        text = _message(choice).get("content")
        if choice.get("finish_reason") in _INTERRUPTED and not (isinstance(text, str) and text.strip()):
            continue
        judged += 1
        got = f"text {brief(text)}" if isinstance(text, str) and text else brief(calls)
        out.append(
            Violation(
                "TOOL-001",
                f"expected tool_calls in choice {j}, got {got}",
                f"/choices/{j}/message",
                exchange.scenario,
            )
        )
    if not judged:
        return [NotJudged("TOOL-001", "every choice was cut before it said anything", "/choices",
                          exchange.scenario)]
    return out


def tool_finish_without_calls(exchange: Exchange) -> list[Violation]:
    """TOOL-005: a choice whose finish_reason is "tool_calls" carries at least one tool call."""
    doc, stop = document(exchange, "TOOL-005")
    if doc is None:
        return stop
    out: list[Violation] = []
    for j, choice in choices(doc):
        if choice.get("finish_reason") != "tool_calls":
            continue
        calls = _message(choice).get("tool_calls")
        if isinstance(calls, list) and calls:
            continue
        offered = "" if offered_tools(params(exchange)) else " (and no tool was offered)"
        out.append(
            Violation(
                "TOOL-005",
                f"finish_reason 'tool_calls' in choice {j}, which carries no tool call{offered}",
                f"/choices/{j}/finish_reason",
                exchange.scenario,
            )
        )
    return out


def offered_tools(request: dict[str, Any]) -> tuple[set[str], set[str]] | None:
    """(tool names, tool types) offered in the request's `tools`, or None when it offered none."""
    tools = request.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    names: set[str] = set()
    types: set[str] = set()
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type", "function")
        if not isinstance(kind, str):
            continue
        types.add(kind)
        spec = tool.get(kind)
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            names.add(spec["name"])
    return names, types


def tool_call_fields(
    exchange: Exchange, offered_names: list[str] | set[str] | None = None
) -> list[Violation]:
    """TOOL-002: tool call ids are non-empty strings unique across all choices, type is "function" (or a
    type the request offered), and the name is one of `offered_names` (default: the request's tools)."""
    doc, stop = document(exchange, "TOOL-002")
    if doc is None:
        return stop
    offered = offered_tools(params(exchange))
    types = offered[1] if offered else {"function"}
    names = set(offered_names) if offered_names is not None else (offered[0] if offered else None)
    seen: dict[str, str] = {}
    out: list[Violation] = []
    for j, choice in choices(doc):
        for m, call in _tool_calls(choice):
            if not isinstance(call, dict):
                continue
            where = f"/choices/{j}/message/tool_calls/{m}"
            call_id = call.get("id")
            if not (isinstance(call_id, str) and call_id.strip()):
                out.append(
                    Violation(
                        "TOOL-002",
                        f"expected a non-empty id, got {brief(call_id)}",
                        f"{where}/id",
                        exchange.scenario,
                    )
                )
            elif call_id in seen:
                out.append(
                    Violation(
                        "TOOL-002",
                        f"expected unique ids, {brief(call_id)} already used at {seen[call_id]}",
                        f"{where}/id",
                        exchange.scenario,
                    )
                )
            else:
                seen[call_id] = where
            kind = call.get("type")
            if not (isinstance(kind, str) and kind in types):
                out.append(
                    Violation(
                        "TOOL-002",
                        f"expected type 'function', got {brief(kind)}",
                        f"{where}/type",
                        exchange.scenario,
                    )
                )
                continue
            spec = call.get(kind)
            name = spec.get("name") if isinstance(spec, dict) else None
            if names is not None and isinstance(name, str) and name not in names:
                out.append(
                    Violation(
                        "TOOL-002",
                        f"expected one of the offered tools {brief(sorted(names), 60)}, got {brief(name)}",
                        f"{where}/{kind}/name",
                        exchange.scenario,
                    )
                )
    return out


def json_object_problem(text: Any, what: str) -> str | None:
    """What keeps `text` from being a string that holds a strict-JSON object, or None."""
    if not isinstance(text, str):
        return f"expected {what} as a string holding a JSON object, got {json_type(text)}"
    try:
        value = strictjson.loads(text)
    except strictjson.StrictJSONError:
        return f"expected {what} holding a JSON object, got {brief(text)}"
    if not isinstance(value, dict):
        return f"expected {what} holding a JSON object, got {json_type(value)}"
    return None


def tool_call_arguments(exchange: Exchange) -> list[Violation]:
    """TOOL-003: function.arguments is a string holding a JSON object (strict JSON).
    Choices cut by length or a content filter are not judged: their last call may be incomplete."""
    doc, stop = document(exchange, "TOOL-003")
    if doc is None:
        return stop
    out: list[Violation] = []
    for j, choice in choices(doc):
        if choice.get("finish_reason") in _INTERRUPTED:
            continue
        for m, call in _tool_calls(choice):
            if not isinstance(call, dict) or call.get("type", "function") != "function":
                continue
            function = call.get("function")
            if not isinstance(function, dict):
                continue  # RESP-007 reports it
            problem = json_object_problem(function.get("arguments"), "arguments")
            if problem:
                where = f"/choices/{j}/message/tool_calls/{m}/function/arguments"
                out.append(Violation("TOOL-003", problem, where, exchange.scenario))
    return out


def tool_finish_reason(exchange: Exchange) -> list[Violation]:
    """TOOL-004: a message with tool calls has finish_reason "tool_calls".

    "stop" is accepted when the request named the function in tool_choice: OpenAI itself answers a forced
    call that way. "length" and "content_filter" are accepted: the choice was interrupted.
    """
    doc, stop = document(exchange, "TOOL-004")
    if doc is None:
        return stop
    # a tuple, not a set: finish_reason may be any JSON value, lists included
    accepted: tuple[str, ...] = ("tool_calls", *_INTERRUPTED)
    if isinstance(params(exchange).get("tool_choice"), dict):
        accepted += ("stop",)
    out: list[Violation] = []
    for j, choice in choices(doc):
        calls = _message(choice).get("tool_calls")
        if not (isinstance(calls, list) and calls):
            continue
        reason = choice.get("finish_reason")
        if reason not in accepted:
            out.append(
                Violation(
                    "TOOL-004",
                    f"expected finish_reason 'tool_calls' with tool calls, got {brief(reason)}",
                    f"/choices/{j}/finish_reason",
                    exchange.scenario,
                )
            )
    return out


def json_content(exchange: Exchange, require_judgeable: bool = True) -> list[Violation]:
    """FMT-001: with response_format json_object, the text of every choice that carries text and ended on
    its own parses (strictly) as a JSON object.

    A choice cut by length or a content filter may hold unfinished JSON: it is judged on its start only, and
    text that cannot begin a JSON object (not "{" after white space) shows the format ignored, whatever
    the cap (a server that never stops cannot be helped by a higher --max-tokens). Not judged: a choice
    with no text (content null or empty, a refusal, tool calls instead), and a cut one that begins an
    object. Where no choice could be judged, a NotJudged note says why, and what the user can do about it,
    when `require_judgeable` (a test asked for a verdict); otherwise nothing is returned.
    """
    doc, stop = document(exchange, "FMT-001")
    if doc is None:
        return stop
    out: list[Violation] = []
    judged = 0
    reasons: list[Any] = []
    for j, choice in choices(doc):
        reason = choice.get("finish_reason")
        reasons.append(reason)
        content = _message(choice).get("content")
        if not (isinstance(content, str) and content.strip()):
            continue
        if reason in _INTERRUPTED:
            if content.lstrip().startswith("{"):
                continue
            judged += 1
            out.append(Violation(
                "FMT-001", f"expected content that begins a JSON object, got {brief(content, 60)} (cut by "
                f"{reason}): no cap makes this a JSON object, response_format was ignored",
                f"/choices/{j}/message/content", exchange.scenario))
            continue
        judged += 1
        problem = json_object_problem(content, "content")
        if problem:
            out.append(Violation("FMT-001", problem, f"/choices/{j}/message/content", exchange.scenario))
    if judged == 0 and require_judgeable:
        if "length" in reasons:
            why = "every choice was cut at max_tokens before its JSON object was complete (raise --max-tokens)"
        elif "content_filter" in reasons:
            why = "every choice was cut by a content filter: nothing in the request can change that"
        else:
            why = f"no choice carried text (finish reasons {brief(reasons, 60)}): the model answered otherwise"
        out.append(NotJudged("FMT-001", why, "/choices", exchange.scenario))
    return out


def stop_sequences(request: dict[str, Any]) -> list[str]:
    """The non-empty stop sequences a request set (a string or a list of strings)."""
    stop = request.get("stop")
    items = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in items if isinstance(s, str) and s]


def stop_excluded(exchange: Exchange) -> list[Violation]:
    """SEM-010: no choice's content contains a stop sequence of the request (OpenAI: the returned text
    does not contain it). Judged where the request set stop sequences and a choice carries text."""
    wanted = stop_sequences(params(exchange))
    if not wanted:
        return []
    doc, stop = document(exchange, "SEM-010")
    if doc is None:
        return stop
    out: list[Violation] = []
    for j, choice in choices(doc):
        content = _message(choice).get("content")
        if not isinstance(content, str):
            continue
        kept = next((s for s in wanted if s in content), None)
        if kept is not None:
            out.append(
                Violation(
                    "SEM-010",
                    f"content of choice {j} contains the stop sequence {brief(kept)}: {brief(content, 60)}",
                    f"/choices/{j}/message/content",
                    exchange.scenario,
                )
            )
    return out


def usage_counts_choices(exchange: Exchange) -> list[Violation]:
    """SEM-011: usage.completion_tokens is at least the number of choices that carry text or tool calls
    (every such choice took a token; a server counting only the first choice falls short). No usage, or no
    choice with output: nothing to judge."""
    doc, stop = document(exchange, "SEM-011")
    if doc is None:
        return stop
    usage = doc.get("usage")
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not is_int(completion):
        return []
    answered = [j for j, choice in choices(doc)
                if (isinstance(_message(choice).get("content"), str) and _message(choice)["content"])
                or _tool_calls(choice)]
    if not answered or completion >= len(answered):
        return []
    many = len(answered)
    # the guess fits a shortfall only where more than one choice carries output and some were counted
    guess = " (only one choice counted?)" if many > 1 and completion > 0 else ""
    return [
        Violation(
            "SEM-011",
            f"expected completion_tokens >= {many} for {many} choice{'s' if many > 1 else ''} with output, got "
            f"{completion}{guess}",
            "/usage/completion_tokens",
            exchange.scenario,
        )
    ]
