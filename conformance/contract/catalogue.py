"""The requirement catalogue: every rule the suite judges, with a stable ID, a level, its source and its
place in docs/contract.md.

IDs are stable: a requirement may be reworded or retired, never renumbered, because baselines and
release diffs refer to them. A requirement's level per profile is not chosen here: it is the status of its
anchor in docs/contract.md section 14 (contract.status: settled MUST, recommended SHOULD, open INFO, and MUST
for an open point the server claims). `level` and `levels` below restate it for the reader, and
tests/test_levels.py fails when they disagree with the page.

`source` names where a rule comes from in the documents docs/contract.md was written from (the SGP page,
CONTRACT.md, an RFC), which users do not all have; `anchor` names the place in docs/contract.md, which
ships with the suite, that states the rule in this project's words and cites those documents. Anchors
there are added, never renamed or removed, so a `Requirement.contract` reference stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from conformance.contract import claims, status

MUST, SHOULD, INFO = "MUST", "SHOULD", "INFO"
LEVELS = (MUST, SHOULD, INFO)
ALL_PROFILES = ("sgp", "openai")

DOC = "chat-completions-doc.txt"
C = "CONTRACT.md"
# the page every anchor is in, from the repository root; the package ships a copy (conformance.docs)
CONTRACT_DOC = "docs/contract.md"


@dataclass(frozen=True)
class Requirement:
    """One rule. `level` restates its level in every profile unless `levels` names another for a profile
    (where the SGP contract leaves open a point OpenAI settles); `level_for` reads the level from the
    anchor's status in docs/contract.md section 14, and tests/test_levels.py holds the two together."""

    id: str
    level: str
    statement: str
    source: str
    # the id of an `<a id="...">` in docs/contract.md: where the page states this rule
    anchor: str
    profiles: tuple[str, ...] = ALL_PROFILES
    # (profile, level) pairs that override `level`
    levels: tuple[tuple[str, str], ...] = ()
    # the optional capability the rule needs (claims.FEATURES): declared absent (--without), it is not run
    feature: str | None = None
    # the position on an open point the rule checks (claims.CHOICES): claimed (--claim), it is judged at MUST
    choice: str | None = None

    @property
    def area(self) -> str:
        return self.id.split("-")[0]

    @property
    def contract(self) -> str:
        """The rule's place in the contract page, from the repository root: "docs/contract.md#auth-status"."""
        return f"{CONTRACT_DOC}#{self.anchor}"

    def applies_to(self, profile: str) -> bool:
        return profile in self.profiles

    def level_for(self, profile: str, claims: frozenset[str] | set[str] = frozenset()) -> str:
        """The level this requirement is judged at under `profile`, for a server that claims `claims`
        (claims.CHOICES): its anchor's status in docs/contract.md section 14, where an open point whose
        choice is claimed is MUST; under a profile it does not apply to, the level it restates (it is never
        judged there). StatusError where the page gives an applicable anchor no status."""
        if profile not in self.profiles:
            return self.stated_level(profile)
        return status.level(self.anchor, profile, open_claimed=self.choice is not None and self.choice in claims)

    def stated_level(self, profile: str) -> str:
        """The level `level`/`levels` restate for `profile` (tests/test_levels.py holds it to level_for)."""
        return dict(self.levels).get(profile, self.level)

    def claimed(self, without: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether the server is held to this rule: false when the feature it needs is declared absent."""
        return self.feature is None or self.feature not in claims.absent(without)

    def level_text(self) -> str:
        """The level as a table shows it: "SHOULD (MUST under openai)" where the profiles differ."""
        others = [f"{level} under {profile}" for profile, level in self.levels
                  if profile in self.profiles and level != self.level]
        return f"{self.level} ({', '.join(others)})" if others else self.level


def _r(id: str, level: str, statement: str, source: str, anchor: str, profiles: tuple[str, ...] = ALL_PROFILES,
       feature: str | None = None, choice: str | None = None, **levels: str) -> Requirement:
    return Requirement(id, level, statement, source, anchor, profiles, tuple(levels.items()), feature, choice)


REQUIREMENTS: tuple[Requirement, ...] = (
    # basic operation
    _r("BASIC-001", MUST, "A minimal valid request (model, one user message) with a valid key gets 200.",
       f"{DOC} Response 200", "response"),
    # auth
    # the key is required (settled); which refusal status is open: the status is AUTH-005's (SHOULD)
    _r("AUTH-001", MUST, "A request without a key is refused with a 4xx, never served.",
       f"{DOC} Authorizations; {C} Transport", "auth-status"),
    _r("AUTH-002", MUST, "A request with an empty key is refused with a 4xx, never served.",
       f"{C} Transport", "auth-status"),
    _r("AUTH-003", MUST, "A request with a wrong key is refused with a 4xx, never served.",
       f"{C} Transport", "auth-status"),
    # INFO: gateways built on LiteLLM accept the key in either header by design; the contract names the
    # header a client must use, not that the other one must be refused
    _r("AUTH-004", INFO, "A valid key sent only in another profile's header is refused with 401 or 403.",
       f"{DOC} Authorizations (x-api-key); {C} Differences from OpenAI", "open-cross-header"),
    _r("AUTH-005", INFO, "A missing, empty or wrong key is refused with 401 or 403 (the SDKs map those to "
       "auth errors; another 4xx, such as a 422 for a missing header, reads as a bad request).",
       f"{C} Transport (401 typical, 403 seen; open)", "open-auth-status"),
    _r("AUTH-006", INFO, "Auth errors carry a JSON body in the profile's error shape.",
       f"{C} Transport (open)", "open-auth-body", openai=MUST),
    _r("AUTH-007", MUST, "No response ever echoes the key the client sent, in headers or body.",
       "OWASP ASVS 8.3 (sensitive data not returned)", "key-not-echoed"),
    _r("AUTH-008", MUST, "A streamed request without a valid key (none, empty, wrong) is refused with a 4xx "
       "before any event is sent, never served as a stream.", f"{DOC} Authorizations; {C} Transport", "auth-status"),
    # headers
    _r("HDR-001", MUST, "A request naming the configured account in x-selected-account-id is accepted.",
       f"{DOC} Headers", "account-header", ("sgp",)),
    _r("HDR-002", INFO, "An account id the key cannot use is refused with 403 or 404.",
       f"{C} Transport (open)", "account-refused", ("sgp",)),
    _r("HDR-003", MUST, "A non-streaming 200 response has Content-Type application/json.",
       f"{DOC} Response; {C}", "content-types"),
    _r("HDR-004", MUST, "Request header names are case-insensitive (an upper-case key header is accepted).",
       "RFC 9110 §5.1", "http-header-case"),
    _r("HDR-005", SHOULD, "Unknown request headers are ignored.", "RFC 9110 §5.1", "unknown-headers"),
    _r("HDR-006", MUST, "JSON bodies and event streams are UTF-8.", "RFC 8259 §8.1; WHATWG HTML §9.2", "json-encoding"),
    _r("HDR-007", INFO, "Responses carry a request id header for support cases.", "common API practice", "request-id"),
    # RFC 8259 defines no charset for application/json ("no effect on compliant recipients"), but clients
    # that honour a wrong one misread the body
    _r("HDR-008", INFO, "A charset parameter on a response's Content-Type, if any, says utf-8.",
       "RFC 8259 §11; WHATWG HTML §9.2", "open-charset"),
    # request validation
    _r("VAL-001", MUST, "A body without `messages` is refused with 4xx.", f"{C} Request body", "request-body"),
    _r("VAL-002", MUST, "A body without `model` is refused with 4xx.", f"{C} Request body", "request-body"),
    _r("VAL-003", MUST, "`messages` that is not an array is refused with 4xx.",
       f"{C} Request body", "request-messages"),
    _r("VAL-004", MUST, "`model` that is not a string is refused with 4xx.", f"{C} Request body", "request-model"),
    # the documented example itself sends messages: [{foo: 'bar'}] (free-form objects); OpenAI refuses them
    _r("VAL-005", INFO, "A message without `role` is refused with 4xx.",
       f"{DOC} Body (messages: free-form objects); {C} Request body", "open-message-shape", openai=MUST),
    _r("VAL-006", MUST, "A body that is not JSON is refused with 4xx.",
       f"{C} Transport (FastAPI json_invalid)", "errors-validation"),
    _r("VAL-007", MUST, "A JSON body that is not an object is refused with 4xx.",
       f"{C} Transport (FastAPI)", "errors-validation"),
    _r("VAL-008", INFO, "A JSON body sent as text/plain is refused with 4xx.", f"{C} Transport", "open-content-type"),
    _r("VAL-009", INFO, "`temperature` outside 0..2 is refused with 4xx.",
       f"{C} Request body", "open-bounds"),
    _r("VAL-010", INFO, "`n` of 0 is refused with 4xx.", f"{C} Request body", "open-bounds"),
    _r("VAL-011", INFO, "`top_logprobs` above 20 is refused with 4xx.", f"{C} Request body", "open-bounds"),
    _r("VAL-012", INFO, "`stop` with more than 4 sequences is refused with 4xx.",
       f"{C} Request body", "open-bounds"),
    _r("VAL-013", INFO, "A negative `max_tokens` is refused with 4xx.", f"{C} Request body", "open-bounds"),
    # the documented type sets no minimum length; OpenAI refuses an empty array
    _r("VAL-014", INFO, "An empty `messages` array is refused with 4xx.",
       f"{C} Request body (no minimum)", "open-bounds"),
    _r("VAL-015", INFO, "NaN in a request body (not JSON) is refused with 4xx.",
       "RFC 8259 §6, §9 (a parser MAY accept extensions; FastAPI does)", "open-nan-request"),
    # the bounded parameters the scripted scenarios above left to chance: a server clamping them silently
    # was caught only when property generation happened to break one (found by the mutation matrix)
    _r("VAL-016", INFO, "`top_p` outside 0..1 is refused with 4xx.", f"{C} Request body", "open-bounds"),
    _r("VAL-017", INFO, "`presence_penalty` outside -2..2 is refused with 4xx.",
       f"{C} Request body", "open-bounds"),
    _r("VAL-018", INFO, "`frequency_penalty` outside -2..2 is refused with 4xx.",
       f"{C} Request body", "open-bounds"),
    _r("VAL-019", INFO, "A message whose role is outside the documented set is refused with 4xx.",
       f"{C} Request body; {C} Streaming (delta roles)", "open-message-shape", openai=MUST),
    _r("VAL-020", INFO, "An unknown `response_format.type` is refused with 4xx.",
       f"{C} Request body", "open-unknown-enum"),
    _r("VAL-021", INFO, "An unknown `tool_choice` string is refused with 4xx.",
       f"{C} Request body", "open-unknown-enum"),
    _r("VAL-022", MUST, "An invalid body with `stream: true` is refused with a 4xx status, not a 200 stream "
       "carrying an error.", f"{C} Transport (422 for an invalid body)", "errors-validation"),
    # pydantic's lax mode coerces "2" to 2 and "true" to true, so accepting the value is not a fault;
    # dropping it silently is, since the client gets an answer to a request it did not send
    _r("VAL-023", INFO, "A parameter sent with the wrong JSON type is refused with 4xx or honoured as its "
       "coerced value, never silently ignored.",
       f"{C} Request body; {C} Transport (FastAPI/pydantic)", "open-request-types"),
    # error bodies
    _r("ERR-001", MUST, "Request-validation errors are answered with a JSON object body.",
       f"{C} Transport", "errors-status"),
    _r("ERR-002", MUST, "Request-validation errors use the profile's status (sgp 422, openai 400).",
       f"{C} Transport; {C} Differences from OpenAI", "open-validation-status", openai=INFO),
    _r("ERR-003", MUST, "A 422 carries the FastAPI validation body {detail: [{loc, msg, type}]}.",
       f"{C} Transport (422 is documented)", "errors-validation", ("sgp",)),
    _r("ERR-004", INFO, "Every 4xx body matches the profile's error shape.",
       f"{C} Transport; Differences", "open-auth-body", openai=MUST),
    _r("ERR-005", MUST, "A request the server ought to refuse (an invalid body, no or a wrong key, an unknown "
       "model or account) is never answered with a 5xx.", f"{C} Transport (a refusal is a 4xx)", "server-errors"),
    _r("ERR-006", INFO, "A 429 answer says when to retry: Retry-After (seconds or an HTTP date) or "
       "retry-after-ms, with a valid value.", f"{C} Transport (the SDKs honour them); RFC 9110 §10.2.3",
       "open-rate-limits"),
    # found on a real server (interop): a 500 carrying the server's file paths and stack
    _r("ERR-007", INFO, "Error answers carry no stack trace and no path of a server source file.",
       "OWASP ASVS 7.4.1 (errors reveal no sensitive detail)", "error-disclosure"),
    _r("MODEL-001", INFO, "A request for an unknown model is refused with 4xx.",
       f"{C} Request body (the answer to an unknown model is not documented)", "unknown-model"),
    # which 4xx refuses an unknown model is not documented: the reference server's 404 is one reading
    _r("MODEL-002", INFO, "A request for an unknown model gets 404.",
       "OpenAI practice (404 model_not_found)", "unknown-model"),
    # response shape (attributed from schema annotations)
    _r("RESP-001", MUST, "The response has id (string), created (integer), model (string) and choices (array).",
       f"{DOC} Response; {C} Response", "response-required"),
    _r("RESP-002", MUST, "`object`, when present, is \"chat.completion\".", f"{DOC} Response", "response-object"),
    _r("RESP-003", MUST, "Each choice has an integer index, a documented finish_reason and a message object.",
       f"{DOC} Response; {C} Response", "response-choices"),
    _r("RESP-004", MUST, "message.role is \"assistant\"; content and refusal are strings or null.",
       f"{DOC} Response; {C} Response", "response-message"),
    _r("RESP-005", MUST, "usage, when present, holds non-negative integer token counts.",
       f"{DOC} Response", "response-usage"),
    _r("RESP-006", MUST, "logprobs entries have token, logprob, bytes (0..255) and top_logprobs as documented.",
       f"{DOC} Response", "response-logprobs"),
    _r("RESP-007", MUST, "tool_calls entries have id, a type, and for type \"function\" function {name, "
       "arguments} strings (the SDK also knows \"custom\" calls).",
       f"{DOC} Response; {C} Response", "response-tool-calls"),
    _r("RESP-008", MUST, "annotations, audio and function_call, when present, have their documented fields.",
       f"{DOC} Response", "response-message"),
    _r("RESP-009", INFO, "service_tier, when present, is one of auto, default, flex, scale, priority "
       "(or OpenAI's fast).",
       f"{DOC} Response; {C} (open)", "response-service-tier"),
    # the type is settled where the value is open: strict clients (pydantic strict, Go, Rust) break on the type
    _r("RESP-011", MUST, "Documented response fields whose values are open have their documented JSON type: "
       "service_tier, when present, is a string or null (a number breaks typed clients, whatever the value).",
       f"{DOC} Response; {C} Response", "response-service-tier-type"),
    # OpenAI's schema has these keys required-but-nullable; strict OpenAI clients break without them
    _r("RESP-010", MUST, "The keys OpenAI always sends are present (null when empty): object, "
       "choices[].logprobs, message.content, message.refusal, and a chunk choice's finish_reason.",
       f"{C} Differences from OpenAI", "openai-differences", ("openai",)),
    # strict JSON
    _r("JSON-001", MUST, "Every JSON body and SSE data payload is RFC 8259 JSON (no NaN or Infinity).",
       "RFC 8259 §6", "json-strict"),
    _r("JSON-002", SHOULD, "Object keys are unique within an object.", "RFC 8259 §4", "json-unique-keys"),
    # the documented request forms, each by name: a client sends them because the page and the SDKs document them
    _r("FORM-001", MUST, "Every documented request form is accepted with 2xx: each message role (system, "
       "developer, user, assistant with tool_calls, tool), content as a string and as parts, max_tokens and "
       "max_completion_tokens, stop as a string and a list, logit_bias, metadata, seed, parallel_tool_calls, "
       "stream_options, each response_format type and each tool_choice form (those of a feature the server "
       "declares absent excepted).", f"{DOC} Body; {C} Request body", "request-forms"),
    # semantics
    _r("SEM-001", MUST, "usage.total_tokens equals prompt_tokens + completion_tokens.",
       f"{C} Response", "response-usage"),
    _r("SEM-002", MUST, "A request for n choices gets n choices with indices 0..n-1.",
       f"{C} Response", "response-choices"),
    _r("SEM-003", MUST, "`created` is Unix time in seconds (not milliseconds or finer).",
       f"{C} Response", "response-created"),
    # a wrong clock (0, a 1970 date) is seconds all the same: SHOULD, apart from the unit
    _r("SEM-004", INFO, "`created` is within 10 minutes of the client's clock.", f"{C} Response", "open-created-clock"),
    _r("SEM-005", INFO, "`model` names the requested model (or a dated version of it).",
       "OpenAI API reference (model)", "response-model"),
    _r("SEM-006", MUST, "completion_tokens does not exceed max_tokens for each choice.",
       f"{C} Request body (max_tokens); OpenAI API reference", "request-max-tokens"),
    _r("SEM-007", MUST, "A completion cut by max_tokens has finish_reason \"length\".",
       "OpenAI API reference", "response-finish-reason"),
    _r("SEM-008", MUST, "max_completion_tokens is honoured like max_tokens.",
       f"{C} Request body", "request-max-tokens"),
    _r("SEM-009", INFO, "The same request with a seed and temperature 0 gives the same content twice.",
       f"{C} Request body (seed)", "request-seed"),
    _r("SEM-010", SHOULD, "No choice's text contains a requested stop sequence (the returned text excludes it).",
       "OpenAI API reference (stop)", "request-stop"),
    _r("SEM-011", MUST, "usage.completion_tokens counts every choice: with n choices that each carry text, "
       "it is at least n.", f"{C} Response (usage)", "response-usage"),
    # logprobs
    _r("LOGP-001", MUST, "With logprobs true, each choice carries logprobs.content for its tokens.",
       f"{C} Request body; Response", "request-logprobs"),
    _r("LOGP-002", MUST, "Every logprob is a finite number <= 0.", f"{C} Response", "response-logprobs"),
    _r("LOGP-003", MUST, "`bytes` are the UTF-8 bytes of `token` (where the token is whole characters).",
       f"{C} Response", "response-logprobs"),
    _r("LOGP-004", INFO, "top_logprobs holds as many entries as asked.",
       "OpenAI API reference", "open-top-logprobs-order"),
    _r("LOGP-005", INFO, "top_logprobs are sorted by logprob, highest first.",
       "OpenAI API reference", "open-top-logprobs-order"),
    # logprobs against usage and against their own alternatives (issue 25). LOGP-006: the count is SHOULD,
    # as usage may count tokens that carry no logprob entry (reasoning tokens, where a server does not give
    # completion_tokens_details); LOGP-007/008 only at temperature 0, where the chosen token is the likeliest
    # one, and whether logprobs are taken before or after penalties and biases is open
    _r("LOGP-006", SHOULD, "With logprobs and n = 1, a choice without tool calls has one logprobs.content entry "
       "per completion token (usage.completion_tokens, less reasoning_tokens).",
       f"{C} Request body (logprobs); Response (usage)", "logprob-consistency"),
    _r("LOGP-007", SHOULD, "At temperature 0, each chosen token's logprob is at least the lowest of its "
       "top_logprobs.", "OpenAI API reference (top_logprobs: the most likely tokens)", "logprob-consistency"),
    _r("LOGP-008", INFO, "At temperature 0, each chosen token is the most likely of its top_logprobs (MUST "
       "when greedy-logprobs is claimed).", "OpenAI API reference (top_logprobs); open (before or after "
       "processing)", "open-greedy-logprobs"),
    # tools
    _r("TOOL-001", MUST, "With tool_choice \"required\", the message carries tool_calls.",
       "OpenAI API reference", "request-tool-choice"),
    # no source settles unique ids or offered names, and OpenAI warns that arguments may not be valid JSON:
    # clients rely on both, so SHOULD
    _r("TOOL-002", INFO, "Tool call ids are unique and non-empty, type is function, name is an offered tool.",
       f"{C} Response; OpenAI API reference", "open-tool-call-ids"),
    _r("TOOL-003", INFO, "Tool call arguments are a string holding a JSON object.",
       f"{C} Response; OpenAI API reference (arguments may not be valid JSON)", "open-tool-call-json"),
    _r("TOOL-004", SHOULD, "A message with tool calls has finish_reason \"tool_calls\".",
       "OpenAI API reference", "open-tool-calls-finish"),
    _r("TOOL-005", MUST, "finish_reason \"tool_calls\" is given only to a choice that carries tool calls.",
       f"{C} Response (finish_reason); OpenAI API reference", "response-finish-reason"),
    # a model behaviour the contract does not document: SHOULD, judged only where a choice carries text
    _r("FMT-001", MUST, "response_format json_object gives content that parses as a JSON object.",
       f"{C} Request body (response_format)", "request-response-format"),
    # streaming
    _r("STRM-001", MUST, "A streamed response has Content-Type text/event-stream.", f"{C} Transport", "streaming-sse"),
    _r("STRM-002", MUST, "The stream is well-formed SSE: every line is a field (name: value) or a comment, and "
       "every event is ended by a blank line (text outside that is lost to every client).",
       "WHATWG HTML §9.2", "streaming-sse"),
    _r("STRM-003", MUST, "Every data payload is a JSON object, except a final [DONE].",
       f"{C} Streaming", "streaming-sse"),
    _r("STRM-004", MUST, "The stream ends with data: [DONE] and nothing after it.",
       f"{C} Differences from OpenAI", "streaming-terminator", ("openai",)),
    _r("STRM-005", INFO, "The stream ends by closing, without data: [DONE] (the SGP SDKs cannot parse it).",
       f"{C} Streaming (open)", "open-sgp-terminator", ("sgp",)),
    _r("STRM-006", MUST, "Nothing follows the [DONE] terminator.", f"{C} Streaming", "streaming-terminator"),
    _r("STRM-010", MUST, "Every chunk has id, created, model and choices; object, if present, is the chunk type.",
       f"{C} Streaming", "streaming-chunk"),
    _r("STRM-011", MUST, "Every chunk choice has an integer index, a delta object and a documented finish_reason.",
       f"{C} Streaming", "streaming-chunk"),
    _r("STRM-012", MUST, "Every delta has a documented role, string content and well-formed tool_calls.",
       f"{C} Streaming", "streaming-delta"),
    _r("STRM-013", MUST, "id is the same in every chunk.", f"{C} Streaming (conventions)", "streaming-conventions"),
    _r("STRM-014", MUST, "The first delta of each choice carries role \"assistant\".",
       f"{C} Streaming (conventions)", "streaming-conventions"),
    _r("STRM-015", MUST, "Each choice gets exactly one finish_reason, in its last chunk.",
       f"{C} Streaming (conventions)", "streaming-conventions"),
    _r("STRM-016", MUST, "With include_usage, one final chunk has choices [] and usage that adds up.",
       f"{C} Streaming", "streaming-usage"),
    # the conventions name id and created (settled); the same model is named nowhere (open: STRM-023)
    _r("STRM-019", MUST, "created is the same in every chunk.",
       f"{C} Streaming (conventions)", "streaming-conventions"),
    _r("STRM-023", INFO, "model is the same in every chunk.",
       f"{C} Streaming (conventions name id and created only)", "open-stream-model"),
    _r("STRM-017", MUST, "The assembled stream forms a valid completion with n choices.",
       f"{C} Streaming", "streaming-assembly"),
    # the openai SDK's accumulator joins every string it gets for a call (id and name too): a repeated or
    # changed id reads `call_acall_a...`; a repeated identical type is harmless (the SDK replaces it)
    _r("STRM-020", MUST, "A later fragment of a tool call (same index) carries no id and no function.name and "
       "no other type: they come once, in the call's first fragment; later ones carry index and arguments.",
       f"{C} Streaming; OpenAI practice; openai SDK accumulate_delta", "streaming-delta"),
    _r("STRM-021", MUST, "content, refusal and tool-call arguments come in increments: no delta repeats all "
       "the text of the ones before it (cumulative text assembles into `LisbonLisbon is...`).",
       f"{C} Streaming", "streaming-assembly"),
    # the SDK is the profile's client under openai (as CLIENT-003); under sgp it is one client among others
    _r("STRM-022", SHOULD, "The openai SDK's own stream accumulator (ChatCompletionStreamState) assembles every "
       "stream into a valid completion equal to the suite's assembly.",
       f"{C} Streaming; openai SDK (lib/streaming/chat)", "streaming-client-assembly", openai=MUST),
    # one request streamed and answered whole (issue 25): `stream` changes the delivery, not the answer, but
    # sampling is deterministic only on a best-effort basis; a different structure (a tool call in one only,
    # another kind of finish) at temperature 0 and the same seed is more than sampling noise: SHOULD
    _r("AGREE-001", INFO, "The same seeded temperature-0 request, streamed and answered whole, gives the same "
       "content, tool calls, finish reasons, usage and logprob tokens (MUST when deterministic is claimed).",
       f"{C} Request body (seed: best effort; stream)", "request-seed"),
    _r("AGREE-002", SHOULD, "The same seeded temperature-0 request, streamed and answered whole, has the same "
       "structure: tool calls in both or in neither, the same finish_reason per choice.",
       f"{C} Request body (stream); OpenAI API reference (seed)", "stream-agreement"),
    # overlapping requests (issue 25)
    _r("CONC-001", MUST, "No request sent while others are in flight gets a 5xx, a reset or a timeout that the "
       "same request sent alone did not get.", "RFC 9110 §15.6 (a 5xx is the server's failure)", "server-errors"),
    _r("CONC-002", MUST, "An answer given while others are in flight passes every MUST check its one-at-a-time "
       "twin passed (a finding is reported under its own rule, marked \"under overlap only\").",
       f"{C} Response; {C} Streaming", "concurrency"),
    # the contract gives `id` as a string and nothing more; OpenAI calls it "a unique identifier"
    _r("CONC-003", SHOULD, "Overlapping requests get distinct response ids.",
       "OpenAI API reference (id: a unique identifier)", "response-id-unique"),
    _r("CONC-004", MUST, "No answer carries the marker of another overlapping request; where the model echoes "
       "its prompt, or deterministic is claimed, each answer equals its one-at-a-time twin.",
       f"{C} Response (an answer to its request)",
       "concurrency"),
    # property-based
    _r("PROP-001", MUST, "Generated valid requests get 2xx and pass every response check.",
       "schemas/openapi.json", "generated-requests"),
    _r("PROP-002", MUST, "No generated request, valid or invalid, gets a 5xx (a timeout is no answer, not "
       "a 5xx).", "schemas/openapi.json", "server-errors"),
    _r("PROP-003", MUST, "Generated invalid requests are refused with 4xx.",
       "schemas/openapi.json", "generated-requests"),
    # the official SDKs against the target (`run --clients`): what a client author actually meets.
    # A response meeting RESP-* always parses in the SDKs' default (lenient) mode, so a non-streaming call
    # that raises or mis-parses is a real incompatibility: MUST in both profiles.
    _r("CLIENT-001", MUST, "The profile's official SDK (scale-gp, openai) parses a non-streaming response: "
       "create() returns the completion type carrying the fields the response sent.",
       f"{C} Transport and Response (both drawn from the SDKs)", "sdk-clients"),
    # The scale-gp SDK parses every data line as JSON, so a `data: [DONE]` terminator makes it raise after
    # the last chunk. Which terminator an SGP server should send is open in the contract: SHOULD, not MUST.
    _r("CLIENT-002", INFO, "The scale-gp SDK consumes a streamed response to its end, every chunk parsed "
       "(it cannot parse data: [DONE]).", f"{C} Streaming (terminator open for SGP)", "open-sgp-terminator", ("sgp",)),
    # An OpenAI-compatible server exists to be used by OpenAI clients: a stream the openai SDK cannot
    # consume defeats the profile's purpose.
    _r("CLIENT-003", MUST, "The openai SDK consumes a streamed response to its end, every chunk parsed.",
       f"{C} Differences from OpenAI", "streaming-terminator", ("openai",)),
    # The SDKs validate nothing by default; their strict mode holds the body to their own types, which are
    # stricter than the contract where it is open (absent vs null, service_tier values): SHOULD.
    _r("CLIENT-004", INFO, "Responses and chunks validate against the SDK's own response types "
       "(its strict validation).", f"{C} Response (SDK types; absent vs null open)", "open-absent-null"),
    # the client matrix (`run --clients`): every official client of the profile that is installed
    _r("CLIENT-005", SHOULD, "Every official client of the profile that is installed (scale-gp and scale-gp-beta "
       "under sgp; openai for Python and for TypeScript under openai) parses a completion, consumes a stream, "
       "assembles a forced tool call as the suite does and raises its typed error for a refused key.",
       f"{C} intro (the SDKs); SDK behaviour", "client-matrix"),
)

# the feature each rule needs (claims.FEATURES): a rule that only judges what a feature returns when it is
# there (RESP-006's logprobs shape, RESP-007's tool calls) needs none
FEATURE_OF: dict[str, str] = {
    **dict.fromkeys(("STRM-001", "STRM-002", "STRM-003", "STRM-004", "STRM-005", "STRM-006", "STRM-010",
                     "STRM-011", "STRM-012", "STRM-013", "STRM-014", "STRM-015", "STRM-017", "STRM-019",
                     "STRM-023", "AUTH-008", "CLIENT-002", "CLIENT-003", "STRM-021", "STRM-022"), "streaming"),
    # its probe streams a forced call of a named function: a server without streaming is not held to it either
    # (test_streaming checks that one itself, as a requirement names one feature)
    "STRM-020": "tool_choice",
    "STRM-016": "include_usage",
    **dict.fromkeys(("TOOL-002", "TOOL-003", "TOOL-004"), "tools"),
    "TOOL-001": "tool_choice",
    **dict.fromkeys(("LOGP-001", "LOGP-002", "LOGP-003", "LOGP-004", "LOGP-005"), "logprobs"),
    **dict.fromkeys(("SEM-002", "SEM-011"), "n"),
    "FMT-001": "json_object",
    "SEM-010": "stop",
    **dict.fromkeys(("LOGP-006", "LOGP-007", "LOGP-008"), "logprobs"),
    **dict.fromkeys(("AGREE-001", "AGREE-002"), "streaming"),
}
# the open point each rule checks, as the choice (claims.CHOICES) that makes it MUST when claimed
CHOICE_OF: dict[str, str] = {
    **dict.fromkeys(("VAL-009", "VAL-010", "VAL-011", "VAL-012", "VAL-013", "VAL-014", "VAL-016", "VAL-017",
                     "VAL-018"), "refuses-out-of-bounds"),
    "VAL-015": "refuses-nan",
    "VAL-023": "refuses-wrong-types",
    "VAL-008": "refuses-text-plain",
    **dict.fromkeys(("VAL-005", "VAL-019"), "refuses-message-shape"),
    **dict.fromkeys(("VAL-020", "VAL-021"), "refuses-unknown-enum"),
    "HDR-002": "refuses-foreign-account",
    "MODEL-001": "refuses-unknown-model",
    "MODEL-002": "unknown-model-404",
    "AUTH-004": "refuses-other-header",
    "AUTH-005": "auth-401-403",
    **dict.fromkeys(("AUTH-006", "ERR-004"), "error-body-shape"),
    "ERR-002": "validation-status",
    "ERR-006": "retry-after",
    "ERR-007": "no-error-disclosure",
    "SEM-004": "clock-created",
    "SEM-005": "echoes-model",
    **dict.fromkeys(("LOGP-004", "LOGP-005"), "top-logprobs-exact"),
    "TOOL-002": "tool-call-ids",
    "TOOL-003": "tool-call-json",
    "RESP-009": "service-tier-values",
    "HDR-008": "charset-utf8",
    "HDR-007": "request-id",
    **dict.fromkeys(("STRM-005", "CLIENT-002"), "sgp-closes-stream"),
    "CLIENT-004": "sdk-strict-types",
    "STRM-023": "stable-stream-model",
    "SEM-009": "deterministic",
    "AGREE-001": "deterministic",
    "LOGP-008": "greedy-logprobs",
}
REQUIREMENTS = tuple(replace(r, feature=FEATURE_OF.get(r.id), choice=CHOICE_OF.get(r.id)) for r in REQUIREMENTS)

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}


def get(requirement_id: str) -> Requirement:
    return BY_ID[requirement_id]


def for_profile(profile: str) -> list[Requirement]:
    return [r for r in REQUIREMENTS if r.applies_to(profile)]


def markdown_table(requirements: list[Requirement] | None = None, contract_path: str = "contract.md") -> str:
    """docs/requirements.md's table (all requirements by default): ID, level, statement, a link to the rule
    in the contract page (`[§auth-status](contract.md#auth-status)`), source and profiles. `contract_path` is
    the page as the table's file reaches it; the default suits a table in docs/."""
    rows = ["| ID | Level | Requirement | Contract | Source | Profiles |", "|---|---|---|---|---|---|"]
    for r in requirements if requirements is not None else REQUIREMENTS:
        statement = r.statement.replace("|", "\\|")
        link = f"[§{r.anchor}]({contract_path}#{r.anchor})"
        rows.append(f"| {r.id} | {r.level_text()} | {statement} | {link} | {r.source} | {', '.join(r.profiles)} |")
    return "\n".join(rows)
