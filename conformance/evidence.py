"""What a failure shows: the request and response (redacted, truncated) and a curl line to reproduce it."""

from __future__ import annotations

import shlex
from typing import Any

from conformance.config import Config
from conformance.exchange import Exchange
from conformance.profiles import Profile
from conformance.redact import MASK, Scrubber

BODY_LIMIT = 4000
KEY_VARIABLE = "$SGP_API_KEY"


def _truncate(text: str, limit: int = BODY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters cut]"


def curl_line(exchange: Exchange, scrubber: Scrubber, profile: Profile, config: Config) -> str:
    """A one-line reproduction that reads the key from $SGP_API_KEY, never carrying the key itself."""
    spec = exchange.request
    parts = ["curl", "-sS", "-i"]
    if spec.stream:
        parts.append("-N")
    parts += ["-X", spec.method, shlex.quote(exchange.url)]
    key = config.api_key or ""
    for name, value in spec.headers.items():
        if key and key in value:
            # double quotes so the shell expands the variable; the rest of the value has no specials
            shown = value.replace(key, KEY_VARIABLE)
            parts += ["-H", f'"{name}: {shown}"']
        else:
            parts += ["-H", shlex.quote(f"{name}: {scrubber.text(value)}")]
    if spec.body is not None:
        body = spec.body.decode("utf-8", errors="replace")
        parts += ["--data-binary", shlex.quote(scrubber.text(body))]
    return " ".join(parts)


def exchange_evidence(exchange: Exchange, scrubber: Scrubber, profile: Profile, config: Config) -> dict[str, Any]:
    spec = exchange.request
    request_body = spec.body.decode("utf-8", errors="replace") if spec.body is not None else ""
    out: dict[str, Any] = {
        "scenario": exchange.scenario,
        "request": {
            "method": spec.method,
            "url": scrubber.text(exchange.url),
            "headers": scrubber.headers(spec.headers.items()),
            "body": _truncate(scrubber.text(request_body)),
        },
        "curl": curl_line(exchange, scrubber, profile, config),
    }
    if exchange.error:
        out["error"] = scrubber.text(exchange.error)
    response = exchange.response
    if response is not None:
        out["response"] = {
            "status": response.status,
            "headers": scrubber.headers(response.headers),
            "body": _truncate(scrubber.text(response.text)),
            "elapsed_ms": round(response.elapsed_ms, 1),
        }
    return out


__all__ = ["MASK", "curl_line", "exchange_evidence"]
