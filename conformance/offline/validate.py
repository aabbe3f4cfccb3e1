"""`sgp-conformance validate FILE...`: recorded traffic judged by the suite's own checks, into its own reports.

The files are read by conformance.offline.recorded. Each record is judged once by the same pure checks a run
applies (`completion_checks`, `stream_checks`, the error-body checks); then pytest runs this module as
its only test module, one `test_recorded[REQ]` per requirement that recorded traffic can judge, under the
suite's Collector, ResultsCollector and census plugins. So conformance.json, junit.xml and
conformance.html have exactly the formats of `run`, and the exit codes are the same (0 conformant,
1 not, 2 usage error).

A requirement is judged on a record only where the record holds what the rule needs: header rules need
the real response headers (HAR, HTTP transcripts), request-dependent rules need the request and the
parameter that makes them apply (SEM-006 needs max_tokens), SEM-004 needs the time the request was
sent. A rule that no record can judge is reported as skipped, saying what it would need. Requirements
that need requests of their own (AUTH-*, VAL-*, ...) are not listed at all: a recording cannot hold them.
A bare document is taken to be the body of a 200 answer, or of an error where it looks like one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import Violation, errors, requested_int, semantics, shape, streaming, transport
from conformance.checks.response import completion_checks, sent_secrets, stream_checks
from conformance.config import Config
from conformance.contract import catalogue, schema_store
from conformance.contract.profiles import Profile, get_profile
from conformance.offline.recorded import MASKED_VALUES, Record, RecordError, read_files, recorded_keys
from conformance.offline.session import ObservedSession, configure_observed
from conformance.report.folder import JUNIT_SUITE_NAME, claim_report_dir
from conformance.transport.exchange import Exchange

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

_RESP = (*(f"RESP-{i:03d}" for i in range(1, 10)), "RESP-011")
_LOGP = tuple(f"LOGP-{i:03d}" for i in range(1, 6))
_TOOL = tuple(f"TOOL-{i:03d}" for i in range(1, 5))
_TOOL = (*_TOOL, "TOOL-005")
_SEMANTICS = ("SEM-002", "SEM-003", "SEM-004", "SEM-005", "SEM-006", "SEM-008", "SEM-010", "SEM-011", *_LOGP, *_TOOL,
              "FMT-001", "RESP-010")
_HYGIENE = ("JSON-001", "JSON-002", "HDR-007", "HDR-008", "AUTH-007")
# what the checks of each kind of record can find
BY_KIND: dict[str, frozenset[str]] = {
    "completion": frozenset({*_RESP, *_HYGIENE, *_SEMANTICS, "HDR-003", "HDR-006", "SEM-001"}),
    "stream": frozenset({"STRM-001", "STRM-002", "STRM-003", "STRM-004", "STRM-005", "STRM-006", "STRM-010",
                         "STRM-011", "STRM-012", "STRM-013", "STRM-014", "STRM-015", "STRM-016", "STRM-017",
                         "STRM-019", "STRM-020", "STRM-021", "STRM-022", "STRM-023", "RESP-009", "RESP-011",
                         *_HYGIENE, *_SEMANTICS}),
    "chunk": frozenset({"STRM-010", "STRM-011", "STRM-012", "RESP-009", "RESP-011", "JSON-001", "JSON-002"}),
    "error": frozenset({"ERR-001", "ERR-003", "ERR-004", "ERR-006", "ERR-007", "HDR-006", *_HYGIENE}),
    "server_error": frozenset({"ERR-007"}),
}
# judged on every record whose status is the server's: a 5xx is never a conformant answer
ANY_STATUS = frozenset({"PROP-002"})
KIND_NAMES = {"completion": "non-streaming 200 response", "stream": "streamed 200 response",
              "chunk": "lone chunk", "error": "error response (4xx)", "server_error": "5xx response"}
OFFLINE: tuple[str, ...] = tuple(r.id for r in catalogue.REQUIREMENTS
                                 if r.id in ANY_STATUS or any(r.id in reqs for reqs in BY_KIND.values()))
HEADER_RULES = frozenset({"HDR-003", "HDR-006", "HDR-007", "HDR-008", "STRM-001", "ERR-006"})


def _logprobs_asked(p: dict[str, Any]) -> bool:
    return p.get("logprobs") is True


def _tool_forced(p: dict[str, Any]) -> bool:
    choice = p.get("tool_choice")
    return bool(semantics.offered_tools(p)) and (choice == "required" or isinstance(choice, dict))


def _json_object(p: dict[str, Any]) -> bool:
    fmt = p.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_object" and not p.get("stop")


def _usage_asked(p: dict[str, Any]) -> bool:
    options = p.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# rules that hold only for some requests: (does the request make the rule apply, what it needs)
REQUEST_RULES: dict[str, tuple[Callable[[dict[str, Any]], bool], str]] = {
    "SEM-002": (lambda p: True, "its request"),
    "SEM-005": (lambda p: isinstance(p.get("model"), str), "its request naming the model"),
    "SEM-006": (lambda p: requested_int(p.get("max_tokens")) is not None, "max_tokens in its request"),
    "SEM-008": (lambda p: requested_int(p.get("max_completion_tokens")) is not None,
                "max_completion_tokens in its request"),
    "LOGP-001": (_logprobs_asked, "logprobs: true in its request"),
    "LOGP-004": (lambda p: _logprobs_asked(p) and requested_int(p.get("top_logprobs")) is not None,
                 "logprobs and top_logprobs in its request"),
    "TOOL-001": (_tool_forced, "a tool call forced by its request"),
    "FMT-001": (_json_object, "response_format json_object in its request"),
    "STRM-016": (_usage_asked, "stream_options.include_usage in its request"),
    "SEM-010": (lambda p: bool(semantics.stop_sequences(p)), "stop sequences in its request"),
}
# rules that hold vacuously where the response has no such part: judged only where it has one
CONTENT_RULES: dict[str, tuple[str, str]] = {
    **{r: ("logprobs", "logprobs in it") for r in ("LOGP-002", "LOGP-003", "LOGP-005")},
    **{r: ("tool_calls", "tool calls in it") for r in ("TOOL-002", "TOOL-003", "TOOL-004")},
}
OTHER_NEEDS = {
    "AUTH-007": "its request's key (not masked by the exporter)",
    "SEM-004": "the time of its request (a HAR entry's startedDateTime)",
    "ERR-003": "status 422",
    "ERR-006": "status 429 with its headers",
    "PROP-002": "a recorded answer whose status is the server's (HAR, an HTTP transcript, batch output)",
}


def _document(record: Record) -> dict[str, Any] | None:
    if record.kind == "stream":
        return streaming.assemble(record.exchange)
    body = record.exchange.json
    return body if isinstance(body, dict) else None


def _has_part(record: Record, part: str) -> bool:
    doc = _document(record)
    if doc is None:
        return False
    for _, choice in semantics.choices(doc):
        if part == "logprobs" and isinstance(choice.get("logprobs"), dict):
            return True
        message = choice.get("message")
        if part == "tool_calls" and isinstance(message, dict) and message.get("tool_calls"):
            return True
    return False


def _real_keys(record: Record, profile: Profile) -> bool:
    return any(k not in MASKED_VALUES for k in sent_secrets(record.exchange, profile))


# rules that judge the response's bytes or headers, not its parsed body
BYTES_RULES = frozenset({*HEADER_RULES, "JSON-001", "JSON-002", "HDR-006", "HDR-008", "AUTH-007", "PROP-002",
                         "STRM-002", "STRM-003"})


def unparsed(req_id: str, record: Record) -> str | None:
    """Why a rule on the parsed body cannot be judged on this record: the body is not JSON (JSON-001 says
    so) or the stream carried no chunks (STRM-017). None when it can."""
    if req_id in BYTES_RULES or record.kind not in ("completion", "stream"):
        return None
    if record.kind == "stream":
        return "STRM-017" if streaming.assemble(record.exchange) is None else None
    return "JSON-001" if transport.judged_json(record.exchange)[1] is not None else None


def judgeable(req_id: str, record: Record, profile: Profile) -> bool:
    """Whether the record holds what judging `req_id` needs (see the module docstring)."""
    if req_id in ANY_STATUS:
        return record.status_known and record.exchange.response is not None
    if req_id not in BY_KIND.get(record.kind, frozenset()):
        return False
    if not record.body_known and req_id not in HEADER_RULES:
        return False
    if req_id in HEADER_RULES and not record.headers_known:
        return False
    if req_id == "SEM-004" and record.time is None:
        return False
    if req_id == "AUTH-007" and not _real_keys(record, profile):
        return False
    if req_id == "ERR-003" and record.exchange.status != 422:
        return False
    if req_id == "ERR-004" and record.exchange.status == 429:
        return False  # a 429 says "not now", not what was wrong with the request: ERR-006 judges it
    if req_id == "ERR-006" and record.exchange.status != 429:
        return False
    if req_id in REQUEST_RULES:
        params = record.exchange.request.params
        if not record.request_known or not isinstance(params, dict) or not REQUEST_RULES[req_id][0](params):
            return False
    if req_id in CONTENT_RULES:
        return _has_part(record, CONTENT_RULES[req_id][0])
    return True


def why_not_judged(req_id: str) -> str:
    """What a recording would need to hold for `req_id` to be judged."""
    if req_id in ANY_STATUS:
        return f"not judged: needs {OTHER_NEEDS[req_id]}"
    kinds = " or ".join(KIND_NAMES[k] for k, reqs in BY_KIND.items() if req_id in reqs)
    needs = (REQUEST_RULES.get(req_id, (None, ""))[1] or CONTENT_RULES.get(req_id, ("", ""))[1]
             or OTHER_NEEDS.get(req_id, ""))
    if req_id in HEADER_RULES:
        needs = OTHER_NEEDS.get(req_id, "its response headers") + " (HAR or an HTTP transcript)"
    return f"not judged: needs a recorded {kinds}" + (f" with {needs}" if needs else "")


def _bare_error(record: Record, profile: Profile) -> list[Violation]:
    """An error body without its status: it must be a JSON object of one of the profile's error shapes."""
    exchange = record.exchange
    body = exchange.json
    if not isinstance(body, dict):
        return [Violation("ERR-001", f"expected a JSON object body, got {shape.json_type(body)}", "",
                          exchange.scenario)]
    names = list(dict.fromkeys((profile.error_schema, profile.validation_error_schema)))
    for name in names:
        if schema_store.is_valid(name, body):
            return []
    return [Violation("ERR-004", f"body matches none of {' or '.join(names)}", "", exchange.scenario)]


