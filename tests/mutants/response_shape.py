"""Faults of the completion's shape (RESP): a key missing, a value outside its enumeration or of the wrong
type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core import BOTH, OPENAI, SGP, Call, Mutant
from .hooks import _logprob_entries, _tool_calls, each_choice, on_completion

_M = Mutant


def _drop(key: str) -> Callable[[dict[str, Any], Call], None]:
    def change(doc: dict[str, Any], call: Call) -> None:
        doc.pop(key, None)

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any], Call], None]:
    def change(doc: dict[str, Any], call: Call) -> None:
        doc[key] = value

    return change


def _usage_strings(doc: dict[str, Any], call: Call) -> None:
    usage = doc.get("usage")
    if isinstance(usage, dict):
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            usage[key] = str(usage[key])


def _drop_top_logprobs(doc: dict[str, Any], call: Call) -> None:
    for entry in _logprob_entries(doc):
        entry.pop("top_logprobs", None)


def _tool_type(doc: dict[str, Any], call: Call) -> None:
    for tool_call in _tool_calls(doc):
        tool_call["type"] = "tool"


def _bad_annotation(doc: dict[str, Any], call: Call) -> None:
    for choice in doc.get("choices") or []:
        choice["message"]["annotations"] = [{"type": "url_citation",
                                             "url_citation": {"url": "https://example.com/"}}]


def _drop_openai_keys(doc: dict[str, Any], call: Call) -> None:
    for choice in doc.get("choices") or []:
        if choice.get("logprobs") is None:
            choice.pop("logprobs", None)
        (choice.get("message") or {}).pop("refusal", None)


MUTANTS: dict[str, Mutant] = {
    "resp_id_missing": _M("completions have no id", "RESP-001", BOTH, response=on_completion(_drop("id"))),
    "resp_object_wrong": _M('object is "chat.completions"', "RESP-002", (SGP,),
                            response=on_completion(_set("object", "chat.completions"))),
    "resp_finish_reason_unknown": _M('finish_reason "eos"', "RESP-003", (SGP,),
                                     response=on_completion(each_choice(lambda c: c.update(finish_reason="eos")))),
    "resp_role_wrong": _M('message.role "model"', "RESP-004", (SGP,),
                          response=on_completion(each_choice(lambda c: c["message"].update(role="model")))),
    "resp_usage_strings": _M("usage counts are strings", "RESP-005", (SGP,), response=on_completion(_usage_strings)),
    "resp_top_logprobs_missing": _M("logprob entries lack top_logprobs", "RESP-006", (SGP,),
                                    response=on_completion(_drop_top_logprobs)),
    "resp_tool_call_type_wrong": _M('tool_calls[].type "tool"', "RESP-007", (SGP,),
                                    response=on_completion(_tool_type)),
    "resp_annotation_incomplete": _M("url_citation annotations lack indices and title", "RESP-008", (SGP,),
                                     response=on_completion(_bad_annotation)),
    "resp_service_tier_unknown": _M('service_tier "premium"', "RESP-009", (SGP,),
                                    response=on_completion(_set("service_tier", "premium"))),
    "resp_service_tier_number": _M("service_tier 1 (a number)", "RESP-011", (OPENAI,),
                                   response=on_completion(_set("service_tier", 1))),
    "resp_openai_keys_missing": _M("message.refusal and choices[].logprobs are left out", "RESP-010", (OPENAI,),
                                   response=on_completion(_drop_openai_keys)),
}
