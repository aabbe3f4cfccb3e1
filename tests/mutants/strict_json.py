"""Faults of strict JSON (JSON): NaN in a completion or a chunk, a key written twice."""

from __future__ import annotations

import math
from typing import Any

from .core import OPENAI, SGP, Call, Mutant, Reply
from .hooks import on_chunks, on_completion

_M = Mutant


def _nan_extra(doc: dict[str, Any], call: Call) -> None:
    doc["x_latency_ms"] = math.nan


def _nan_in_chunks(items: list[Any], call: Call) -> None:
    for item in items:
        if isinstance(item, dict):
            item["x_latency_ms"] = math.nan


def _duplicate_id(call: Call, reply: Reply) -> None:
    if reply.status == 200 and reply.is_json and reply.body.startswith(b"{"):
        # a key written twice: the later, real id wins in most parsers, but not in all
        reply.body = b'{"id":"chatcmpl-duplicate",' + reply.body[1:]


MUTANTS: dict[str, Mutant] = {
    "json_nan": _M("completions carry a NaN", "JSON-001", (SGP,), response=on_completion(_nan_extra)),
    "json_nan_in_stream": _M("chunks carry a NaN", "JSON-001", (OPENAI,), response=on_chunks(_nan_in_chunks)),
    "json_duplicate_key": _M("completions repeat the id key", "JSON-002", (SGP,), response=_duplicate_id),
}
