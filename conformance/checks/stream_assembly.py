"""Streams as clients assemble them: what a later tool-call fragment may carry (STRM-020), content deltas as
increments (STRM-021), and the openai SDK's own accumulator against the suite's assembly (STRM-022).

A stream can parse chunk by chunk and still assemble wrongly in a client. The openai SDK's accumulator
(`openai.lib.streaming._deltas.accumulate_delta`, driven by `ChatCompletionStreamState`) joins every string
field it meets again: a tool call whose later fragments repeat its `id` assembles to `call_acall_a...`, a
role repeated in every delta to `assistantassistant`; only `index` and `type` are replaced. The suite's
assembler (`streaming.assemble`) takes what the contract says comes once from its first fragment; where a
stream sends it again, STRM-020 says so and STRM-022 shows both assemblies.
"""

from __future__ import annotations

import importlib
import itertools
import warnings
from collections.abc import Iterator
from typing import Any

from conformance.checks import NotJudged, Violation, is_int
from conformance.checks.shape import brief
from conformance.checks.streaming import assemble, assembled_valid, chunk_shapes, chunks, sse_framing
from conformance.checks.transport import unjudgeable
from conformance.transport.exchange import Exchange, per_exchange

SDK_INSTALL = "pip install 'sgp-conformance[clients]' (or pip install openai)"
# the fewest non-empty text deltas of a choice that make the cumulative pattern a finding: with two, "a"
# then "ab" is a plausible pair of increments
MIN_CUMULATIVE = 3


def _fragments_of(i: int, chunk: dict[str, Any]) -> Iterator[tuple[int, int, int, int, dict[str, Any]]]:
    """(event index, choice index, position in choices, position in tool_calls, fragment) of every tool-call
    fragment of one chunk that has an integer index."""
    items = chunk.get("choices")
    for j, choice in enumerate(items if isinstance(items, list) else []):
        if not isinstance(choice, dict) or not is_int(choice.get("index")):
            continue
        delta = choice.get("delta")
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        for k, fragment in enumerate(calls if isinstance(calls, list) else []):
            if isinstance(fragment, dict) and is_int(fragment.get("index")):
                yield i, choice["index"], j, k, fragment


def _fragments(exchange: Exchange) -> Iterator[tuple[int, int, int, int, dict[str, Any]]]:
    """_fragments_of every chunk, in stream order."""
    for i, chunk in chunks(exchange):
        yield from _fragments_of(i, chunk)


def tool_call_fragments(exchange: Exchange) -> list[Violation]:
    """STRM-020: after the first fragment of a tool call (choice index, call index), no fragment carries a
    non-empty `id` or `function.name` (the SDK would append them) or a `type` other than the first one. null
    and "" are harmless (the SDK joins nothing), and so is the same `type` again (the SDK replaces it).
    One finding per call."""
    stop = unjudgeable(exchange, "STRM-020")
    if stop:
        return [stop]
    first: dict[tuple[int, int], dict[str, Any]] = {}
    reported: set[tuple[int, int]] = set()
    out: list[Violation] = []
    for i, choice, j, k, fragment in _fragments(exchange):
        call = (choice, fragment["index"])
        function = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
        if call not in first:
            first[call] = {"type": fragment.get("type")}
            continue
        if call in reported:
            continue
        again = [key for key, value in (("id", fragment.get("id")), ("function.name", function.get("name")))
                 if value not in (None, "")]
        kind = fragment.get("type")
        if kind not in (None, "") and first[call]["type"] not in (None, "") and kind != first[call]["type"]:
            again.append("a different type")
        if again:
            reported.add(call)
            shown = {key: fragment.get(key) for key in ("id", "type") if fragment.get(key) is not None}
            if function.get("name") is not None:
                shown["function.name"] = function["name"]
            out.append(Violation(
                "STRM-020",
                f"expected tool call {fragment['index']} of choice {choice} to carry only index and arguments "
                f"after its first fragment, got {', '.join(again)} again ({brief(shown, 80)}); the openai SDK "
                "appends each repeat to the call",
                f"/events/{i}/choices/{j}/delta/tool_calls/{k}",
                exchange.scenario,
            ))
    return out


