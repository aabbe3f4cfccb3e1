"""Error bodies in the style a profile asks for.

The request checks report problems as profile-neutral `Issue`s (pydantic-like: type, loc, msg, input);
this module renders them either as FastAPI's 422 `{"detail": [...]}` or as OpenAI's 400 `{"error": {...}}`,
so the rest of the server never looks at which profile it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.contract.profiles import Profile

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem with the request body, located by its path inside the body."""

    type: str
    loc: Loc
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None
    # OpenAI phrases its messages differently from pydantic; None means msg reads well for both
    openai_message: str | None = None
    # OpenAI reports malformed JSON without a param; pydantic still puts an offset in loc
    openai_param: bool = True


class InvalidRequest(Exception):
    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(i.msg for i in issues))
        self.issues = tuple(issues)


@dataclass
class ApiError(Exception):
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"HTTP {self.status}"


_OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error", 404: "invalid_request_error"}


def error_body(
    profile: Profile,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    if profile.error_style == "openai":
        kind = "server_error" if status >= 500 else _OPENAI_TYPES.get(status, "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return {"detail": message}


def unauthorized(profile: Profile) -> ApiError:
    # the same message for a missing, empty and wrong key: telling them apart helps guessing, and the
    # key itself is never repeated back (it would land in logs and bug reports)
    if profile.error_style == "openai":
        message = (
            f"Incorrect or missing API key. Send it in the {profile.auth_header} header "
            f"as '{profile.auth_prefix}<key>'."
        )
    else:
        message = "Invalid or missing API key"
    return ApiError(401, error_body(profile, 401, message, code="invalid_api_key"))


def forbidden_account(profile: Profile) -> ApiError:
    message = f"The API key cannot act for the account selected in {profile.account_header}"
    return ApiError(403, error_body(profile, 403, message, code="account_forbidden"))


def model_not_found(profile: Profile, model: str) -> ApiError:
    if profile.error_style == "openai":
        message = f"The model `{model}` does not exist or you do not have access to it."
    else:
        message = f"Model {model!r} not found"
    return ApiError(404, error_body(profile, 404, message, code="model_not_found"))


def http_error(profile: Profile, status: int, message: str) -> ApiError:
    return ApiError(status, error_body(profile, status, message))


def openai_param(loc: Loc) -> str | None:
    """OpenAI's spelling of a body path: `messages.[0].content`."""
    if not loc:
        return None
    return ".".join(f"[{part}]" if isinstance(part, int) else part for part in loc)


def invalid_request(profile: Profile, issues: Sequence[Issue]) -> ApiError:
    status = profile.validation_status
    if profile.error_style == "openai":
        # OpenAI reports one problem per response, the first it finds
        first = issues[0]
        param = openai_param(first.loc) if first.openai_param else None
        text = first.msg.removeprefix("Value error, ")
        message = first.openai_message or (f"Invalid value for '{param}': {text}" if param else text)
        return ApiError(status, error_body(profile, status, message, param=param))
    detail: list[dict[str, Any]] = []
    for issue in issues:
        entry: dict[str, Any] = {"type": issue.type, "loc": ["body", *issue.loc], "msg": issue.msg}
        entry["input"] = issue.input
        if issue.ctx is not None:
            entry["ctx"] = issue.ctx
        detail.append(entry)
    return ApiError(status, {"detail": detail})
