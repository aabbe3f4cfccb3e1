"""What the property tests send: schemathesis's cases, made portable (positive) or capped (negative).

Positive cases hold to the strict reading of the contract (request_rules): every value canonical, the
cross-field rules kept, the configured model and the run's token cap. Negative cases carry the token cap
too. The coverage phase's boundary cases are selected per depth (`selected_coverage`), so the dry run can
count them before anything is sent.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.config import Config
from conformance.contract import schema_store
from conformance.contract.profiles import Profile
from conformance.contract.request_rules import canonical, invalid_under, is_text, strict_problems

# Hypothesis and schemathesis are imported where cases are drawn, not with this module: the suite's test
# modules import it at collection, and the import (about 0.5 s) then delayed every run's first scenario, and
# cost runs that draw nothing (--only, -k, a target that does not answer) all the same
if TYPE_CHECKING:
    from hypothesis import settings
    from hypothesis import strategies as st
    from hypothesis.database import ExampleDatabase
# coverage-phase cases kept at standard depth: a description's last part, per mode
POSITIVE_BOUNDS = ("Minimum value", "Maximum value", "Enum value", "Valid boolean value")
NEGATIVE_BOUNDS = ("Value smaller than minimum", "Value greater than maximum", "Invalid enum value",
                   "Array with more items than allowed by maxItems",
                   "Array with fewer items than allowed by minItems")
# probes of the coverage phase that are not about the body: other methods, headers, no body at all
NOT_BODY = re.compile(r"^(GET|PUT|DELETE|PATCH|OPTIONS|TRACE|QUERY|HEAD)$|^Missing `|^Missing request body$|"
                      r"^multipart|^text/plain$|^Unspecified HTTP method|^(Malformed|Unsupported) Content-Type")


@contextlib.contextmanager
def reproducible() -> Iterator[None]:
    """Within this block, Hypothesis draws the same cases for a seed wherever the suite runs.

    Hypothesis mixes into its draws the string and number constants it finds in the source of every
    "local" module loaded (not the standard library, not site-packages): in a source checkout that is this
    package itself, in a user's project (the pytest plugin) that is the user's code, in an installed wheel
    nothing. A failure reported with its seed must reproduce with `--seed` on any machine, so the local
    constants are left out here. This reaches into a private function of Hypothesis (6.13x): where it is
    not there, nothing is changed.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without providers
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    empty = getattr(providers, "Constants", None)
    if original is None or empty is None:
        yield
        return
    nothing = empty()
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    providers._get_local_constants = lambda *args, **kwargs: nothing
    # the permitted constants computed before (with local ones) are cached per choice type: forget them
    if isinstance(cache, dict):
        cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        if isinstance(cache, dict):
            cache.clear()


def drawing_document(profile_name: str, variant: bool | str = True) -> dict[str, Any]:
    """The OpenAPI document cases are drawn from: the generation variant, without its security scheme. The
    suite sends its own key headers and takes only a case's body, so a key header drawn for every case
    (and, for invalid cases, a broken header instead of a broken body) would be drawn for nothing."""
    document = schema_store.openapi_document(profile_name, generation=variant)
    for path_item in document["paths"].values():
        for operation in path_item.values():
            operation.pop("security", None)
    document["components"].pop("securitySchemes", None)
    return document


@cache
def _schema(profile_name: str, variant: bool | str) -> Any:
    from schemathesis.openapi import from_dict

    return from_dict(drawing_document(profile_name, variant))


@cache
def operation(profile_name: str, variant: bool | str = True) -> Any:
    """The schemathesis operation of the profile's OpenAPI document (the generation variant by default)."""
    return next(op.ok() for op in _schema(profile_name, variant).get_all_operations())


@dataclass(frozen=True)
class CoverageCase:
    mode: str
    body: Any
    description: str


# bumped when what coverage_cases keeps of a case changes: older cache files are then not read
_CACHE_FORMAT = 1


def _cache_file(profile_name: str) -> Path:
    """Where the coverage cases of a profile are kept between runs: the temporary directory of this user,
    named after everything they are made from (the document, schemathesis's version, this format)."""
    from importlib.metadata import version

    document = json.dumps(drawing_document(profile_name, "coverage"), sort_keys=True)
    made_of = f"{_CACHE_FORMAT}\n{version('schemathesis')}\n{document}".encode()
    digest = hashlib.sha256(made_of).hexdigest()[:20]
    user = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"sgp-conformance-{user}" / f"coverage-{profile_name}-{digest}.json"