def cumulative_text(exchange: Exchange) -> list[Violation]:
    """STRM-021: a choice whose `content` (or `refusal`) deltas, or a tool call whose `function.arguments`
    fragments, each start with the whole previous piece and add to it, over at least MIN_CUMULATIVE
    non-empty pieces, send the text so far instead of increments."""
    stop = unjudgeable(exchange, "STRM-021")
    if stop:
        return [stop]
    # (choice index, what) -> [(pointer, text)]
    pieces: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for i, chunk in chunks(exchange):
        items = chunk.get("choices")
        for j, choice in enumerate(items if isinstance(items, list) else []):
            if not isinstance(choice, dict) or not is_int(choice.get("index")):
                continue
            delta = choice.get("delta")
            for field in ("content", "refusal"):
                text = delta.get(field) if isinstance(delta, dict) else None
                if isinstance(text, str) and text:
                    pieces.setdefault((choice["index"], field), []).append(
                        (f"/events/{i}/choices/{j}/delta/{field}", text))
        for i_, index, j, k, fragment in _fragments_of(i, chunk):
            function = fragment.get("function")
            text = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(text, str) and text:
                pieces.setdefault((index, f"tool call {fragment['index']} arguments"), []).append(
                    (f"/events/{i_}/choices/{j}/delta/tool_calls/{k}/function/arguments", text))
    out: list[Violation] = []
    for (index, field), seen in sorted(pieces.items()):
        texts = [text for _, text in seen]
        if len(texts) < MIN_CUMULATIVE:
            continue
        if all(later.startswith(before) and len(later) > len(before) for before, later in itertools.pairwise(texts)):
            where, text = seen[1]
            out.append(Violation(
                "STRM-021",
                f"expected the {field} of choice {index} in increments, got each piece repeating the one before "
                f"({brief(texts[0], 30)}, then {brief(text, 40)}, ...): clients join them into "
                f"{brief(''.join(texts[:3]), 60)}",
                where,
                exchange.scenario,
            ))
    return out


def _chunk_type() -> tuple[Any, Any, Any] | None:
    """(ChatCompletionChunk, ChatCompletionStreamState, construct_type) of the installed openai SDK, or None."""
    try:
        types = importlib.import_module("openai.types.chat")
        state = importlib.import_module("openai.lib.streaming.chat")
        models = importlib.import_module("openai._models")
        return types.ChatCompletionChunk, state.ChatCompletionStreamState, models.construct_type
    except (ImportError, AttributeError):
        return None


def sdk_available() -> bool:
    """Whether the openai SDK's stream accumulator can be had; the first call imports it (about 0.4 s of CPU),
    so a run calls this while it waits on the target, not in the middle of judging."""
    return _chunk_type() is not None


