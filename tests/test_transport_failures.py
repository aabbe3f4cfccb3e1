"""A target that misbehaves at the transport level: the run still ends in bounded time, names the problem
in one line, writes every report, exits with the documented code and never shows a traceback.

Exit codes: 3 when nothing usable comes back (refused, unresolvable, TLS, silent, too slow); 1 when
answers come back but are garbage (an HTML 502 page, resets mid-body, a body too big, an endless stream).
Every run gets short --timeout/--stream-timeout; the runs share the test session's interpreter
(cli_runs.run_in_process), and one runs the command itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import misbehaving
import pytest
from cli_runs import Outcome, run_cli, run_in_process

KEY = "sk-transport-test-0123456789"
# short limits, so that the slowest case costs seconds: 3 unanswered requests end a run
LIMITS = ["--timeout", "0.5", "--stream-timeout", "1", "--depth", "smoke"]
# far above what any case needs with LIMITS, far below what a hang would take
HARD_TIMEOUT = 90
REPORTS = ("conformance.json", "junit.xml", "conformance.html")


@contextmanager
def target(kind: str) -> Iterator[str]:
    """The base URL of a misbehaving target of `kind`, for the length of the block."""
    if kind == "refused":
        yield f"http://127.0.0.1:{misbehaving.closed_port()}"
    elif kind == "unresolvable":
        # https, so the key may go to a non-loopback name without --allow-insecure-http
        yield misbehaving.UNRESOLVABLE_URL.replace("http://", "https://")
    elif kind == "tls":
        with misbehaving.plain_http_port() as port:
            yield f"https://127.0.0.1:{port}"
    else:
        with misbehaving.serve(kind) as server:
            yield server.base_url


CASES = {
    # kind: (exit code, the summary line that names the problem)
    "refused": (3, r"target unreachable: connection refused by 127\.0\.0\.1:\d+"),
    "unresolvable": (3, r"target unreachable: cannot resolve host sgp-conformance\.invalid"),
    "tls": (3, r"target unreachable: TLS handshake with 127\.0\.0\.1:\d+ failed"),
    # the minimal request got no answer: one timeout ends the run, not three
    "never_answer": (3, r"target unreachable: 127\.0\.0\.1:\d+ did not answer within 0\.5 s"),
    "slow": (3, r"target unreachable: 127\.0\.0\.1:\d+ did not answer within 0\.5 s"),
    "trickle": (3, r"target unreachable: 127\.0\.0\.1:\d+ never finished a response within 1\.5 s"),
    # one fault, one failure: the minimal request is cut, and every rule that needs an answer points at it
    "reset_mid_body": (1, r"BASIC-001 .*http 200 cut short: .*(reset|closed the connection)"),
    "reset_mid_stream": (1, r"BASIC-001 .*http 200 cut short: .*(reset|closed the connection)"),
    "html_502": (1, r"BASIC-001 .*HTTP 502 \(text/html\)"),
    "huge_body": (1, r"BASIC-001 .*HTTP 200 cut short: body larger than"),
    "endless_sse": (1, r"STRM-015 .*stream cut by the client \(response still arriving after 1 s"),
}
# what conformance.json says of the stream, where the stream is the thing that misbehaves
STREAM_FINDINGS = {
    "reset_mid_stream": r"^the minimal valid request was not answered with 2xx",
    "endless_sse": r"stream cut by the client \(response still arriving after 1 s: read stopped there\) after "
                   r"\d+ chunks where max_tokens 16 allows \d+: the stream does not end",
}


# each stream of the endless target is read until --stream-timeout cuts it: overlapped, as a user's
# --concurrency does, the run takes 2 s instead of 9
OVERLAPPED = {"endless_sse": ["--concurrency", "8"]}


def run_against(url: str, tmp_path: Path, extra: list[str] | None = None) -> Outcome:
    # in this interpreter: what is judged is the run's, not the process's (the command itself runs in
    # test_unresolvable_plain_http_is_a_usage_error_first); --timeout bounds each request, so no hang guard
    return run_in_process(["run", "--base-url", url, *LIMITS, *(extra or [])], tmp_path / "reports",
                          env={"SGP_API_KEY": KEY})


def summary_lines(out: Outcome) -> list[str]:
    """The terminal summary's lines and stderr, where a user looks for what went wrong."""
    return [line.strip().lower() for line in (out.stdout.split("=" * 72)[-2:][0] + out.stderr).splitlines()]


@pytest.mark.parametrize("kind", CASES)
def test_misbehaving_target(kind: str, tmp_path: Path) -> None:
    code, pattern = CASES[kind]
    with target(kind) as url:
        out = run_against(url, tmp_path, OVERLAPPED.get(kind))
    assert "Traceback" not in out.output, out.output[-3000:]
    for name in REPORTS:
        assert (out.report_dir / name).is_file(), f"{name} not written:\n{out.output[-2000:]}"
    assert out.code == code, out.output[-3000:]
    named = [line for line in summary_lines(out) if re.search(pattern.lower(), line)]
    assert named, f"no line matches {pattern!r}:\n{out.output[-3000:]}"
    doc = out.doc
    if code == 3:
        assert doc["unreachable"], "conformance.json must say the target was unreachable"
    else:
        assert doc["verdict"] != "conformant" and not doc.get("unreachable")
    if kind in STREAM_FINDINGS:
        message = next(r["message"] for r in doc["results"] if r["id"] == "STRM-015")
        assert re.search(STREAM_FINDINGS[kind], message), message


def test_an_endless_stream_read_one_at_a_time_is_cut_the_same(tmp_path: Path) -> None:
    # the run above overlaps its streams (a pool reads them); the default, one request at a time, reads the
    # stream in the test's own thread: STRM-015's request alone, cut the same way
    with target("endless_sse") as url:
        out = run_against(url, tmp_path, ["--only", "STRM-015"])
    assert out.code == 1, out.output[-3000:]
    assert any(re.search(CASES["endless_sse"][1].lower(), line) for line in summary_lines(out)), out.output
    message = next(r["message"] for r in out.doc["results"] if r["id"] == "STRM-015")
    assert re.search(STREAM_FINDINGS["endless_sse"], message), message


def test_unresolvable_plain_http_is_a_usage_error_first(tmp_path: Path) -> None:
    # the key is never sent over plain http to a non-loopback host: that is refused before any lookup
    out = run_cli(["run", "--base-url", misbehaving.UNRESOLVABLE_URL], tmp_path / "reports",
                  env={"SGP_API_KEY": KEY}, timeout=HARD_TIMEOUT)
    assert out.code == 2 and "Traceback" not in out.output
    assert "--allow-insecure-http" in out.stderr


def test_servers_stop_by_themselves() -> None:
    # a forgotten server cannot outlive its lifetime, so it cannot hang the test run
    server = misbehaving.serve("never_answer", lifetime=0.3)
    server._thread.join(5)
    assert not server._thread.is_alive()
