"""The JSON Schemas in schemas/ (shipped as package `conformance.schemas`): loading, compiled validators,
requirement attribution of violations, and the OpenAPI document of each profile.

Every schema has `$id` https://sgp-conformance.dev/schemas/<name>.json and the documents reference each
other by `$ref`; `registry()` resolves those references offline. A document's errors (`errors`) come from
the schema with its references inlined; a violation is attributed to the `x-requirement` of the deepest
subschema on its schema path there, which is the deepest on the path through the `$ref`s.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any
from urllib.parse import urldefrag, urljoin

import referencing
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing.jsonschema import DRAFT202012

from conformance.contract.profiles import Profile, get_profile

BASE_URI = "https://sgp-conformance.dev/schemas/"
SCHEMA_NAMES: tuple[str, ...] = (
    "common",
    "chat-completion",
    "chat-completion-chunk",
    "chat-completion-request",
    "error-validation",
    "error-detail",
    "error-openai",
)
# the other JSON documents in schemas/: not JSON Schemas
OPENAPI_NAME = "openapi"
OVERLAY_NAME = "generation-overlay"
REQUIREMENT_KEYWORD = "x-requirement"
_COMPONENTS = "#/components/schemas/"
# the account header parameter as schemas/openapi.json (the sgp profile) names it
_ACCOUNT_HEADER = "x-selected-account-id"

# per error style: the error statuses besides the profile's validation status, and the description of
# each ("validation" describes the validation status)
_ERROR_RESPONSES: dict[str, dict[str, str]] = {
    "fastapi": {
        "401": "Missing or wrong API key",
        "403": "The key may not act (for this account)",
        "404": "Unknown account or model",
        "429": "Rate limited",
        "validation": "Validation Error",
    },
    "openai": {
        "401": "Missing or wrong API key",
        "404": "Unknown model",
        "429": "Rate limited",
        "validation": "Invalid request",
    },
}
_MAX_EXCERPT = 400


def uri(name: str) -> str:
    return f"{BASE_URI}{name}.json"


@functools.cache
def _read(name: str) -> dict[str, Any]:
    if name not in (*SCHEMA_NAMES, OPENAPI_NAME, OVERLAY_NAME):
        raise KeyError(f"no schema named {name!r}")
    text = resources.files("conformance.schemas").joinpath(f"{name}.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def load(name: str) -> dict[str, Any]:
    """A fresh copy of schemas/<name>.json (a schema name, "openapi" or "generation-overlay")."""
    return copy.deepcopy(_read(name))


@functools.cache
def parameter_types(name: str) -> Mapping[str, Any]:
    """The JSON type of each top-level property of schema `name` ({"n": "integer", "stop": ["string",
    "array", "null"], ...}; absent where the property gives none), read once: reading a property's type
    once per generated case would copy the whole schema each time (`load`), a tenth of a deep run's CPU."""
    return MappingProxyType({key: sub.get("type") for key, sub in _read(name).get("properties", {}).items()
                             if isinstance(sub, dict) and "type" in sub})


@functools.cache
def registry() -> referencing.Registry[Any]:
    """All schemas by `$id`."""
    return referencing.Registry().with_resources(
        (uri(name), DRAFT202012.create_resource(_read(name))) for name in SCHEMA_NAMES
    )


@functools.cache
def validator(name: str) -> Validator:
    """The compiled validator of a schema, built once (the schema itself is checked once, here)."""
    schema = _read(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry())


# keywords whose value is data, not a subschema: left as they are when references are inlined
_DATA_KEYWORDS = frozenset({"const", "enum", "examples", "default", "required", "description", "$comment",
                            "title", "format", "pattern", REQUIREMENT_KEYWORD})
_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "dependentSchemas"})


