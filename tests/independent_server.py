"""A second, small chat-completions server, written from docs/contract.md alone: the negative controls of
issue 19. It shares no code with conformance/server (the reference server) nor with the suite's checks:
a plain ASGI app, its own validation, its own toy model.

Two readings of the contract, one per `Stance`:

- STATED: enforces exactly what the contract states (section 14's settled rules) and nothing it leaves
  open: it refuses a body that is not a JSON object, lacks `messages` or `model`, gives them the wrong
  type, holds a message that is no object, breaks `top_logprobs`-needs-`logprobs`, and under `openai` a
  message without a documented role or content; it accepts everything else (bounds, enum values, nulls,
  wrong-typed optional parameters, unknown models and accounts, text/plain). It keeps the recommended
  rules too. It must pass `--fail-on should` in both profiles, whatever the seed.
- ACCEPTING: takes the other side of every open point it can: nulls anywhere, a role-less or unknown-role
  message under `sgp`, 403 for a refused key, `{"detail": ...}` auth bodies under `sgp`, `data: [DONE]`
  under `sgp`, a dated model name, `created` an hour off, fewer top_logprobs than asked, a chunk model
  that changes, no request id, `stop` as the finish of a tool call. It must pass `--fail-on must`.

    app = IndependentServer("sgp", Stance.STATED, keys=("k",))
"""

from __future__ import annotations

import enum
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROLES = ("developer", "system", "user", "assistant", "tool", "function")
WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
PATHS = {"sgp": "/v4/beta/chat/completions", "openai": "/chat/completions"}


class Stance(enum.Enum):
    STATED = "stated"
    ACCEPTING = "accepting"


