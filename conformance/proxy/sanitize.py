"""The keyless copy of an exchange: all the proxy keeps once an exchange is judged.

The proxy has no key of its own: each client sends its own. An exchange is judged with the key it carried
(AUTH-007 looks for it in the answer); what outlives the judging (evidence, the census, the HAR file, the
terminal line) is a copy in which the profile's key header holds `KEY_STANDIN`, every other credential
header the mask, and every other occurrence of a credential (an echoing server, a key in the query) is
masked by value in every form `conformance.secret_forms` knows. The reports are written with `KEY_STANDIN` as
their key, so a curl line reads the key from `$SGP_API_KEY` as in `run`'s reports.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from conformance.checks.response import sent_secrets
from conformance.contract.profiles import Profile
from conformance.redact import Scrubber
from conformance.secret_forms import MASK, MIN_SECRET, SECRET_HEADERS, bare, is_secret_name
from conformance.transport.exchange import Exchange, RequestSpec, Response

# what a kept exchange carries instead of the key: never a real key, never a common word
KEY_STANDIN = "sgp-proxy-client-key-standin"


def credentials(exchange: Exchange, profile: Profile) -> list[str]:
    """Every credential the request carried: the keys of the key headers, the values of other credential
    headers, and query parameters named like a credential (`?api_key=`)."""
    found = list(sent_secrets(exchange, profile))
    for name, value in exchange.request.headers.items():
        if is_secret_name(name):
            found.append(bare(value))
    try:
        query = urlsplit(exchange.url).query
    except ValueError:
        query = ""
    found += [value for name, value in parse_qsl(query, keep_blank_values=False) if is_secret_name(name.lower())]
    return [s for s in dict.fromkeys(found) if len(s) >= MIN_SECRET]


def _masked_credential(name: str, value: str, profile: Profile) -> str:
    secret = bare(value)
    if not secret:
        return value
    stripped = value.strip()
    scheme = stripped[: len(stripped) - len(secret)]
    standin = KEY_STANDIN if name.lower() == profile.auth_header else MASK
    return scheme + standin


def keyless(exchange: Exchange, profile: Profile, secrets: list[str]) -> Exchange:
    """A copy of `exchange` that holds none of `secrets` (the request's credentials, see `credentials`)."""
    scrub = Scrubber(secrets)
    spec = exchange.request
    headers = {
        name: _masked_credential(name, value, profile) if is_secret_name(name) else scrub.text(value)
        for name, value in spec.headers.items()
    }
    body = scrub.data(spec.body) if spec.body is not None else None
    params = scrub.value(spec.params) if spec.params is not None else None
    request = RequestSpec(
        spec.scenario, spec.method, headers, body, params, spec.stream, scrub.text(spec.url) if spec.url else None
    )
    response = exchange.response
    if response is not None:
        kept = [(k, MASK if k.lower() in SECRET_HEADERS else scrub.text(v)) for k, v in response.headers]
        response = Response(
            response.status,
            kept,
            scrub.data(response.body),
            response.elapsed_ms,
            scrub.text(response.truncated) if response.truncated else None,
        )
    return Exchange(
        exchange.scenario,
        scrub.text(exchange.url),
        request,
        response,
        scrub.text(exchange.error) if exchange.error else None,
        exchange.error_kind,
    )
