"""What a failure shows: the request and response (redacted, truncated) and a curl line to reproduce it."""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping
from typing import Any

from conformance.config import Config
from conformance.contract.profiles import Profile
from conformance.redact import MASK, Scrubber, safe_url
from conformance.transport.exchange import Exchange

# characters of a body kept in the evidence; the rest is cut with a note saying how much
BODY_LIMIT = 4000
# bytes of a request body kept whole for `sgp-conformance replay`: every scripted and generated request is far
# smaller; a larger one is left out of the replay data (replay says so) rather than sent cut
REPLAY_BODY_LIMIT = 256_000
KEY_VARIABLE = "SGP_API_KEY"
# the key, as the shell expands it: in double quotes so a key with spaces or specials stays one word
KEY_EXPANSION = '"${SGP_API_KEY}"'


def truncate(text: str, limit: int = BODY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters cut]"


def _ansi_c(data: bytes) -> str:
    """Bytes as a bash $'...' word, for bodies that are not printable UTF-8 (sent so on purpose)."""
    out = []
    for byte in data:
        char = chr(byte)
        if char == "'" or char == "\\":
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def shell_word(text: str, key: str | None, scrubber: Scrubber, variables: Mapping[str, str] | None = None) -> str:
    """One shell word for `text`, in which the key becomes "${SGP_API_KEY}", each secret of `variables`
    (value -> VARIABLE, the headers read from the environment) "${VARIABLE}", and other secrets the mask.

    Quoted pieces side by side make one word: 'x-api-key: '"${SGP_API_KEY}". Single quotes elsewhere,
    so `!` and `$` in bodies mean nothing to an interactive shell.
    """
    expansions = dict(variables or {})
    if key:
        expansions[key] = KEY_VARIABLE
    present = sorted((s for s in expansions if s and s in text), key=len, reverse=True)
    if not present:
        return shlex.quote(scrubber.text(text))
    words: list[str] = []
    last = 0
    for found in re.finditer("|".join(re.escape(s) for s in present), text):
        if found.start() > last:
            words.append(shlex.quote(scrubber.text(text[last:found.start()])))
        words.append(f'"${{{expansions[found.group()]}}}"')
        last = found.end()
    if last < len(text):
        words.append(shlex.quote(scrubber.text(text[last:])))
    return "".join(words)


def _printable(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c in "\n\t\r" or ord(c) >= 0x20 for c in text)


def curl_line(exchange: Exchange, scrubber: Scrubber, profile: Profile, config: Config) -> str:
    """A one-line reproduction that reads the key from $SGP_API_KEY and a secret extra header from the
    variable it was read from (--header 'Name: env:VAR'), never carrying either itself; with the run's
    --proxy (userinfo masked), --ca-bundle and --insecure."""
    from conformance.config.network import header_variables

    spec = exchange.request
    key = config.api_key or None
    variables = header_variables(config)
    parts = ["curl", "-sS", "-i"]
    if spec.stream:
        parts.append("-N")
    if config.proxy:
        parts += ["-x", shlex.quote(scrubber.text(safe_url(config.proxy) or ""))]
    if config.insecure:
        parts.append("-k")
    elif config.ca_bundle:
        parts += ["--cacert", shlex.quote(config.ca_bundle)]
    parts += ["-X", spec.method, shell_word(exchange.url, key, scrubber)]
    for name, value in spec.headers.items():
        if (key is None or key not in value) and value not in variables:
            value = MASK if name.lower() in scrubber.declared else value
        parts += ["-H", shell_word(f"{name}: {value}", key, scrubber, variables)]
    if spec.body is not None:
        if _printable(spec.body):
            body = shell_word(spec.body.decode("utf-8"), key, scrubber)
        else:
            body = _ansi_c(scrubber.data(spec.body))
        parts += ["--data-binary", body]
    return " ".join(parts)


def _placeholders(text: str, key: str | None, variables: Mapping[str, str], scrubber: Scrubber) -> str:
    """`text` with the key as ${SGP_API_KEY}, each environment-read header secret as ${VARIABLE} and any
    other secret masked: what replay expands again from its own environment."""
    expansions = {**variables, **({key: KEY_VARIABLE} if key else {})}
    present = sorted((s for s in expansions if s and s in text), key=len, reverse=True)
    if not present:
        return scrubber.text(text)
    pieces: list[str] = []
    last = 0
    for found in re.finditer("|".join(re.escape(s) for s in present), text):
        pieces += [scrubber.text(text[last:found.start()]), f"${{{expansions[found.group()]}}}"]
        last = found.end()
    return "".join([*pieces, scrubber.text(text[last:])])


def replay_request(exchange: Exchange, scrubber: Scrubber, config: Config) -> dict[str, Any] | None:
    """The request as `sgp-conformance replay` sends it again: method, URL, headers (the key and the
    environment-read secrets as ${VARIABLE} placeholders, other secrets masked), the whole body (UTF-8 text,
    or base64 for bytes that are not) and whether it streams. None when the body exceeds REPLAY_BODY_LIMIT."""
    from conformance.config.network import header_variables

    spec = exchange.request
    body = spec.body
    if body is not None and len(body) > REPLAY_BODY_LIMIT:
        return None
    key = config.api_key or None
    variables = header_variables(config)
    headers = []
    for name, value in spec.headers.items():
        if (key is None or key not in value) and value not in variables and name.lower() in scrubber.declared:
            value = MASK
        headers.append([name, _placeholders(value, key, variables, scrubber)])
    out: dict[str, Any] = {"method": spec.method, "url": scrubber.text(safe_url(exchange.url) or ""),
                           "headers": headers, "stream": spec.stream}
    if body is not None:
        if _printable(body):
            out["body"] = scrubber.text(body.decode("utf-8"))
        else:
            out["body_base64"] = base64.b64encode(scrubber.data(body)).decode("ascii")
    return out


def exchange_evidence(exchange: Exchange, scrubber: Scrubber, profile: Profile, config: Config) -> dict[str, Any]:
    """The exchange as the reports show it: every string scrubbed, bodies cut at BODY_LIMIT."""
    spec = exchange.request
    request_body = spec.body.decode("utf-8", errors="replace") if spec.body is not None else ""
    out: dict[str, Any] = {
        "scenario": exchange.scenario,
        "request": {
            "method": spec.method,
            "url": scrubber.text(safe_url(exchange.url) or ""),
            # headers first: a declared-secret header's value is learnt here, before the bodies are scrubbed
            "headers": scrubber.headers(spec.headers.items()),
            "body": truncate(scrubber.text(request_body)),
            "body_bytes": len(spec.body or b""),
        },
        "curl": curl_line(exchange, scrubber, profile, config),
        "replay": replay_request(exchange, scrubber, config),
    }
    if exchange.error:
        out["error"] = scrubber.text(exchange.error)
    response = exchange.response
    if response is not None:
        out["response"] = {
            "status": response.status,
            "headers": scrubber.headers(response.headers),
            "body": truncate(scrubber.text(response.text)),
            "body_bytes": len(response.body),
            "elapsed_ms": round(response.elapsed_ms, 1),
        }
        if response.truncated:
            out["response"]["truncated"] = scrubber.text(response.truncated)
    return out


__all__ = ["BODY_LIMIT", "MASK", "REPLAY_BODY_LIMIT", "curl_line", "exchange_evidence", "replay_request", "truncate"]
