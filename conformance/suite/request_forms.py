"""Every documented request form, by name (FORM-001): each message role, content as a string and as parts,
both token caps, stop as a string and as a list, logit_bias, metadata, seed, parallel_tool_calls,
stream_options, each response_format type and each tool_choice form [doc Body; C §Request body; OpenAI].

A form is a change to the minimal request. Forms that need no optional feature share one request; those
tied to a feature (tools, tool_choice, stop, json_object, json_schema, include_usage) go in a request per
feature, so a server that declares the feature absent (`--without`) is not held to them. A group that is
refused is bisected: each of its forms is then sent alone, and the finding names the forms refused alone.
At depth deep every form is also sent alone. Scenario names: `forms_<group>` and `form_<form>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WEATHER = "get_weather"
CALL_ID = "call_sgp_conformance_1"
JSON_PROMPT = 'Reply with a JSON object of the form {"answer": "yes"} and nothing else.'
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                 "additionalProperties": False}

Patch = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Form:
    """One documented request form: what it is (as a user reads it), the optional feature it needs (a name of
    claims.FEATURES, or None) and the change it makes to a request body (body, tool) in place."""

    name: str
    what: str
    feature: str | None
    patch: Patch


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
        body["messages"] = [{"role": "user", "content": JSON_PROMPT}]
        body["response_format"] = fmt
        body["max_tokens"] = max(int(body.get("max_tokens") or 0), 32)

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
    Form("role-assistant-tool-calls", 'an "assistant" message with tool_calls', "tools", _tool_conversation),
    Form("role-tool", 'a "tool" message (a tool call\'s result)', "tools", _tool_conversation),
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

# the requests of a run: forms that can share a request share one; each group needs at most one feature.
# tool_choice "none" and "required" and a named function exclude each other, as do stop's two forms.
GROUPS: dict[str, tuple[str, ...]] = {
    "core": ("role-system", "role-developer", "role-user", "content-parts", "max_completion_tokens", "logit_bias",
             "metadata", "seed", "response_format-text"),
    "plain": ("role-user", "content-string", "max_tokens"),
    "stop_string": ("stop-string",),
    "stop_list": ("stop-list",),
    "tools": ("role-assistant-tool-calls", "role-tool", "parallel_tool_calls", "tool_choice-auto"),
    "tool_choice_none": ("tool_choice-none",),
    "tool_choice_required": ("tool_choice-required",),
    "tool_choice_function": ("tool_choice-function",),
    "json_object": ("response_format-json_object",),
    "json_schema": ("response_format-json_schema",),
    "stream_options": ("stream_options",),
}
# the scenario that sends each group: the plain forms are the minimal request itself
SCENARIO_OF: dict[str, str] = {name: "basic" if name == "plain" else f"forms_{name}" for name in GROUPS}


def group_feature(group: str) -> str | None:
    """The one optional feature the forms of `group` need (None: none)."""
    features = {BY_NAME[name].feature for name in GROUPS[group]} - {None}
    return next(iter(features), None)


def body_for(forms: tuple[str, ...], base: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    """The minimal request `base` (model, one user message, max_tokens) with every form of `forms` applied."""
    body = {**base, "messages": [dict(m) for m in base["messages"]]}
    for name in forms:
        BY_NAME[name].patch(body, tool)
    return body


def forms_of(scenario: str) -> tuple[str, ...]:
    """The forms a `forms_<group>` or `form_<form>` scenario sends."""
    if scenario.startswith("forms_"):
        return GROUPS[scenario.removeprefix("forms_")]
    return (scenario.removeprefix("form_"),)
