"""Faults between requests (issue 25): a stream that differs from the whole answer at temperature 0, logprobs
that disagree with usage, and servers that break only while requests overlap (CONC).

The overlap faults need requests that are in flight together: these variants hold every seeded request
(the probe's and the agreement pairs') for HOLD_S without blocking the server, as a slow model would, and
count the requests in flight; a request that met another in flight is "overlapped".
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .core import BOTH, OPENAI, SGP, Call, Mutant, Reply
from .hooks import both, on_chunks, on_completion

_M = Mutant
HOLD_S = 0.15
# the kill table runs MUST variants at depth smoke, which sends no probe; standard sends this one
PROBE_ARGS = ("--concurrency-probe", "4")


def _seeded_t0(call: Call) -> bool:
    body = call.json()
    return isinstance(body, dict) and "seed" in body and body.get("temperature") == 0


class Overlap:
    """Requests in flight, counted from the delay hook (before the app) to the response hook (after it)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.met: dict[int, bool] = {}
        self.stash: bytes | None = None

    def delay(self, call: Call) -> float:
        if not _seeded_t0(call):
            return 0.0
        self.in_flight += 1
        self.met[id(call)] = self.in_flight > 1
        return HOLD_S

    def finish(self, call: Call) -> bool:
        """Whether `call` overlapped another request; it is no longer in flight."""
        if id(call) not in self.met:
            return False
        met = self.met.pop(id(call)) or self.in_flight > 1
        self.in_flight -= 1
        return met


def _failing_under_overlap() -> Mutant:
    overlap = Overlap()

    def response(call: Call, reply: Reply) -> None:
        if overlap.finish(call):
            reply.status = 500
            reply.headers = [("content-type", "application/json")]
            reply.set_json({"error": {"message": "Internal Server Error", "type": "server_error"}})

    return _M("500 to a request that overlaps another (the same request alone is served)", "CONC-001", BOTH,
              response=response, delay=overlap.delay, run_args=PROBE_ARGS)


def _mixed_under_overlap() -> Mutant:
    overlap = Overlap()

    def response(call: Call, reply: Reply) -> None:
        met = overlap.finish(call)
        if met and reply.status == 200 and reply.is_json:
            # each overlapping answer goes to the next request that finishes
            overlap.stash, reply.body = reply.body, overlap.stash or reply.body
        if overlap.in_flight == 0:
            overlap.stash = None

    return _M("answers of overlapping requests are swapped between them", "CONC-004", BOTH,
              response=response, delay=overlap.delay, run_args=PROBE_ARGS)


def _garbled_under_overlap() -> Mutant:
    overlap = Overlap()

    def response(call: Call, reply: Reply) -> None:
        if overlap.finish(call) and reply.status == 200 and reply.is_json:
            doc = reply.json()
            for choice in doc.get("choices") or []:
                message = choice.get("message") or {}
                if isinstance(message.get("content"), str):
                    message["content"] = message["content"][::-1]
            reply.set_json(doc)

    return _M("under overlap, answers come back garbled (the content reversed)", "CONC-004", (SGP,),
              response=response, delay=overlap.delay, run_args=PROBE_ARGS)


def _stream_id_under_overlap() -> Mutant:
    overlap = Overlap()
    restamp = on_chunks(lambda items, call: _last_chunk_id(items))

    def response(call: Call, reply: Reply) -> None:
        if overlap.finish(call):
            restamp(call, reply)

    return _M("under overlap, a stream's last chunk carries another id (STRM-013 breaks only then)", "STRM-013",
              BOTH, response=response, delay=overlap.delay, run_args=PROBE_ARGS)


def _last_chunk_id(items: list[Any]) -> None:
    chunks = [item for item in items if isinstance(item, dict)]
    if chunks:
        chunks[-1]["id"] = f"chatcmpl-{uuid.uuid4().hex}"


def _same_id_under_overlap() -> Mutant:
    overlap = Overlap()

    def response(call: Call, reply: Reply) -> None:
        if overlap.finish(call) and reply.status == 200 and reply.is_json:
            doc = json.loads(reply.body)
            doc["id"] = "chatcmpl-shared"
            reply.set_json(doc)

    return _M("overlapping requests get the same response id", "CONC-003", (SGP,),
              response=response, delay=overlap.delay, run_args=PROBE_ARGS)


def _stream_t0(call: Call) -> bool:
    body = call.json()
    return _seeded_t0(call) and isinstance(body, dict) and body.get("stream") is True


def _stream_finish(items: list[Any], call: Call) -> None:
    if not _stream_t0(call):
        return
    for item in items:
        for choice in item.get("choices") or [] if isinstance(item, dict) else []:
            reason = choice.get("finish_reason")
            if reason in ("stop", "length"):
                choice["finish_reason"] = {"stop": "length", "length": "stop"}[reason]


def _stream_content(items: list[Any], call: Call) -> None:
    if not _stream_t0(call):
        return
    for item in items:
        for choice in item.get("choices") or [] if isinstance(item, dict) else []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                delta["content"] = delta["content"].upper()
                return


