"""Streaming checks: the SSE framing of a `stream: true` response and the chunks it carries.

Chunks are the data payloads of plain (`message`) events that parse as JSON objects. Events of another
type (`event: error`) are not chunks: SDK clients do not read them as chunks either. Parsing here is
lenient (NaN accepted) so a NaN payload is reported once, as JSON-001 by transport.strict_json, and its
chunk is still judged on everything else. Pointers are `/events/<i>/...` with i the index of the event
in `exchange.events.events`.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.checks import NotJudged, Violation, is_int, requested_int
from conformance.checks.shape import brief, json_type, schema_violations
from conformance.checks.transport import DONE, lenient_loads, unjudgeable
from conformance.contract import catalogue
from conformance.contract.profiles import Profile
from conformance.transport.exchange import Exchange, per_exchange


@per_exchange
def chunks(exchange: Exchange) -> list[tuple[int, dict[str, Any]]]:
    """(event index, chunk) for every message event whose data is a JSON object."""
    out: list[tuple[int, dict[str, Any]]] = []
    for i, event in enumerate(exchange.events.events):
        if event.event != "message" or event.data.strip() == DONE:
            continue
        ok, value = lenient_loads(event.data)
        if ok and isinstance(value, dict):
            out.append((i, value))
    return out


def _choices(chunk: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    """(position in choices, index, choice) for the well-formed choices of a chunk; the rest is STRM-011's."""
    items = chunk.get("choices")
    if not isinstance(items, list):
        return []
    return [
        (j, c["index"], c)
        for j, c in enumerate(items)
        if isinstance(c, dict) and isinstance(c.get("index"), int) and not isinstance(c.get("index"), bool)
    ]


def _cut_short(exchange: Exchange) -> str | None:
    """Why the stream's end cannot be judged: the client cut it, or the transport failed."""
    response = exchange.response
    if response is not None and response.truncated:
        return f"stream cut by the client ({response.truncated})"
    if exchange.error:
        return f"stream cut short ({exchange.error})"
    return None



def usage_problem(usage: Any) -> tuple[str, str] | None:
    """(message, pointer below usage) if integer token counts do not add up; None if they do or are not
    all integers (a type error is a shape finding)."""
    if not isinstance(usage, dict):
        return None
    p, c, t = usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")
    if not (is_int(p) and is_int(c) and is_int(t)):
        return None
    if t != p + c:
        return f"expected total_tokens {p} + {c} = {p + c}, got {t}", "/total_tokens"
    return None


# an SSE field line: a name of field characters, then a colon (WHATWG HTML §9.2.6); clients ignore unknown
# names, so only lines that are no field at all (JSON text, a bare word with spaces) lose data
_FIELD_LINE = re.compile(r"^[A-Za-z0-9_-]+:")


def sse_framing(exchange: Exchange) -> list[Violation]:
    """STRM-002: every line is a field (`name: value`; the names data, event, id and retry are used, others
    ignored by clients) or a comment, and the last event is ended by a blank line. An end the client cut
    (size or time limit) is not the server's fault and is not judged."""
    stop = unjudgeable(exchange, "STRM-002")
    if stop:
        return [stop]
    stream = exchange.events
    out: list[Violation] = []
    # a field of another name is allowed (clients ignore it); a line that is no field at all is text lost
    lost = [line for line in stream.unknown_lines if not _FIELD_LINE.match(line)]
    if lost:
        shown = ", ".join(brief(line) for line in lost[:3])
        more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
        out.append(
            Violation("STRM-002", f"expected SSE field lines, got {shown}{more}", "", exchange.scenario)
        )
    if stream.unterminated and not (exchange.response and exchange.response.truncated):
        out.append(
            Violation(
                "STRM-002",
                "the stream ended mid-event: no blank line after the last line",
                "",
                exchange.scenario,
            )
        )
    return out


