"""The requests the hand-written suite sends, by name.

A scenario is sent at most once a run and its exchange is shared by every requirement that judges it,
which keeps a smoke run within a few dozen requests. Every body carries a small max_tokens.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.config import Config
from conformance.config.network import request_headers
from conformance.contract.profiles import PROFILES, Profile
from conformance.suite import request_forms
from conformance.transport.exchange import RequestSpec

PROMPT = "Count from 1 to 40, separated by spaces."
LONG_PROMPT = "Count from 1 to 300, separated by spaces."
# about 600 tokens of counting: over a second at any rate a person reads a stream at
LONG_TOKENS = 600
JSON_PROMPT = 'Reply with a JSON object of the form {"answer": "yes"} and nothing else.'
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# per run, so no server can special-case them
PROBE = secrets.token_hex(6)
WRONG_KEY = f"sgp-conformance-wrong-key-{PROBE}"
UNKNOWN_ACCOUNT = f"sgp-conformance-no-such-account-{PROBE}"
UNKNOWN_MODEL = f"sgp-conformance/no-such-model-{PROBE}"


@dataclass(frozen=True)
class Context:
    config: Config
    profile: Profile

    def auth(self) -> dict[str, str]:
        return self.profile.auth_headers(self.config.api_key or "")

    def headers(self, **extra: str) -> dict[str, str]:
        """The headers of a request: the run's extra headers (--header) first, so that nothing the suite
        sets is overridden by them (the auth scenarios vary the key on purpose), then content type, accept,
        the key and the account, then `extra`."""
        out = {**request_headers(self.config), "content-type": "application/json", "accept": "application/json",
               **self.auth()}
        if self.profile.account_header and self.config.account_id:
            out[self.profile.account_header] = self.config.account_id
        out.update(extra)
        return out

    def stream_headers(self) -> dict[str, str]:
        return self.headers(accept="text/event-stream")

    def body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": self.config.max_tokens,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}


def _json(name: str, ctx: Context, body: dict[str, Any], headers: dict[str, str] | None = None,
          stream: bool = False) -> RequestSpec:
    return RequestSpec(name, headers=headers if headers is not None else ctx.headers(),
                       body=json.dumps(body).encode(), params=body, stream=stream)


def _stream(name: str, ctx: Context, headers: dict[str, str]) -> RequestSpec:
    """The minimal streamed request with `headers`."""
    return _json(name, ctx, ctx.body(stream=True), headers, stream=True)


def _raw(name: str, ctx: Context, body: bytes, **headers: str) -> RequestSpec:
    return RequestSpec(name, headers=ctx.headers(**headers), body=body)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def _other_profile(profile: Profile) -> Profile:
    return next(p for p in PROFILES.values() if p.auth_header != profile.auth_header)


def _wrong_header(ctx: Context) -> dict[str, str]:
    other = _other_profile(ctx.profile)
    return {**_without(ctx.headers(), ctx.profile.auth_header), **other.auth_headers(ctx.config.api_key or "")}


def _upper_case(ctx: Context) -> dict[str, str]:
    return {k.upper(): v for k, v in ctx.headers().items()}


def _agree(ctx: Context, **extra: Any) -> dict[str, Any]:
    return ctx.body(seed=7, temperature=0, logprobs=True, top_logprobs=2, **extra)


def _agree_tools(ctx: Context, **extra: Any) -> dict[str, Any]:
    return ctx.body(seed=7, temperature=0, messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                    tools=[WEATHER_TOOL], tool_choice="auto", max_tokens=max(ctx.config.max_tokens, 32), **extra)


def overlap_marker(position: int) -> str:
    """The marker of the concurrency probe's request at `position`: one word, per run, that no other
    marker contains."""
    return f"zq{PROBE}k{position}q"


def overlap_request(ctx: Context, position: int, when: str) -> RequestSpec:
    """The concurrency probe's request at `position`, sent `when` ("alone" or "together"): its marker first
    in the prompt (an echoing model repeats it), seeded at temperature 0; every second one streamed."""
    stream = position % 2 == 1
    extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    body = ctx.body(messages=[{"role": "user", "content": f"{overlap_marker(position)} {PROMPT}"}], seed=7,
                    temperature=0, **extra)
    headers = ctx.stream_headers() if stream else ctx.headers()
    return _json(f"overlap_{position}_{when}", ctx, body, headers, stream=stream)


Builder = Callable[[Context], RequestSpec]


def _forms(name: str, forms: tuple[str, ...]) -> Builder:
    """The request of a group of documented forms (request_forms), or of one form alone."""

    def build(c: Context) -> RequestSpec:
        # forms of a feature the server declares absent (issue 19's --without) are left out
        without = frozenset(getattr(c.config, "without", ()) or ())
        body = request_forms.body_for(tuple(f for f in forms if request_forms.held(f, without)), c.body(),
                                      WEATHER_TOOL)
        stream = body.get("stream") is True
        return _json(name, c, body, c.stream_headers() if stream else c.headers(), stream=stream)

    return build

BUILDERS: dict[str, Builder] = {
    "basic": lambda c: _json("basic", c, c.body()),
    "no_key": lambda c: _json("no_key", c, c.body(), _without(c.headers(), c.profile.auth_header)),
    "empty_key": lambda c: _json(
        "empty_key", c, c.body(), {**c.headers(), c.profile.auth_header: c.profile.auth_prefix.strip()}),
    "wrong_key": lambda c: _json("wrong_key", c, c.body(), {**c.headers(), **c.profile.auth_headers(WRONG_KEY)}),
    "wrong_header": lambda c: _json("wrong_header", c, c.body(), _wrong_header(c)),
    "account_valid": lambda c: _json("account_valid", c, c.body()),
    "account_unknown": lambda c: _json(
        "account_unknown", c, c.body(), {**c.headers(), str(c.profile.account_header): UNKNOWN_ACCOUNT}),
    "header_case": lambda c: _json("header_case", c, c.body(), _upper_case(c)),
    "unknown_header": lambda c: _json(
        "unknown_header", c, c.body(), c.headers(**{"x-sgp-conformance-probe": PROBE})),
    "unknown_model": lambda c: _json("unknown_model", c, c.body(model=UNKNOWN_MODEL)),
    # invalid requests
    "val_missing_messages": lambda c: _json("val_missing_messages", c, c.body(messages=None)),
    "val_missing_model": lambda c: _json("val_missing_model", c, c.body(model=None)),
    "val_messages_string": lambda c: _json("val_messages_string", c, c.body(messages=PROMPT)),
    "val_model_integer": lambda c: _json("val_model_integer", c, c.body(model=42)),
    "val_message_without_role": lambda c: _json(
        "val_message_without_role", c, c.body(messages=[{"content": PROMPT}])),
    "val_malformed_json": lambda c: _raw("val_malformed_json", c, b'{"model": "x", "messages": [{"role": '),
    "val_json_array": lambda c: _raw("val_json_array", c, json.dumps([c.body()]).encode()),
    "val_text_plain": lambda c: _raw("val_text_plain", c, json.dumps(c.body()).encode(),
                                     **{"content-type": "text/plain"}),
    "val_temperature": lambda c: _json("val_temperature", c, c.body(temperature=5)),
    "val_n_zero": lambda c: _json("val_n_zero", c, c.body(n=0)),
    "val_top_logprobs": lambda c: _json("val_top_logprobs", c, c.body(logprobs=True, top_logprobs=21)),
    "val_stop_five": lambda c: _json("val_stop_five", c, c.body(stop=["a", "b", "c", "d", "e"])),
    "val_max_tokens_negative": lambda c: _json("val_max_tokens_negative", c, c.body(max_tokens=-1)),
    "val_empty_messages": lambda c: _json("val_empty_messages", c, c.body(messages=[])),
    "val_top_p": lambda c: _json("val_top_p", c, c.body(top_p=1.5)),
    "val_presence_penalty": lambda c: _json("val_presence_penalty", c, c.body(presence_penalty=3)),
    "val_frequency_penalty": lambda c: _json("val_frequency_penalty", c, c.body(frequency_penalty=-3)),
    "val_nan": lambda c: _raw("val_nan", c, json.dumps(c.body(), allow_nan=True)[:-1].encode()
                              + b', "temperature": NaN}'),
    # semantics
    "n2": lambda c: _json("n2", c, c.body(n=2)),
    "max_tokens_1": lambda c: _json("max_tokens_1", c, c.body(max_tokens=1)),
    "max_completion_tokens_1": lambda c: _json(
        "max_completion_tokens_1", c, c.body(max_tokens=None, max_completion_tokens=1)),
    "seed_a": lambda c: _json("seed_a", c, c.body(seed=7, temperature=0)),
    "seed_b": lambda c: _json("seed_b", c, c.body(seed=7, temperature=0)),
    "logprobs": lambda c: _json("logprobs", c, c.body(logprobs=True, top_logprobs=2)),
    "tools": lambda c: _json("tools", c, c.body(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL], tool_choice="required", max_tokens=max(c.config.max_tokens, 32))),
    "json_object": lambda c: _json("json_object", c, c.body(
        messages=[{"role": "user", "content": JSON_PROMPT}], response_format={"type": "json_object"},
        max_tokens=max(c.config.max_tokens, 32))),
    "stream": lambda c: _json("stream", c, c.body(
        n=2, stream=True, stream_options={"include_usage": True}),
        c.headers(accept="text/event-stream"), stream=True),
    # a stream long enough to last over a second on a real model, so that a clock that stamps each chunk
    # crosses a second boundary inside it (STRM-019)
    "stream_long": lambda c: _json("stream_long", c, c.body(
        messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=max(c.config.max_tokens, LONG_TOKENS),
        stream=True), c.stream_headers(), stream=True),
    # a streamed tool call: its fragments are what the SDKs assemble (STRM-020, STRM-022); it also carries
    # three documented forms (request_forms.CARRIED): a named tool_choice, stream_options, response_format text
    "stream_tools": lambda c: _json("stream_tools", c, c.body(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": WEATHER_TOOL["function"]["name"]}},
        response_format={"type": "text"}, stream_options={"include_usage": True},
        max_tokens=max(c.config.max_tokens, 32), stream=True), c.stream_headers(), stream=True),
    # one request answered whole and streamed (AGREE-001/002, LOGP-006..008): seeded, temperature 0, with
    # logprobs and the usage chunk, so every field the two deliveries share can be compared
    "agree_whole": lambda c: _json("agree_whole", c, _agree(c)),
    "agree_stream": lambda c: _json("agree_stream", c, _agree(c, stream=True, stream_options={"include_usage": True}),
                                    c.stream_headers(), stream=True),
    "agree_tools_whole": lambda c: _json("agree_tools_whole", c, _agree_tools(c)),
    "agree_tools_stream": lambda c: _json("agree_tools_stream", c, _agree_tools(
        c, stream=True, stream_options={"include_usage": True}), c.stream_headers(), stream=True),
    # "4" is in the prompt's answer (a model counting to 40) and in the reference server's echo of it
    "stop": lambda c: _json("stop", c, c.body(stop=["4"], max_tokens=max(c.config.max_tokens, 32))),
    # streams are held to the same rules of auth and validation as plain answers
    "stream_no_key": lambda c: _stream("stream_no_key", c, _without(c.stream_headers(), c.profile.auth_header)),
    "stream_empty_key": lambda c: _stream(
        "stream_empty_key", c, {**c.stream_headers(), c.profile.auth_header: c.profile.auth_prefix.strip()}),
    "stream_wrong_key": lambda c: _stream(
        "stream_wrong_key", c, {**c.stream_headers(), **c.profile.auth_headers(WRONG_KEY)}),
    "val_stream_missing_messages": lambda c: _json(
        "val_stream_missing_messages", c, c.body(messages=None, stream=True), c.stream_headers(), stream=True),
    # values outside the documented enumerations
    "val_role_unknown": lambda c: _json(
        "val_role_unknown", c, c.body(messages=[{"role": "assitant", "content": PROMPT}])),
    "val_response_format_unknown": lambda c: _json(
        "val_response_format_unknown", c, c.body(response_format={"type": "yaml_object"})),
    "val_tool_choice_unknown": lambda c: _json(
        "val_tool_choice_unknown", c, c.body(tools=[WEATHER_TOOL], tool_choice="sometimes")),
    # documented parameters with the wrong JSON type, one per observable effect; each is a scenario above
    # (stream, n2, logprobs) with only the type changed, which VAL-023 compares it with
    "type_stream_string": lambda c: _json(
        "type_stream_string", c, c.body(stream="true"), c.stream_headers(), stream=True),
    "type_n_string": lambda c: _json("type_n_string", c, c.body(n="2")),
    "type_logprobs_integer": lambda c: _json("type_logprobs_integer", c, c.body(logprobs=1, top_logprobs=2)),
}

# every documented request form (FORM-001): a request per group of forms, and one per form for bisecting
BUILDERS.update({scenario: _forms(scenario, request_forms.CARRIED[scenario]) for scenario in request_forms.OWN})
BUILDERS.update({f"form_{form.name}": _forms(f"form_{form.name}", (form.name,)) for form in request_forms.FORMS})

# which requirement reports that a valid scenario was not answered with 2xx (see conformance.suite.needs): the
# first requirement that exercises the feature the scenario adds to the minimal request
OWNERS: dict[str, str] = {
    "basic": "BASIC-001",
    "account_valid": "HDR-001",
    "header_case": "HDR-004",
    "unknown_header": "HDR-005",
    "n2": "SEM-002",
    "max_tokens_1": "SEM-006",
    "max_completion_tokens_1": "SEM-008",
    "seed_a": "SEM-009",
    "seed_b": "SEM-009",
    "stop": "SEM-010",
    "logprobs": "LOGP-001",
    "tools": "TOOL-001",
    "json_object": "FMT-001",
    "stream": "STRM-001",
    "stream_tools": "STRM-020",
    "agree_whole": "AGREE-002",
    "agree_stream": "AGREE-002",
    "agree_tools_whole": "AGREE-002",
    "agree_tools_stream": "AGREE-002",
}
# the requests that ought to be refused: a 5xx to any of them is ERR-005's
SHOULD_REFUSE: tuple[str, ...] = (
    "no_key", "empty_key", "wrong_key", "stream_no_key", "stream_empty_key", "stream_wrong_key",
    "account_unknown", "unknown_model", "val_missing_messages", "val_missing_model", "val_messages_string",
    "val_model_integer", "val_message_without_role", "val_malformed_json", "val_json_array", "val_text_plain",
    "val_temperature", "val_n_zero", "val_top_logprobs", "val_stop_five", "val_max_tokens_negative",
    "val_empty_messages", "val_top_p", "val_presence_penalty", "val_frequency_penalty", "val_nan",
    "val_stream_missing_messages", "val_role_unknown", "val_response_format_unknown", "val_tool_choice_unknown",
)

# values sent for the invalid-request scenarios that are not JSON bodies: a check cannot read them
NON_JSON_SCENARIOS = frozenset({"val_malformed_json", "val_json_array", "val_text_plain", "val_nan"})


def build(name: str, ctx: Context) -> RequestSpec:
    return BUILDERS[name](ctx)
