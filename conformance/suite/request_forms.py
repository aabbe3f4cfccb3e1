"""Every documented request form, by name (FORM-001): each message role, content as a string and as parts,
both token caps, stop as a string and as a list, logit_bias, metadata, seed, parallel_tool_calls,
stream_options, each response_format type and each tool_choice form [doc Body; C §Request body; OpenAI].

A form is a change to the minimal request. Forms that can share a request share one, so every form is sent
in two requests of its own (`forms_a`, `forms_b`) beside four the run sends anyway and that carry the rest
(`basic`, `tools`, `json_object`, `stream_tools`). Forms of a feature the server declares absent (`--without`) are left
out of the requests and not judged. A request that is refused is bisected: each of its forms is then sent
alone, and the finding names the forms refused alone. At depth deep every form is also sent alone
(`form_<name>`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conformance.checks import Violation

if TYPE_CHECKING:
    from conformance.transport.exchange import Exchange

WEATHER = "get_weather"
CALL_ID = "call_sgp_conformance_1"
JSON_PROMPT = 'Reply with a JSON object of the form {"answer": "yes"} and nothing else.'
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                 "additionalProperties": False}

Patch = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Form:
    """One documented request form: what it is (as a user reads it), the optional feature it needs (a name of
    claims.FEATURES, or None) and the change it makes to a request body (body, tool) in place. `first`: the
    change replaces the messages, so it comes before the changes that add to them."""

    name: str
    what: str
    feature: str | None
    patch: Patch
    first: bool = False


def _prepend(role: str, text: str) -> Patch:
    def patch(body: dict[str, Any], tool: dict[str, Any]) -> None:
        body["messages"] = [{"role": role, "content": text}, *body["messages"]]

    return patch


def _parts(body: dict[str, Any], tool: dict[str, Any]) -> None:
    for message in body["messages"]:
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            message["content"] = [{"type": "text", "text": message["content"]}]


def _set(**values: Any) -> Patch:
    def patch(body: dict[str, Any], tool: dict[str, Any]) -> None:
        body.update(values)

    return patch


def _completion_cap(body: dict[str, Any], tool: dict[str, Any]) -> None:
    body["max_completion_tokens"] = body.pop("max_tokens", 16)


def _tools(body: dict[str, Any], tool: dict[str, Any]) -> None:
    body.setdefault("tools", [tool])


def _with_tools(**values: Any) -> Patch:
    def patch(body: dict[str, Any], tool: dict[str, Any]) -> None:
        _tools(body, tool)
        body.update(values)

    return patch


def _tool_conversation(body: dict[str, Any], tool: dict[str, Any]) -> None:
    # a finished round of a tool call: the assistant's call and the tool's result, then the model answers
    _tools(body, tool)
    body["messages"] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": CALL_ID, "type": "function", "function": {"name": WEATHER, "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": '{"temperature_c": 18, "sky": "clear"}'},
    ]


def _json_prompt(fmt: dict[str, Any]) -> Patch:
    def patch(body: dict[str, Any], tool: dict[str, Any]) -> None:
        # OpenAI refuses json_object unless a message mentions JSON
        body["messages"] = [{"role": "user", "content": JSON_PROMPT}, *body["messages"]]
        body["response_format"] = fmt
        cap = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        body[cap] = max(int(body.get(cap) or 0), 32)

    return patch


def _stream_usage(body: dict[str, Any], tool: dict[str, Any]) -> None:
    body.update(stream=True, stream_options={"include_usage": True})


FORMS: tuple[Form, ...] = (
    Form("role-system", 'a "system" message', None, _prepend("system", "You are terse.")),
    Form("role-developer", 'a "developer" message', None, _prepend("developer", "Answer briefly.")),
    Form("role-user", 'a "user" message', None, lambda body, tool: None),
    Form("content-string", "message content as a string", None, lambda body, tool: None),
    Form("content-parts", 'message content as a list of parts ([{"type": "text", ...}])', None, _parts),
    Form("max_tokens", "max_tokens", None, lambda body, tool: None),
    Form("max_completion_tokens", "max_completion_tokens (without max_tokens)", None, _completion_cap),
    Form("logit_bias", 'logit_bias {"1": -1}', None, _set(logit_bias={"1": -1})),
    Form("metadata", "metadata of strings", None, _set(metadata={"suite": "sgp-conformance"})),
    Form("seed", "seed", None, _set(seed=7)),
    Form("response_format-text", 'response_format {"type": "text"}', None, _set(response_format={"type": "text"})),
    Form("stop-string", "stop as a string", "stop", _set(stop="STOP-SEQUENCE-A")),
    Form("stop-list", "stop as a list of strings", "stop", _set(stop=["STOP-SEQUENCE-A", "STOP-SEQUENCE-B"])),
    Form("role-assistant-tool-calls", 'an "assistant" message with tool_calls', "tools", _tool_conversation, True),
    Form("role-tool", 'a "tool" message (a tool call\'s result)', "tools", _tool_conversation, True),
    Form("parallel_tool_calls", "parallel_tool_calls false", "tools", _with_tools(parallel_tool_calls=False)),
    Form("tool_choice-auto", 'tool_choice "auto"', "tools", _with_tools(tool_choice="auto")),
    Form("tool_choice-none", 'tool_choice "none"', "tools", _with_tools(tool_choice="none")),
    Form("tool_choice-required", 'tool_choice "required"', "tool_choice", _with_tools(tool_choice="required")),
    Form("tool_choice-function", 'tool_choice naming a function ({"type": "function", ...})', "tool_choice",
         _with_tools(tool_choice={"type": "function", "function": {"name": WEATHER}})),
    Form("response_format-json_object", 'response_format {"type": "json_object"}', "json_object",
         _json_prompt({"type": "json_object"})),
    Form("response_format-json_schema", 'response_format {"type": "json_schema", ...}', "json_schema",
         _json_prompt({"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA,
                                                               "strict": True}})),
    Form("stream_options", 'stream_options {"include_usage": true} (with stream: true)', "include_usage",
         _stream_usage),
)
BY_NAME: dict[str, Form] = {form.name: form for form in FORMS}

# the forms each request carries. forms_a and forms_b are sent for FORM-001 alone; the others are requests
# the run sends anyway (scenarios.BUILDERS; tests/test_request_forms.py checks that they carry these forms).
# Forms that exclude each other (two tool_choice, stop or response_format values, the two token caps) are
# in different requests.
CARRIED: dict[str, tuple[str, ...]] = {
    "basic": ("role-user", "content-string", "max_tokens"),
    "forms_a": ("role-assistant-tool-calls", "role-tool", "role-system", "role-developer", "content-parts",
                "max_completion_tokens", "logit_bias", "metadata", "seed", "stop-list", "parallel_tool_calls",
                "tool_choice-auto", "response_format-json_schema"),
    "forms_b": ("stop-string", "tool_choice-none"),
    "tools": ("tool_choice-required",),
    "json_object": ("response_format-json_object",),
    "stream_tools": ("tool_choice-function", "stream_options", "response_format-text"),
}
OWN: tuple[str, ...] = ("forms_a", "forms_b")
# what a carrier needs besides its forms' features: where the server declares one absent, the carrier is not
# held to carry anything, and its held forms are sent alone instead
CARRIER_NEEDS: dict[str, tuple[str, ...]] = {"tools": ("tool_choice",), "json_object": ("json_object",),
                                            "stream_tools": ("streaming", "tool_choice")}
EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset({"tool_choice-auto", "tool_choice-none", "tool_choice-required", "tool_choice-function"}),
    frozenset({"stop-string", "stop-list"}),
    frozenset({"response_format-text", "response_format-json_object", "response_format-json_schema"}),
    frozenset({"max_tokens", "max_completion_tokens"}),
)


def held(form: str, without: frozenset[str]) -> bool:
    """Whether a server that declares the features `without` absent is held to `form`."""
    return BY_NAME[form].feature not in without


def body_for(forms: tuple[str, ...], base: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    """The minimal request `base` (model, one user message, max_tokens) with every form of `forms` applied."""
    body = {**base, "messages": [dict(m) for m in base["messages"]]}
    for form in sorted((BY_NAME[name] for name in forms), key=lambda f: not f.first):
        form.patch(body, tool)
    return body


# the forms every request carries (the minimal request's): never what sets one request apart from another
MINIMAL: frozenset[str] = frozenset({"role-user", "content-string", "max_tokens"})


def forms_in(body: Any) -> set[str]:
    """The documented forms (names of FORMS, MINIMAL left out) a request body carries, as far as its
    parameters show them: a generated valid request that is refused is FORM-001's finding when a form it
    carries is refused alone too (one fault, one failure)."""
    if not isinstance(body, dict):
        return set()
    found: set[str] = set()
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer", "tool"):
            found.add(f"role-{role}")
        if role == "assistant" and message.get("tool_calls"):
            found.add("role-assistant-tool-calls")
        if isinstance(message.get("content"), list):
            found.add("content-parts")
    found |= {name for name in ("max_completion_tokens", "logit_bias", "metadata", "seed", "parallel_tool_calls",
                                "stream_options") if body.get(name) is not None}
    stop = body.get("stop")
    if isinstance(stop, str):
        found.add("stop-string")
    elif isinstance(stop, list):
        found.add("stop-list")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and f"response_format-{response_format.get('type')}" in BY_NAME:
        found.add(f"response_format-{response_format.get('type')}")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        found.add("tool_choice-function")
    elif isinstance(choice, str) and f"tool_choice-{choice}" in BY_NAME:
        found.add(f"tool_choice-{choice}")
    return found


def refused(exchange: Exchange) -> bool:
    """An answer came, and it is not 2xx; no answer at all (a timeout) judges nothing, and a 2xx cut short
    was accepted (what it carried is other requirements' to judge)."""
    return exchange.response is not None and not 200 <= exchange.response.status < 300


def finding(form: str, exchange: Exchange, why: str) -> Violation:
    """FORM-001's finding on the request that carried `form` alone (or with others) and was refused; `why`
    is what came back (needs.why_not: needs imports the scenarios, which import this module)."""
    return Violation("FORM-001", f"expected 2xx to a request with {BY_NAME[form].what} (form {form}), got {why}",
                     "", exchange.scenario)
