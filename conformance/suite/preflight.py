"""The preflight: the minimal request, sent first, tells a user's mistake from a server's fault.

A wrong base URL, a wrong profile, a model the target does not serve or a refused key would otherwise be
reported as dozens of failures of the server. The `basic` scenario is sent anyway; sent first, its answer
decides before the run spends its budget:

- 404/405 on the path: a configuration error naming the URL tried, the form the profile expects, and a
  guess when another form answers (the full endpoint pasted, `/v1` missing, the other profile's path);
- the model refused (400/404/422 naming it): a configuration error, "pass --model";
- 401/403: the key (or the account) was refused: the run stops judging there, its reports say so, exit 3.

No HTTP answer at all ends the run as unreachable (exit 3), whatever the socket did: refused, reset, closed,
silent, or bytes that are not HTTP. A target that answers the minimal request but is slow later is judged.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from conformance.config import ConfigError
from conformance.config.network import request_headers
from conformance.contract.profiles import PROFILES, Profile
from conformance.redact import safe_url
from conformance.transport.exchange import Exchange, RequestSpec

if TYPE_CHECKING:
    from conformance.suite.run import Run

_MODEL_REFUSED = re.compile(r"not found|does not exist|unknown|no such|not supported|invalid|not available|"
                            r"not allowed|not permitted", re.IGNORECASE)
# the other forms of a base URL tried after a 404/405, at most this many
MAX_GUESSES = 3


def names_model(exchange: Exchange, model: str) -> bool:
    """Whether an error answer is about the model: it names the model, or says "model ... not found"."""
    if exchange.response is None:
        return False
    text = exchange.response.text
    if model and model.lower() in text.lower():
        return True
    return bool(re.search(r"\bmodel\b", text, re.IGNORECASE) and _MODEL_REFUSED.search(text))


def expected_form(profile: Profile) -> str:
    """The base URL a profile expects, as a user would type it."""
    return profile.base_url_template.format(host="host", port=0).replace(":0", "").replace("http://", "https://")


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def candidates(base_url: str, profile: Profile) -> list[tuple[str, Profile, str]]:
    """(why, profile, base URL) of the other forms worth trying after a 404/405 at `base_url`."""
    path = urlsplit(base_url).path.rstrip("/")
    out: list[tuple[str, Profile, str]] = []
    for other in PROFILES.values():
        if path.endswith(other.path):
            # the full endpoint pasted as the base URL
            out.append(("the base URL holds the endpoint path", other, _with_path(base_url, path[: -len(other.path)])))
    if profile.name == "openai" and not path.endswith("/v1"):
        out.append(("/v1 is missing", profile, _with_path(base_url, path + "/v1")))
    for other in PROFILES.values():
        if other.name == profile.name:
            continue
        root = path.removesuffix("/v1")
        bases = [root + "/v1", root] if other.name == "openai" else [root]
        out += [(f"the {other.name} profile's path answers", other, _with_path(base_url, b)) for b in bases]
    seen: set[str] = set()
    unique = []
    for why, other, url in out:
        key = other.url(url)
        if key not in seen and key != profile.url(base_url):
            seen.add(key)
            unique.append((why, other, url))
    return unique[:MAX_GUESSES]


def _guess(run: Run) -> str | None:
    """The first other form of the base URL whose endpoint answers (anything but 404/405)."""
    config = run.config
    for why, other, base in candidates(config.base_url or "", run.profile):
        headers = {**request_headers(config), "content-type": "application/json",
                   **other.auth_headers(config.api_key or "")}
        spec = RequestSpec("preflight_guess", headers=headers, body=json.dumps(run.context.body()).encode(),
                           url=other.url(base))
        try:
            exchange = run.client.send(spec)
        except Exception:  # a guess is advice: it never turns a clear error into a traceback
            return None
        if exchange.response is not None and exchange.response.status not in (404, 405):
            flags = f"--base-url {safe_url(base)}" + (f" --profile {other.name}" if other.name != run.profile.name
                                                      else "")
            return f"{why} (HTTP {exchange.response.status} at {safe_url(other.url(base))}): try {flags}"
    return None


def note_no_answer(run: Run, exchange: Exchange) -> None:
    """A minimal request that got no HTTP answer at all (refused, reset, closed, a non-HTTP banner, an
    unparsable head, silence) makes the target unreachable: nothing else of the run could be judged, and a
    rule that holds vacuously over no answer must not make the run conformant. The transport's one line,
    which says what the socket did, is the run's reason (exit 3)."""
    if exchange.response is None and exchange.error and not run.client.dead:
        run.client.dead = exchange.error


def preflight(run: Run) -> str | None:
    """Send the minimal request (cached as the `basic` scenario). Raises ConfigError for a wrong path or
    model; returns why the run halts (the key was refused), or None to go on."""
    exchange = run.exchange("basic")
    response = exchange.response
    if response is None:
        note_no_answer(run, exchange)
        return None
    status, config = response.status, run.config
    if status in (401, 403):
        if status == 403 and config.account_id and run.profile.account_header:
            return ("the configured key or account was refused (HTTP 403): check --api-key / SGP_API_KEY and "
                    "--account-id / SGP_ACCOUNT_ID")
        return f"the configured key was refused (HTTP {status}): check --api-key / SGP_API_KEY"
    if status in (400, 404, 422) and names_model(exchange, config.model):
        raise ConfigError(f"the target refused model {config.model!r} (HTTP {status}): pass --model with a "
                          "model it serves")
    if status in (404, 405):
        guess = _guess(run)
        message = (f"no chat-completions endpoint at {safe_url(exchange.url)} (HTTP {status}): the {run.profile.name} "
                   f"profile expects --base-url {expected_form(run.profile)}")
        raise ConfigError(f"{message}; {guess}" if guess else message)
    return None
