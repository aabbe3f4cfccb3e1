"""The JSON Schemas in schemas/ and conformance.contract.schema_store: validity, the documented example,
requirement attribution of broken documents, open points, and the OpenAPI documents of both profiles."""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from jsonschema import Draft202012Validator

from conformance.contract import schema_store
from conformance.contract.profiles import PROFILES, get_profile

FIXTURES = Path(__file__).parent / "fixtures"
# shared/ sits beside the repository (in the work tree and in CI)
DOC_PAGE = Path(__file__).resolve().parents[2] / "shared" / "spec" / "chat-completions-doc.txt"
DELETE = object()


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def tokens(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def step(node: Any, token: str) -> Any:
    """The key or index `token` names in `node` (an index only in an array)."""
    return int(token) if isinstance(node, list) else token


def edit(document: Any, pointer: str, value: Any) -> Any:
    """A copy of `document` with the value at `pointer` replaced (or removed, for DELETE)."""
    document = copy.deepcopy(document)
    *parents, last = tokens(pointer)
    node = document
    for part in parents:
        node = node[step(node, part)]
    if value is DELETE:
        del node[step(node, last)]
    else:
        node[step(node, last)] = value
    return document


def pointers(node: Any, prefix: str = "") -> set[str]:
    found = {prefix}
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found |= pointers(value, schema_store.json_pointer([*tokens(prefix), key]))
    return found


def pairs(name: str, document: Any) -> list[tuple[str | None, str]]:
    return [(v.requirement, v.pointer) for v in schema_store.violations(name, document)]


# --- the files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", schema_store.SCHEMA_NAMES)
def test_schema_is_valid_2020_12_with_its_id(name: str) -> None:
    schema = schema_store.load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://sgp-conformance.dev/schemas/{name}.json"
    assert schema_store.registry().contents(schema["$id"]) == schema


def test_the_package_ships_exactly_the_known_documents() -> None:
    shipped = {p.name for p in resources.files("conformance.schemas").iterdir() if p.name.endswith(".json")}
    # conformance-result: the schema of conformance.json (the suite's own output), not of the API
    known = {f"{n}.json" for n in (*schema_store.SCHEMA_NAMES, "openapi", "generation-overlay", "conformance-result")}
    assert shipped == known


def test_load_returns_a_copy_and_validators_are_cached() -> None:
    schema_store.load("common")["$defs"].clear()
    assert schema_store.load("common")["$defs"]
    assert schema_store.validator("chat-completion") is schema_store.validator("chat-completion")
    with pytest.raises(KeyError):
        schema_store.load("nope")


def test_json_pointer_escapes() -> None:
    assert schema_store.json_pointer([]) == ""
    assert schema_store.json_pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"


def test_requirement_annotations_are_where_the_suite_expects_them() -> None:
    response, chunk, common = (
        schema_store.load(n) for n in ("chat-completion", "chat-completion-chunk", "common")
    )
    assert response["x-requirement"] == "RESP-001"
    assert response["properties"]["object"]["x-requirement"] == "RESP-002"
    assert response["$defs"]["choice"]["x-requirement"] == "RESP-003"
    assert response["$defs"]["message"]["x-requirement"] == "RESP-004"
    assert common["$defs"]["usage"]["x-requirement"] == "RESP-005"
    for name in ("choiceLogprobs", "logprobEntry", "topLogprob", "byte"):
        assert common["$defs"][name]["x-requirement"] == "RESP-006"
    assert response["$defs"]["toolCall"]["x-requirement"] == "RESP-007"
    for name in ("annotation", "audio", "functionCall"):
        assert response["$defs"][name]["x-requirement"] == "RESP-008"
    assert common["$defs"]["serviceTier"]["x-requirement"] == "RESP-011"
    assert common["$defs"]["serviceTier"]["then"]["x-requirement"] == "RESP-009"
    assert chunk["x-requirement"] == "STRM-010"
    assert chunk["$defs"]["choice"]["x-requirement"] == "STRM-011"
    assert chunk["$defs"]["delta"]["x-requirement"] == "STRM-012"


# --- the documented example ----------------------------------------------------------------------------


def doc_example() -> dict[str, Any]:
    text = DOC_PAGE.read_text()
    start = text.index("\n{\n") + 1
    document, _ = json.JSONDecoder().raw_decode(text, start)
    assert isinstance(document, dict)
    return document


@pytest.mark.skipif(not DOC_PAGE.exists(), reason="shared/spec is not beside the repository")
def test_doc_example_is_valid() -> None:
    # every number of the page is 123: valid as a type; logprob <= 0 and index 0..n-1 are separate checks
    assert schema_store.violations("chat-completion", doc_example()) == []


@pytest.mark.skipif(not DOC_PAGE.exists(), reason="shared/spec is not beside the repository")
def test_typed_fixture_has_every_field_of_the_doc_example() -> None:
    def shape(document: Any) -> set[str]:  # the keys at every level, array lengths aside
        return {"/".join("*" if t.isdigit() else t for t in tokens(p)) for p in pointers(document)}

    assert shape(fixture("chat-completion-200")) == shape(doc_example())


@pytest.mark.parametrize("name", ["chat-completion-200", "chat-completion-chunk", "chat-completion-request"])
def test_fixtures_are_valid(name: str) -> None:
    schema = {"chat-completion-200": "chat-completion"}.get(name, name)
    assert schema_store.violations(schema, fixture(name)) == []


# --- broken documents: each breaks one rule ------------------------------------------------------------

RESPONSE = ("chat-completion", "chat-completion-200")
CHUNK = ("chat-completion-chunk", "chat-completion-chunk")
REQUEST = ("chat-completion-request", "chat-completion-request")
LOGPROB = "/choices/0/logprobs/content/0"
MESSAGE = "/choices/0/message"
VALIDATION = {"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]}


def broken(
    case_id: str,
    source: tuple[str, str],
    pointer: str,
    value: Any,
    requirement: str | None,
    reported: str | None = None,
) -> Any:
    """A document that breaks one rule: `value` (or DELETE) at `pointer`; reported at `reported`, by
    default the edited pointer, or its parent for a deletion (a missing required key)."""
    if reported is None:
        reported = pointer.rsplit("/", 1)[0] if value is DELETE else pointer
    return pytest.param(source, pointer, value, requirement, reported, id=case_id)


BROKEN = [
    # request subschemas carry a requirement only where one VAL-* rule matches them exactly (else None)
    # broken(case id, (schema, fixture), pointer edited, new value or DELETE, requirement[, pointer reported])
    broken("missing id", RESPONSE, "/id", DELETE, "RESP-001"),
    broken("id number", RESPONSE, "/id", 123, "RESP-001"),
    broken("created float", RESPONSE, "/created", 1.5, "RESP-001"),
    broken("created negative", RESPONSE, "/created", -1, "RESP-001"),
    broken("created string", RESPONSE, "/created", "1700000000", "RESP-001"),
    broken("model null", RESPONSE, "/model", None, "RESP-001"),
    broken("choices object", RESPONSE, "/choices", {}, "RESP-001"),
    broken("system_fingerprint number", RESPONSE, "/system_fingerprint", 1, "RESP-001"),
    broken("object of a chunk", RESPONSE, "/object", "chat.completion.chunk", "RESP-002"),
    broken("finish_reason done", RESPONSE, "/choices/0/finish_reason", "done", "RESP-003"),
    broken("finish_reason null", RESPONSE, "/choices/0/finish_reason", None, "RESP-003"),
    broken("index negative", RESPONSE, "/choices/0/index", -1, "RESP-003"),
    broken("missing message", RESPONSE, MESSAGE, DELETE, "RESP-003"),
    broken("role user", RESPONSE, f"{MESSAGE}/role", "user", "RESP-004"),
    broken("missing role", RESPONSE, f"{MESSAGE}/role", DELETE, "RESP-004"),
    broken("content number", RESPONSE, f"{MESSAGE}/content", 42, "RESP-004"),
    broken("total_tokens negative", RESPONSE, "/usage/total_tokens", -1, "RESP-005"),
    broken("missing prompt_tokens", RESPONSE, "/usage/prompt_tokens", DELETE, "RESP-005"),
    broken(
        "reasoning_tokens float",
        RESPONSE,
        "/usage/completion_tokens_details/reasoning_tokens",
        1.5,
        "RESP-005",
    ),
    broken("bytes 256", RESPONSE, f"{LOGPROB}/bytes/0", 256, "RESP-006"),
    broken("bytes string", RESPONSE, f"{LOGPROB}/bytes", "hi", "RESP-006"),
    broken(
        "top bytes negative", RESPONSE, "/choices/0/logprobs/refusal/0/top_logprobs/0/bytes/1", -1, "RESP-006"
    ),
    broken("logprob string", RESPONSE, f"{LOGPROB}/logprob", "-0.5", "RESP-006"),
    broken("missing token", RESPONSE, f"{LOGPROB}/top_logprobs/0/token", DELETE, "RESP-006"),
    broken("missing top_logprobs", RESPONSE, f"{LOGPROB}/top_logprobs", DELETE, "RESP-006"),
    broken("logprobs string", RESPONSE, "/choices/0/logprobs", "x", "RESP-006"),
    broken("tool_call type web", RESPONSE, f"{MESSAGE}/tool_calls/0/type", "web", "RESP-007"),
    broken(
        "tool_call arguments object", RESPONSE, f"{MESSAGE}/tool_calls/0/function/arguments", {}, "RESP-007"
    ),
    broken("tool_call without function", RESPONSE, f"{MESSAGE}/tool_calls/0/function", DELETE, "RESP-007"),
    broken("tool_calls object", RESPONSE, f"{MESSAGE}/tool_calls", {}, "RESP-007"),
    broken("annotation type", RESPONSE, f"{MESSAGE}/annotations/0/type", "file_citation", "RESP-008"),
    broken("audio expires_at", RESPONSE, f"{MESSAGE}/audio/expires_at", "soon", "RESP-008"),
    broken("function_call name", RESPONSE, f"{MESSAGE}/function_call/name", DELETE, "RESP-008"),
    broken("service_tier turbo", RESPONSE, "/service_tier", "turbo", "RESP-009"),
    broken("chunk object", CHUNK, "/object", "chat.completion", "STRM-010"),
    broken("chunk missing created", CHUNK, "/created", DELETE, "STRM-010"),
    broken("chunk choices null", CHUNK, "/choices", None, "STRM-010"),
    broken("chunk missing delta", CHUNK, "/choices/0/delta", DELETE, "STRM-011"),
    broken("chunk finish_reason", CHUNK, "/choices/0/finish_reason", "done", "STRM-011"),
    broken("chunk index float", CHUNK, "/choices/0/index", 0.5, "STRM-011"),
    broken("delta role bot", CHUNK, "/choices/0/delta/role", "bot", "STRM-012"),
    broken("delta content number", CHUNK, "/choices/0/delta/content", 1, "STRM-012"),
    broken("delta tool_call index", CHUNK, "/choices/0/delta/tool_calls/0/index", DELETE, "STRM-012"),
    broken("chunk usage string", CHUNK, "/usage/prompt_tokens", "10", "RESP-005"),
    broken("chunk bytes", CHUNK, f"{LOGPROB}/bytes/0", 300, "RESP-006"),
    broken("chunk service_tier", CHUNK, "/service_tier", "turbo", "RESP-009"),
    broken("service_tier number", RESPONSE, "/service_tier", 1, "RESP-011"),
    broken("chunk service_tier number", CHUNK, "/service_tier", 1, "RESP-011"),
    broken("request missing model", REQUEST, "/model", DELETE, None),
    broken("request model empty", REQUEST, "/model", "", "VAL-004"),
    broken("request messages empty", REQUEST, "/messages", [], None),
    broken("request n 0", REQUEST, "/n", 0, "VAL-010"),
    broken("request n 129", REQUEST, "/n", 129, "VAL-010"),
    broken("request temperature", REQUEST, "/temperature", 2.5, "VAL-009"),
    broken("request top_p", REQUEST, "/top_p", 1.5, None),
    broken("request presence_penalty", REQUEST, "/presence_penalty", -3, None),
    broken("request top_logprobs", REQUEST, "/top_logprobs", 21, "VAL-011"),
    broken("request top_logprobs alone", REQUEST, "/logprobs", DELETE, None),
    broken("request stop 5", REQUEST, "/stop", ["a", "b", "c", "d", "e"], "VAL-012"),
    broken("request stop number", REQUEST, "/stop", 1, "VAL-012"),
    broken("request logit_bias", REQUEST, "/logit_bias/50256", 101, None),
    broken("request max_tokens 0", REQUEST, "/max_tokens", 0, "VAL-013"),
    broken("request seed float", REQUEST, "/seed", 1.5, None),
    broken("request stream string", REQUEST, "/stream", "yes", None),
    broken("request include_usage", REQUEST, "/stream_options/include_usage", 1, None),
    broken("request metadata escaped", REQUEST, "/metadata/a~1b", 1, None),
    broken("message role bot", REQUEST, "/messages/0/role", "bot", None),
    broken("user content null", REQUEST, "/messages/2/content", None, None),
    broken("user content missing", REQUEST, "/messages/0/content", DELETE, None),
    broken("content parts empty", REQUEST, "/messages/1/content", [], None),
    broken("tool without tool_call_id", REQUEST, "/messages/4/tool_call_id", DELETE, None),
    broken("image url number", REQUEST, "/messages/2/content/1/image_url/url", 3, None),
    broken("part type video", REQUEST, "/messages/2/content/0/type", "video", None, "/messages/2/content/0"),
    broken("tools 129", REQUEST, "/tools", [fixture("chat-completion-request")["tools"][0]] * 129, None),
    broken("tool name", REQUEST, "/tools/0/function/name", "get weather", None),
    broken("tool type", REQUEST, "/tools/0/type", "retrieval", None),
    broken("tool_choice always", REQUEST, "/tool_choice", "always", None),
    broken("tool_choice no name", REQUEST, "/tool_choice/function/name", DELETE, None),
    broken("response_format xml", REQUEST, "/response_format", {"type": "xml"}, None),
    broken("json_schema without name", REQUEST, "/response_format/json_schema/name", DELETE, None),
]
ERROR_BODIES: list[tuple[str, str, Any, str, str]] = [
    # (case id, schema, document, requirement, pointer)
    ("422 detail string", "error-validation", {"detail": "bad"}, "ERR-003", "/detail"),
    (
        "422 missing msg",
        "error-validation",
        edit(VALIDATION, "/detail/0/msg", DELETE),
        "ERR-003",
        "/detail/0",
    ),
    (
        "422 loc float",
        "error-validation",
        edit(VALIDATION, "/detail/0/loc/1", 1.5),
        "ERR-003",
        "/detail/0/loc/1",
    ),
    ("detail null", "error-detail", {"detail": None}, "ERR-004", "/detail"),
    ("detail missing", "error-detail", {"message": "no"}, "ERR-004", ""),
    ("detail number", "error-detail", {"detail": 401}, "ERR-004", "/detail"),
    ("openai no message", "error-openai", {"error": {"type": "invalid_request_error"}}, "ERR-004", "/error"),
    ("openai code float", "error-openai", {"error": {"message": "m", "code": 1.5}}, "ERR-004", "/error/code"),
    ("openai flat", "error-openai", {"message": "m"}, "ERR-004", ""),
]


@pytest.mark.parametrize(("source", "pointer", "value", "requirement", "reported"), BROKEN)
def test_broken_document_is_attributed(
    source: tuple[str, str], pointer: str, value: Any, requirement: str | None, reported: str
) -> None:
    name, base = source
    document = edit(fixture(base), pointer, value)
    assert pairs(name, document) == [(requirement, reported)]


@pytest.mark.parametrize(
    ("name", "document", "requirement", "reported"), [pytest.param(*c[1:], id=c[0]) for c in ERROR_BODIES]
)
def test_broken_error_body_is_attributed(name: str, document: Any, requirement: str, reported: str) -> None:
    assert pairs(name, document) == [(requirement, reported)]


def test_attribution_from_the_raw_error_and_through_anyof() -> None:
    document = edit(fixture("chat-completion-request"), "/messages/2/content/1/image_url/url", 3)
    (error,) = schema_store.errors("chat-completion-request", document)
    assert error.validator == "anyOf"  # the content part alternatives
    assert schema_store.requirement_for(error, "chat-completion-request") is None  # no VAL rule for parts
    document = edit(document, "/temperature", "hot")
    errors = list(schema_store.errors("chat-completion-request", document))
    assert {schema_store.requirement_for(e, "chat-completion-request") for e in errors} == {None, "VAL-009"}
    leaf = schema_store.leaf_error(error)
    assert schema_store.json_pointer(leaf.absolute_path) == "/messages/2/content/1/image_url/url"
    assert leaf.validator == "type"


def test_schema_excerpts_are_small() -> None:
    documents = [(c.values[0][0], edit(fixture(c.values[0][1]), c.values[1], c.values[2])) for c in BROKEN]
    documents += [(c[1], c[2]) for c in ERROR_BODIES]
    for name, document in documents:
        for violation in schema_store.violations(name, document):
            assert len(json.dumps(violation.schema, ensure_ascii=False)) <= 400, violation
            assert violation.schema["keyword"] == violation.keyword


def test_valid_error_bodies() -> None:
    assert pairs("error-validation", VALIDATION) == []
    pydantic_v2 = edit(VALIDATION, "/detail/0/input", {"model": "m"})
    pydantic_v2["detail"][0] |= {"ctx": {"error": "x"}, "url": "https://errors.pydantic.dev/2.9/v/missing"}
    assert pairs("error-validation", pydantic_v2) == []
    for detail in ("Not authenticated", {"detail": "Invalid API key"}, [{"msg": "x"}]):
        assert pairs("error-detail", {"detail": detail}) == []
    assert pairs("error-openai", {"error": {"message": "m", "type": None, "param": None, "code": None}}) == []
    assert pairs("error-openai", {"error": {"message": "m", "code": 429}}) == []


# --- open points: accepted -----------------------------------------------------------------------------

RESPONSE_OPTIONAL = [
    "/object",
    "/service_tier",
    "/system_fingerprint",
    "/usage",
    "/usage/completion_tokens_details",
    "/usage/completion_tokens_details/accepted_prediction_tokens",
    "/usage/completion_tokens_details/audio_tokens",
    "/usage/completion_tokens_details/reasoning_tokens",
    "/usage/completion_tokens_details/rejected_prediction_tokens",
    "/usage/prompt_tokens_details",
    "/usage/prompt_tokens_details/audio_tokens",
    "/usage/prompt_tokens_details/cached_tokens",
    "/choices/0/logprobs",
    "/choices/0/logprobs/content",
    "/choices/0/logprobs/refusal",
    f"{LOGPROB}/bytes",
    f"{LOGPROB}/top_logprobs/0/bytes",
    f"{MESSAGE}/content",
    f"{MESSAGE}/refusal",
    f"{MESSAGE}/annotations",
    f"{MESSAGE}/audio",
    f"{MESSAGE}/function_call",
    f"{MESSAGE}/tool_calls",
]
RESPONSE_REQUIRED = [
    "/id",
    "/choices",
    "/created",
    "/model",
    "/usage/completion_tokens",
    "/usage/prompt_tokens",
    "/usage/total_tokens",
    "/choices/0/finish_reason",
    "/choices/0/index",
    "/choices/0/message",
    f"{LOGPROB}/token",
    f"{LOGPROB}/logprob",
    f"{LOGPROB}/top_logprobs",
    f"{MESSAGE}/role",
    f"{MESSAGE}/annotations/0/url_citation/url",
    f"{MESSAGE}/audio/expires_at",
    f"{MESSAGE}/function_call/name",
    f"{MESSAGE}/tool_calls/0/id",
]
CHUNK_OPTIONAL = [
    "/object",
    "/service_tier",
    "/system_fingerprint",
    "/usage",
    "/choices/0/finish_reason",
    "/choices/0/logprobs",
    "/choices/0/delta/role",
    "/choices/0/delta/content",
    "/choices/0/delta/refusal",
    "/choices/0/delta/function_call",
    "/choices/0/delta/tool_calls",
    "/choices/0/delta/tool_calls/0/id",
    "/choices/0/delta/tool_calls/0/type",
    "/choices/0/delta/tool_calls/0/function",
    "/choices/0/delta/tool_calls/0/function/name",
    "/choices/0/delta/tool_calls/0/function/arguments",
]
CHUNK_REQUIRED = ["/id", "/choices", "/created", "/model", "/choices/0/index", "/choices/0/delta"]


@pytest.mark.parametrize("how", ["null", "absent"])
@pytest.mark.parametrize(
    ("source", "pointer"),
    [pytest.param(RESPONSE, p, id=f"response{p}") for p in RESPONSE_OPTIONAL]
    + [pytest.param(CHUNK, p, id=f"chunk{p}") for p in CHUNK_OPTIONAL],
)
def test_optional_field_may_be_null_or_absent(source: tuple[str, str], pointer: str, how: str) -> None:
    name, base = source
    document = edit(fixture(base), pointer, None if how == "null" else DELETE)
    assert pairs(name, document) == []


@pytest.mark.parametrize(
    ("source", "pointer"),
    [pytest.param(RESPONSE, p, id=f"response{p}") for p in RESPONSE_REQUIRED]
    + [pytest.param(CHUNK, p, id=f"chunk{p}") for p in CHUNK_REQUIRED],
)
def test_required_field_may_be_neither_null_nor_absent(source: tuple[str, str], pointer: str) -> None:
    name, base = source
    for value in (None, DELETE):
        assert pairs(name, edit(fixture(base), pointer, value)), (pointer, value)


def with_extra_keys(node: Any) -> Any:
    if isinstance(node, list):
        return [with_extra_keys(item) for item in node]
    if isinstance(node, dict):
        return {**{k: with_extra_keys(v) for k, v in node.items()}, "x_extra": {"nested": [1, None]}}
    return node


@pytest.mark.parametrize(
    ("name", "base"),
    [RESPONSE, CHUNK, REQUEST],
)
def test_extra_keys_are_accepted_at_every_level(name: str, base: str) -> None:
    document = fixture(base)
    if name == "chat-completion-request":
        # the free-form objects (parameters, schema, metadata, logit_bias) take any keys anyway
        document = {k: v for k, v in document.items() if k not in ("metadata", "logit_bias")}
    assert pairs(name, with_extra_keys(document)) == []
    for error_name, body in [("error-validation", VALIDATION), ("error-openai", {"error": {"message": "m"}})]:
        assert pairs(error_name, with_extra_keys(body)) == []


@pytest.mark.parametrize("tier", ["auto", "default", "flex", "scale", "priority", "fast", None])
def test_service_tier_values(tier: str | None) -> None:
    assert pairs("chat-completion", edit(fixture("chat-completion-200"), "/service_tier", tier)) == []


def test_custom_tool_call_is_accepted() -> None:
    custom = {"id": "call-2", "type": "custom", "custom": {"name": "grep", "input": "x"}}
    document = edit(fixture("chat-completion-200"), f"{MESSAGE}/tool_calls/0", custom)
    assert pairs("chat-completion", document) == []
    assert pairs("chat-completion", edit(document, f"{MESSAGE}/tool_calls/0/custom", DELETE)) == [
        ("RESP-007", f"{MESSAGE}/tool_calls/0")
    ]


def test_final_usage_chunk_has_no_choices() -> None:
    chunk = fixture("chat-completion-chunk") | {"choices": []}
    assert pairs("chat-completion-chunk", chunk) == []


def test_integral_float_is_an_integer() -> None:
    # JSON Schema's integer accepts 1.0 (CONTRACT.md pitfall); a strict-JSON check may say more
    assert pairs("chat-completion", edit(fixture("chat-completion-200"), "/created", 1700000000.0)) == []


@pytest.mark.parametrize("param", sorted(set(fixture("chat-completion-request")) - {"messages", "model"}))
def test_request_params_are_not_nullable(param: str) -> None:
    # OPEN whether SGP accepts null; the schema documents that nothing says it does
    found = pairs("chat-completion-request", edit(fixture("chat-completion-request"), f"/{param}", None))
    assert found
    assert {pointer for _, pointer in found} <= {f"/{param}", ""}


# --- OpenAPI -------------------------------------------------------------------------------------------


def refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return own + [r for value in node.values() for r in refs(value)]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in tokens(ref[1:]):
        node = node[step(node, part)]
    return node


@pytest.mark.parametrize("generation", [False, True])
@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_openapi_document_is_self_contained(profile_name: str, generation: bool) -> None:
    profile = get_profile(profile_name)
    document = schema_store.openapi_document(profile_name, generation=generation)
    assert document["openapi"] == "3.1.0"
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        resolve(document, ref)
    for schema in document["components"]["schemas"].values():
        assert "$id" not in schema
    assert list(document["paths"]) == [profile.path]
    operation = document["paths"][profile.path]["post"]
    assert operation["operationId"] == "createChatCompletion"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/chat-completion-request"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    ((scheme_name, _),) = (item for requirement in operation["security"] for item in requirement.items())
    scheme = document["components"]["securitySchemes"][scheme_name]
    errors = {
        status: r["content"]["application/json"]["schema"]["$ref"]
        for status, r in operation["responses"].items()
    }
    del errors["200"]
    headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
    if profile_name == "sgp":
        assert scheme == {"type": "apiKey", "in": "header", "name": "x-api-key"}
        assert headers == ([] if generation else ["x-selected-account-id"])
        assert set(errors) == {"401", "403", "404", "422", "429"}
        assert errors.pop("422").endswith("/error-validation")
        assert set(errors.values()) == {"#/components/schemas/error-detail"}
    else:
        assert scheme == {"type": "http", "scheme": "bearer"}
        assert headers == []
        assert set(errors) == {"400", "401", "404", "429"}
        assert set(errors.values()) == {"#/components/schemas/error-openai"}
    loaded = schemathesis.openapi.from_dict(document)
    assert loaded[profile.path]["POST"].definition.raw["operationId"] == "createChatCompletion"


def test_sgp_document_is_openapi_json_bundled() -> None:
    """The sgp profile's document is schemas/openapi.json itself with its file references bundled."""
    raw = json.dumps(schema_store.load("openapi")["paths"])
    for name in schema_store.SCHEMA_NAMES:
        raw = raw.replace(f'"{name}.json"', f'"#/components/schemas/{name}"')
    assert schema_store.openapi_document("sgp")["paths"] == json.loads(raw)


def test_generation_overlay_never_narrows_responses() -> None:
    for profile_name in PROFILES:
        full = schema_store.openapi_document(profile_name)["components"]["schemas"]
        narrow = schema_store.openapi_document(profile_name, generation=True)["components"]["schemas"]
        assert narrow.keys() == full.keys()
        for name in full:
            assert (narrow[name] == full[name]) == (name != "chat-completion-request"), name


GENERATION = settings(
    max_examples=25,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def operation_for(profile_name: str, generation: bool) -> Any:
    document = schema_store.openapi_document(profile_name, generation=generation)
    return schemathesis.openapi.from_dict(document)[get_profile(profile_name).path]["POST"]


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_generated_bodies_are_valid_requests(profile_name: str) -> None:
    # how fast the overlay draws is benchmarks/run.py's to measure, not a test's (a busy CI runner is slow)
    request = schema_store.validator("chat-completion-request")

    @GENERATION
    @given(operation_for(profile_name, generation=True).as_strategy())
    def check(case: Any) -> None:
        assert not list(request.iter_errors(case.body)), case.body

    check()


def test_bodies_generated_from_the_full_contract_are_valid_requests() -> None:
    # ~70 ms per case (deep content parts, free-form objects): few examples
    request = schema_store.validator("chat-completion-request")

    @settings(GENERATION, max_examples=5)
    @given(operation_for("sgp", generation=False).as_strategy())
    def check(case: Any) -> None:
        assert not list(request.iter_errors(case.body)), case.body

    check()


# --- the inlined validators: the same answers as the validators that resolve references ----------------


@pytest.mark.parametrize(("source", "pointer", "value", "requirement", "reported"), BROKEN)
def test_inlined_validator_refuses_what_the_referencing_one_refuses(
    source: tuple[str, str], pointer: str, value: Any, requirement: str | None, reported: str
) -> None:
    name, base = source
    document = edit(fixture(base), pointer, value)
    assert schema_store.fast_validator(name).is_valid(document) is False
    assert schema_store.validator(name).is_valid(document) is False


@pytest.mark.parametrize("name", ["chat-completion-200", "chat-completion-chunk", "chat-completion-request"])
def test_inlined_validator_accepts_what_the_referencing_one_accepts(name: str) -> None:
    schema = name.removesuffix("-200")
    document = fixture(name)
    assert schema_store.fast_validator(schema).is_valid(document) is True
    for pointer in sorted(pointers(document) - {""}):
        pruned = edit(document, pointer, DELETE)
        assert schema_store.fast_validator(schema).is_valid(pruned) == schema_store.validator(schema).is_valid(
            pruned), pointer


def _errors_read_off(errors: Any) -> list[tuple[Any, ...]]:
    return [(e.validator, e.message, list(e.absolute_path), "dependentSchemas" in e.absolute_schema_path,
             schema_store.schema_excerpt(schema_store.leaf_error(e))) for e in errors]


def test_the_errors_of_the_inlined_schema_are_the_referencing_ones() -> None:
    """schema_store.errors reads documents against the schemas with their references inlined (twice as fast on
    an invalid document); over some 1,200 changed answers, chunks, requests and error bodies it finds what the validator
    that resolves references finds: the same errors in the same order (keyword, message, instance path, a
    dependentSchemas rule or not), the same most telling one (best_match), and the same excerpt of the schema
    as written (a `$ref` quoted as a `$ref`). Attribution through the inlined schema is held by the broken
    documents above (`pairs`)."""
    from builders import DELETED, paths, replaced
    from jsonschema.exceptions import best_match

    # every ninth: each place and each odd value still comes round (the referencing validator is the slow one)
    documents = _documents()[::9]
    request = fixture("chat-completion-request")
    for path in list(paths(request))[::6]:
        documents += [("chat-completion-request", replaced(request, path, value)) for value in _ODD_VALUES[::4]]
        documents += [("chat-completion-request", replaced(request, path, DELETED))] if path else []
    documents += [(name, body) for name in ("error-validation", "error-detail", "error-openai")
                  for _, body in documents[:20]]
    invalid = 0
    for name, doc in documents:
        referencing, inlined = list(schema_store.validator(name).iter_errors(doc)), list(schema_store.errors(name, doc))
        assert _errors_read_off(inlined) == _errors_read_off(referencing), (name, doc)
        first, again = best_match(referencing), best_match(inlined)
        assert (first is None) == (again is None), (name, doc)
        if first is not None and again is not None:
            assert (first.message, list(first.path)) == (again.message, list(again.path)), (name, doc)
        invalid += bool(referencing)
    assert invalid > 500


def test_inlining_keeps_no_reference_and_refuses_a_recursive_schema() -> None:
    flat = schema_store.inlined(schema_store.load("chat-completion"))
    assert "$ref" not in json.dumps(flat)
    recursive = {"$id": "https://example.test/tree.json", "type": "object",
                 "properties": {"child": {"$ref": "#"}}}
    with pytest.raises(RecursionError):
        schema_store.inlined(recursive)
    # a reference beside an allOf of its own: both rules stay
    both = {"$id": "https://example.test/both.json", "$defs": {"n": {"type": "integer"}},
            "$ref": "#/$defs/n", "allOf": [{"minimum": 3}]}
    both_flat = Draft202012Validator(schema_store.inlined(both))
    assert [e.message for e in both_flat.iter_errors("x")] == ["'x' is not of type 'integer'"]
    assert [e.message for e in both_flat.iter_errors(1)] == ["1 is less than the minimum of 3"]


# --- the examples a mock serves --------------------------------------------------------------------------
# Prism (static, and --dynamic through x-json-schema-faker's useExamplesValue) answers with the schemas'
# examples: they must be conformant answers, or a mock built from the document cannot be.

PLAIN = [{"role": "user", "content": "Say hello."}]


def examples_in(node: Any, pointer: str = "") -> list[tuple[str, Any]]:
    """(pointer of the subschema, example) for every `examples` entry of a schema, at any depth."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        found += [(pointer, example) for example in node.get("examples", [])]
        for key, value in node.items():
            if key not in ("examples", "const", "enum", "default"):
                found += examples_in(value, schema_store.json_pointer([*tokens(pointer), key]))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += examples_in(value, schema_store.json_pointer([*tokens(pointer), i]))
    return found


@pytest.mark.parametrize("name", schema_store.SCHEMA_NAMES)
def test_every_example_is_valid_against_its_own_subschema(name: str) -> None:
    found = examples_in(schema_store.load(name))
    for pointer, example in found:
        at = Draft202012Validator({"$ref": f"{schema_store.uri(name)}#{pointer}"}, registry=schema_store.registry())
        assert list(at.iter_errors(example)) == [], (name, pointer)
    if name in ("chat-completion", "chat-completion-chunk", "common") or name.startswith("error-"):
        assert found, f"{name} has no example for a mock to serve"


def test_completion_example_passes_every_response_check() -> None:
    from builders import make_exchange

    from conformance.checks import response
    from conformance.contract.profiles import OPENAI, SGP

    (example,) = schema_store.load("chat-completion")["examples"]
    # the example answers logprobs: true with top_logprobs: 2, and passes every rule a plain request
    # makes applicable too
    for params in ({"model": example["model"], "messages": PLAIN},
                   {"model": example["model"], "messages": PLAIN, "logprobs": True, "top_logprobs": 2}):
        for profile in (SGP, OPENAI):
            exchange = make_exchange(body=example, params=params)
            found = response.completion_checks(exchange, profile, example["created"], include_info=True)
            assert found == [], [v.render() for v in found]


def test_the_same_checks_catch_a_broken_example() -> None:
    # the test above can fail: the example with the faults Prism served before it had one
    from builders import make_exchange

    from conformance.checks import findings, response
    from conformance.contract.profiles import SGP

    (example,) = schema_store.load("chat-completion")["examples"]
    broken = copy.deepcopy(example)
    broken["usage"]["total_tokens"] += 1
    entry = broken["choices"][0]["logprobs"]["content"][0]
    entry.update(bytes=[0], logprob=0.5)
    params = {"model": example["model"], "messages": PLAIN, "logprobs": True, "top_logprobs": 2}
    found = findings(response.completion_checks(make_exchange(body=broken, params=params), SGP, example["created"]))
    assert {v.requirement for v in found} == {"SEM-001", "LOGP-002", "LOGP-003"}


def test_stream_example_passes_every_stream_check_and_matches_the_item_schema() -> None:
    from builders import make_exchange

    from conformance.checks import response
    from conformance.contract.profiles import OPENAI, SGP

    params = {"model": "openai/gpt-4o-mini", "messages": PLAIN, "stream": True,
              "stream_options": {"include_usage": True}}
    for profile in (SGP, OPENAI):
        document = schema_store.openapi_document(profile.name)
        media = document["paths"][profile.path]["post"]["responses"]["200"]["content"]["text/event-stream"]
        (text,) = media["schema"]["examples"]
        exchange = make_exchange(body=text, params=params, stream=True)
        found = response.stream_checks(exchange, profile, 1764547200, include_info=True)
        assert found == [], [v.render() for v in found]
        # under sgp the stream ends by closing (the terminator is open there), under openai with [DONE]
        events = [block for block in text.split("\n\n") if block]
        assert (events[-1] == "data: [DONE]") == (profile is OPENAI)
    # each event: only data, JSON that is a chunk (the item schema's contentSchema), or the terminator
    media = schema_store.load("openapi")["paths"]["/v4/beta/chat/completions"]["post"]["responses"]["200"][
        "content"]["text/event-stream"]
    item = media["x-sse-item-schema"]
    for event in [block for block in media["schema"]["examples"][0].split("\n\n") if block]:
        field, _, data = event.partition(": ")
        assert field in item["properties"] and item["required"] == ["data"]
        assert schema_store.violations("chat-completion-chunk", json.loads(data)) == []
    (chunk_branch, done_branch) = item["properties"]["data"]["anyOf"]
    assert chunk_branch["contentSchema"] == {"$ref": "chat-completion-chunk.json"}
    assert done_branch == {"const": "[DONE]"}


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_document_tells_json_schema_faker_to_take_the_examples(profile_name: str) -> None:
    # read by Prism's --dynamic (stoplightio/prism#2683: only where npm installs one json-schema-faker)
    assert schema_store.openapi_document(profile_name)["x-json-schema-faker"] == {"useExamplesValue": True}


# --- jsonschema-rs answers is_valid as jsonschema does -----------------------------------------------------

_ODD_VALUES: list[Any] = [None, "x", "", "a\n", "\ud800", 0, 1, -1, 1.0, 1.5, -0.0, 2**63, 10**30, 1e300, True, False,
                          [], [None], [1, 1.0], {}, {"a": None}, {"role": "assistant"}]


@functools.cache
def _documents() -> list[tuple[str, Any]]:
    """Valid documents of the completion and chunk schemas, each changed at every place in every odd way."""
    from builders import DELETED, choice, chunk, completion, logprobs, paths, replaced, tool_call, usage

    rich = completion(choices=[choice(0, None, "tool_calls", tool_calls=[tool_call()], logprobs=logprobs()),
                               choice(1, '{"a": 1}', "stop", logprobs=logprobs())],
                      usage=usage(5, 6, completion_tokens_details={"reasoning_tokens": 0}))
    pieces = [chunk({"role": "assistant", "content": ""}), chunk({"content": "x"}, 0, "stop"),
              chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "get_weather", "arguments": "{}"}}]})]
    originals = [("chat-completion", rich), *(("chat-completion-chunk", c) for c in pieces)]
    out = list(originals)
    for name, doc in originals:
        for path in paths(doc):
            out += [(name, replaced(doc, path, value)) for value in _ODD_VALUES]
            if path:
                out.append((name, replaced(doc, path, DELETED)))
    return out


def test_the_compiled_validator_never_accepts_what_jsonschema_refuses() -> None:
    """schema_store.is_valid asks jsonschema-rs first and takes its yes: over thousands of changed answers and
    chunks (wrong types, 1.0 for an integer, True for a number, lone surrogates, integers past 64 bits,
    trailing newlines, missing fields), a yes of jsonschema-rs is a yes of jsonschema, and is_valid's
    answer is always jsonschema's."""
    from conformance.contract import schema_store

    documents = _documents()
    assert len(documents) > 2000
    refused = 0
    for name, doc in documents:
        expected = schema_store.fast_validator(name).is_valid(doc)
        compiled = schema_store._compiled_validator(name)
        assert compiled is not None, "jsonschema-rs comes with schemathesis"
        try:
            rust = compiled.is_valid(doc)
        except Exception:
            rust = None
        assert not (rust and not expected), (name, doc)
        assert schema_store.is_valid(name, doc) == expected, (name, doc)
        refused += not expected
    assert 0 < refused < len(documents)
