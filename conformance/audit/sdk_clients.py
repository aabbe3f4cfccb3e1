"""The official Python SDKs against the target: one bounded call each, recorded, and judged.

`sgp-conformance run --clients` drives the SDK a client author of the profile would use: `scale-gp`
(`client.beta.chat.completions.create`) for sgp, `openai` (`client.chat.completions.create`) for openai.
The SDKs are an optional extra; `missing_sdk` says which one is not installed.

Every SDK request goes through a `RecordingTransport` under the SDK's own httpx client, so it is
counted against the run's request budget and pace, bounded in size and time like the suite's own
requests, and recorded as an `Exchange`: the evidence of a failure shows the very bytes the SDK choked
on, and the census sees them too. Both SDKs accept a plain `httpx.Client` (openai 3 also takes its own
`httpx2`), so one transport serves both; under it, the suite's own route and TLS trust
(`conformance.transport.network`: proxy, CA bundle, --insecure), so the SDKs reach the target as the suite does. The
SDKs' own retries are off: a 429/503 is retried the way the suite's client retries it, under the run's
budget.

The judgements are pure functions of the call's outcome and the recorded exchange:
CLIENT-001 (non-streaming parses), CLIENT-002/003 (a stream is consumed to its end), CLIENT-004 (the
body validates against the SDK's own types, i.e. its strict mode).
"""

from __future__ import annotations

import importlib
import json
import time
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from conformance.checks import NotJudged, Violation
from conformance.config import Config
from conformance.config.network import request_headers
from conformance.contract.profiles import Profile
from conformance.transport.client import describe_error, read_bounded, retry_delay
from conformance.transport.exchange import Exchange, RequestSpec, Response
from conformance.transport.network import http_transport
from conformance.transport.sse import parse as parse_sse

INSTALL_HINT = "pip install 'sgp-conformance[clients]'"


def install_hint() -> str:
    """How to install the SDKs into this environment: the extra of the installed package, or of the source
    checkout this package runs from (an editable install, or the tests of a checkout)."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        ours = 'name = "sgp-conformance"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        ours = False
    if ours:
        return f"pip install -e '{root}[clients]'"
    return INSTALL_HINT
PROMPT = "Count from 1 to 5, separated by spaces."
COMPLETION_SCENARIO = "sdk_completion"
STREAM_SCENARIO = "sdk_stream"
# differences between what the SDK returned and what the server sent, listed per call
MAX_DIFFS = 10
MAX_TYPE_ERRORS = 10
DONE = "[DONE]"


@dataclass(frozen=True)
class SDK:
    """Where one SDK keeps what the suite needs; type paths are "module:attribute"."""

    distribution: str
    module: str
    completion_type: str
    chunk_type: str

    def version(self) -> str:
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return "unknown"

    def label(self) -> str:
        return f"{self.distribution} {self.version()}"


SDKS: dict[str, SDK] = {
    "sgp": SDK(
        "scale-gp", "scale_gp",
        "scale_gp.types.beta.chat.completion_create_response:EgpAPIBackendServerAPIModelsInferenceModelsChatCompletion",
        "scale_gp.types.beta.chat.chat_completion_chunk_v5:ChatCompletionChunkV5",
    ),
    "openai": SDK("openai", "openai", "openai.types.chat:ChatCompletion", "openai.types.chat:ChatCompletionChunk"),
}
# the requirement that judges a stream, per profile
STREAM_REQUIREMENT = {"sgp": "CLIENT-002", "openai": "CLIENT-003"}


def sdk_for(profile: Profile | str) -> SDK:
    return SDKS[profile if isinstance(profile, str) else profile.name]


def missing_sdk(profile: Profile | str) -> str | None:
    """Why the profile's SDK cannot be used (with the install hint), or None when it is installed."""
    sdk = sdk_for(profile)
    try:
        # imported, not just found: a broken install is as unusable as a missing one
        importlib.import_module(sdk.module)
    except ImportError as exc:
        return f"the {sdk.distribution} SDK is not installed ({exc}): {install_hint()}"
    return None


def layout_problem(profile: Profile | str) -> str | None:
    """Why the installed SDK cannot be judged with (its types moved in another version), or None."""
    sdk = sdk_for(profile)
    for path in (sdk.completion_type, sdk.chunk_type):
        try:
            _load(path)
        except (ImportError, AttributeError):
            return f"{sdk.label()} has no {path.replace(':', '.')}: this SDK version is not supported"
    return None


