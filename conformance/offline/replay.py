"""`sgp-conformance replay [REPORT_DIR|conformance.json]`: send a report's failing exchanges again and judge them
with the same checks, saying per exchange whether the failure still reproduces.

conformance.json keeps, for each exchange of a failure's evidence, the request whole (`replay`: method, URL,
headers, body; evidence.replay_request) and whether it broke the rule (`failed`). The key is never in it: the
headers carry `${SGP_API_KEY}` (and `${VARIABLE}` for a secret header read from the environment), expanded
here from this process's environment, as `run` reads it. A report of a run against the embedded reference
server is replayed against a fresh one unless --base-url says otherwise.

Each exchange is judged for the requirement it failed, by the pure check that requirement's test applies to one
answer (conformance.checks): the refusal rules (VAL-*, AUTH-*, MODEL-*) by the status they expect, the
generated-case properties (PROP-*) as the property test judges a case, the response rules through
`validate`'s judging of one recorded exchange (offline.validate.record_findings). A rule that compares several
exchanges (VAL-023, STRM agreement, ...) cannot be judged from one: replay sends it and says so.

Exit codes: 0 no failure reproduces, 1 at least one does, 2 usage error (one line), 3 the target unreachable.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.checks import Violation, errors, findings, response
from conformance.contract import catalogue
from conformance.contract.profiles import PROFILES, Profile, get_profile
from conformance.contract.selection import Selection, SelectionError
from conformance.offline.recorded import Record
from conformance.offline.validate import judgeable as recorded_judgeable
from conformance.offline.validate import record_findings
from conformance.redact import Scrubber
from conformance.report.outcomes import RESULT_FILE
from conformance.suite.needs import judgeable, why_not
from conformance.transport.exchange import Exchange, RequestSpec

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
# the statuses whose evidence is replayed: a failure, a baseline-known one, an observation
REPLAYED = ("fail", "known", "observed", "error")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ReplayError(ValueError):
    """A report or an environment that replay cannot work from: one line, naming the fix."""


@dataclass
class Recorded:
    """One exchange of a result's evidence, as conformance.json keeps it."""

    req_id: str
    scenario: str
    request: dict[str, Any]
    status: int | None
    failed: bool
    # the result was an observation (INFO): finding it again is worth knowing, never a failure
    observed: bool = False


def load_report(where: str) -> dict[str, Any]:
    """conformance.json, given itself or the report folder that holds it; ReplayError when neither."""
    path = Path(where)
    if path.is_dir():
        path = path / RESULT_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"{path}: no such file: give a report folder or its {RESULT_FILE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot be read ({exc})") from None
    except ValueError:
        raise ReplayError(f"{path}: not JSON: give the {RESULT_FILE} a run wrote") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or not isinstance(doc.get("run"), dict):
        raise ReplayError(f"{path}: not a {RESULT_FILE} of sgp-conformance (no run and results)")
    return doc


def recorded_exchanges(doc: dict[str, Any], selection: Selection | None, failed_only: bool) -> Iterator[Recorded]:
    """The evidence exchanges of the results replay sends again, in the report's order."""
    for result in doc["results"]:
        if not isinstance(result, dict) or result.get("status") not in REPLAYED:
            continue
        req_id = str(result.get("id"))
        if selection is not None and not selection.matches(req_id):
            continue
        pointer = result.get("evidence") or {}
        for item in pointer.get("scenarios") or []:
            request = item.get("replay")
            if not isinstance(request, dict):
                continue
            failed = bool(item.get("failed"))
            if failed_only and not failed:
                continue
            yield Recorded(req_id, str(item.get("scenario") or ""), request, item.get("status"), failed,
                           result.get("status") == "observed")