def inlined(schema: dict[str, Any], origins: dict[int, Any] | None = None) -> dict[str, Any]:
    """`schema` (one of schemas/ or a changed copy, its `$id` kept) with every `$ref` replaced by what
    it points to: the same rules, without the reference lookups that take half of jsonschema's time. A
    `$ref` beside other keywords becomes `allOf: [target]` beside them (the first of an `allOf` already
    there), as 2020-12 reads it.
    `origins`, if given, receives for each object of the result (by `id`) the object of `schema` or of a
    schema it references that it was made from. RecursionError for a recursive schema (none of this
    contract's is)."""

    def walk(node: Any, resolver: Any, seen: tuple[int, ...]) -> Any:
        if isinstance(node, list):
            return [walk(n, resolver, seen) for n in node]
        if not isinstance(node, dict):
            return node
        target = None
        if isinstance(node.get("$ref"), str):
            resolved = resolver.lookup(node["$ref"])
            if id(resolved.contents) in seen:
                raise RecursionError(f"{node['$ref']} refers to itself")
            target = walk(resolved.contents, resolved.resolver, (*seen, id(resolved.contents)))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$ref", "$id", "$schema", "$defs"):
                continue
            if key in _MAP_KEYWORDS and isinstance(value, dict):
                out[key] = {name: walk(sub, resolver, seen) for name, sub in value.items()}
            elif key in _DATA_KEYWORDS:
                out[key] = value
            else:
                out[key] = walk(value, resolver, seen)
        if target is not None and not out:
            return target
        made = out
        if target is not None:
            # the reference is read where `$ref` stands (keywords are applied in order); beside an `allOf` of
            # its own, it joins that one, first
            joined = [target, *out.get("allOf", [])]
            made = {("allOf" if k == "$ref" else k): (joined if k == "$ref" else out[k])
                    for k in node if k == "$ref" or (k in out and k != "allOf")}
        if origins is not None:
            origins[id(made)] = node
        return made

    # the schema given is the root its own `#/...` references resolve in, even where it differs from the file
    resolver = registry().resolver_with_root(DRAFT202012.create_resource(schema))
    flat: dict[str, Any] = walk(schema, resolver, ())
    return flat


# each object of the inlined schemas (`_flat`, kept for the process) by `id`: the schema's own object it was made
# from, which a report quotes (`schema_excerpt`: a `$ref` as written, not the schema it points to)
_ORIGINS: dict[int, Any] = {}


@functools.cache
def _flat(name: str) -> dict[str, Any]:
    """schemas/<name>.json with its references inlined (`inlined`), its objects' origins in `_ORIGINS`."""
    origins: dict[int, Any] = {}
    flat = inlined(_read(name), origins)
    _ORIGINS.update(origins)
    return flat


@functools.cache
def fast_validator(name: str) -> Validator:
    """A validator of schemas/<name>.json with its references inlined (`_flat`): the same answers and errors
    as `validator(name)`, without a reference lookup at each `$ref`."""
    return Draft202012Validator(_flat(name))


def errors(name: str, instance: Any) -> Iterator[ValidationError]:
    """Every error of `instance` against schemas/<name>.json, in jsonschema's order: those of
    `validator(name)` (the same keywords, messages and instance paths; tests/test_schemas.py holds the two to
    it) from `fast_validator(name)`, which finds them in half the time. Their schema paths run through the
    inlined schema: `requirement_for` and `schema_excerpt` read them so."""
    return fast_validator(name).iter_errors(instance)