def _sdk_assembly(chunk_docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The completion the openai SDK's ChatCompletionStreamState builds from the chunks, as a dict.

    Chunks are built without validation (`construct_type`), as the SDK's own `Stream` does. Raises whatever
    the SDK raises on a stream it cannot assemble."""
    found = _chunk_type()
    assert found is not None
    chunk_type, state_type, construct = found
    state = state_type()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for doc in chunk_docs:
            state.handle_chunk(construct(type_=chunk_type, value=doc))
        return state.current_completion_snapshot.model_dump(mode="json", exclude_unset=False)


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    """What a client reads of an assembled completion: id, created, model and, per choice index, role,
    content, refusal, finish_reason and tool calls (id, type, name, arguments). usage and
    system_fingerprint are left out: the SDK takes them from the last chunk, and STRM-016 judges usage."""
    choices = {}
    for choice in doc.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            calls.append({"id": call.get("id"), "type": call.get("type"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
        choices[str(choice.get("index"))] = {
            # no role at all is STRM-014's: the suite reads it as "assistant", the SDK as null
            "role": message.get("role") or "assistant", "content": message.get("content"),
            "refusal": message.get("refusal"),
            "finish_reason": choice.get("finish_reason"), "tool_calls": calls or None}
    return {"id": doc.get("id"), "created": doc.get("created"), "model": doc.get("model"), "choices": choices}


def _differences(ours: Any, theirs: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = []
        for key in sorted(set(ours) | set(theirs)):
            out += _differences(ours.get(key), theirs.get(key), f"{path}/{key}")
        return out
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for n, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in _differences(a, b, f"{path}/{n}")]
    return [] if ours == theirs else [(path, ours, theirs)]


# the stream faults that make the SDK's accumulator fail or differ as a consequence (STRM-022 is not judged)
SDK_CONSEQUENCE_OF = ("STRM-002", "STRM-003", "STRM-010", "STRM-011", "STRM-012", "STRM-017")


def sdk_agreement(exchange: Exchange) -> list[Violation]:
    """STRM-022: the installed openai SDK's ChatCompletionStreamState, fed every chunk of the stream, assembles
    a completion a client can use (it does not raise) that reads the same as the suite's assembly
    (`_view`). A difference shows both versions. Not judged without the SDK (with its install line), on a
    stream with no chunks (STRM-017's) or one the suite already fails (SDK_CONSEQUENCE_OF: the SDK is not
    held to parse what the contract already forbids)."""
    # run-wide STRM-022 and the per-exchange checks of generated cases both judge a generated stream: the
    # SDK's assembly of it (a pydantic model per chunk) is computed once; each caller gets a list of its own
    return list(_sdk_verdict(exchange))


# kept with the exchange: besides the response it depends only on the installed SDK, which a run does not change
@per_exchange
def _sdk_verdict(exchange: Exchange) -> list[Violation]:
    stop = unjudgeable(exchange, "STRM-022")
    if stop:
        return [stop]
    if _chunk_type() is None:
        return [NotJudged("STRM-022", f"the openai SDK is not installed: {SDK_INSTALL}", "", exchange.scenario)]
    ours = assemble(exchange)
    if ours is None:
        return [NotJudged("STRM-022", "the stream carried no chunks", "", exchange.scenario, needs="STRM-017")]
    # a stream the suite already failed (framing, chunk shapes, assembly) is that rule's: the SDK stumbling on
    # it too is a consequence, not a second fault
    broken = [v for v in (*sse_framing(exchange), *chunk_shapes(exchange), *assembled_valid(exchange))
              if not isinstance(v, NotJudged) and v.requirement in SDK_CONSEQUENCE_OF]
    if broken:
        return [NotJudged("STRM-022", f"the suite already fails this stream under {broken[0].requirement}", "",
                          exchange.scenario, needs=broken[0].requirement)]
    # the usage chunk (choices []) is one the SDK reads too; chunks are fed in stream order
    docs = [chunk for _, chunk in chunks(exchange)]
    try:
        theirs = _sdk_assembly(docs)
    except Exception as exc:  # the SDK's own failure is the finding, whatever its type
        return [Violation("STRM-022", f"the openai SDK's stream accumulator raised {type(exc).__name__}: "
                          f"{brief(str(exc), 160)}", "", exchange.scenario)]
    diffs = _differences(_view(ours), _view(theirs))
    if not diffs:
        return []
    shown = "; ".join(f"{path}: suite {brief(a, 60)}, SDK {brief(b, 60)}" for path, a, b in diffs[:4])
    more = f" and {len(diffs) - 4} more" if len(diffs) > 4 else ""
    return [Violation(
        "STRM-022",
        f"the openai SDK assembles this stream differently from the suite: {shown}{more}",
        "",
        exchange.scenario,
    )]