def expand(text: str, env: dict[str, str]) -> str:
    """${SGP_API_KEY} and ${VARIABLE} from the environment; ReplayError naming a variable that is unset."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ReplayError(f"the recorded request reads ${{{name}}}: set {name} in the environment "
                              "(the report never stores it)")
        return env[name]

    return _PLACEHOLDER.sub(one, text)


def rebase(url: str, recorded_base: str, base_url: str) -> str | None:
    """The recorded URL moved from the recorded target to `base_url` (its path after the target kept); None
    for a URL outside the recorded target (then the request goes to the operation's URL at `base_url`, never
    back to a host the user did not name)."""
    old = recorded_base.rstrip("/")
    if old and url.startswith(old):
        return base_url.rstrip("/") + url[len(old):]
    return None


def request_spec(item: Recorded, url: str | None, env: dict[str, str]) -> RequestSpec:
    request = item.request
    body: bytes | None = None
    if isinstance(request.get("body"), str):
        body = request["body"].encode("utf-8")
    elif isinstance(request.get("body_base64"), str):
        body = base64.b64decode(request["body_base64"])
    headers = {str(name): expand(str(value), env) for name, value in request.get("headers") or []}
    params: Any = None
    if body is not None:
        try:
            params = json.loads(body)
        except ValueError:
            params = None
    return RequestSpec(item.scenario, method=str(request.get("method") or "POST"), headers=headers, body=body,
                       params=params if isinstance(params, dict) else None, stream=bool(request.get("stream")),
                       url=url)


# -- judging one exchange again ---------------------------------------------------------------------------


def _must(profile: Profile, claims: frozenset[str] = frozenset()) -> frozenset[str]:
    return frozenset(r.id for r in catalogue.REQUIREMENTS if r.level_for(profile.name, claims) == catalogue.MUST)


def _generated_valid(exchange: Exchange, profile: Profile, req_id: str,
                     claims: frozenset[str] = frozenset()) -> list[Violation]:
    """PROP-001 on one case, as test_properties judges it: a 2xx answered whole that passes every MUST check."""
    if not judgeable(exchange):
        return [Violation(req_id, f"a valid request was not answered whole with 2xx: {why_not(exchange)}",
                          scenario=exchange.scenario)]
    now = time.time()
    found = findings(response.stream_checks(exchange, profile, now) if exchange.request.stream
                     else response.completion_checks(exchange, profile, now))
    must = _must(profile, claims)
    return [v for v in found if v.requirement in must]


# the rules whose test judges one answer by its status: the check it applies
# (PROP-001 is judged by _generated_valid, at the levels of the report's claims: rejudge)
_BY_STATUS: dict[str, Callable[[Exchange, str, Profile], list[Violation]]] = {
    **{f"VAL-{i:03d}": (lambda e, r, p: errors.client_error(e, r)) for i in range(1, 23)},
    **{f"AUTH-00{i}": (lambda e, r, p: errors.client_error(e, r)) for i in (1, 2, 3, 4, 8)},
    "AUTH-005": lambda e, r, p: errors.refused(e, r, (401, 403)),
    "AUTH-006": lambda e, r, p: errors.error_shape(e, p, r),
    "MODEL-001": lambda e, r, p: errors.client_error(e, r),
    "MODEL-002": lambda e, r, p: errors.status_is(e, r, 404),
    "BASIC-001": lambda e, r, p: errors.status_is(e, r, 200),
    "HDR-001": lambda e, r, p: errors.status_is(e, r, 200),
    "HDR-002": lambda e, r, p: errors.refused(e, r, (403, 404)),
    "HDR-004": lambda e, r, p: errors.status_is(e, r, 200),
    "HDR-005": lambda e, r, p: errors.status_is(e, r, 200),
    "ERR-001": lambda e, r, p: errors.error_body_json(e, r),
    "ERR-002": lambda e, r, p: errors.status_is(e, r, p.validation_status),
    "ERR-005": lambda e, r, p: errors.not_server_error(e, r),
    "PROP-002": lambda e, r, p: errors.not_server_error(e, r),
    "PROP-003": lambda e, r, p: errors.client_error(e, r),
}


def rejudge(req_id: str, exchange: Exchange, profile: Profile,
            claims: frozenset[str] = frozenset()) -> list[Violation] | None:
    """The violations of `req_id` on this one answer, by the check its test applies (at the levels the run's
    `claims` give); None when the rule cannot be judged from one exchange (it compares several, or needs what
    one answer does not hold)."""
    if req_id == "PROP-001":
        return findings(_generated_valid(exchange, profile, req_id, claims))
    if req_id in _BY_STATUS:
        return [v for v in findings(_BY_STATUS[req_id](exchange, req_id, profile)) if v.requirement == req_id]
    record = Record(exchange.scenario, "replay", exchange, headers_known=True, request_known=True,
                    time=time.time(), status_known=True)
    if exchange.response is None or not recorded_judgeable(req_id, record, profile):
        return None
    return [v for v in findings(record_findings(record, profile)) if v.requirement == req_id]


# -- the command ------------------------------------------------------------------------------------------


def _target(doc: dict[str, Any], base_url: str | None) -> tuple[str | None, bool]:
    """(base URL, start the embedded server): --base-url, else the recorded target unless it was the embedded
    server, which has gone with its run."""
    if base_url:
        return base_url, False
    run = doc["run"]
    if run.get("embedded"):
        return None, True
    target = run.get("target")
    if not isinstance(target, str) or not target.startswith(("http://", "https://")):
        raise ReplayError("the report names no target URL to send to: give --base-url")
    return target, False


def command_replay(args: argparse.Namespace) -> int:
    from conformance.config import ConfigError, resolve
    from conformance.transport.client import Client

    try:
        doc = load_report(args.report)
        selection = Selection.parse(args.only, what="--only") if args.only else None
        ids = [i.strip() for value in args.id or [] for i in value.split(",") if i.strip()]
        for req_id in ids:
            if catalogue.BY_ID.get(req_id) is None:
                raise SelectionError(f"--id {req_id}: no such requirement (see sgp-conformance list)")
        if ids:
            selection = Selection(frozenset(ids), frozenset()) if selection is None else selection.narrowed(ids)
        items = list(recorded_exchanges(doc, selection, args.failed))
        run = doc["run"]
        profile_name = run.get("profile") if run.get("profile") in PROFILES else "sgp"
        base_url, embedded_wanted = _target(doc, args.base_url)
        configuration = run.get("configuration") if isinstance(run.get("configuration"), dict) else {}
        flags: dict[str, Any] = {"profile": profile_name, "base_url": base_url}
        # how the run reached its target (not secrets: a proxy's password was masked, and is then not reused)
        for name in ("timeout", "stream_timeout", "allow_insecure_http", "ca_bundle", "insecure", "proxy"):
            value = configuration.get(name)
            if value is not None and value is not False and not (name == "proxy" and "***" in str(value)):
                flags[name] = value
        if isinstance(run.get("model"), str):
            flags["model"] = run["model"]
        config = resolve({k: v for k, v in flags.items() if v is not None})
    except (ReplayError, SelectionError, ConfigError) as exc:
        print(f"sgp-conformance replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not items:
        failures = [r for r in doc["results"] if isinstance(r, dict) and r.get("status") in REPLAYED
                    and (selection is None or selection.matches(str(r.get("id"))))]
        scope = " for that selection" if selection is not None else ""
        if not failures:
            print(f"sgp-conformance replay: the report has no failure{scope}: nothing to send again")
        else:
            print(f"sgp-conformance replay: the report's failures{scope} kept no request to send again (a report "
                  "written before replay existed, or a failure with no exchange behind it): run again to record them")
        return EXIT_OK
    profile = get_profile(config.profile)
    env = dict(os.environ)
    embedded = None
    if embedded_wanted:
        from conformance.server.embedded import start_embedded

        config.account_id = configuration.get("account_id") if isinstance(configuration.get("account_id"), str) \
            else None
        embedded = start_embedded(config)
        config.base_url, config.api_key = embedded.base_url, embedded.api_key
        env["SGP_API_KEY"] = embedded.api_key
        print(f"sgp-conformance replay: the report's run used the embedded reference server: started a new one at "
              f"{config.base_url} (--base-url sends elsewhere)", flush=True)
    elif config.api_key:
        env["SGP_API_KEY"] = config.api_key
    recorded_base = str(run.get("target") or "")
    claimed = configuration.get("claims")
    claims = frozenset(str(c) for c in claimed) if isinstance(claimed, list) else frozenset()
    # the key and every secret the recorded headers read from the environment are masked in what is printed
    names = {name for item in items for _, value in item.request.get("headers") or []
             for name in _PLACEHOLDER.findall(str(value))}
    scrubber = Scrubber([env[name] for name in sorted(names | {"SGP_API_KEY"}) if env.get(name)])
    try:
        # every request is built before the first is sent: a variable missing from the environment stops
        # the replay before it has sent anything
        specs = [request_spec(item, rebase(str(item.request.get("url") or ""), recorded_base, config.base_url or ""),
                              env) for item in items]
    except ReplayError as exc:
        if embedded is not None:
            embedded.stop()
        print(f"sgp-conformance replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = Client(config, profile, config.base_url or "", budget=len(items) * (config.retries + 1) + 1)
    counts = {"still fails": 0, "still observed": 0, "no longer reproduces": 0, "still holds": 0, "now fails": 0,
              "not re-judged": 0, "key refused": 0, "no answer": 0}
    try:
        for item, spec in zip(items, specs, strict=True):
            exchange = client.send(spec)
            verdict, detail = _verdict(item, exchange, profile, claims)
            counts[verdict] += 1
            was = f"was {item.status}" if item.status is not None else "was no answer"
            now = exchange.status if exchange.status is not None else "no answer"
            line = f"{item.req_id:<10} {item.scenario:<22} HTTP {now} ({was})  {verdict}"
            print(scrubber.text(line + (f": {detail}" if detail else "")), flush=True)
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    print(f"sgp-conformance replay: {len(items)} exchange(s) sent to {scrubber.text(config.base_url or '')}: {summary}")
    if counts["key refused"]:
        print("sgp-conformance replay: KEY REFUSED: the target answered 401/403 where the recorded run was "
              "served: check SGP_API_KEY (and --base-url)", file=sys.stderr)
        return EXIT_UNREACHABLE
    if counts["still fails"] or counts["now fails"]:
        return EXIT_FAIL
    if counts["no answer"] == len(items):
        return EXIT_UNREACHABLE
    return EXIT_OK


def _verdict(item: Recorded, exchange: Exchange, profile: Profile,
             claims: frozenset[str] = frozenset()) -> tuple[str, str]:
    """(verdict, what was found). Verdicts: "still fails" (an exchange that broke its rule breaks it again),
    "still observed" (the same, for an observation), "no longer reproduces", "still holds" / "now fails"
    (an exchange of the evidence that kept the rule), "not re-judged" (a rule over several exchanges),
    "key refused" (401/403 where the recorded run was served), "no answer"."""
    if exchange.response is None:
        return "no answer", exchange.error or "transport error"
    # only a request that carries the user's key can tell that the key is refused (AUTH-* send none or another)
    sends_key = "${SGP_API_KEY}" in json.dumps(item.request.get("headers") or [])
    if sends_key and exchange.status in (401, 403) and item.status not in (401, 403, None):
        return "key refused", f"HTTP {exchange.status}"
    found = rejudge(item.req_id, exchange, profile, claims)
    if found is None:
        return "not re-judged", f"{item.req_id} compares several exchanges; this one was sent again only"
    if found:
        first = found[0]
        where = f" at {first.pointer}" if first.pointer else ""
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        detail = f"{first.requirement}: {first.message}{where}{more}"
        if not item.failed:
            return "now fails", detail
        return ("still observed" if item.observed else "still fails"), detail
    return ("no longer reproduces" if item.failed else "still holds"), ""
