"""Faults of what an answer owes its request (SEM), of logprobs (LOGP), tool calls (TOOL) and response_format
(FMT): parameters ignored, counts that do not add up, timestamps, models and finish reasons that lie.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

from .core import BOTH, OPENAI, SGP, Call, Mutant
from .hooks import _logprob_entries, _tool_calls, both, chunk_each, each_choice, on_body, on_completion

_M = Mutant


def _usage_total_off(doc: dict[str, Any], call: Call) -> None:
    usage = doc.get("usage")
    if isinstance(usage, dict):
        usage["total_tokens"] += 1


def _ignore(key: str, *, stream_only: bool = False) -> Callable[[Any, Call], None]:
    def fix(body: Any, call: Call) -> None:
        if isinstance(body, dict) and (not stream_only or body.get("stream") is True):
            body.pop(key, None)

    return fix


def _ignore_both_limits(body: Any, call: Call) -> None:
    if isinstance(body, dict):
        body.pop("max_tokens", None), body.pop("max_completion_tokens", None)


def _created_times(factor: int = 1, offset: int = 0) -> Callable[[dict[str, Any], Call], None]:
    def change(doc: dict[str, Any], call: Call) -> None:
        doc["created"] = doc["created"] * factor + offset

    return change


def _chunk_created_ms(chunk: dict[str, Any], position: int) -> None:
    chunk["created"] *= 1000


def _model(name: str) -> Callable[[dict[str, Any], Call], None]:
    def change(doc: dict[str, Any], call: Call) -> None:
        doc["model"] = name

    return change


def _length_to_stop(choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") == "length":
        choice["finish_reason"] = "stop"


def _vary_content(doc: dict[str, Any], call: Call) -> None:
    # sampling that ignores the seed: the same seeded request gets different words
    body = call.json()
    if not (isinstance(body, dict) and "seed" in body):
        return
    for choice in doc.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            message["content"] += f" {secrets.token_hex(3)}"


def _first_choice_usage(doc: dict[str, Any], call: Call) -> None:
    usage = doc.get("usage")
    if isinstance(usage, dict) and len(doc.get("choices") or []) > 1:
        usage["completion_tokens"] = 1
        usage["total_tokens"] = usage["prompt_tokens"] + 1


def _logprobs_null(doc: dict[str, Any], call: Call) -> None:
    for choice in doc.get("choices") or []:
        choice["logprobs"] = None


def _positive_logprob(doc: dict[str, Any], call: Call) -> None:
    for entry in _logprob_entries(doc):
        entry["logprob"] = 0.25


def _wrong_bytes(doc: dict[str, Any], call: Call) -> None:
    for entry in _logprob_entries(doc):
        entry["bytes"] = [min(b + 1, 255) for b in entry["bytes"]]


def _code_point_bytes(doc: dict[str, Any], call: Call) -> None:
    entries = _logprob_entries(doc)
    if entries:
        entries[0].update(token="é", bytes=[233])


def _top_short(doc: dict[str, Any], call: Call) -> None:
    for entry in _logprob_entries(doc):
        entry["top_logprobs"] = entry["top_logprobs"][:1]


def _top_unsorted(doc: dict[str, Any], call: Call) -> None:
    for entry in _logprob_entries(doc):
        entry["top_logprobs"] = list(reversed(entry["top_logprobs"]))


def _alternative_for_top_zero(doc: dict[str, Any], call: Call) -> None:
    body = call.json()
    if isinstance(body, dict) and body.get("top_logprobs") == 0:
        for entry in _logprob_entries(doc):
            entry["top_logprobs"] = [{"token": entry["token"], "logprob": entry["logprob"], "bytes": entry["bytes"]}]


# tools


def _ignore_required_tool_choice(body: Any, call: Call) -> None:
    if isinstance(body, dict) and body.get("tool_choice") == "required":
        body["tool_choice"] = "none"


def _duplicate_tool_call(doc: dict[str, Any], call: Call) -> None:
    for choice in doc.get("choices") or []:
        calls = (choice.get("message") or {}).get("tool_calls")
        if calls:
            calls.append(copy.deepcopy(calls[0]))


def _arguments_not_json(doc: dict[str, Any], call: Call) -> None:
    for tool_call in _tool_calls(doc):
        tool_call["function"]["arguments"] = "city=Paris"


def _tool_finish(choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") == "tool_calls":
        choice["finish_reason"] = "stop"


def _finish_tool_calls(choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") == "stop":
        choice["finish_reason"] = "tool_calls"


def _ignore_json_mode(body: Any, call: Call) -> None:
    if isinstance(body, dict):
        body.pop("response_format", None)


def _ignore_json_mode_never_stop(body: Any, call: Call) -> None:
    # a model that ignores response_format and never stops on its own: every JSON request runs to its cap
    if isinstance(body, dict) and body.pop("response_format", None) is not None:
        body.pop("max_completion_tokens", None)
        body["max_tokens"] = 2


MUTANTS: dict[str, Mutant] = {
    "sem_usage_total_off": _M("usage.total_tokens is one more than the sum", "SEM-001", BOTH,
                              response=on_completion(_usage_total_off)),
    "sem_n_ignored": _M("n is ignored: one choice always", "SEM-002", (SGP,), request=on_body(_ignore("n"))),
    "sem_n_ignored_in_streams": _M("n is ignored in streams", "SEM-002", (OPENAI,),
                                   request=on_body(_ignore("n", stream_only=True))),
    "sem_created_ms": _M("created in milliseconds", "SEM-003", BOTH,
                         response=both(_created_times(1000), chunk_each(_chunk_created_ms))),
    "sem_created_skewed": _M("created an hour in the past", "SEM-004", (SGP,),
                             response=on_completion(_created_times(offset=-3600))),
    "sem_model_substituted": _M("model names another model than requested", "SEM-005", (SGP,),
                                response=both(_model("meta/llama-3-8b"),
                                              chunk_each(lambda c, _: c.update(model="meta/llama-3-8b")))),
    "sem_max_tokens_ignored": _M("max_tokens is ignored", "SEM-006", (SGP,), request=on_body(_ignore("max_tokens"))),
    "sem_finish_stop_when_cut": _M('a completion cut at max_tokens says "stop"', "SEM-007", BOTH,
                                   response=both(each_choice(_length_to_stop),
                                                 chunk_each(lambda c, _: [_length_to_stop(x) for x in c["choices"]]))),
    "sem_max_completion_tokens_ignored": _M("max_completion_tokens is ignored", "SEM-008", (SGP,),
                                            request=on_body(_ignore("max_completion_tokens"))),
    # both limits ignored (a static mock): one fault, SEM-006's, whichever requests the generated cases send
    "sem_token_limits_ignored": _M("max_tokens and max_completion_tokens are ignored", "SEM-006", (OPENAI,),
                                   request=on_body(_ignore_both_limits), run_args=("--max-examples", "25")),
    "sem_seed_ignored": _M("the same seeded request gets different content", "SEM-009", (SGP,),
                           response=on_completion(_vary_content)),
    "sem_stop_kept": _M("stop sequences are ignored", "SEM-010", BOTH, request=on_body(_ignore("stop"))),
    "sem_usage_first_choice": _M("usage counts the first of n choices only", "SEM-011", (SGP,),
                                 response=on_completion(_first_choice_usage)),
    "logp_missing": _M("logprobs: true is ignored", "LOGP-001", (SGP,), response=on_completion(_logprobs_null)),
    "logp_positive": _M("logprobs are positive", "LOGP-002", (SGP,), response=on_completion(_positive_logprob)),
    "logp_bytes_wrong": _M("bytes are not the token's UTF-8", "LOGP-003", (SGP,),
                           response=on_completion(_wrong_bytes)),
    "logp_bytes_code_points": _M("bytes of a whole non-ASCII character are its code point", "LOGP-003", (OPENAI,),
                                 response=on_completion(_code_point_bytes)),
    "logp_top_zero_answered": _M("top_logprobs 0 still gets one alternative", "LOGP-004", (SGP,),
                                 response=on_completion(_alternative_for_top_zero)),
    "logp_top_short": _M("top_logprobs has 1 entry whatever was asked", "LOGP-004", (SGP,),
                         response=on_completion(_top_short)),
    "logp_top_unsorted": _M("top_logprobs lowest first", "LOGP-005", (SGP,), response=on_completion(_top_unsorted)),
    "tool_required_ignored": _M('tool_choice "required" is ignored', "TOOL-001", (SGP,),
                                request=on_body(_ignore_required_tool_choice)),
    "tool_ids_duplicate": _M("two tool calls share one id", "TOOL-002", (SGP,),
                             response=on_completion(_duplicate_tool_call)),
    "tool_arguments_not_json": _M("tool call arguments are not JSON", "TOOL-003", (SGP,),
                                  response=on_completion(_arguments_not_json)),
    "tool_finish_stop": _M('tool calls end with finish_reason "stop"', "TOOL-004", (SGP,),
                           response=both(each_choice(_tool_finish),
                                         chunk_each(lambda c, _: [_tool_finish(x) for x in c["choices"]]))),
    "tool_finish_without_calls": _M('every answer ends with finish_reason "tool_calls"', "TOOL-005", (SGP,),
                                    response=on_completion(each_choice(_finish_tool_calls))),
    "fmt_json_mode_ignored": _M("response_format json_object is ignored", "FMT-001", (SGP,),
                                request=on_body(_ignore_json_mode)),
    "fmt_ignored_never_stops": _M("response_format is ignored and the model runs to every cap", "FMT-001", (OPENAI,),
                                  request=on_body(_ignore_json_mode_never_stop)),
}
