"""The end of a run: the secret rescan, the one-screen summary and the exit code."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from conformance.config import Config
from conformance.config.secrets import config_secrets
from conformance.contract import catalogue, claims
from conformance.redact import Scrubber
from conformance.report.folder import REPORT_FILES, results_stamp, write_new
from conformance.report.open_points import pin_line
from conformance.report.outcomes import RUN_GIVEN, gating, unanswered

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4
# pytest's own codes: 2 interrupted, 3 internal error, 4 usage error
PYTEST_INTERRUPTED = 2
PYTEST_INTERNAL_ERROR = 3
PYTEST_USAGE = 4
PYTEST_NO_TESTS = 5


def _strings(value: Any, keys: bool = True) -> Iterator[str]:
    """The strings of a JSON value, its object keys too unless `keys` is False (a value of the run's own
    making, whose keys are the run's names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if keys:
                yield str(key)
            yield from _strings(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, keys)


# conformance.json: the parts that hold the run's own words (statements, IDs, counts), never target text
_OWN_RESULT_KEYS = frozenset({"id", "level", "statement", "source", "contract", "status", "tests", "needs",
                              "not_run", "violation_count"})
_OWN_TOP_KEYS = frozenset({"schema", "format_version", "versions", "verdict", "verdicts", "counts", "coverage",
                           "requests"})


def target_text(path: Path) -> Iterator[str]:
    """The text in a report this run wrote that came from the target or the configuration (messages,
    evidence, headers, bodies, curl lines, the configuration, pytest's captured output), never the report's
    own markup or words: the leak scan looks only there, so a key that is a common word ("test") or a field
    name is not found in the markup it shares a spelling with."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        try:
            doc = json.loads(raw)
        except ValueError:
            yield raw
            return
        for key, value in doc.items() if isinstance(doc, dict) else ():
            if key == "results" and isinstance(value, list):
                for result in value:
                    if isinstance(result, dict):
                        yield from _strings({k: v for k, v in result.items()
                                             if k not in _OWN_RESULT_KEYS and k != "evidence"})
                        yield from _evidence_errors(result.get("evidence"))
            elif key == "run" and isinstance(value, dict):
                # the run's own names, times and enums are not the target's or the user's text
                yield from _strings({k: v for k, v in value.items() if k in RUN_GIVEN}, keys=False)
            elif key == "open_points" and isinstance(value, list):
                # the choices' names and meanings are the suite's words; a point's message is a result's
                for point in value:
                    if isinstance(point, dict):
                        yield from _strings(point.get("message"))
            elif key not in _OWN_TOP_KEYS:
                yield from _strings(value)
    elif path.suffix == ".xml":
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError:
            yield raw
            return
        for element in root.iter():
            if element.tag in ("failure", "error", "skipped", "system-out", "system-err"):
                yield element.get("message") or ""
                text = element.text or ""
                # a skip's text starts with the suite's own test file and line: `test_auth.py:35: `
                yield _SKIP_LOCATION.sub("", text) if element.tag == "skipped" else text
            elif element.tag == "property" and element.get("name") not in ("requirement", "level"):
                yield element.get("value") or ""
    else:
        match = _JSON_BLOB.search(raw)
        if match is None:
            yield raw
            return
        try:
            data = json.loads(html.unescape(match.group(1)))
        except ValueError:
            yield raw
            return
        yield from _strings(data.get("environment"))
        for entries in (data.get("tests") or {}).values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    yield from _strings(entry.get("log"))


_JSON_BLOB = re.compile(r'data-jsonblob="([^"]*)"')
_SKIP_LOCATION = re.compile(r"^[\w.-]+\.py:\d+: ")


def _evidence_errors(pointer: Any) -> Iterator[str]:
    """Of a result's evidence pointer (results.Result.to_json), the part that came from the target or the
    configuration: each exchange's transport error, URL, curl line, bodies and replay request. Its anchor, page link,
    scenario names, methods and statuses are the run's own."""
    if not isinstance(pointer, dict):
        return
    for scenario in pointer.get("scenarios") or []:
        if isinstance(scenario, dict):
            for name in ("error", "url", "curl", "request_body", "response_body"):
                if isinstance(scenario.get(name), str):
                    yield scenario[name]
            # the request kept whole for replay: URL, header values and body came from the run
            yield from _strings(scenario.get("replay"), keys=False)


def leaked_files(report_dir: Path, config: Config, written: Iterable[Path] | None = None,
                 neutralise: bool = False, extra: Iterable[str] = ()) -> list[Path]:
    """The reports this run wrote (`written`; by default its three files in `report_dir`) whose target- or
    configuration-derived text holds a secret of the run (plain, base64, quoted, escaped). No other file is
    ever read; with `neutralise`, such a report (the run's own) is rewritten with the secret masked, so a
    CI step that uploads the reports whatever the outcome does not publish the key. `extra`: secrets the
    configuration does not hold (the keys a proxy's clients sent)."""
    scrubber = Scrubber([*config_secrets(config), *extra])
    if not scrubber.active:
        return []
    paths = list(written) if written is not None else [report_dir / name for name in REPORT_FILES]
    found = []
    for path in paths:
        if not path.is_file():
            continue
        if any(scrubber.contains_secret(text) for text in target_text(path)):
            found.append(path)
            if neutralise:
                _neutralise(path, scrubber)
    return found


# what stands in for a report whose secret no masking could remove: the same kind of document, saying so
_WITHHELD = "withheld by sgp-conformance: it held a secret that could not be masked"
_STUBS = {".json": json.dumps({"withheld": _WITHHELD}) + "\n",
          ".xml": f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites><!-- {_WITHHELD} --></testsuites>\n',
          ".html": f"<!DOCTYPE html>\n<html><head><title>withheld</title></head><body><p>{_WITHHELD}</p></body>"
                   "</html>\n"}


def _neutralise(path: Path, scrubber: Scrubber) -> None:
    """Mask the secrets in a report of the run's own: its bytes first (the document stays well-formed: a form
    is masked whole); then a JSON document value by value; a report the scan still finds a secret in is
    replaced by a stub of its kind that says it was withheld."""
    # each write a new file renamed into place (report.folder.write_new): never through a link
    write_new(path, scrubber.data(path.read_bytes()))
    if path.suffix == ".json" and any(scrubber.contains_secret(text) for text in target_text(path)):
        with contextlib.suppress(ValueError):
            doc = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            write_new(path, (json.dumps(scrubber.value(doc), indent=2) + "\n").encode("utf-8"))
    if any(scrubber.contains_secret(text) for text in target_text(path)):
        write_new(path, _STUBS.get(path.suffix, _WITHHELD + "\n").encode("utf-8"))


def _load(report_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# the exit code of each verdict (results.VERDICTS); an interrupted run exits 128 + its signal
VERDICT_EXIT = {"conformant": EXIT_OK, "partial": EXIT_OK, "not conformant": EXIT_FAIL,
                "incomplete": EXIT_INCOMPLETE, "not judged": EXIT_INCOMPLETE, "key refused": EXIT_UNREACHABLE,
                "unreachable": EXIT_UNREACHABLE}
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def exit_code(doc: dict[str, Any], fail_on: str) -> tuple[int, str]:
    """The exit code of a run's results and the verdict line the summary shouts."""
    verdict = doc.get("verdict", "not judged")
    run = doc.get("run") or {}
    coverage = doc.get("coverage") or {}
    judged = f"{coverage.get('judged', 0)} of {coverage.get('applicable', 0)} requirements judged"
    if verdict == "interrupted":
        signal = run.get("interrupted") or "SIGINT"
        return SIGNAL_EXIT.get(signal, 130), f"interrupted: by {signal}, {judged}; nothing is conformant"
    if verdict == "key refused":
        return EXIT_UNREACHABLE, f"key refused: {run.get('halted')}"
    if verdict == "unreachable":
        from conformance.config.network import tls_fix

        unreachable = doc.get("unreachable") or ""
        return EXIT_UNREACHABLE, f"target unreachable: {unreachable}{tls_fix(unreachable)}"
    gating_failures = gating(doc.get("results", []), fail_on)
    if verdict == "not conformant":
        return EXIT_FAIL, f"not conformant: {len(gating_failures)} requirement(s) failed, {judged}"
    not_run = [r for r in doc.get("results", []) if r["status"] == "not run" and r.get("not_run") in
               ("budget", "throttled")]
    if verdict == "incomplete":
        blind = unanswered(doc.get("results", []), fail_on)
        if blind and not not_run:
            return EXIT_INCOMPLETE, (f"incomplete: {len(blind)} requirement(s) not judged because an answer never "
                                     f"came or came cut short ({blind[0]['id']}), {judged}")
        stopped = next((r.get("message") for r in not_run if "--max-throttle-wait" in (r.get("message") or "")),
                       None)
        if stopped:
            return EXIT_INCOMPLETE, f"incomplete: {len(not_run)} requirement(s) not run: {stopped}; {judged}"
        return EXIT_INCOMPLETE, (f"incomplete: {len(not_run)} requirement(s) not run (request budget reached or "
                                 f"the target throttled), {judged}")
    if verdict == "partial":
        without = claims.verdict_suffix((run.get("claims") or {}).get("without") or [])
        return EXIT_OK, f"partial{without}: {judged}, none failed (the selection left the rest out)"
    if verdict == "not judged":
        return EXIT_INCOMPLETE, "not judged: no requirement could be judged"
    without = ((run.get("claims") or {}).get("without") or []) if verdict == "conformant" else []
    return VERDICT_EXIT.get(verdict, EXIT_FAIL), f"{verdict}{claims.verdict_suffix(without)}: {judged}"


def _cut(text: str, width: int) -> str:
    """`text` cut at a word boundary to `width` characters, with an ellipsis when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > width // 2 else text[: width - 1]) + "…"


# a failure's message keeps at least this much, whatever the terminal's width (a narrow one wraps the line)
MESSAGE_ROOM = 96


def line_width() -> int:
    """The width a failure line of the summary is kept within: the terminal's (COLUMNS), 120 in a pipe."""
    return min(max(shutil.get_terminal_size((120, 24)).columns, 80), 200)


def clip(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters, cut at a word boundary with an ellipsis (mid-word
    only when a single word is longer than half the width)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def failure_line(result: dict[str, Any], width: int | None = None) -> str:
    """One failure of the summary: ID, level, status, what went wrong, and how to rerun just it."""
    width = line_width() if width is None else width
    rid = result["id"]
    head = f"  x {rid:<10} {result['level']:<6} {result['status']:<5} "
    # a generated case is drawn again only with the run's seed
    seed = (result.get("generated") or {}).get("seed")
    rerun = f"  (rerun: --only {rid}" + (f" --seed {seed})" if seed is not None else ")")
    message = str(result.get("message") or "").removeprefix(f"{rid}: ")
    room = max(width - len(head) - len(rerun), MESSAGE_ROOM)
    return f"{head}{clip(message, room)}{rerun}"


def open_point_lines(doc: Mapping[str, Any]) -> list[str]:
    """The claims of the run and what the server did on the open points: the choices it did not hold, and
    the --claim line that pins the ones it held."""
    lines = []
    claimed = (doc.get("run") or {}).get("claims") or {}
    if claimed.get("without") or claimed.get("choices"):
        lines.append(f"claims: without {', '.join(claimed.get('without') or []) or 'nothing'}; "
                     f"choices {', '.join(claimed.get('choices') or []) or 'none'}")
    points = doc.get("open_points") or []
    broken = [p["choice"] for p in points if p["behaviour"] == "broken" and not p["claimed"]]
    if broken:
        lines.append(f"open points observed, not failed: {', '.join(broken)}")
    pin = pin_line(points)
    if pin:
        lines.append(f"open points the server held (to promise them: {pin})")
    return lines


# what would include the requirements a setting left out, where their reason does not name it already
INCLUDE_HINTS = {
    "depth smoke": "--depth standard includes them",
    "not claimed": "--without declared the feature absent: drop it from --without to judge them",
}


def left_out(results: Iterable[dict[str, Any]]) -> list[str]:
    """`  left out: 43 SHOULD, 6 INFO: depth smoke runs MUST requirements only (--depth standard includes
    them)`: per reason, the requirements a setting of the run left out (not run, kind `settings`) and the flag or
    claim that would include them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r.get("status") == "not run" and r.get("not_run") == "settings":
            groups.setdefault(str(r.get("message") or "a setting of the run"), []).append(r)
    lines = []
    for reason, rows in groups.items():
        if len(rows) > 4:
            levels = Counter(r["level"] for r in rows)
            which = ", ".join(f"{levels[level]} {level}" for level in catalogue.LEVELS if levels[level])
        else:
            which = ", ".join(r["id"] for r in rows)
        hint = next((h for key, h in INCLUDE_HINTS.items() if key in reason), None)
        lines.append(f"  left out: {which}: {reason}" + (f" ({hint})" if hint and "--" not in reason else ""))
    return lines


def render(doc: dict[str, Any], verdict_line: str, report_dir: Path, fail_on: str,
           scrub: Callable[[str], str] = str) -> str:
    """The summary. `scrub` masks the secrets in what came from the target or the configuration (the verdict's
    detail, target, model, failure messages, the report directory), never in the summary's own words: a key
    that is a common word ("test", "conformance") leaves the summary readable."""
    # the verdict shouts; what follows it (a host name, the flag to fix) keeps its case, to be copied as is
    verdict, sep, detail = verdict_line.partition(": ")
    # the features declared absent keep their names' case: "CONFORMANT without logprobs"
    word, without, absent = verdict.partition(" without ")
    lines = ["", "=" * 72, f"sgp-conformance: {word.upper()}{without}{absent}{sep}{scrub(detail)} "
                           f"(--fail-on {fail_on})"]
    run = doc.get("run", {})
    lines.append(f"target {scrub(str(run.get('target')))}  profile {run.get('profile')}  "
                 f"model {scrub(str(run.get('model')))}")
    if run.get("seed") is not None:
        lines.append(f"depth {run.get('depth')}  seed {run['seed']} (--seed {run['seed']} repeats the generated "
                     "cases)")
    verdicts = doc.get("verdicts", {})
    for level in catalogue.LEVELS:
        counts = {s: n for s, n in doc.get("counts", {}).get(level, {}).items() if n}
        if counts:
            parts = ", ".join(f"{n} {status}" for status, n in counts.items())
            shown = f"{verdicts[level]}: " if level in verdicts and level != catalogue.INFO else ""
            lines.append(f"  {level:<6} {shown}{parts}")
    lines += left_out(doc.get("results", []))
    failed = [r for r in doc.get("results", []) if r["status"] in {"fail", "error", "stale"}]
    for r in failed[:25]:
        lines.append(failure_line({**r, "message": scrub(str(r.get("message") or ""))}))
    if len(failed) > 25:
        lines.append(f"  ... and {len(failed) - 25} more")
    lines += open_point_lines(doc)
    known = [r["id"] for r in doc.get("results", []) if r["status"] == "known"]
    if known:
        lines.append(f"  known (accepted in the baseline): {', '.join(known)}")
    req = doc.get("requests", {})
    lines.append(f"requests sent: {req.get('sent', 0)}  (429 seen: {req.get('throttled', 0)})")
    written = [name for name in REPORT_FILES if (report_dir / name).exists()]
    if written:
        lines.append(f"reports in {scrub(str(report_dir))}{os.sep}: {', '.join(written)}")
    lines.append("=" * 72)
    return "\n".join(lines)


def finish(config: Config, pytest_code: int, report_dir: Path,
           before: tuple[int, int, int] | None = None) -> int:
    """The rescan, the summary and the exit code of a run. `before` is the results_stamp of report_dir taken
    before the run began: a conformance.json that still has it is an earlier run's, never this one's."""
    earlier = before is not None and results_stamp(report_dir) == before
    leaks = leaked_files(report_dir, config, neutralise=True)
    if leaks:
        names = ", ".join(str(p) for p in leaks)
        print(f"sgp-conformance: SECRET LEAK: the API key was found in {names} (now masked there); "
              "the run fails: report this as a bug of sgp-conformance", file=sys.stderr)
        return EXIT_FAIL
    if pytest_code == PYTEST_INTERNAL_ERROR:
        # the suite itself broke (pytest printed INTERNALERROR and where): whatever the reports say, the run
        # judged nothing it can stand by, and a gate must not pass on it
        print("sgp-conformance: the run stopped on an internal error of the suite (above): nothing it reports "
              "can be relied on; report this as a bug of sgp-conformance", file=sys.stderr)
        return EXIT_FAIL
    if pytest_code == PYTEST_USAGE:
        # pytest has printed why (a bad -k expression, a refused path or model ...): no report was written
        return EXIT_USAGE
    if pytest_code == PYTEST_NO_TESTS:
        print("sgp-conformance: the selection matched no requirement, nothing was judged: "
              "check --only / -k / -m (sgp-conformance list shows the IDs)", file=sys.stderr)
        return EXIT_USAGE
    doc = None if earlier else _load(report_dir)
    if doc is None and pytest_code == PYTEST_INTERRUPTED:
        print("sgp-conformance: interrupted before the run began: nothing was judged, no report was written",
              file=sys.stderr)
        return SIGNAL_EXIT["SIGINT"]
    if doc is None:
        print("sgp-conformance: the run ended before writing its results", file=sys.stderr)
        return EXIT_FAIL
    code, line = exit_code(doc, config.fail_on)
    scrub = Scrubber(config_secrets(config)).text
    if doc.get("verdict") in ONE_LINE_VERDICTS and not (doc.get("coverage") or {}).get("judged"):
        print(one_line(line, report_dir, scrub))
        return code
    print(render(doc, line, report_dir, config.fail_on, scrub))
    return code


# the verdicts of a run that ended at its first request: where nothing was judged, one line says why (a target
# lost mid-run gets the whole summary: what was judged before counts)
ONE_LINE_VERDICTS = ("unreachable", "key refused")


def one_line(verdict_line: str, report_dir: Path, scrub: Callable[[str], str] = str) -> str:
    """`sgp-conformance: TARGET UNREACHABLE: connection refused by host:port; nothing judged (reports in DIR/)`:
    the whole summary of a run that ended at its first request."""
    verdict, sep, detail = verdict_line.partition(": ")
    written = any((report_dir / name).exists() for name in REPORT_FILES)
    where = f" (reports in {scrub(str(report_dir))}{os.sep})" if written else ""
    return f"sgp-conformance: {verdict.upper()}{sep}{scrub(detail)}; nothing judged{where}"