def data_is_json(exchange: Exchange, profile: Profile) -> list[Violation]:
    """STRM-003: every data payload is a JSON object, except the terminator.

    [DONE] is exempt under every profile: whether it is welcome is STRM-004/005's question, where it
    stands is STRM-006's.
    """
    stop = unjudgeable(exchange, "STRM-003")
    if stop:
        return [stop]
    exempt = {DONE, profile.stream_terminator}
    out: list[Violation] = []
    for i, event in enumerate(exchange.events.events):
        if event.data.strip() in exempt:
            continue
        ok, value = lenient_loads(event.data)
        if not ok:
            out.append(
                Violation(
                    "STRM-003",
                    f"expected a JSON object, got non-JSON data {brief(event.data)}",
                    f"/events/{i}",
                    exchange.scenario,
                )
            )
        elif not isinstance(value, dict):
            out.append(
                Violation(
                    "STRM-003",
                    f"expected a JSON object, got {json_type(value)} {brief(value)}",
                    f"/events/{i}",
                    exchange.scenario,
                )
            )
    return out


def done_terminator(exchange: Exchange) -> list[Violation]:
    """STRM-004: the last event's data is [DONE]."""
    stop = unjudgeable(exchange, "STRM-004")
    if stop:
        return [stop]
    events = exchange.events.events
    if events and events[-1].data.strip() == DONE:
        return []
    if any(e.data.strip() == DONE for e in events):
        # [DONE] was sent, and something after it: that is STRM-006's fault, not a missing terminator
        return [NotJudged("STRM-004", "events follow the [DONE]", "", exchange.scenario, needs="STRM-006")]
    cut = _cut_short(exchange)
    if cut:
        return [NotJudged("STRM-004", f"{cut}: its end never arrived", "", exchange.scenario)]
    last = brief(events[-1].data) if events else "no events at all"
    return [
        Violation(
            "STRM-004",
            f"expected the stream to end with data: [DONE], last was {last}",
            "",
            exchange.scenario,
        )
    ]


def no_done(exchange: Exchange) -> list[Violation]:
    """STRM-005 (INFO): the stream ends by closing, without data: [DONE], which the SGP SDKs cannot parse."""
    stop = unjudgeable(exchange, "STRM-005")
    if stop:
        return [stop]
    for i, event in enumerate(exchange.events.events):
        if event.data.strip() == DONE:
            return [
                Violation(
                    "STRM-005",
                    "stream sends data: [DONE]; the SGP SDKs fail to parse it as JSON",
                    f"/events/{i}",
                    exchange.scenario,
                )
            ]
    return []


def nothing_after_done(exchange: Exchange) -> list[Violation]:
    """STRM-006: no event follows the first [DONE]. Streams without [DONE] pass."""
    stop = unjudgeable(exchange, "STRM-006")
    if stop:
        return [stop]
    events = exchange.events.events
    for i, event in enumerate(events):
        if event.data.strip() == DONE and i + 1 < len(events):
            after = len(events) - i - 1
            return [
                Violation(
                    "STRM-006",
                    f"expected nothing after [DONE], got {after} more event(s), first "
                    f"{brief(events[i + 1].data)}",
                    f"/events/{i + 1}",
                    exchange.scenario,
                )
            ]
    return []


def chunk_shapes(exchange: Exchange) -> list[Violation]:
    """STRM-010/011/012 (and RESP-005/006/009 inside chunks): every chunk against chat-completion-chunk."""
    stop = unjudgeable(exchange, "STRM-010")
    if stop:
        return [stop]
    out: list[Violation] = []
    for i, chunk in chunks(exchange):
        for v in schema_violations(chunk, "chat-completion-chunk", exchange.scenario):
            out.append(
                Violation(v.requirement, v.message, f"/events/{i}{v.pointer}", v.scenario, v.schema_excerpt)
            )
    return out


def constant_identity(exchange: Exchange) -> list[Violation]:
    """STRM-013: id is the same in every chunk that has one; STRM-019: created too; STRM-023 (open, INFO):
    model too. The conventions CONTRACT.md records name id and created; no source states a constant model.
    """
    stop = unjudgeable(exchange, "STRM-013")
    if stop:
        return [stop]
    out: list[Violation] = []
    for field in ("id", "created", "model"):
        first: Any = None
        for i, chunk in chunks(exchange):
            value = chunk.get(field)
            if value is None:
                continue
            if first is None:
                first = value
            elif value != first or type(value) is not type(first):
                out.append(
                    Violation(
                        {"id": "STRM-013", "created": "STRM-019"}.get(field, "STRM-023"),
                        f"expected {field} {brief(first)} as in the first chunk, got {brief(value)}",
                        f"/events/{i}/{field}",
                        exchange.scenario,
                    )
                )
                break
    return out


# a stream that lasted this long crossed a second boundary on every clock, whatever its phase
SECOND_MS = 1000.0


