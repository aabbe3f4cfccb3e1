"""Every check that can be judged from one 200 exchange and its own request, composed.

This is what the property tests and offline validation call on responses to arbitrary valid requests,
so each rule is applied only where the request makes it a rule: limits only when set, logprobs rules
only when asked, tool rules only when tools were offered (and TOOL-001 only when a call was forced),
FMT-001 only for json_object without stop sequences (a stop sequence may end the JSON early). A rule
that holds vacuously (no tool calls, no logprobs) costs nothing and is always applied.

Requirements that do not apply to the profile are dropped, and INFO findings unless asked for: they are
observations about open points, not faults.
"""

from __future__ import annotations

from conformance.checks import (
    NotJudged,
    Violation,
    presence,
    requested_int,
    semantics,
    shape,
    stream_assembly,
    streaming,
    transport,
)
from conformance.contract import catalogue
from conformance.contract.profiles import Profile
from conformance.secret_forms import KEY_HEADERS, bare
from conformance.transport.exchange import Exchange


def sent_secrets(exchange: Exchange, profile: Profile) -> list[str]:
    """The keys the request sent (its key headers, secret_forms.KEY_HEADERS and the profile's), without
    their scheme ("Bearer ")."""
    names = {profile.auth_header.lower(), *KEY_HEADERS}
    out: list[str] = []
    for name, value in exchange.request.headers.items():
        if name.lower() not in names or not isinstance(value, str):
            continue
        if profile.auth_prefix and value.lower().startswith(profile.auth_prefix.lower()):
            value = value[len(profile.auth_prefix):]
        if bare(value):
            out.append(bare(value))
    return out


def _keep(found: list[Violation], profile: Profile, include_info: bool) -> list[Violation]:
    out: list[Violation] = []
    for v in found:
        requirement = catalogue.BY_ID.get(v.requirement)
        if requirement is not None and not requirement.applies_to(profile.name):
            continue
        if requirement is not None and requirement.level_for(profile.name) == catalogue.INFO and not include_info:
            continue
        if v not in out:
            out.append(v)
    return out



def _transport(exchange: Exchange, profile: Profile) -> list[Violation]:
    return [
        *transport.json_charset(exchange),
        *transport.strict_json(exchange),
        *transport.key_not_echoed(exchange, sent_secrets(exchange, profile)),
        *transport.request_id(exchange),
    ]


def _semantics(exchange: Exchange, now: float, stream: bool) -> list[Violation]:
    """The semantic rules the request makes applicable; the document is the body or the assembled stream."""
    request = semantics.params(exchange)
    out: list[Violation] = []
    if not stream:
        # streams: STRM-016 judges the usage chunk and STRM-017 the choices; no second finding
        out += semantics.usage_adds_up(exchange)
        out += semantics.choice_count(exchange)
    out += semantics.usage_counts_choices(exchange)
    out += semantics.stop_excluded(exchange)
    out += semantics.tool_finish_without_calls(exchange)
    out += semantics.created_seconds(exchange)
    out += semantics.created_near(exchange, now)
    if isinstance(request.get("model"), str):
        out += semantics.model_answers(exchange, request["model"])
    for key, req_id in (("max_tokens", "SEM-006"), ("max_completion_tokens", "SEM-008")):
        limit = requested_int(request.get(key))
        if limit is not None:
            out += semantics.max_tokens_respected(exchange, limit, req_id)

    if request.get("logprobs") is True:
        out += semantics.logprobs_present(exchange)
        top = requested_int(request.get("top_logprobs"))
        if top is not None:
            out += semantics.top_logprobs_count(exchange, top)
    out += semantics.logprob_values(exchange)
    out += semantics.logprob_bytes(exchange)
    out += semantics.top_logprobs_sorted(exchange)

    offered = semantics.offered_tools(request)
    choice = request.get("tool_choice")
    if offered and (choice == "required" or isinstance(choice, dict)):
        out += semantics.tool_calls_present(exchange)
    out += semantics.tool_call_fields(exchange, offered[0] if offered else None)
    out += semantics.tool_call_arguments(exchange)
    out += semantics.tool_finish_reason(exchange)

    response_format = request.get("response_format")
    if (
        isinstance(response_format, dict)
        and response_format.get("type") == "json_object"
        and not request.get("stop")
    ):
        out += semantics.json_content(exchange, require_judgeable=False)
    return out


def completion_checks(
    exchange: Exchange, profile: Profile, now: float, include_info: bool = False
) -> list[Violation]:
    """Every single-exchange check of a non-streaming 200 response; `now` is the client clock (Unix s)."""
    stop = transport.unjudgeable(exchange, "RESP-001")
    if stop:
        return [stop]
    found = [*transport.content_type(exchange, "application/json", "HDR-003"), *_transport(exchange, profile)]
    body, error = transport.judged_json(exchange)
    if error is not None:
        # one fault, one ID: JSON-001 (a body that claims JSON) or HDR-003 (a label that does not) says it
        owner = "JSON-001" if any(v.requirement == "JSON-001" for v in found) else "HDR-003"
        found += [NotJudged(rid, "the body is not JSON", "", exchange.scenario, needs=owner)
                  for rid in ("RESP-001", "JSON-002")]
        return _keep(found, profile, include_info)
    found += transport.duplicate_keys(exchange)
    found += shape.schema_violations(body, "chat-completion", exchange.scenario)
    found += presence.openai_keys(exchange)
    if isinstance(body, dict):
        found += _semantics(exchange, now, stream=False)
    return _keep(found, profile, include_info)


def stream_checks(
    exchange: Exchange, profile: Profile, now: float, include_info: bool = False
) -> list[Violation]:
    """Every single-exchange check of a streamed 200 response: framing, chunks, stream conventions, the
    assembled completion, and the semantic rules applied to it."""
    stop = transport.unjudgeable(exchange, "STRM-001")
    if stop:
        return [stop]
    found = [
        *transport.content_type(exchange, "text/event-stream", "STRM-001"),
        *_transport(exchange, profile),
    ]
    if not transport.is_event_stream(exchange):
        # a JSON answer to a stream request: STRM-001 has said so, there is no stream to judge
        return _keep(found, profile, include_info)
    found += transport.duplicate_keys(exchange)
    found += streaming.sse_framing(exchange)
    found += streaming.data_is_json(exchange, profile)
    if profile.stream_terminator is not None:
        found += streaming.done_terminator(exchange)
    found += streaming.no_done(exchange)
    found += streaming.nothing_after_done(exchange)
    found += streaming.chunk_shapes(exchange)
    found += presence.openai_keys(exchange)
    found += streaming.constant_identity(exchange)
    found += streaming.role_first(exchange)
    found += streaming.finish_once(exchange)
    found += streaming.usage_chunk(exchange)
    found += streaming.assembled_valid(exchange)
    found += stream_assembly.tool_call_fragments(exchange)
    found += stream_assembly.cumulative_text(exchange)
    # the SDK's note that the suite already fails this stream adds nothing beside that finding
    if not {v.requirement for v in found} & set(stream_assembly.SDK_CONSEQUENCE_OF):
        found += stream_assembly.sdk_agreement(exchange)
    if streaming.assemble(exchange) is not None:
        found += _semantics(exchange, now, stream=True)
    return _keep(found, profile, include_info)