class Refusal(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where, self.message = where, message


class IndependentServer:
    """An ASGI app serving POST <path> for `profile` ("sgp" or "openai") with the given keys."""

    def __init__(self, profile: str, stance: Stance, keys: tuple[str, ...] = ("key",)) -> None:
        self.profile, self.stance, self.keys = profile, stance, keys
        self.counter = 0

    # -- HTTP ------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"].removeprefix("/v1") if self.profile == "openai" else scope["path"]
        if scope["method"] != "POST" or path != PATHS[self.profile]:
            await self._json(send, 404, self._error(404, "not found", "not_found"))
            return
        key = self._key(headers)
        if key not in self.keys:
            status = 403 if self.stance is Stance.ACCEPTING else 401
            await self._json(send, status, self._error(status, "invalid or missing key", "invalid_api_key"))
            return
        try:
            body = self._parse(raw)
        except Refusal as refusal:
            await self._json(send, *self._invalid(refusal))
            return
        stream = body.get("stream") in (True, "true", 1)
        if stream:
            await self._stream(send, body)
        else:
            await self._json(send, 200, self._completion(body))

    def _key(self, headers: dict[str, str]) -> str | None:
        if self.profile == "sgp":
            return headers.get("x-api-key")
        auth = headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def _error(self, status: int, message: str, code: str) -> dict[str, Any]:
        if self.profile == "openai":
            return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return {"detail": message}

    def _invalid(self, refusal: Refusal) -> tuple[int, dict[str, Any]]:
        if self.profile == "openai":
            return 400, {"error": {"message": f"{refusal.where}: {refusal.message}", "type": "invalid_request_error",
                                   "param": refusal.where, "code": None}}
        loc = ["body", *[p for p in refusal.where.split("/") if p]]
        return 422, {"detail": [{"loc": loc, "msg": refusal.message, "type": "value_error"}]}

    async def _json(self, send: Send, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if self.stance is Stance.STATED:
            head.append((b"x-request-id", f"req-{self.counter}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})

    # -- what the contract states of a request -----------------------------------------------------------------

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            # Python's json takes NaN: refusing it is open (docs/contract.md #open-nan-request)
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refusal("", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise Refusal("", "the body is not a JSON object")
        if self.stance is Stance.ACCEPTING:
            body = _without_nulls(body)
        else:
            # null for an optional parameter reads as absent (OpenAI does so); required ones stay
            body = {k: v for k, v in body.items() if v is not None or k in ("messages", "model")}
        for name in ("messages", "model"):
            if name not in body:
                raise Refusal(f"/{name}", "field required")
        if not isinstance(body["messages"], list):
            raise Refusal("/messages", "messages is an array")
        if not isinstance(body["model"], str) or not body["model"]:
            raise Refusal("/model", "model is a non-empty string")
        for i, message in enumerate(body["messages"]):
            if not isinstance(message, dict):
                raise Refusal(f"/messages/{i}", "a message is an object")
            if self.profile == "openai":
                self._openai_message(message, i)
        if "top_logprobs" in body and body.get("logprobs") is not True:
            raise Refusal("/top_logprobs", "top_logprobs needs logprobs true")
        return body

    @staticmethod
    def _openai_message(message: dict[str, Any], i: int) -> None:
        """OpenAI's specification: a documented role, and content unless an assistant message."""
        if message.get("role") not in ROLES:
            raise Refusal(f"/messages/{i}/role", "a documented role is required")
        content = message.get("content")
        if message["role"] != "assistant" and not isinstance(content, (str, list)):
            raise Refusal(f"/messages/{i}/content", "content is a string or an array of parts")
        if isinstance(content, list) and not content:
            raise Refusal(f"/messages/{i}/content", "content parts may not be empty")

    # -- the toy model ---------------------------------------------------------------------------------------

    def _limit(self, body: dict[str, Any]) -> int:
        """The tokens a choice may hold: the smaller of max_tokens and max_completion_tokens (16 without)."""
        limits = [body.get(name) for name in ("max_completion_tokens", "max_tokens")]
        return min([v for v in limits if isinstance(v, int) and not isinstance(v, bool) and v >= 1] or [16])

    def _choices(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Per choice: tokens, finish_reason, tool calls (or None)."""
        n = body.get("n")
        n = n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 128 else 1
        limit = self._limit(body)
        tools = body.get("tools") if isinstance(body.get("tools"), list) else []
        names = [t["function"]["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
                 and isinstance(t["function"].get("name"), str)]
        choice = body.get("tool_choice")
        out = []
        for index in range(n):
            self.counter += 1
            if names and choice != "none":
                function = choice.get("function") if isinstance(choice, dict) else None
                wanted = function.get("name") if isinstance(function, dict) else None
                name = wanted if isinstance(wanted, str) else names[0]
                call = {"id": f"call_{self.counter}_{index}", "type": "function",
                        "function": {"name": name, "arguments": "{}"}}
                finish = "stop" if self.stance is Stance.ACCEPTING else "tool_calls"
                out.append({"tokens": [], "finish": finish, "calls": [call]})
                continue
            fmt = body.get("response_format")
            if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
                words = ['{"answer":', '"yes"}']
            else:
                words = list(WORDS)
            stops = body.get("stop")
            stops = [stops] if isinstance(stops, str) else [s for s in stops or [] if isinstance(s, str)] \
                if isinstance(stops, list) else []
            tokens = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            finish = "stop"
            for cut, _ in enumerate(tokens):
                text = "".join(tokens[:cut + 1])
                if any(s and s in text for s in stops):
                    tokens, finish = tokens[:cut], "stop"
                    break
            if len(tokens) > limit:
                tokens, finish = tokens[:limit], "length"
            out.append({"tokens": tokens, "finish": finish, "calls": None})
        return out

    def _logprobs(self, body: dict[str, Any], tokens: list[str]) -> dict[str, Any] | None:
        if body.get("logprobs") is not True:
            return None
        k = body.get("top_logprobs")
        # at most OpenAI's 20 alternatives, whatever was asked (fewer may come back [OpenAI])
        k = min(k, 20) if isinstance(k, int) and not isinstance(k, bool) and k >= 0 else 0
        if self.stance is Stance.ACCEPTING:
            k = min(k, 1)

        def entry(token: str, rank: int) -> dict[str, Any]:
            return {"token": token, "logprob": -0.25 * (rank + 1), "bytes": list(token.encode())}

        content = [{**entry(t, 0), "top_logprobs": [entry(t if r == 0 else f"{t}{r}", r) for r in range(k)]}
                   for t in tokens]
        return {"content": content, "refusal": None}

    def _model(self, body: dict[str, Any]) -> str:
        model = str(body["model"])
        return f"{model}-2026-01-01" if self.stance is Stance.ACCEPTING else model

    def _created(self) -> int:
        return int(time.time()) - (3600 if self.stance is Stance.ACCEPTING else 0)

    def _usage(self, body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) + 1 for m in body["messages"] if isinstance(m, dict))
        completion = sum(max(len(c["tokens"]), 1 if c["calls"] else 0) for c in choices)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        choices = self._choices(body)
        out = []
        for index, c in enumerate(choices):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(c["tokens"]) if not c["calls"] else None,
                                       "refusal": None}
            if c["calls"]:
                message["tool_calls"] = c["calls"]
            out.append({"index": index, "message": message, "finish_reason": c["finish"],
                        "logprobs": self._logprobs(body, c["tokens"])})
        return {"id": f"chatcmpl-{self.counter}", "object": "chat.completion", "created": self._created(),
                "model": self._model(body), "choices": out, "usage": self._usage(body, choices)}

    async def _stream(self, send: Send, body: dict[str, Any]) -> None:
        choices = self._choices(body)
        base = {"id": f"chatcmpl-{self.counter}", "object": "chat.completion.chunk", "created": self._created(),
                "model": self._model(body)}
        events: list[dict[str, Any]] = []

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None,
                  position: int = 0) -> dict[str, Any]:
            doc = {**base, "choices": [{"index": index, "delta": delta, "finish_reason": finish,
                                        "logprobs": logprobs}]}
            if self.stance is Stance.ACCEPTING and position:
                doc["model"] = f"{base['model']}-replica"
            return doc

        for index, c in enumerate(choices):
            events.append(chunk(index, {"role": "assistant", "content": ""}))
            for position, token in enumerate(c["tokens"], 1):
                lp = self._logprobs(body, [token])
                events.append(chunk(index, {"content": token}, logprobs=lp, position=position))
            for i, call in enumerate(c["calls"] or []):
                events.append(chunk(index, {"tool_calls": [{"index": i, **call}]}))
            events.append(chunk(index, {}, c["finish"]))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            events.append({**base, "choices": [], "usage": self._usage(body, choices)})
        data = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
        if self.profile == "openai" or self.stance is Stance.ACCEPTING:
            data += b"data: [DONE]\n\n"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": data})


def _without_nulls(value: Any) -> Any:
    """Every null dropped, at any depth (except in messages' required places): the accepting reading."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None or k in ("messages", "model")}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return 1.0
    return value
