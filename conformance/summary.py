"""The end of a run: the secret rescan, the one-screen summary and the exit code."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from conformance import catalogue
from conformance.config import Config
from conformance.redact import Scrubber, config_secrets
from conformance.results import gating

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4
# pytest's own codes: 2 interrupted, 3 internal error, 4 usage error
PYTEST_USAGE = 4
PYTEST_NO_TESTS = 5


REPORT_FILES = ("conformance.html", "junit.xml", "conformance.json")


TIMESTAMP = "{timestamp}"


def run_report_dir(template: str, keep: bool = False, now: float | None = None) -> Path:
    """The directory one run writes to. `{timestamp}` in the template becomes the run's start in UTC
    (`reports/{timestamp}` -> `reports/20261130T101500Z`); `keep` is the same as a trailing `/{timestamp}`.
    A timestamped directory that exists already (two runs in one second) gets a suffix: -2, -3 ..."""
    if keep and TIMESTAMP not in template:
        template = str(Path(template) / TIMESTAMP)
    if TIMESTAMP not in template:
        return Path(template)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    path = Path(template.replace(TIMESTAMP, stamp))
    suffix = 2
    while path.exists():
        path = Path(template.replace(TIMESTAMP, f"{stamp}-{suffix}"))
        suffix += 1
    return path


def prepare_report_dir(report_dir: Path) -> str | None:
    """Create the report directory and remove the last run's reports; a one-line error, or None."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            (report_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        return f"sgp-conformance: cannot write reports to {report_dir} ({exc.strerror}): choose another --report-dir"
    return None


def leaked_files(report_dir: Path, config: Config, neutralise: bool = False) -> list[Path]:
    """Every file under the report directory that holds a secret of the run (plain, base64, quoted, escaped).

    With `neutralise`, each such file is also rewritten with the secret masked, so a CI step that uploads
    the reports whatever the outcome does not publish the key.
    """
    scrubber = Scrubber(config_secrets(config))
    if not scrubber.active or not report_dir.is_dir():
        return []
    found = []
    for path in sorted(report_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if scrubber.contains_secret(data):
            found.append(path)
            if neutralise:
                path.write_bytes(scrubber.data(data))
    return found


def _load(report_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _key_refused(doc: dict[str, Any]) -> str | None:
    for result in doc.get("results", []):
        if result["id"] == "BASIC-001" and result["status"] == "fail":
            for ev in (result.get("evidence") or {}).get("scenarios", []):
                status = ev.get("status")
                if status in (401, 403):
                    # a 403 may refuse the account the key acts for, not the key: name both fixes then
                    account = ((doc.get("run") or {}).get("configuration") or {}).get("account_id")
                    if status == 403 and account:
                        return ("the configured key or account was refused (HTTP 403): check --api-key / "
                                "SGP_API_KEY and --account-id / SGP_ACCOUNT_ID")
                    return f"the configured key was refused (HTTP {status}): check --api-key / SGP_API_KEY"
    return None


def exit_code(doc: dict[str, Any], fail_on: str) -> tuple[int, str]:
    if doc.get("unreachable"):
        return EXIT_UNREACHABLE, f"target unreachable: {doc['unreachable']}"
    refused = _key_refused(doc)
    if refused:
        return EXIT_UNREACHABLE, refused
    results = doc.get("results", [])
    if gating(results, fail_on):
        return EXIT_FAIL, "not conformant"
    # not judged for want of requests: the budget ran out, or the target kept answering 429
    budget = [r for r in results if r["status"] == "skip" and ("budget" in r.get("message", "")
                                                                or "429" in r.get("message", ""))]
    if budget:
        return EXIT_INCOMPLETE, (f"incomplete: {len(budget)} requirement(s) not judged "
                                 "(request budget reached or the target throttled)")
    return EXIT_OK, "conformant"


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
    rerun = f"  (rerun: -k {rid})"
    message = str(result.get("message") or "").removeprefix(f"{rid}: ")
    room = max(width - len(head) - len(rerun), MESSAGE_ROOM)
    return f"{head}{clip(message, room)}{rerun}"


def render(doc: dict[str, Any], verdict_line: str, report_dir: Path, fail_on: str) -> str:
    # the verdict shouts; what follows it (a host name, the flag to fix) keeps its case, to be copied as is
    verdict, sep, detail = verdict_line.partition(": ")
    lines = ["", "=" * 72, f"sgp-conformance: {verdict.upper()}{sep}{detail} (--fail-on {fail_on})"]
    run = doc.get("run", {})
    lines.append(f"target {run.get('target')}  profile {run.get('profile')}  model {run.get('model')}")
    if run.get("seed") is not None:
        lines.append(f"depth {run.get('depth')}  seed {run['seed']} (--seed {run['seed']} repeats the generated "
                     "cases)")
    verdicts = doc.get("verdicts", {})
    for level in catalogue.LEVELS:
        counts = {s: n for s, n in doc.get("counts", {}).get(level, {}).items() if n}
        if counts:
            parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            shown = f"{verdicts[level]}: " if level in verdicts else ""
            lines.append(f"  {level:<6} {shown}{parts}")
    failed = [r for r in doc.get("results", []) if r["status"] in {"fail", "error", "stale"}]
    for r in failed[:25]:
        lines.append(failure_line(r))
    if len(failed) > 25:
        lines.append(f"  ... and {len(failed) - 25} more")
    known = [r["id"] for r in doc.get("results", []) if r["status"] == "known"]
    if known:
        lines.append(f"  known (accepted in the baseline): {', '.join(known)}")
    req = doc.get("requests", {})
    lines.append(f"requests sent: {req.get('sent', 0)}  (429 seen: {req.get('throttled', 0)})")
    written = [name for name in REPORT_FILES if (report_dir / name).exists()]
    if written:
        lines.append(f"reports in {report_dir}{os.sep}: {', '.join(written)}")
    lines.append("=" * 72)
    return "\n".join(lines)


def finish(config: Config, pytest_code: int, report_dir: Path) -> int:
    leaks = leaked_files(report_dir, config, neutralise=True)
    if leaks:
        names = ", ".join(str(p) for p in leaks)
        print(f"sgp-conformance: SECRET LEAK: the API key was found in {names} (now masked there); "
              "the run fails: report this as a bug of sgp-conformance", file=sys.stderr)
        return EXIT_FAIL
    if pytest_code == PYTEST_USAGE:
        # pytest has printed why (a bad -k expression ...); the empty results must not read as conformant
        return EXIT_USAGE
    if pytest_code == PYTEST_NO_TESTS:
        print("sgp-conformance: the selection matched no requirement, nothing was judged: "
              "check -k / -m (sgp-conformance list shows the IDs)", file=sys.stderr)
        return EXIT_USAGE
    doc = _load(report_dir)
    if doc is None:
        print("sgp-conformance: the run ended before writing its results", file=sys.stderr)
        return EXIT_FAIL
    code, line = exit_code(doc, config.fail_on)
    print(Scrubber(config_secrets(config)).text(render(doc, line, report_dir, config.fail_on)))
    return code