def record_findings(record: Record, profile: Profile) -> list[Violation]:
    """Every violation the checks find in one record (before `judgeable` filters them per requirement)."""
    exchange = record.exchange
    now = record.time if record.time is not None else time.time()
    kind = record.kind
    status = errors.not_server_error(exchange) if exchange.response is not None else []
    if kind == "completion":
        return status + completion_checks(exchange, profile, now, include_info=True)
    if kind == "stream":
        return status + stream_checks(exchange, profile, now, include_info=True)
    if kind == "server_error":
        return status + errors.internals_leaked(exchange)
    if kind == "none":
        return status
    hygiene = [*status, *transport.strict_json(exchange), *transport.duplicate_keys(exchange)]
    if kind == "chunk":
        return hygiene + shape.schema_violations(exchange.json, "chat-completion-chunk", exchange.scenario)
    if kind == "error":
        hygiene += transport.key_not_echoed(exchange, sent_secrets(exchange, profile))
        if not record.headers_known:
            return hygiene + _bare_error(record, profile)
        found = [*hygiene, *transport.json_charset(exchange), *transport.request_id(exchange),
                 *errors.error_body_json(exchange), *errors.error_shape(exchange, profile)]
        if exchange.status == 429:
            found += errors.retry_after(exchange)
        found += errors.internals_leaked(exchange)
        if profile.error_style == "fastapi":
            found += errors.fastapi_validation_body(exchange)
        return found
    return []