def crossed_a_second(exchanges: list[Exchange]) -> NotJudged | None:
    """STRM-019's question about `created`: None when one of the streams lasted a second or more from its
    headers to its end (a clock that stamps each chunk had to tick inside it); otherwise a NotJudged note
    saying the rule on `created` was not exercised, with the longest stream seen. Streams whose duration is
    unknown (recordings) count as exercised: their chunks say what they say."""
    spans = [e.response.body_ms for e in exchanges if e.response is not None]
    if not spans or any(span is None or span >= SECOND_MS for span in spans):
        return None
    longest = max(span for span in spans if span is not None)
    return NotJudged("STRM-019", f"no stream lasted a second (the longest {longest / 1000:.2f} s from its headers to "
                     "its end), so no clock crossed a second boundary inside one: whether created changes within "
                     "a stream was not exercised (model was)", "", exchanges[-1].scenario)


def role_first(exchange: Exchange) -> list[Violation]:
    """STRM-014: the first delta seen for each choice index carries role "assistant"."""
    stop = unjudgeable(exchange, "STRM-014")
    if stop:
        return [stop]
    seen: set[int] = set()
    out: list[Violation] = []
    for i, chunk in chunks(exchange):
        for j, index, choice in _choices(chunk):
            if index in seen:
                continue
            seen.add(index)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue  # not a delta at all: STRM-011 reports it
            role = delta.get("role")
            if role != "assistant":
                got = "no role" if role is None else f"role {brief(role)}"
                out.append(
                    Violation(
                        "STRM-014",
                        f"expected the first delta of choice {index} to have role 'assistant', got {got}",
                        f"/events/{i}/choices/{j}/delta",
                        exchange.scenario,
                    )
                )
    return out


def _carries_output(delta: Any) -> bool:
    """Whether a delta adds text or tool calls; empty strings and empty lists add nothing."""
    if not isinstance(delta, dict):
        return False
    return bool(delta.get("content")) or bool(delta.get("tool_calls")) or bool(delta.get("refusal"))


def finish_once(exchange: Exchange) -> list[Violation]:
    """STRM-015: each choice index gets exactly one finish_reason, and no content or tool call after it.

    An empty string counts as no finish_reason (some servers send "" for "not yet"); deltas without
    output (role only, "" content, logprobs) after the finish are harmless and allowed.
    """
    stop = unjudgeable(exchange, "STRM-015")
    if stop:
        return [stop]
    finished: dict[int, int] = {}  # choice index -> event index of its finish_reason
    reported: set[int] = set()
    indices: list[int] = []
    out: list[Violation] = []
    for i, chunk in chunks(exchange):
        for j, index, choice in _choices(chunk):
            if index not in indices:
                indices.append(index)
            if index in reported:
                continue
            reason = choice.get("finish_reason")
            where = f"/events/{i}/choices/{j}"
            if index in finished:
                if reason not in (None, ""):
                    out.append(
                        Violation(
                            "STRM-015",
                            f"choice {index} got a second finish_reason {brief(reason)}",
                            f"{where}/finish_reason",
                            exchange.scenario,
                        )
                    )
                    reported.add(index)
                elif _carries_output(choice.get("delta")):
                    out.append(
                        Violation(
                            "STRM-015",
                            f"choice {index} got more output after its finish_reason",
                            f"{where}/delta",
                            exchange.scenario,
                        )
                    )
                    reported.add(index)
            elif reason not in (None, ""):
                finished[index] = i
    missing = [index for index in indices if index not in finished]
    if missing:
        cut = _cut_short(exchange)
        endless = _past_the_cap(exchange, max(len(indices), 1))
        if cut and endless:
            out.append(Violation("STRM-015", f"{cut} after {endless}: the stream does not end", "",
                                 exchange.scenario))
        elif cut:
            out.append(
                NotJudged(
                    "STRM-015",
                    f"{cut}: the end of choice(s) {missing} never arrived",
                    "",
                    exchange.scenario,
                )
            )
        else:
            out.append(
                Violation(
                    "STRM-015",
                    f"expected a finish_reason for choice(s) {missing}, got none",
                    "",
                    exchange.scenario,
                )
            )
    return out


