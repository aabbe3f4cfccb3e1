"""The two ways a server can expose the chat-completions operation, as data.

Everything that differs between the documented SGP API and an OpenAI-compatible server is a field here;
code asks the profile instead of branching on its name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # appended to the configured base URL
    path: str
    # request header that carries the key, lower case, and the prefix put before the key in it
    auth_header: str
    auth_prefix: str
    # the header that selects an account, or None where the profile has no accounts
    account_header: str | None
    # "fastapi": {"detail": ...} bodies and 422 for invalid requests;
    # "openai": {"error": {message, type, param, code}} and 400 for invalid requests
    error_style: str
    # schema names (in schemas/) of the error bodies this profile sends
    error_schema: str
    validation_error_schema: str
    validation_status: int
    # the SSE data line that ends a stream, or None where a stream ends by closing the connection
    stream_terminator: str | None
    # the base URL a user would type for a server on HOST:PORT
    base_url_template: str
    description: str
    # request parameters of the SGP contract that this kind of server is known to refuse
    unsupported_params: tuple[str, ...] = ()
    # where the contract leaves a request open, what a server of this profile may accept (request_rules):
    # "free_form_messages" (a message without role/content), "empty_messages", "lax_scalars" (pydantic's
    # lax coercion: "2" for 2, 1 for true), "stated_combinations" (of the cross-field rules, only those the
    # contract states: tool_choice "required" without tools, a named tool_choice not among the tools and
    # stream_options without stream are OpenAI's); a generated body that is invalid only in these ways is
    # not counted as a negative case
    lenient_request: tuple[str, ...] = ()
    # the parameter that caps the tokens of every request the suite sends
    token_limit_param: str = "max_tokens"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {self.auth_header: f"{self.auth_prefix}{key}"}

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.path


SGP = Profile(
    name="sgp",
    path="/v4/beta/chat/completions",
    auth_header="x-api-key",
    auth_prefix="",
    account_header="x-selected-account-id",
    error_style="fastapi",
    error_schema="error-detail",
    validation_error_schema="error-validation",
    validation_status=422,
    stream_terminator=None,
    base_url_template="http://{host}:{port}",
    description="the documented SGP API: x-api-key, FastAPI errors, streams end when the connection closes",
    # the documented example sends messages: [{foo: 'bar'}], and the backend is FastAPI/pydantic (lax mode);
    # CONTRACT.md states one cross-field rule (top_logprobs needs logprobs), OpenAI refuses three more
    lenient_request=("free_form_messages", "empty_messages", "lax_scalars", "stated_combinations"),
)

OPENAI = Profile(
    name="openai",
    path="/chat/completions",
    auth_header="authorization",
    auth_prefix="Bearer ",
    account_header=None,
    error_style="openai",
    error_schema="error-openai",
    validation_error_schema="error-openai",
    validation_status=400,
    stream_terminator="[DONE]",
    base_url_template="http://{host}:{port}/v1",
    description="an OpenAI-compatible server: Bearer auth, {error: {...}} bodies, streams end with [DONE]",
    unsupported_params=("top_k",),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SGP, OPENAI)}


class UnknownProfile(ValueError):
    pass


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfile(f"unknown profile {name!r}: choose one of {known}") from None