# -- the pytest side: this module is the test module of a `validate` session ---------------------------


@dataclass
class Validation:
    files: list[str]
    records: list[Record]
    profile: Profile
    _found: dict[int, list[Violation]] = field(default_factory=dict)

    def found(self, index: int) -> list[Violation]:
        if index not in self._found:
            self._found[index] = record_findings(self.records[index], self.profile)
        return self._found[index]

    def section(self) -> dict[str, Any]:
        """conformance.json's "recorded" section: what was read, so a reader knows what the verdict rests on."""
        return {
            "files": self.files,
            "records": len(self.records),
            "by_format": dict(Counter(r.format for r in self.records)),
            "by_kind": dict(Counter(r.kind for r in self.records)),
            "by_status": {str(k): v for k, v in sorted(Counter(
                r.exchange.status if r.exchange.status is not None else "none" for r in self.records
            ).items(), key=lambda kv: str(kv[0]))},
            "with_headers": sum(r.headers_known for r in self.records),
            "with_requests": sum(r.request_known for r in self.records),
        }


STASH = pytest.StashKey[Validation]()


class ValidatePlugin(ObservedSession):
    """Stands in for conformance.plugin's configure step: no target, no server, the records as exchanges."""

    def __init__(self, settings: Config, validation: Validation, secrets: list[str], only: Any = None) -> None:
        super().__init__(settings)
        self.validation = validation
        self.secrets = secrets
        # --only (contract.selection.Selection), or None
        self.only = only

    def pytest_configure(self, config: pytest.Config) -> None:
        def prepare(run: Any, _results: Any) -> None:
            # the recorded exchanges are what this session "saw": the census counts them as a run's
            run.client.exchanges.extend(r.exchange for r in self.validation.records)
            run.only = self.only

        from conformance.suite.progress import NoPytestCounts

        # the summary banner says the outcomes in the outcome model's words: not pytest's dots and counts
        config.pluginmanager.register(NoPytestCounts(), "sgp-conformance-no-pytest-counts")
        config.stash[STASH] = self.validation
        self.run = configure_observed(config, self.settings, self.secrets, ("recorded", self.validation.section),
                                      prepare=prepare)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.function is test_recorded:
            self.parametrize(metafunc, (req_id for req_id in OFFLINE
                                        if catalogue.get(req_id).applies_to(self.validation.profile.name)))


