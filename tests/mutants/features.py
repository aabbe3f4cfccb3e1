"""Servers without one optional feature (contract.claims.FEATURES): the reference server blind to the
parameters that ask for it, as a deployment that does not offer the feature answers. Declared absent
(`--without FEATURE`) such a server is conformant; undeclared, it fails the feature's requirements (features
are never inferred). Not mutants: they break no rule of a server that does not claim the feature, and the
kill table does not list them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core import BOTH, Call, Mutant
from .hooks import on_body

# feature: the request parameters a server without it does not read
IGNORED: dict[str, tuple[str, ...]] = {
    "streaming": ("stream", "stream_options"),
    "tools": ("tools", "tool_choice", "parallel_tool_calls"),
    # the reference model calls an offered tool unasked: without forced choice, this one calls none
    "tool_choice": ("tool_choice",),
    "logprobs": ("logprobs", "top_logprobs"),
    "n": ("n",),
    "json_object": ("response_format",),
    "json_schema": ("response_format",),
    "stop": ("stop",),
    "include_usage": ("stream_options",),
}


def _blind_to(keys: tuple[str, ...]) -> Callable[[Any, Call], None]:
    def fix(body: Any, call: Call) -> None:
        if isinstance(body, dict):
            for key in keys:
                body.pop(key, None)
            if keys == IGNORED["tool_choice"] and body.get("tools"):
                body["tool_choice"] = "none"

    return fix


FEATURELESS: dict[str, Mutant] = {
    f"without_{feature}": Mutant(f"does not offer {feature}: ignores {', '.join(keys)}", None, BOTH,
                                 request=on_body(_blind_to(keys)))
    for feature, keys in IGNORED.items()
}