def _usage_under(doc: dict[str, Any], call: Call) -> None:
    body = call.json()
    usage = doc.get("usage")
    # n = 1 and two tokens or more, as LOGP-006 judges: a count under the number of choices that carry text
    # would break SEM-011 as well (one fault, one failure)
    if (isinstance(body, dict) and body.get("logprobs") is True and body.get("n", 1) == 1
            and isinstance(usage, dict) and usage.get("completion_tokens", 0) >= 2):
        usage["completion_tokens"] -= 1
        usage["total_tokens"] -= 1


def _usage_chunk_under(items: list[Any], call: Call) -> None:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("usage"), dict):
            _usage_under(item, call)


def _greedy_entries(doc: dict[str, Any], call: Call) -> Iterator[tuple[dict[str, Any], list[float]]]:
    """Each logprob entry of an answer to a temperature-0 request, with its top_logprobs' values."""
    body = call.json()
    if not (isinstance(body, dict) and body.get("temperature") == 0):
        return
    for choice in doc.get("choices") or []:
        for entry in (choice.get("logprobs") or {}).get("content") or []:
            yield entry, [t["logprob"] for t in entry.get("top_logprobs") or []]


def _chosen_below_top(doc: dict[str, Any], call: Call) -> None:
    for entry, top in _greedy_entries(doc, call):
        if top:
            entry["logprob"] = min(top) - 1.0


def _chosen_not_likeliest(doc: dict[str, Any], call: Call) -> None:
    for entry, top in _greedy_entries(doc, call):
        if len(set(top)) > 1:
            # not below the lowest alternative (LOGP-007 holds), but below the likeliest one
            entry["logprob"] = min(top)


MUTANTS: dict[str, Mutant] = {
    "agree_stream_finish_differs": _M('at temperature 0, a stream ends with "length" where the whole answer '
                                      'ends with "stop" (and the reverse)',
                                      "AGREE-002", BOTH, response=on_chunks(_stream_finish)),
    "agree_stream_content_differs": _M("at temperature 0, a stream's first word is upper-cased, unlike the whole "
                                       "answer's", "AGREE-001", (OPENAI,), response=on_chunks(_stream_content)),
    "logp_count_off_usage": _M("with logprobs, usage counts one completion token less than the entries",
                               "LOGP-006", BOTH, response=both(_usage_under, _usage_chunk_under)),
    "logp_chosen_not_likeliest": _M("at temperature 0, the chosen token's logprob is the lowest of its top_logprobs, "
                                    "not the highest", "LOGP-008", (SGP,),
                                    response=on_completion(_chosen_not_likeliest)),
    "logp_chosen_below_top": _M("at temperature 0, the chosen token's logprob is below all its top_logprobs",
                                "LOGP-007", (SGP,), response=on_completion(_chosen_below_top)),
    "conc_500_under_overlap": _failing_under_overlap(),
    "conc_answers_mixed": _mixed_under_overlap(),
    "conc_answers_garbled": _garbled_under_overlap(),
    "conc_stream_id_under_overlap": _stream_id_under_overlap(),
    "conc_same_id_under_overlap": _same_id_under_overlap(),
}


# --- negative controls: correct servers the CONC and AGREE rules must not fail ------------------------------


class _Varying:
    """Seeded temperature-0 answers that end with a word drawn afresh on every call: sampling that is not
    deterministic, which nothing promises it is (and no echo of the prompt, so no answer is bound to equal
    another)."""

    def response(self, call: Call, reply: Reply) -> None:
        body = call.json()
        # a word after a JSON-mode answer would break response_format, which is no open point
        if reply.status != 200 or not _seeded_t0(call) or body.get("response_format") is not None:
            return
        word = f" {secrets.token_hex(3)}"
        if reply.is_json:
            doc = reply.json()
            for choice in doc.get("choices") or []:
                message = choice.get("message") or {}
                if isinstance(message.get("content"), str):
                    message["content"] += word
            reply.set_json(doc)
        elif reply.is_stream:
            on_chunks(lambda items, c: _append_last(items, word))(call, reply)


def _append_last(items: list[Any], word: str) -> None:
    last: dict[int, dict[str, Any]] = {}
    for item in items:
        for choice in item.get("choices") or [] if isinstance(item, dict) else []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                last[choice.get("index", 0)] = delta
    for delta in last.values():
        delta["content"] += word


class _OneAtATime:
    """Holds each request until the previous one is answered whole (a stream: its last event)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio

        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            await self.app(scope, receive, send)


@dataclass(frozen=True)
class _Serialised(Mutant):
    """A control that serialises requests around the variant (slow but correct)."""

    def wrap(self, app: Any, settings: Any) -> Any:
        return _OneAtATime(super().wrap(app, settings))


CONTROLS: dict[str, Mutant] = {
    "open_nondeterministic": _M("seeded temperature-0 answers end with a new random word on every call (no "
                                "determinism claimed)", None, BOTH, response=_Varying().response, run_args=PROBE_ARGS,
                                allowed=frozenset({"SEM-009", "AGREE-001"})),
    "open_serialised": _Serialised("requests are handled one at a time, each held 0.15 s (slow but correct)", None,
                                   BOTH, delay=lambda call: HOLD_S if _seeded_t0(call) else 0.0,
                                   run_args=PROBE_ARGS),
}