def _load(path: str) -> type[Any]:
    module, _, name = path.partition(":")
    loaded: type[Any] = getattr(importlib.import_module(module), name)
    return loaded


# -- the transport: counted, paced, bounded, recorded ---------------------------------------------------


class RecordingTransport(httpx.BaseTransport):
    """Sends the SDK's requests, reads each answer whole within the run's limits, and records it.

    The body is read here rather than by the SDK so that the limits apply whatever the SDK does, and so
    that the recorded exchange holds exactly what the SDK was given to parse.
    """

    def __init__(self, config: Config, scenario: Callable[[], str], before_send: Callable[[], None] = lambda: None,
                 record: Callable[[Exchange], None] = lambda e: None,
                 inner: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.scenario = scenario
        self.before_send = before_send
        self.record = record
        # the suite's own route and TLS trust (--proxy, --ca-bundle, --insecure, the environment's)
        self.inner = inner or http_transport(config, config.base_url)
        self.exchanges: list[Exchange] = []
        # set when no connection could be made: the target is down, which is no finding about the SDK
        self.unreachable: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # raises BudgetExhausted when the run's budget is spent: the SDK reports it as a connection error
        self.before_send()
        body = request.read()
        params: Any = None
        try:
            params = json.loads(body) if body else None
        except ValueError:
            params = None
        stream = isinstance(params, dict) and params.get("stream") is True
        spec = RequestSpec(self.scenario(), request.method, dict(request.headers.items()), body,
                           params if isinstance(params, dict) else None, stream)
        url = str(request.url)
        started = time.monotonic()
        deadline = started + (self.config.stream_timeout if stream else self.config.timeout * 3)
        try:
            upstream = self.inner.handle_request(request)
        except httpx.HTTPError as exc:
            reason = describe_error(exc, request.url, self.config.timeout)
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
                self.unreachable = reason
            self._keep(Exchange(spec.scenario, url, spec, None, error=reason))
            raise
        chunks: list[bytes] = []
        cut, error = None, None
        try:
            # a sync transport's stream is iterable
            stream: Any = upstream.stream
            cut, _ = read_bounded(stream, chunks, self.config.max_body_bytes, started, deadline)
        except httpx.HTTPError as exc:
            error = describe_error(exc, request.url, self.config.timeout)
        finally:
            upstream.close()
        raw = b"".join(chunks)[: self.config.max_body_bytes]
        headers = list(upstream.headers.multi_items())
        out = httpx.Response(upstream.status_code, headers=headers, content=raw, request=request,
                             extensions=upstream.extensions)
        try:
            decoded = out.read()
        except httpx.DecodingError as exc:
            decoded, error = raw, error or f"cannot decode the body: {exc}"
        recorded = Response(upstream.status_code, headers, decoded, (time.monotonic() - started) * 1000, cut)
        self._keep(Exchange(spec.scenario, url, spec, recorded, error=error or cut))
        if error and not cut:
            # the connection broke mid-body: the SDK meets the same failure it would have met reading it
            raise httpx.ReadError(error, request=request)
        return out

    def _keep(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        self.record(exchange)

    def close(self) -> None:
        self.inner.close()


# -- one call ----------------------------------------------------------------------------------------------


@dataclass
class Call:
    """What one SDK call gave: the parsed object(s), or the exception it raised, and the exchanges behind it."""

    sdk: str
    stream: bool
    result: Any = None
    chunks: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    # why the target could not be reached at all, if it could not
    unreachable: str | None = None

    @property
    def exchange(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None

    def error_text(self) -> str:
        return describe_exception(self.error) if self.error is not None else ""


def describe_exception(exc: BaseException) -> str:
    """The exception and its causes on one line, as the SDK user would see them in a traceback."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 4:
        seen.add(id(current))
        text = str(current).strip().replace("\n", " ")
        parts.append(f"{type(current).__name__}: {text[:300]}" if text else type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return " <- caused by ".join(parts)


def make_sdk_client(profile: Profile, config: Config, http_client: httpx.Client) -> Any:
    """The profile's SDK client for the target; the base URL as the user would give it to the SDK, and the
    run's extra headers (--header) as its default headers, as a client author would pass them."""
    timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0))
    headers = request_headers(config) or None
    if profile.name == "sgp":
        from scale_gp import SGPClient

        # scale-gp appends /v4/beta/chat/completions to the bare host URL, as the profile does
        return SGPClient(api_key=config.api_key or "", account_id=config.account_id, base_url=config.base_url,
                         max_retries=0, timeout=timeout, http_client=http_client, default_headers=headers)
    from openai import OpenAI

    # the openai profile's base URL already ends in /v1, which is what the openai SDK expects
    return OpenAI(api_key=config.api_key or "", base_url=config.base_url, max_retries=0, timeout=timeout,
                  http_client=http_client, default_headers=headers)


def _create(client: Any, profile: Profile) -> Callable[..., Any]:
    completions = client.beta.chat.completions if profile.name == "sgp" else client.chat.completions
    create: Callable[..., Any] = completions.create
    return create


def call_sdk(profile: Profile, config: Config, stream: bool, before_send: Callable[[], None] = lambda: None,
             record: Callable[[Exchange], None] = lambda e: None,
             inner: httpx.BaseTransport | None = None,
             on_retry: Callable[[Exchange], None] = lambda e: None) -> Call:
    """Make one bounded SDK call (small max_tokens, the run's timeout) and keep what it gave.

    The SDK's own retries are off; a 429/503 is retried here as the suite's client retries it (up to
    config.retries, honouring Retry-After), so a throttling target costs the SDK requirements nothing.
    Only the SDK's own failures end up in `Call.error`: a spent budget (BudgetExhausted) is re-raised so the
    caller can report the requirement as not run instead of failed.
    """
    attempt = 0
    earlier: list[Exchange] = []
    while True:
        outcome = _call_once(profile, config, stream, before_send, record, inner)
        outcome.exchanges[:0] = earlier
        response = outcome.exchange.response if outcome.exchange is not None else None
        if outcome.error is None or response is None or response.status not in (429, 503) \
                or attempt >= config.retries:
            return outcome
        on_retry(outcome.exchanges[-1])
        time.sleep(retry_delay(response, attempt, config.max_retry_wait))
        earlier = list(outcome.exchanges)
        attempt += 1


def _call_once(profile: Profile, config: Config, stream: bool, before_send: Callable[[], None],
               record: Callable[[Exchange], None], inner: httpx.BaseTransport | None) -> Call:
    from conformance.transport.client import BudgetExhausted

    sdk = sdk_for(profile)
    scenario = STREAM_SCENARIO if stream else COMPLETION_SCENARIO
    transport = RecordingTransport(config, lambda: scenario, before_send, record, inner)
    http = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
    outcome = Call(sdk.label(), stream, exchanges=transport.exchanges)
    kwargs: dict[str, Any] = {
        "model": config.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": config.max_tokens,
    }
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    try:
        client = make_sdk_client(profile, config, http)
        returned = _create(client, profile)(**kwargs)
        if stream:
            for chunk in returned:
                outcome.chunks.append(chunk)
        else:
            outcome.result = returned
    except Exception as exc:
        if _caused_by(exc, BudgetExhausted):
            raise _caused_by(exc, BudgetExhausted) from None  # type: ignore[misc]
        outcome.error = exc
    finally:
        http.close()
    outcome.unreachable = transport.unreachable
    return outcome


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


# -- judgements ---------------------------------------------------------------------------------------------


def _as_dict(model: Any) -> Any:
    """What the SDK object holds, as JSON: the fields the SDK set, by their wire names."""
    with warnings.catch_warnings():
        # pydantic warns when a leniently built model holds a value of another type: that is the finding
        warnings.simplefilter("ignore")
        if hasattr(model, "to_dict"):
            return model.to_dict()
        if hasattr(model, "model_dump"):
            return model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return model


def differences(parsed: Any, sent: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(pointer, what differs) wherever the SDK's object does not hold what the server sent."""
    if isinstance(parsed, dict) and isinstance(sent, dict):
        for key in sent:
            where = f"{path}/{key}"
            if key not in parsed:
                yield where, f"the SDK object lacks {key!r}, sent as {_brief(sent[key])}"
            else:
                yield from differences(parsed[key], sent[key], where)
        for key in parsed:
            if key not in sent:
                yield f"{path}/{key}", f"the SDK object has {key!r} = {_brief(parsed[key])}, which was not sent"
        return
    if isinstance(parsed, list) and isinstance(sent, list):
        if len(parsed) != len(sent):
            yield path, f"the SDK object has {len(parsed)} item(s), {len(sent)} were sent"
            return
        for i, (a, b) in enumerate(zip(parsed, sent, strict=True)):
            yield from differences(a, b, f"{path}/{i}")
        return
    if parsed != sent or (type(parsed) is not type(sent) and not _same_number(parsed, sent)):
        yield path, f"the SDK object has {_brief(parsed)}, the server sent {_brief(sent)}"


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
        and not isinstance(b, bool) and a == b


def unreadable(model: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(pointer, error) of every field the SDK type declares required that its object cannot give.

    In their default mode the SDKs build objects without validating, so a body that lacks a field gives an
    object whose attribute raises on reading: `completion.choices` fails in the user's code, not in create().
    """
    fields = getattr(type(model), "model_fields", None)
    if not isinstance(fields, dict):
        return
    for name, info in fields.items():
        if not info.is_required():
            continue
        wire = info.alias or name
        try:
            value = getattr(model, name)
        except AttributeError as exc:
            yield f"{path}/{wire}", f"reading .{name} raises {type(exc).__name__}"
            continue
        if value is None and not _allows_none(info.annotation):
            # some SDK builds give None for a missing field: `completion.choices[0]` then fails in user code
            yield f"{path}/{wire}", f".{name} reads as None, which its type does not allow"
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            yield from unreadable(item, f"{path}/{wire}/{i}" if isinstance(value, list) else f"{path}/{wire}")


def contract_requires(pointer: str, schema_name: str) -> bool:
    """Whether the contract's schema requires every field on the pointer's path (array indices skipped)."""
    from conformance.report.census import schema_tree

    node = schema_tree(schema_name)
    for part in [p for p in pointer.split("/") if p]:
        if part.isdigit():
            if node.items is None:
                return False
            node = node.items
            continue
        if part not in node.required or part not in node.properties:
            return False
        node = node.properties[part]
    return True


def _allows_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    return any(_allows_none(arg) for arg in typing.get_args(annotation)) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else False


def _brief(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sent_document(exchange: Exchange | None) -> Any:
    if exchange is None or exchange.response is None:
        return None
    try:
        return json.loads(exchange.response.body)
    except (ValueError, RecursionError):
        return None


def _failure(req_id: str, call: Call) -> Violation:
    exchange = call.exchange
    where = ""
    if exchange is not None and exchange.response is not None:
        where = f" (HTTP {exchange.response.status})"
    scenario = exchange.scenario if exchange is not None else ""
    what = "streaming" if call.stream else "non-streaming"
    message = f"the {call.sdk} SDK's {what} create() raised{where}: {call.error_text()}"
    if call.stream and call.chunks:
        message = f"the {call.sdk} SDK raised after {len(call.chunks)} chunk(s){where}: {call.error_text()}"
    if call.stream and exchange is not None and _ends_with_done(exchange) and _caused_by(call.error, ValueError):
        # the one failure every SGP server author asks about: say it in words
        message += "; the stream ends with data: [DONE], which this SDK parses as JSON"
    return Violation(req_id, message, "", scenario)


def _ends_with_done(exchange: Exchange) -> bool:
    if exchange.response is None:
        return False
    data = [e.data for e in parse_sse(exchange.response.text).events]
    return bool(data) and data[-1].strip() == DONE


def _not_answered(call: Call, req_id: str) -> NotJudged | None:
    """A note when the SDK's request was not answered with 2xx: the SDK rightly raises then, and the
    answer's status is judged by the requirements on that request (BASIC-001 for the minimal one, STRM-001
    for the minimal stream)."""
    exchange = call.exchange
    if exchange is None or exchange.response is None or 200 <= exchange.response.status < 300:
        return None
    owner = "STRM-001" if exchange.request.stream else "BASIC-001"
    return NotJudged(req_id, f"the SDK's request was answered with HTTP {exchange.response.status}", "",
                     exchange.scenario, needs=owner)


def completion_parsed(call: Call, sdk: SDK) -> list[Violation]:
    """CLIENT-001: the call returned the completion type, holding what the server sent."""
    req_id = "CLIENT-001"
    unanswered = _not_answered(call, req_id)
    if unanswered is not None:
        return [unanswered]
    if call.error is not None:
        return [_failure(req_id, call)]
    scenario = call.exchange.scenario if call.exchange is not None else COMPLETION_SCENARIO
    expected = _load(sdk.completion_type)
    if not isinstance(call.result, expected):
        return [Violation(req_id, f"the {call.sdk} SDK returned {type(call.result).__name__}, "
                                  f"not its completion type {expected.__name__}", "", scenario)]
    sent = _sent_document(call.exchange)
    # a field the SDK type requires but the contract leaves optional is CLIENT-004's (SHOULD), not a MUST here
    missing = [(where, what) for where, what in unreadable(call.result) if contract_requires(where, "chat-completion")]
    found = missing + list(differences(_as_dict(call.result), sent))
    out = [Violation(req_id, f"mis-parsed by {call.sdk}: {what}", where, scenario)
           for where, what in found[:MAX_DIFFS]]
    if len(found) > MAX_DIFFS:
        out.append(Violation(req_id, f"... and {len(found) - MAX_DIFFS} more difference(s)", "", scenario))
    return out


def stream_events(exchange: Exchange | None) -> list[tuple[int, Any]]:
    """(event index, parsed data) of the events an SDK turns into chunks: data that is not [DONE]."""
    if exchange is None or exchange.response is None:
        return []
    out: list[tuple[int, Any]] = []
    for i, event in enumerate(parse_sse(exchange.response.text).events):
        if event.data.startswith(DONE) or event.event not in ("message", ""):
            continue
        try:
            out.append((i, json.loads(event.data)))
        except (ValueError, RecursionError):
            out.append((i, None))
    return out


def stream_consumed(call: Call, sdk: SDK, req_id: str) -> list[Violation]:
    """CLIENT-002/003: the stream was iterated to its end, one chunk of the chunk type per JSON event,
    each holding what the server sent. A stream without JSON events gives the SDK nothing to parse: not
    judged (STRM-017 reports a stream without chunks)."""
    unanswered = _not_answered(call, req_id)
    if unanswered is not None:
        return [unanswered]
    scenario = call.exchange.scenario if call.exchange is not None else STREAM_SCENARIO
    events = stream_events(call.exchange)
    if call.error is not None:
        return [_failure(req_id, call)]
    if not events:
        return [NotJudged(req_id, "the stream carried no JSON events", "", scenario, needs="STRM-017")]
    if len(call.chunks) != len(events):
        return [Violation(req_id, f"the {call.sdk} SDK yielded {len(call.chunks)} chunk(s), the stream holds "
                                  f"{len(events)} JSON event(s)", "", scenario)]
    expected = _load(sdk.chunk_type)
    out: list[Violation] = []
    for (index, sent), chunk in zip(events, call.chunks, strict=True):
        if not isinstance(chunk, expected):
            out.append(Violation(req_id, f"the {call.sdk} SDK yielded {type(chunk).__name__}, not its chunk "
                                         f"type {expected.__name__}", f"/events/{index}", scenario))
            continue
        missing = [(where, what) for where, what in unreadable(chunk, f"/events/{index}")
                   if contract_requires(where.split("/", 3)[-1], "chat-completion-chunk")]
        found = [*missing, *differences(_as_dict(chunk), sent, f"/events/{index}")]
        for where, what in found:
            out.append(Violation(req_id, f"mis-parsed by {call.sdk}: {what}", where, scenario))
        if len(out) >= MAX_DIFFS:
            break
    return out[:MAX_DIFFS]


def _type_errors(model: type[Any], document: Any, prefix: str, scenario: str, sdk: str) -> list[Violation]:
    import pydantic

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.model_validate(document)
    except pydantic.ValidationError as exc:
        out = []
        for error in exc.errors()[:MAX_TYPE_ERRORS]:
            where = prefix + "".join(f"/{part}" for part in error.get("loc", ()))
            got = _brief(error.get("input"), 40)
            out.append(Violation("CLIENT-004", f"{sdk} type {model.__name__}: {error.get('msg')} (got {got})",
                                 where, scenario))
        return out
    return []


def strict_types(completion: Call | None, stream: Call | None, sdk: SDK) -> list[Violation]:
    """CLIENT-004: the bodies the SDK was given validate against its own types (its strict mode)."""
    out: list[Violation] = []
    judged = [c for c in (completion, stream) if c is not None and c.exchange is not None and c.exchange.ok]
    if not judged:
        return [NotJudged("CLIENT-004", "the SDK calls were not answered with 2xx", needs="BASIC-001")]
    if completion is not None and completion.exchange is not None and completion.exchange.ok:
        sent = _sent_document(completion.exchange)
        if sent is not None:
            out += _type_errors(_load(sdk.completion_type), sent, "", completion.exchange.scenario,
                                completion.sdk)
    if stream is not None and stream.exchange is not None and stream.exchange.ok:
        chunk_type = _load(sdk.chunk_type)
        for index, sent in stream_events(stream.exchange):
            if sent is not None:
                out += _type_errors(chunk_type, sent, f"/events/{index}", stream.exchange.scenario, stream.sdk)
            if len(out) >= MAX_TYPE_ERRORS:
                break
    return out[:MAX_TYPE_ERRORS]