@functools.cache
def _compiled_validator(name: str) -> Any:
    """jsonschema-rs's validator of schemas/<name>.json (references inlined), or None where it cannot be had.

    jsonschema-rs comes with schemathesis (its own dependency): it answers `is_valid` about 50 times faster
    than jsonschema, and validating every answer and every chunk was a tenth of a run's CPU. It is used only
    for that yes or no: what is wrong with an invalid document always comes from jsonschema (`errors`), and a
    document it refuses that jsonschema accepts (Python's `$` matches before a final newline, Rust's does
    not) only costs that second look. tests/test_schemas.py holds the two to the same answers."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        return jsonschema_rs.Draft202012Validator(_flat(name))
    except Exception:  # a schema it cannot compile: jsonschema judges alone
        return None


def is_valid(name: str, instance: Any) -> bool:
    """Whether `instance` is valid against schemas/<name>.json (the same answer as `validator(name)`)."""
    return surely_valid(name, instance) or (_compiled_validator(name) is not None
                                            and bool(fast_validator(name).is_valid(instance)))


def surely_valid(name: str, instance: Any) -> bool:
    """The quick yes of `is_valid`: True when `instance` is valid; False when it may not be, which only
    jsonschema's errors settle (`errors`; jsonschema-rs refuses a few documents jsonschema accepts). For a caller
    that reads the errors next: a document refused here is not validated a second time before that."""
    compiled = _compiled_validator(name)
    if compiled is None:
        return bool(fast_validator(name).is_valid(instance))
    try:
        return bool(compiled.is_valid(instance))
    except Exception:  # a value it cannot take (a lone surrogate, an integer past 64 bits): jsonschema's
        return False


def _mismatched(error: ValidationError) -> bool:
    """Whether an error inside an alternative says the instance is not of that alternative's kind:
    a wrong type of the whole instance, or a wrong value of the whole instance or of a direct member
    (a discriminator such as `type: "text"`)."""
    if error.validator == "type":
        return not error.relative_path
    return error.validator in ("const", "enum") and len(error.relative_path) <= 1


def leaf_error(error: ValidationError) -> ValidationError:
    """For an anyOf/oneOf failure, the most relevant error inside the alternatives (repeatedly).

    Alternatives that the instance does not even match in kind (see `_mismatched`) are set aside and
    `best_match` picks among the errors of the others. Where none is left but exactly one alternative
    has the instance's JSON type (e.g. a wrong string where the alternatives are an enum of strings and
    an object), its errors are used. Otherwise the anyOf/oneOf error itself is the most precise
    statement ("not valid under any of the given schemas") and is kept.
    """
    while error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        candidates = [e for errors in branches.values() if not any(map(_mismatched, errors)) for e in errors]
        if not candidates:
            typed = [
                errors
                for errors in branches.values()
                if not any(e.validator == "type" and not e.relative_path for e in errors)
            ]
            candidates = typed[0] if len(typed) == 1 else []
        best = best_match(candidates) if candidates else None
        if best is None:
            break
        error = best
    return error


def _subschemas_on_path(error: ValidationError, root_name: str) -> Iterator[Any]:
    """The schemas visited from the root along `error.absolute_schema_path`, in the inlined schema the
    errors of `errors(root_name)` come from (where a `$ref` was, the schema it points to is)."""
    schema: Any = _flat(root_name)
    yield schema
    for key in error.absolute_schema_path:
        in_dict = isinstance(schema, dict) and key in schema
        in_list = isinstance(schema, list) and isinstance(key, int) and key < len(schema)
        if not (in_dict or in_list):
            return
        schema = schema[key]
        yield schema


def requirement_for(error: ValidationError, root_name: str) -> str | None:
    """The `x-requirement` of the deepest annotated subschema on the schema path of an error of
    `errors(root_name)`."""
    found: str | None = None
    for schema in _subschemas_on_path(leaf_error(error), root_name):
        if isinstance(schema, dict) and isinstance(schema.get(REQUIREMENT_KEYWORD), str):
            found = schema[REQUIREMENT_KEYWORD]
    return found


def json_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901 pointer of an instance path ("" is the whole document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _shorten(value: Any, limit: int = 120) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, list):
        return [_shorten(v, 40) for v in value[:8]] + (["…"] if len(value) > 8 else [])
    if isinstance(value, dict):
        return {k: ("{…}" if isinstance(v, dict | list) else _shorten(v, 40)) for k, v in value.items()}
    return value


def schema_excerpt(error: ValidationError) -> dict[str, Any]:
    """A small excerpt (at most ~400 characters as JSON) of the subschema whose keyword failed."""
    # the schema as written, not as inlined (`errors`): a subschema that is a `$ref` is quoted as one
    schema = _ORIGINS.get(id(error.schema), error.schema)
    schema = schema if isinstance(schema, dict) else {}
    value = schema.get(str(error.validator), error.validator_value)
    excerpt: dict[str, Any] = {"keyword": error.validator, "value": _shorten(value)}
    if len(json.dumps(excerpt, ensure_ascii=False)) > _MAX_EXCERPT:
        excerpt["value"] = json.dumps(value, ensure_ascii=False)[: _MAX_EXCERPT // 2] + "…"
    keys = [REQUIREMENT_KEYWORD, "type", "enum", "const", "required", "minimum", "maximum"]
    keys += [k for k in schema if k not in keys and k not in ("$schema", "$id", "$defs")]
    for key in keys:
        if key not in schema or key in excerpt or key == error.validator:
            continue
        candidate = {**excerpt, key: _shorten(schema[key])}
        if len(json.dumps(candidate, ensure_ascii=False)) > _MAX_EXCERPT:
            continue
        excerpt = candidate
    return excerpt


@dataclass(frozen=True)
class Violation:
    requirement: str | None
    pointer: str
    keyword: str
    message: str
    schema: dict[str, Any]


def violations(name: str, instance: Any) -> list[Violation]:
    """Every violation of schema `name` by `instance`, attributed, in document order."""
    if surely_valid(name, instance):
        return []
    found = []
    for error in errors(name, instance):
        leaf = leaf_error(error)
        message = leaf.message if len(leaf.message) <= 300 else leaf.message[:299] + "…"
        found.append(
            Violation(
                requirement=requirement_for(leaf, name),
                pointer=json_pointer(leaf.absolute_path),
                keyword=str(leaf.validator),
                message=message,
                schema=schema_excerpt(leaf),
            )
        )
    return sorted(found, key=lambda v: (v.pointer, v.keyword))


# --- OpenAPI -----------------------------------------------------------------------------------------


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """`schema` and every subschema in it, by keyword (never a `properties` map taken for a schema)."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(
            value, dict
        ):
            for sub in value.values():
                yield from _subschemas(sub)
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            for sub in value:
                yield from _subschemas(sub)
        elif key in (
            "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
            "unevaluatedItems", "unevaluatedProperties",
        ):  # fmt: skip
            yield from _subschemas(value)


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _bound(schema: dict[str, Any], overlay: dict[str, Any]) -> None:
    """Apply the overlay's generic bounds to every subschema, in place."""
    for sub in _subschemas(schema):
        types = _types(sub)
        if "string" in types and not {"maxLength", "pattern", "enum", "const"} & sub.keys():
            sub["maxLength"] = overlay["string_max_length"]
        if "array" in types and "maxItems" not in sub:
            sub["maxItems"] = overlay["array_max_items"]
        if "object" in types and sub.get("additionalProperties", True) is not False:
            if overlay.get("close_objects") and "properties" in sub and "additionalProperties" not in sub:
                sub["additionalProperties"] = False
            elif "maxProperties" not in sub:
                sub["maxProperties"] = overlay["object_max_properties"]


