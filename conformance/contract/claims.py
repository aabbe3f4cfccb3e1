"""What a server claims: the features it offers and the positions it takes on the contract's open points.

Modelled on Gateway API's supported features: a run says what a server is conformant *for*.

- A *feature* is an optional capability the profile documents (docs/contract.md section 5.2). A server is
  held to every feature unless the user declares it absent (`--without logprobs,tools`, or `without = [...]`
  in `[tool.sgp-conformance]`); the requirements that need it are then `not run` with the reason
  NOT_CLAIMED, and the verdict says "conformant without logprobs, tools". Features are never inferred: a
  feature that fails stays a failure unless it is declared absent.
- A *choice* is a position on an open point (docs/contract.md section 12). Unclaimed, the requirements that
  check it are observed (INFO): the server's behaviour is recorded, never failed. Claimed (`--claim
  refuses-null`, or `claims = [...]`), they are judged at MUST.

`Requirement.feature` and `Requirement.choice` (catalogue.py) name one entry of each vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable

# the reason of a requirement not run because the feature it needs is declared absent
NOT_CLAIMED = "not claimed"

# name: what a server that offers it does (docs/contract.md section 5.2)
FEATURES: dict[str, str] = {
    "streaming": "`stream: true` answers with a server-sent event stream",
    "tools": "`tools` offers functions the model may call (message.tool_calls)",
    "tool_choice": "`tool_choice: \"required\"` or a named function forces a tool call",
    "logprobs": "`logprobs: true` returns log probabilities (and `top_logprobs` alternatives)",
    "n": "`n` > 1 returns that many choices",
    "json_object": "`response_format: {type: \"json_object\"}` returns content that is JSON",
    "json_schema": "`response_format: {type: \"json_schema\"}` is accepted",
    "stop": "`stop` sequences end the generation and are not returned",
    "include_usage": "`stream_options.include_usage` adds a final usage chunk to a stream",
}

# a feature that cannot be offered without another: declaring the other absent declares it absent too
IMPLIED: dict[str, tuple[str, ...]] = {"tools": ("tool_choice",), "streaming": ("include_usage",)}


def absent(without: Iterable[str]) -> frozenset[str]:
    """The features declared absent, with those they imply (`tools` absent: `tool_choice` too)."""
    out = set(without)
    for feature in list(out):
        out.update(IMPLIED.get(feature, ()))
    return frozenset(out)


# name: the position a server takes on an open point (docs/contract.md section 12), when it claims it
CHOICES: dict[str, str] = {
    "refuses-out-of-bounds": "a parameter outside OpenAI's bounds (temperature, top_p, penalties, n, top_logprobs, "
                             "stop, max_tokens, an empty messages array) is refused with a 4xx",
    "refuses-nan": "a request body holding NaN or Infinity (not JSON) is refused with a 4xx",
    "refuses-wrong-types": "a parameter of the wrong JSON type is refused with a 4xx (not converted)",
    "refuses-null": "`null` for an optional request parameter is refused with a 4xx",
    "refuses-text-plain": "a JSON body sent as text/plain is refused with a 4xx",
    "refuses-message-shape": "under sgp, a message without a role or with an unknown role is refused with a 4xx",
    "refuses-unknown-enum": "an unknown response_format.type or tool_choice string is refused with a 4xx",
    "refuses-foreign-account": "an account the key cannot use is refused with 403 or 404",
    "refuses-unknown-model": "a request for a model the server does not know is refused with a 4xx",
    "unknown-model-404": "a request for a model the server does not know gets 404",
    "refuses-other-header": "a key sent only in the other profile's header is refused with 401 or 403",
    "auth-401-403": "a missing, empty or wrong key is refused with 401 or 403 (not another 4xx)",
    "error-body-shape": "every 4xx body (auth errors included) has the profile's error shape",
    "validation-status": "an invalid request gets the profile's status (sgp 422, openai 400)",
    "retry-after": "a 429 answer says when to retry (Retry-After or retry-after-ms, with a valid value)",
    "no-error-disclosure": "error answers carry no stack trace and no path of a server source file",
    "clock-created": "`created` is within 10 minutes of the client's clock",
    "echoes-model": "`model` names the requested model (or a dated version of it)",
    "stable-stream-model": "`model` is the same in every chunk of a stream",
    "top-logprobs-exact": "`top_logprobs` holds as many entries as asked, highest logprob first",
    "tool-call-ids": "tool call ids are distinct and non-empty, names among the offered tools",
    "tool-call-json": "tool call `arguments` parse as a JSON object",
    "service-tier-values": "`service_tier`, when sent, is one of the values the SDK lists",
    "charset-utf8": "a charset parameter on a JSON Content-Type, if any, says utf-8",
    "request-id": "every answer carries a request id header",
    "sgp-closes-stream": "under sgp, a stream ends by closing the connection, without data: [DONE]",
    "sdk-strict-types": "responses and chunks validate against the SDK's own response types (strict mode)",
    "deterministic": "the same request with a seed and temperature 0 gives the same content "
                     "(and a stream assembles to what the whole response says)",
    "greedy-logprobs": "at temperature 0, each chosen token is the likeliest of its top_logprobs (logprobs "
                       "taken after penalties and biases)",
}


class UnknownClaim(ValueError):
    """A name in --without or --claim that is not in FEATURES or CHOICES; the message lists the known ones."""


def check(without: Iterable[str], claims: Iterable[str]) -> None:
    """Raise UnknownClaim naming the first unknown feature or choice (and the known ones)."""
    for given, known, flag in ((without, FEATURES, "--without"), (claims, CHOICES, "--claim")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise UnknownClaim(f"{flag}: unknown {'feature' if known is FEATURES else 'choice'} "
                               f"{unknown[0]!r} (known: {', '.join(sorted(known))})")


def verdict_suffix(without: Iterable[str]) -> str:
    """What the verdict adds for the features declared absent: " without logprobs, tools" (or "")."""
    absent = sorted(without)
    return f" without {', '.join(absent)}" if absent else ""


def claim_line(choices: Iterable[str]) -> str:
    """The command-line option that pins these choices: "--claim refuses-null,unknown-model-404"."""
    return f"--claim {','.join(sorted(choices))}"