def _own_private_dir(folder: Path, create: bool = False) -> bool:
    """Whether `folder` is a directory (not a link) of this user that no one else may write to: the only
    kind the coverage cache is read from or written to (a shared temporary directory lets another user
    plant the folder, or a link in it, first). With `create`, a missing folder is made (mode 0700)."""
    if create:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700)
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    getuid = getattr(os, "getuid", None)
    if not stat.S_ISDIR(info.st_mode) or (getuid is not None and info.st_uid != getuid()):
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_cache(path: Path) -> tuple[CoverageCase, ...] | None:
    if not _own_private_dir(path.parent):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            rows = json.loads(handle.read().decode("utf-8"))
        return tuple(CoverageCase(mode, body, description) for mode, body, description in rows)
    except (OSError, ValueError, TypeError):
        return None


def _write_cache(path: Path, cases: tuple[CoverageCase, ...]) -> None:
    """Best effort: a directory that cannot be written, or is not this user's alone, only costs the next
    run the computation. The file is created new (mkstemp: O_CREAT|O_EXCL, never through a link) and
    renamed into place."""
    try:
        text = json.dumps([[c.mode, c.body, c.description] for c in cases])
        if not _own_private_dir(path.parent, create=True):
            return
        fd, partial = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except (OSError, ValueError, TypeError):
        return


def compute_coverage_cases(profile_name: str) -> tuple[CoverageCase, ...]:
    """Every body case of schemathesis's coverage phase for the profile (deterministic), from the coverage
    variant of the OpenAPI document (the contract's bounds where boundary values matter). Computed on
    the document as first loaded: schemathesis keeps state on it, and a second pass yields other cases."""
    from schemathesis import GenerationMode

    _schema.cache_clear()
    operation.cache_clear()
    schema = _schema(profile_name, "coverage")
    coverage_operation = operation(profile_name, "coverage")
    out = []
    for case in schema.iter_coverage_cases(coverage_operation, generation_modes=[GenerationMode.POSITIVE,
                                                                       GenerationMode.NEGATIVE],
                                           generation_config=schema.config.generation):
        meta = case._meta
        description = getattr(meta.phase.data, "description", "") if meta is not None else ""
        if NOT_BODY.match(description) or meta is None:
            continue
        out.append(CoverageCase(GenerationMode(meta.generation.mode).value, case.body, description))
    return tuple(out)


@cache
def coverage_cases(profile_name: str) -> tuple[CoverageCase, ...]:
    """`compute_coverage_cases`, kept in a file between runs: the phase is deterministic for a document and
    a schemathesis version, and computing it takes about a second of every run."""
    path = _cache_file(profile_name)
    cached = _read_cache(path)
    if cached is not None:
        return cached
    cases = compute_coverage_cases(profile_name)
    _write_cache(path, cases)
    return cases


def _top_level(description: str) -> tuple[str | None, str]:
    """(parameter, what) of a coverage description: "n: Value greater than maximum", "Object with valid 'n'
    value: Maximum value"; parameter None when the case is about nested parts."""
    if "->" in description:
        return None, description
    match = re.match(r"^Object with valid '([^']+)' value: (.*)$", description)
    if match:
        return match.group(1), match.group(2)
    name, sep, what = description.partition(": ")
    return (name, what) if sep and re.fullmatch(r"[a-z_]+", name) else (None, description)


def selected_coverage(profile_name: str, depth: str) -> tuple[list[Any], list[Any]]:
    """(positive bodies, negative bodies) of the coverage phase for a depth: none at smoke; at standard each
    top-level parameter at its bounds and just outside them, enum values and unknown ones, and one wrong
    JSON type per type class; at deep, every case."""
    if depth == "smoke":
        return [], []
    positive, negative = [], []
    types_seen: set[str] = set()
    types = schema_store.parameter_types("chat-completion-request")
    for case in coverage_cases(profile_name):
        parameter, what = _top_level(case.description)
        keep = depth == "deep"
        if case.mode == "positive":
            keep = keep or (parameter is not None and what in POSITIVE_BOUNDS)
            if keep:
                positive.append(isolated(case.body, parameter))
            continue
        if not keep and parameter is not None and what in NEGATIVE_BOUNDS:
            keep = True
        elif not keep and parameter is not None and what == "Incorrect type":
            kind = json.dumps(types.get(parameter))
            keep = kind not in types_seen
            types_seen.add(kind)
        if keep:
            negative.append(isolated(case.body, parameter))
    return positive, negative


# what a parameter needs beside it to be valid at all (request_rules.combination_problems)
_COMPANIONS: dict[str, dict[str, Any]] = {
    "top_logprobs": {"logprobs": True},
    "stream_options": {"stream": True},
    "tool_choice": {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]},
    "parallel_tool_calls": {"tools": [{"type": "function", "function": {"name": "get_weather"}}]},
}