def _rewrite_refs(node: Any, base: str) -> Any:
    """Turn every `$ref` into one to components/schemas/<name>, resolving it against `base`."""
    if isinstance(node, list):
        return [_rewrite_refs(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            target, fragment = urldefrag(urljoin(base, value))
            if not target.startswith(BASE_URI) or not target.endswith(".json"):
                raise ValueError(f"reference {value!r} leaves the schema set")
            out[key] = _COMPONENTS + target[len(BASE_URI) : -len(".json")] + fragment
        else:
            out[key] = _rewrite_refs(value, base)
    return out


def _referenced_names(node: Any, base: str) -> Iterator[str]:
    for sub in node if isinstance(node, list) else node.values() if isinstance(node, dict) else ():
        yield from _referenced_names(sub, base)
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target = urldefrag(urljoin(base, node["$ref"]))[0]
        yield target[len(BASE_URI) : -len(".json")]


def openapi_document(profile: Profile | str, generation: bool | str = False) -> dict[str, Any]:
    """A self-contained OpenAPI 3.1 document of the profile's operation.

    schemas/openapi.json (the sgp profile) references the schema files; here they are bundled into
    components/schemas/<name> with every `$ref` rewritten. With `generation`, the request schema and the
    parameters get the tighter bounds of schemas/generation-overlay.json (for fast, realistic generation);
    with `generation="coverage"`, its coverage_merge_patch goes on top (the contract's own bounds where the
    coverage phase's boundary values should reach them). Response schemas are never narrowed, so responses
    are still validated against the contract.
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    document = load(OPENAPI_NAME)
    base = uri(OPENAPI_NAME)
    overlay = load(OVERLAY_NAME) if generation else None
    if overlay is not None and generation == "coverage":
        overlay["merge_patch"] = _merge_patch(overlay["merge_patch"], overlay["coverage_merge_patch"])

    ((_, path_item),) = document["paths"].items()
    operation = path_item["post"]
    scheme_name, scheme = _security_scheme(profile)
    operation["security"] = [{scheme_name: []}]
    document["components"]["securitySchemes"] = {scheme_name: scheme}
    parameters = []
    for parameter in operation.get("parameters", []):
        if parameter["name"] == _ACCOUNT_HEADER:
            if profile.account_header is None:
                continue
            parameter["name"] = profile.account_header
        if overlay is not None:
            if parameter["name"] in overlay["drop_parameters"]:
                continue
            _bound(parameter["schema"], overlay)
        parameters.append(parameter)
    operation["parameters"] = parameters
    if not operation["parameters"]:
        del operation["parameters"]
    operation["responses"] = _responses(profile, operation["responses"])
    document["paths"] = {profile.path: {"post": operation}}
    document["info"]["description"] += f" Profile {profile.name}: {profile.description}."

    names = sorted(set(_referenced_names(document["paths"], base)))
    pending = list(names)
    while pending:  # the files referenced by the referenced files
        current = pending.pop()
        for name in set(_referenced_names(_read(current), uri(current))) - set(names):
            names.append(name)
            pending.append(name)
    schemas: dict[str, Any] = {}
    for name in sorted(names):
        schema = load(name)
        schema_base = schema.pop("$id")
        schema.pop("$schema", None)
        if overlay is not None and name in overlay["merge_patch"]:
            schema = _merge_patch(schema, overlay["merge_patch"][name])
            _bound(schema, overlay)
        schemas[name] = _rewrite_refs(schema, schema_base)
    document["paths"] = _rewrite_refs(document["paths"], base)
    document["components"]["schemas"] = schemas
    if generation:
        document["info"]["description"] += " Generation variant: bounds of generation-overlay.json applied."
    return document


def _security_scheme(profile: Profile) -> tuple[str, dict[str, str]]:
    if profile.auth_header == "authorization" and profile.auth_prefix.strip().lower() == "bearer":
        return "BearerAuth", {"type": "http", "scheme": "bearer"}
    return "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": profile.auth_header}


def _responses(profile: Profile, documented: dict[str, Any]) -> dict[str, Any]:
    responses = {"200": documented["200"]}
    if profile.stream_terminator is not None:
        # the example stream of schemas/openapi.json ends by closing (sgp, where the terminator is open);
        # a profile that settles a terminator gets it as the last event of what a mock sends
        stream = responses["200"]["content"]["text/event-stream"]["schema"]
        stream["examples"] = [f"{text}data: {profile.stream_terminator}\n\n" for text in stream["examples"]]
    errors = dict(_ERROR_RESPONSES[profile.error_style])
    validation = str(profile.validation_status)
    errors[validation] = errors.pop("validation")
    for status in sorted(errors):
        name = profile.validation_error_schema if status == validation else profile.error_schema
        responses[status] = {
            "description": errors[status],
            "content": {"application/json": {"schema": {"$ref": f"{name}.json"}}},
        }
    return responses
