"""Faults of headers (HDR): the account not checked, unknown headers refused, the body mislabelled or
misencoded, no request id.
"""

from __future__ import annotations

import hashlib
import json

from .core import BOTH, OPENAI, SGP, Call, Mutant, Reply, ResponseHook, json_reply

_M = Mutant


def _drop_account(call: Call) -> None:
    if call.profile.account_header:
        call.headers.pop(call.profile.account_header, None)


_KNOWN_HEADERS = frozenset({"host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
                            "content-type", "x-api-key", "x-selected-account-id", "authorization",
                            "x-openai-api-key"})


def _refuse_unknown_headers(call: Call) -> Reply | None:
    unknown = sorted(set(call.headers) - _KNOWN_HEADERS)
    if not unknown:
        return None
    return json_reply(400, {"detail": f"Unsupported header: {unknown[0]}"})


def _content_type(value: str) -> ResponseHook:
    def hook(call: Call, reply: Reply) -> None:
        if reply.status == 200 and reply.is_json:
            reply.set_header("content-type", value)

    return hook


def _no_request_id(call: Call, reply: Reply) -> None:
    reply.set_header("x-request-id", None)


def _body_latin1(call: Call, reply: Reply) -> None:
    if reply.status == 200 and reply.is_json:
        doc = reply.json()
        for choice in doc.get("choices") or []:
            message = choice.get("message") or {}
            # a JSON-mode answer's text stays a JSON object (FMT-001 is not this mutant's fault)
            if isinstance(message.get("content"), str) and not message["content"].lstrip().startswith("{"):
                message["content"] += " café"
        reply.body = json.dumps(doc, ensure_ascii=False).encode("latin-1")


def _conversation_hash(body: bytes) -> str:
    return "conv-" + hashlib.sha256(body).hexdigest()[:24]


def _request_id_is_a_hash(call: Call, reply: Reply) -> None:
    # a gateway's id computed from the conversation: the same request always gets the same one
    reply.set_header("x-request-id", None)
    reply.set_header("x-litellm-conversation-id", _conversation_hash(call.body))


MUTANTS: dict[str, Mutant] = {
    "hdr_unknown_account_accepted": _M("the account header is ignored: any account is served", "HDR-002", (SGP,),
                                       request=_drop_account),
    "hdr_json_as_text_plain": _M("completions are labelled text/plain", "HDR-003", BOTH,
                                 response=_content_type("text/plain")),
    "hdr_unknown_header_refused": _M("requests with an unknown header are refused with 400", "HDR-005", (SGP,),
                                     request=_refuse_unknown_headers),
    "hdr_body_latin1": _M("completions with non-ASCII text are encoded in latin-1", "HDR-006", (SGP,),
                          response=_body_latin1),
    "hdr_charset_latin1": _M("completions claim charset iso-8859-1", "HDR-008", (SGP,),
                             response=_content_type("application/json; charset=iso-8859-1")),
    "hdr_no_request_id": _M("no request id header", "HDR-007", (SGP,), response=_no_request_id),
    "hdr_request_id_is_a_hash": _M("the only request id is a hash of the conversation (the same for the same "
                                   "request)", "HDR-007", (OPENAI,), response=_request_id_is_a_hash),
}