def isolated(body: Any, parameter: str | None) -> Any:
    """A coverage case reduced to the parameter it is about (and what that parameter needs beside it): the
    phase builds every case on one base object (with `logprobs: true`), and a boundary of `n` should not be
    judged on whether the model also does logprobs."""
    if not isinstance(body, dict) or parameter is None:
        return body
    out = {k: v for k, v in body.items() if k in ("model", "messages", parameter)}
    for key, value in _COMPANIONS.get(parameter, {}).items():
        out.setdefault(key, value)
    return out


def portable(body: dict[str, Any], profile: Profile, config: Config) -> dict[str, Any] | None:
    """The positive case as it is sent: the model pinned, the token cap applied, what a valid schema allows
    but a real server may refuse for reasons outside the contract dropped (parameters the profile's servers
    refuse, model-specific JSON schemas), cross-field rules made to hold, and every value in its canonical
    form (request_rules.canonical). None when no such body exists (a string that is not text)."""
    body = {k: v for k, v in body.items() if k not in profile.unsupported_params}
    body["model"] = config.model
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        body["messages"] = [{"role": "user", "content": "Say OK."}]
    limit = config.max_tokens
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and isinstance(body[key], int | float) and not isinstance(body[key], bool):
            body[key] = min(int(body[key]), limit)
    if "max_completion_tokens" not in body:
        body["max_tokens"] = min(body.get("max_tokens", limit), limit)
    if "top_logprobs" in body:
        body["logprobs"] = True
    if not body.get("tools"):
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            body.pop(key, None)
    else:
        names = {t.get("function", {}).get("name") for t in body["tools"] if isinstance(t, dict)}
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("function", {}).get("name") not in names:
            body["tool_choice"] = "auto"
    if body.get("stream") is not True:
        body.pop("stream_options", None)
    # values whose validity depends on the model or the account, not on the contract
    for key in ("logit_bias", "metadata", "store", "functions", "function_call", "audio", "prediction",
                "modalities", "reasoning_effort"):
        body.pop(key, None)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        body.pop("response_format")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        # OpenAI refuses json_object unless a message mentions JSON
        body["messages"] = [*body["messages"], {"role": "user", "content": "Answer in JSON."}]
    body = canonical(body)
    return body if is_text(body) else None


def capped(body: Any, profile: Profile, config: Config) -> Any:
    """A negative case with the run's token cap: no request the suite sends can cost more than the cap,
    whatever the server makes of the rest. A cap parameter that is itself the invalid part stays as it is,
    and the other one is added (a server that accepted the invalid one is still bounded)."""
    if not isinstance(body, dict):
        return body
    limit = config.max_tokens
    params = (profile.token_limit_param, "max_completion_tokens", "max_tokens")
    if any(isinstance(body.get(p), int) and not isinstance(body.get(p), bool) and 1 <= body[p] <= limit
           for p in params):
        return body
    for param in dict.fromkeys(params):
        if param not in body:
            return {**body, param: limit}
    return body


def positive_case(body: Any, profile: Profile, config: Config) -> dict[str, Any] | None:
    """A generated body as PROP-001 sends it (`portable`), or None where no body of it is valid under the
    strict reading of the contract (a case some correct server refuses is no positive case)."""
    if not isinstance(body, dict):
        return None
    body = portable(body, profile, config)
    return body if body is not None and not strict_problems(body) else None


def negative_case(body: Any, profile: Profile, config: Config) -> Any:
    """A generated invalid body as PROP-002/003 send it (`capped`, the configured model), or None where it is
    not invalid under the profile's lenient reading (refusing it is not owed) or is not JSON at all."""
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        body = {**body, "model": config.model}
    if body is None or encode(body) is None:
        return None
    if isinstance(body, dict):
        if not invalid_under(body, profile):
            # valid as generated or once the model is pinned, or invalid only where the profile's servers may
            # accept it (a lax type, a free-form message): refusing it is not owed
            return None
        if not invalid_under({k: v for k, v in body.items() if v is not None}, profile):
            # null for an optional parameter: whether SGP accepts it is open (CONTRACT.md), so not judged
            return None
    return capped(body, profile, config)


def encode(body: Any) -> bytes | None:
    """The body as sent: JSON, or the bytes as they are (negative generation may draw a body that is not
    JSON at all); None when it cannot be sent (a value JSON has no form for)."""
    if isinstance(body, bytes):
        return body
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError):
        return None


# the two kinds of generated case, valid ones (PROP-001) and invalid ones (PROP-002/003), and their preparation
PREPARE = {"positive": positive_case, "negative": negative_case}


def strategy_of(mode: str, profile_name: str) -> st.SearchStrategy[Any]:
    """The schemathesis strategy of the profile's operation for a kind of case ("positive" or "negative")."""
    from schemathesis import GenerationMode

    strategy: st.SearchStrategy[Any] = operation(profile_name).as_strategy(GenerationMode(mode))
    return strategy