def _past_the_cap(exchange: Exchange, choices: int) -> str | None:
    """When a stream cut by the client had carried more chunks than its request's token cap allows (each
    token at most one chunk, plus a role, a finish and a usage chunk per choice), what it carried: such a
    stream was not slow, it does not end. None when the cap is unknown or not passed."""
    params = exchange.request.params if isinstance(exchange.request.params, dict) else {}
    limits = [requested_int(params.get(k)) for k in ("max_tokens", "max_completion_tokens")]
    caps = [n for n in limits if n is not None and n >= 0]
    if not caps:
        return None
    allowed = choices * (min(caps) + 2) + 2
    count = len(chunks(exchange))
    return f"{count} chunks where max_tokens {min(caps)} allows {allowed}" if count > allowed else None


def _params(exchange: Exchange) -> dict[str, Any]:
    params = exchange.request.params
    return params if isinstance(params, dict) else {}


def usage_chunk(exchange: Exchange) -> list[Violation]:
    """STRM-016: with stream_options.include_usage, exactly one chunk has usage, it is the last chunk,
    its choices are [], and its counts add up. Applies only when the request asked for usage.

    vLLM's continuous_usage_stats puts usage in every chunk on request; then only the last is held to
    the rule.
    """
    options = _params(exchange).get("stream_options")
    if not (isinstance(options, dict) and options.get("include_usage") is True):
        return []
    stop = unjudgeable(exchange, "STRM-016")
    if stop:
        return [stop]
    found = chunks(exchange)
    if not found:
        return [NotJudged("STRM-016", "the stream carried no chunks", "", exchange.scenario, needs="STRM-017")]
    with_usage = [(i, c) for i, c in found if c.get("usage") is not None]
    last_i, last = found[-1]
    out: list[Violation] = []
    if not with_usage:
        cut = _cut_short(exchange)
        if cut:
            return [NotJudged("STRM-016", f"{cut}: the usage chunk never arrived", "", exchange.scenario)]
        return [Violation("STRM-016", "expected a chunk with usage, got none", "", exchange.scenario)]
    continuous = options.get("continuous_usage_stats") is True
    if len(with_usage) > 1 and not continuous:
        out.append(
            Violation(
                "STRM-016",
                f"expected one chunk with usage, got {len(with_usage)}",
                f"/events/{with_usage[0][0]}/usage",
                exchange.scenario,
            )
        )
    if last.get("usage") is None:
        out.append(
            Violation(
                "STRM-016",
                "expected usage in the last chunk, it has none",
                f"/events/{last_i}",
                exchange.scenario,
            )
        )
        return out
    if last.get("choices") != []:
        out.append(
            Violation(
                "STRM-016",
                f"expected choices [] in the usage chunk, got {brief(last.get('choices'))}",
                f"/events/{last_i}/choices",
                exchange.scenario,
            )
        )
    problem = usage_problem(last["usage"])
    if problem:
        out.append(
            Violation("STRM-016", problem[0], f"/events/{last_i}/usage{problem[1]}", exchange.scenario)
        )
    return out


def _merge_tool_calls(slots: list[dict[str, Any]], deltas: Any) -> None:
    """Fold delta tool_calls into `slots`: one slot per `index`, arguments concatenated, as the openai SDK's
    accumulator does. id, type and name are taken from the first fragment that has them, as the contract
    has them sent (streaming-delta). The SDK instead appends every id and name it meets again (and keeps the
    last type): where a stream repeats them, STRM-020 says so and STRM-022 (stream_assembly.sdk_agreement)
    shows both assemblies, so the two never differ silently. A delta without an index (some servers send
    whole calls) opens a new slot; the SDK refuses it, and STRM-012 reports it."""
    if not isinstance(deltas, list):
        return
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        position = delta.get("index")
        slot = next((s for s in slots if is_int(position) and s["_index"] == position), None)
        if slot is None:
            slot = {"_index": position if is_int(position) else None, "function": {"arguments": ""}}
            slots.append(slot)
        for key in ("id", "type"):
            if delta.get(key) not in (None, "") and key not in slot:
                slot[key] = delta[key]
        function = delta.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name and "name" not in slot["function"]:
                slot["function"]["name"] = name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                slot["function"]["arguments"] += arguments


def _concat_lists(target: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, list):
        target.setdefault(key, []).extend(value)


