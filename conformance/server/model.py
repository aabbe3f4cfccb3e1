"""A deterministic stand-in for a language model: it echoes the last user message.

Everything a client can observe follows from the request alone (plus the random ids), so a conformance
check or a client's test can predict the answer: the same request gives the same content, finish reasons,
usage and logprobs; `seed` only varies the logprob values. Both the JSON and the streamed rendering are
built from one `Completion`, which is what makes the assembled stream equal the non-streamed answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

# a word with the spaces before it, one punctuation mark with the spaces before it, or trailing spaces:
# every character lands in exactly one token, so "".join(tokenize(t)) == t
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
EMPTY_PROMPT_REPLY = "Hello"
# a model stops on its own at some point; keeps a huge prompt from making a huge answer
MAX_REPLY_TOKENS = 1024
STRUCTURED_HINT_TOKENS = 5
# alternatives offered in top_logprobs: more than the 20 OpenAI allows, so one can be skipped when it
# equals the chosen token
_ALTERNATIVES = (
    " the",
    " a",
    " and",
    " to",
    " of",
    " in",
    " is",
    " it",
    " that",
    " for",
    ",",
    ".",
    " on",
    " with",
    " as",
    " was",
    " be",
    " at",
    " by",
    " this",
    " an",
    " or",
    "!",
    "?",
)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    # the top alternatives, sorted by logprob descending; the first one is the chosen token
    top: tuple[tuple[str, float], ...]

    def entry(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": list(self.token.encode("utf-8")),
            "top_logprobs": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}
                for token, logprob in self.top
            ],
        }


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str


@dataclass(frozen=True)
class Choice:
    index: int
    # content tokens, or the tokens of the tool call's arguments
    tokens: tuple[str, ...]
    finish_reason: str
    tool_call: ToolCall | None
    # None when logprobs were not asked for; one entry per content token otherwise
    logprobs: tuple[TokenLogprob, ...] | None

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def content(self) -> str | None:
        return None if self.tool_call else self.text


@dataclass(frozen=True)
class Completion:
    choices: tuple[Choice, ...]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.tokens) for choice in self.choices)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        }


# --- reading the request ---------------------------------------------------------------------------


def message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    # one token for each message's role, as chat templates spend at least one on it
    return sum(1 + len(tokenize(message_text(m))) for m in messages)


def reply_text(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = message_text(users[-1]) if users else ""
    if not text.strip():
        return EMPTY_PROMPT_REPLY
    return "".join(tokenize(text)[:MAX_REPLY_TOKENS])


def structured_hint(reply: str) -> str:
    """The start of the reply, used as the text inside JSON answers.

    Short on purpose: a JSON answer, a tool call's arguments included, should fit in the small
    max_tokens conformance suites send (16 to 32), or it can only ever end with "length".
    """
    return "".join(tokenize(reply)[:STRUCTURED_HINT_TOKENS]).strip() or EMPTY_PROMPT_REPLY


def token_limit(body: dict[str, Any]) -> int | None:
    limits = [int(body[k]) for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None]
    return min(limits) if limits else None


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    # an empty stop string would match before the first token: treat it as no stop at all
    return [s for s in stops if isinstance(s, str) and s]


def chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function definition the model calls, or None for a text answer."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        for tool in tools:
            if tool["function"].get("name") == wanted:
                return tool["function"]
    return tools[0]["function"]


# --- values that satisfy a JSON Schema, for tool arguments and json_schema output ---------------------


def example_value(schema: Any, hint: str, depth: int = 0) -> Any:
    """A simple value valid under the common keywords of schema; best effort for the rest."""
    if not isinstance(schema, dict) or depth > 8:
        return hint
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_value(schema[key][0], hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        value = {name: example_value(sub, hint, depth + 1) for name, sub in properties.items()}
        for name in schema.get("required") or []:
            if isinstance(name, str) and name not in value:
                value[name] = hint
        return value
    if kind == "array":
        count = _bounded(schema.get("minItems"), 1)
        if schema.get("maxItems") == 0:
            count = 0
        return [example_value(schema.get("items"), hint, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _example_number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = hint[: schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else hint
    return text.ljust(_bounded(schema.get("minLength"), 0), "x")


def _bounded(value: Any, default: int) -> int:
    # the schema comes from the caller: a minItems of 10**9 must not exhaust the server
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, min(value, 256))
    return default


def example_json(schema: Any, hint: str, *, object_only: bool = False) -> str:
    """example_value as JSON text; an object if the schema defeats the generator (huge bounds, ...)."""
    try:
        value = example_value(schema, hint)
        if object_only and not isinstance(value, dict):
            # tool arguments are an object whatever the parameters schema says (OpenAI's rule)
            value = {}
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return "{}"


def _example_number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + 1
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - 1
    value: int | float = low if isinstance(low, int | float) and not isinstance(low, bool) else 1
    if isinstance(high, int | float) and not isinstance(high, bool) and value > high:
        value = high
    return math.ceil(value) if integer else float(value)


# --- generation ------------------------------------------------------------------------------------


def _generate(tokens: list[str], limit: int | None, stops: list[str]) -> tuple[list[str], str]:
    """Emit tokens one by one as a model would, stopping at the token limit or when a stop appears."""
    emitted: list[str] = []
    text = ""
    for token in tokens:
        if limit is not None and len(emitted) >= limit:
            return emitted, "length"
        emitted.append(token)
        text += token
        hits = [text.find(stop) for stop in stops if stop in text]
        if hits:
            # the stop sequence itself is never part of the answer, even when it starts mid-token
            return _cut(emitted, min(hits)), "stop"
    return emitted, "stop"


def _cut(tokens: list[str], length: int) -> list[str]:
    kept: list[str] = []
    used = 0
    for token in tokens:
        if used + len(token) > length:
            if length > used:
                kept.append(token[: length - used])
            break
        kept.append(token)
        used += len(token)
    return kept


def _unit(*parts: object) -> float:
    # hashlib, not hash(): Python salts str hashes per process, and answers must match across restarts
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _logprobs(tokens: list[str], top_n: int, seed: Any, index: int) -> tuple[TokenLogprob, ...]:
    entries: list[TokenLogprob] = []
    for position, token in enumerate(tokens):
        # the chosen token always has p >= 0.5, so it tops the list, and the alternatives share the rest
        # in halves: probabilities stay below 1 in sum and strictly decrease
        p = 0.5 + 0.49 * _unit(seed, index, position, token)
        logprob = math.log(p)
        start = int(_unit("alt", seed, position, token) * len(_ALTERNATIVES))
        rotated = _ALTERNATIVES[start:] + _ALTERNATIVES[:start]
        others = [alt for alt in rotated if alt != token][: max(top_n - 1, 0)]
        top = [(token, logprob)] + [(alt, math.log((1 - p) / 2 ** (j + 1))) for j, alt in enumerate(others)]
        entries.append(TokenLogprob(token, logprob, tuple(top[:top_n])))
    return tuple(entries)


def complete(body: dict[str, Any]) -> Completion:
    """The answer to a validated request body."""
    messages = body["messages"]
    n = int(body.get("n", 1))
    limit = token_limit(body)
    reply = reply_text(messages)
    tool = chosen_tool(body)
    response_format = body.get("response_format") or {}
    kind = response_format.get("type", "text") if isinstance(response_format, dict) else "text"
    stops = stop_sequences(body)
    asked_logprobs = body.get("logprobs") is True
    top_n = int(body.get("top_logprobs", 0)) if asked_logprobs else 0
    seed = body.get("seed")
    hint = structured_hint(reply)

    if tool is not None:
        planned = example_json(tool.get("parameters", {}), hint, object_only=True)
        # stop sequences apply to content only; structured output is never cut short by them
        stops = []
    elif kind == "json_object":
        planned = json.dumps({"echo": hint}, ensure_ascii=False)
        stops = []
    elif kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema", {})
        planned = example_json(schema, hint)
        stops = []
    else:
        planned = reply

    choices: list[Choice] = []
    for index in range(n):
        tokens, finish = _generate(tokenize(planned), limit, stops)
        call = None
        if tool is not None:
            call = ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=str(tool.get("name", "")))
            # a call cut by the token limit stays "length": its arguments are not valid JSON
            finish = "tool_calls" if finish == "stop" else finish
        logprobs = None
        if asked_logprobs:
            logprobs = () if call else _logprobs(tokens, top_n, seed, index)
        choices.append(Choice(index, tuple(tokens), finish, call, logprobs))
    return Completion(tuple(choices), prompt_tokens(messages))