def hypothesis_settings(config: Config, shrink: bool = True, database: ExampleDatabase | None = None,
                        saved_only: bool = False) -> settings:
    """Hypothesis's settings for a run's generated cases: `property_examples()` cases, no deadline, no
    database unless given one; shrinking (the minimal failing example) except at smoke depth or where
    `shrink` is False. `saved_only` replays what `database` holds and draws nothing new."""
    from hypothesis import HealthCheck, Phase, settings

    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if shrink and config.depth != "smoke":
        phases.append(Phase.shrink)
    if saved_only:
        phases = [Phase.reuse]
    return settings(max_examples=config.property_examples(), deadline=None, database=database,
                    phases=phases, suppress_health_check=list(HealthCheck), print_blob=False)


def run_hypothesis(config: Config, strategy: st.SearchStrategy[Any], test: Callable[[Any], None],
                   shrink: bool = True, database: ExampleDatabase | None = None,
                   saved_only: bool = False) -> None:
    """Run `test(case)` over the cases Hypothesis draws from `strategy` with the run's seed (config.seed):
    every pass of a run, in any process, draws the same cases. With a `database`, each smaller failing
    example Hypothesis finds is saved there; `saved_only` replays those (smallest first) and draws nothing."""
    from hypothesis import given, seed

    chosen = hypothesis_settings(config, shrink, database, saved_only)
    if database is None:
        wrapped = seed(config.seed)(chosen(given(case=strategy)(test)))
    else:  # @seed turns the database off; settings applied over it keep the one given
        wrapped = chosen(seed(config.seed)(given(case=strategy)(test)))
    with reproducible():
        wrapped()


# the cases `draw` made in this process, by what they are made of (`_drawn_key`): a process that runs the
# suite many times with one seed (a test session judging many servers) draws them once
_DRAWN: dict[tuple[Any, ...], list[Any]] = {}
_DRAWN_MAX = 16


# the settings that say where and how requests go, and what becomes of the results: nothing drawn depends on
# them. Every other field is part of a drawing's key, so a setting added later is kept apart by default.
_NOT_DRAWN_FROM = frozenset({
    "base_url", "api_key", "account_id", "profile", "timeout", "stream_timeout", "max_body_bytes",
    "max_requests", "rate_limit", "concurrency", "retries", "max_retry_wait", "fail_on", "report_dir", "keep",
    "allow_insecure_http", "baseline", "clients", "dry_run", "secret_headers", "junit_should", "proxy",
    "ca_bundle", "insecure", "headers", "max_throttle_wait"})


def _drawn_key(mode: str, profile: Profile, config: Config) -> tuple[Any, ...] | None:
    """Everything the cases of `draw` depend on: the strategy (mode, profile), Hypothesis's seed and
    settings, and the configuration but for where requests go and what becomes of the results. None without
    a seed (nothing to reuse: each run draws its own)."""
    if config.seed is None:
        return None
    drawn_from = tuple((f.name, repr(getattr(config, f.name))) for f in dataclasses.fields(config)
                       if f.name not in _NOT_DRAWN_FROM)
    return (mode, profile, config.property_examples(), drawn_from)


def draw(mode: str, profile: Profile, config: Config,
         each: Callable[[Any], None] | None = None) -> list[Any]:
    """The random cases of `mode` ("positive" or "negative") as they are sent, in the order drawn: what the
    judging pass of the property tests would draw, without sending anything. `each(case)` is called on
    every case as it is drawn (the generator process streams them so). The same seed draws the same cases
    (`reproducible`), so a second draw of the same key in this process returns copies of the first's."""
    key = _drawn_key(mode, profile, config)
    if key is not None and key in _DRAWN:
        again = copy.deepcopy(_DRAWN[key])
        for body in again:
            if each is not None:
                each(body)
        return again
    drawn = _draw(mode, profile, config, each)
    if key is not None:
        if len(_DRAWN) >= _DRAWN_MAX:
            _DRAWN.pop(next(iter(_DRAWN)))
        _DRAWN[key] = copy.deepcopy(drawn)
    return drawn


def _draw(mode: str, profile: Profile, config: Config, each: Callable[[Any], None] | None) -> list[Any]:
    from hypothesis import assume

    prepare = PREPARE[mode]
    drawn: list[Any] = []

    def collect(case: Any) -> None:
        body = prepare(case.body, profile, config)
        assume(body is not None)
        drawn.append(body)
        if each is not None:
            each(body)

    run_hypothesis(config, strategy_of(mode, profile.name), collect, shrink=False)
    return drawn