@per_exchange
def assemble(exchange: Exchange) -> dict[str, Any] | None:
    """The chat.completion a client would build from the stream, or None if it carried no chunks. It reads
    the same as the openai SDK's ChatCompletionStreamState on every stream that keeps STRM-020 and sends
    the role once; STRM-022 compares the two on every stream the run receives.

    Top-level id, created, model, system_fingerprint, service_tier come from the first chunk that has
    them, usage from the last. Per choice index: content and refusal concatenated (None if never sent),
    the first role sent (default "assistant": the delta role is optional and STRM-014 reports its
    absence), the last finish_reason, logprobs content/refusal lists concatenated, tool calls merged.
    """
    found = chunks(exchange)
    if not found:
        return None
    doc: dict[str, Any] = {"object": "chat.completion"}
    states: dict[int, dict[str, Any]] = {}
    for _, chunk in found:
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None and key not in doc:
                doc[key] = chunk[key]
        if chunk.get("usage") is not None:
            doc["usage"] = chunk["usage"]
        for _, index, choice in _choices(chunk):
            state = states.setdefault(
                index,
                {
                    "role": None,
                    "content": None,
                    "refusal": None,
                    "finish": None,
                    "logprobs": None,
                    "tools": [],
                },
            )
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if state["role"] is None and delta.get("role") is not None:
                    state["role"] = delta["role"]
                for key in ("content", "refusal"):
                    if isinstance(delta.get(key), str):
                        state[key] = (state[key] or "") + delta[key]
                _merge_tool_calls(state["tools"], delta.get("tool_calls"))
            if choice.get("finish_reason") not in (None, ""):
                state["finish"] = choice["finish_reason"]
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                state["logprobs"] = state["logprobs"] or {}
                _concat_lists(state["logprobs"], "content", logprobs.get("content"))
                _concat_lists(state["logprobs"], "refusal", logprobs.get("refusal"))
    choices = []
    for index in sorted(states):
        state = states[index]
        message: dict[str, Any] = {
            "role": state["role"] if state["role"] is not None else "assistant",
            "content": state["content"],
        }
        if state["refusal"] is not None:
            message["refusal"] = state["refusal"]
        if state["tools"]:
            message["tool_calls"] = [
                {"id": s["id"], "type": s.get("type", "function"), "function": s["function"]}
                if "id" in s
                else {"type": s.get("type", "function"), "function": s["function"]}
                for s in state["tools"]
            ]
        choice = {"index": index, "message": message, "finish_reason": state["finish"]}
        if state["logprobs"] is not None:
            choice["logprobs"] = state["logprobs"]
        choices.append(choice)
    doc["choices"] = choices
    return doc


def assembled_valid(exchange: Exchange, n: int | None = None) -> list[Violation]:
    """STRM-017: the assembled stream validates as chat.completion with choice indices 0..k-1; SEM-002 when
    k is not the n of the request (default 1). Schema findings of SHOULD level (service_tier) keep their own ID:
    assembling must not turn a SHOULD into a MUST."""
    stop = unjudgeable(exchange, "STRM-017")
    if stop:
        return [stop]
    doc = assemble(exchange)
    cut = _cut_short(exchange)
    if cut:
        # the chunks that arrived assemble into a completion without its ends: nothing to hold to the schema
        return [NotJudged("STRM-017", f"{cut}: the completion never arrived whole", "", exchange.scenario)]
    if doc is None:
        return [Violation("STRM-017", "expected chunks to assemble, got none", "", exchange.scenario)]
    if n is None:
        asked = _params(exchange).get("n")
        n = requested_int(asked) or 1
    out: list[Violation] = []
    for v in schema_violations(doc, "chat-completion", exchange.scenario):
        level = catalogue.BY_ID[v.requirement].level if v.requirement in catalogue.BY_ID else catalogue.MUST
        requirement = "STRM-017" if level == catalogue.MUST else v.requirement
        out.append(
            Violation(requirement, f"assembled stream: {v.message}", v.pointer, v.scenario, v.schema_excerpt)
        )
    indices = [c["index"] for c in doc["choices"]]
    if indices != list(range(len(indices))):
        out.append(
            Violation(
                "STRM-017",
                f"expected choice indices 0..{len(indices) - 1}, got {brief(indices, 60)}",
                "/choices",
                exchange.scenario,
            )
        )
    elif len(indices) != n:
        # a stream that ignores n is judged by the requirement on n, not as a broken stream
        out.append(
            Violation("SEM-002", f"expected {n} choice(s) in the stream, got {len(indices)}", "/choices",
                      exchange.scenario)
        )
    return out