def test_recorded(req: catalogue.Requirement, request: pytest.FixtureRequest) -> None:
    """One requirement over every record that can judge it: it passes when the rule held on every record it
    could be applied to and there was one; otherwise it is not judged, saying what a record would need."""
    from conformance.suite.judge import Judge
    from conformance.suite.run import STASH_RUN

    validation = request.config.stash[STASH]
    judge = Judge(request.config.stash[STASH_RUN], request.node)
    indices = [i for i, r in enumerate(validation.records) if judgeable(req.id, r, validation.profile)]
    if not indices:
        judge.not_judged(why_not_judged(req.id).removeprefix("not judged: "))
    owners = [owner for i in indices if (owner := unparsed(req.id, validation.records[i]))]
    indices = [i for i in indices if not unparsed(req.id, validation.records[i])]
    if not indices:
        what = "not JSON" if owners[0] == "JSON-001" else "a stream without chunks"
        judge.not_judged(f"the recorded body is {what}", owners[0])
    judge.each((validation.records[i].exchange for i in indices), lambda e: _own(validation, e, req.id))


def _own(validation: Validation, exchange: Exchange, req_id: str) -> list[Violation]:
    """The findings of one record for `req_id` (Judge.each keeps the records that broke it as evidence)."""
    index = next(i for i, r in enumerate(validation.records) if r.exchange is exchange)
    return [v for v in validation.found(index) if v.requirement == req_id]


# -- the command ----------------------------------------------------------------------------------------


def _model(records: list[Record]) -> str:
    """The model the recorded answers name most (else the requests), for the report's header."""
    answered: Counter[str] = Counter()
    asked: Counter[str] = Counter()
    for record in records:
        doc = _document(record) if record.kind in ("completion", "stream") else None
        if isinstance(doc, dict) and isinstance(doc.get("model"), str):
            answered[doc["model"]] += 1
        params = record.exchange.request.params
        if isinstance(params, dict) and isinstance(params.get("model"), str):
            asked[params["model"]] += 1
    for seen in (answered, asked):
        if seen:
            return seen.most_common(1)[0][0]
    return "unknown"


def command_validate(args: argparse.Namespace) -> int:
    from conformance.config import ConfigError, resolve

    try:
        flags = {k: v for k, v in (("profile", args.profile), ("report_dir", args.report_dir),
                                   ("fail_on", args.fail_on), ("baseline", args.baseline),
                                   ("keep", getattr(args, "keep", None))) if v is not None}
        # of the environment only the profile applies: a recording has no target, key or model to set
        env = {k: v for k, v in os.environ.items() if k == "SGP_PROFILE"}
        settings = resolve(flags, env=env)
        if settings.baseline:
            from conformance.report.baseline import load

            load(settings.baseline)
    except ConfigError as exc:
        print(f"sgp-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    profile = get_profile(settings.profile)
    try:
        records = read_files((Path(name) for name in args.files), profile)
    except RecordError as exc:
        print(f"sgp-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    selection = None
    if getattr(args, "only", None):
        from conformance.contract.selection import Selection, SelectionError

        try:
            selection = Selection.parse(args.only, "--only")
        except SelectionError as exc:
            print(f"sgp-conformance: {exc}", file=sys.stderr)
            return EXIT_USAGE
    keys = recorded_keys(records)
    settings.base_url = ", ".join(args.files)
    settings.api_key = keys[0] if keys else None
    settings.model = _model(records)
    report_dir = claim_report_dir(settings)
    if report_dir is None:
        return EXIT_USAGE
    validation = Validation(list(args.files), records, profile)
    plugin = ValidatePlugin(settings, validation, keys, selection)
    code = pytest.main(pytest_args(report_dir), plugins=[plugin])
    from conformance.report.summary import finish

    return finish(settings, int(code), report_dir)


def pytest_args(report_dir: Path) -> list[str]:
    here = Path(__file__)
    return [str(here), "-p", "no:cacheprovider", "--rootdir", str(here.parent), "-o", "console_output_style=count",
            "-q", "--no-header", "-rN", "--tb=no", "--assert=plain", "-o", "junit_family=xunit1",
            "-o", f"junit_suite_name={JUNIT_SUITE_NAME}", f"--junitxml={report_dir / 'junit.xml'}",
            f"--html={report_dir / 'conformance.html'}", "--self-contained-html"]
