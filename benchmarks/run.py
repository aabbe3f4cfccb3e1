"""Benchmarks of sgp-conformance against the reference server on this machine; prints figures.

    python benchmarks/run.py [--cases 200] [--latency-ms 200] [--concurrency 8]

1. the standard suite's wall time against the embedded server (goal: at most 20 s on 2 cores);
2. property-test cases per second: our suite (PROP-001 only) against `st run` (the schemathesis CLI) on
   the same OpenAPI document and server (goal: at least 3x), and against a plain httpx loop sending the
   same number of generated bodies (the limit); then the same after start-up (each tool's run of one
   case subtracted);
3. a deep run (`--depth deep`: 300 random cases per property and the whole coverage phase) against the
   embedded server: wall time and requests, and that time over what the plain httpx loop of 2. needs for
   as many requests (goal: at most 3x);
4. a slow target (`serve --latency-ms 200`): wall time against the ideal, requests x latency / concurrency
   (goal: at most 1.5x + 1 s);
5. the number of requests of the smoke profile (goal: at most 30);
then the three ratios of 2., 3. and 4. on one line, all from this run.
Timings are of whole commands, start-up included, as a user meets them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(latency_ms: int = 0):
    port = free_port()
    proc = subprocess.Popen([str(BIN / "sgp-conformance"), "serve", "--port", str(port), "--api-key", KEY,
                             "--latency-ms", str(latency_ms)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def timed(cmd: list[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900,
                          cwd=cwd)
    return time.perf_counter() - started, done


def suite(args: list[str], report_dir: Path, url: str | None = None) -> tuple[float, dict[str, Any]]:
    cmd = [str(BIN / "sgp-conformance"), "run", "--report-dir", str(report_dir), *args]
    if url:
        cmd += ["--base-url", url]
    seconds, done = timed(cmd, {"SGP_API_KEY": KEY} if url else None)
    doc = json.loads((report_dir / "conformance.json").read_text())
    if done.returncode != 0:
        print(f"  (run exited {done.returncode}: {doc['verdict']}, seed {doc['run'].get('seed')})")
        for result in doc["results"]:
            if result["status"] in ("fail", "error"):
                print(f"    {result['id']} {result['level']} {result['status']}: {result.get('message', '')[:300]}")
    return seconds, doc


def generated_bodies(n: int) -> list[dict[str, Any]]:
    from hypothesis import HealthCheck, given, seed, settings
    from schemathesis import GenerationMode
    from schemathesis.openapi import from_dict

    from conformance.suite.generation import drawing_document

    schema = from_dict(drawing_document("sgp"))
    op = next(o.ok() for o in schema.get_all_operations())
    bodies: list[dict[str, Any]] = []

    @seed(1)
    @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(GenerationMode.POSITIVE))
    def collect(case: Any) -> None:
        if isinstance(case.body, dict):
            bodies.append({**case.body, "model": "openai/gpt-4o-mini", "max_tokens": 16, "stream": False})

    collect()
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sgp-bench-"))
    # Hypothesis, generating bodies in this process, would otherwise keep .hypothesis/ in the working directory
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(work / "hypothesis"))
    print(f"sgp-conformance benchmarks ({os.cpu_count()} cores, python {sys.version.split()[0]})")

    seconds, doc = suite([], work / "standard")
    print(f"1. standard suite, embedded server: {seconds:.1f} s wall, {doc['requests']['sent']} requests "
          f"(goal <= 20 s)")

    with server() as url:
        def ours(cases: int, name: str) -> tuple[float, int]:
            seconds, doc = suite(["-k", "PROP-001", "--max-examples", str(cases), "--max-requests", "100000"],
                                 work / name, url)
            return seconds, int(doc["requests"]["sent"])

        # the document our cases are drawn from (the generation variant, no security scheme: each tool sends
        # the key itself), for `st run` too
        from conformance.suite.generation import drawing_document

        spec = work / "openapi.json"
        spec.write_text(json.dumps(drawing_document("sgp")))
        st = shutil.which("st", path=str(BIN)) or "st"
        # `st run` writes crash files under .schemathesis/ of its working directory: it runs in the
        # temporary directory, with that cache turned off by its config file
        config = work / "schemathesis.toml"
        config.write_text("[cache]\nenabled = false\n")

        def st_run(cases: int) -> tuple[float, int, int]:
            seconds, done = timed([st, "--config-file", str(config), "run", str(spec), "--url", url,
                                   "-n", str(cases), "--mode", "positive", "-H", f"x-api-key: {KEY}",
                                   "--checks", "not_a_server_error", "--phases", "fuzzing",
                                   "--report-dir", str(work / "st")], cwd=work)
            # its summary says "N generated, N passed"
            found = re.search(r"(\d+) generated", done.stdout)
            return seconds, int(found.group(1)) if found else cases, done.returncode

        ours_s, ours_cases = ours(opts.cases, "prop")
        st_s, st_cases, st_exit = st_run(opts.cases)
        # the same with one case each: the start-up, which the steady rate leaves out
        ours_1s, ours_1 = ours(1, "prop-1")
        st_1s, st_1, _ = st_run(1)
        bodies = generated_bodies(opts.cases)
        started = time.perf_counter()
        with httpx.Client(headers={"x-api-key": KEY}) as client:
            for body in bodies:
                client.post(f"{url}/v4/beta/chat/completions", json=body)
        loop_s = time.perf_counter() - started
    ours_rate, st_rate, loop_rate = ours_cases / ours_s, st_cases / st_s, len(bodies) / loop_s
    print(f"2. property cases/s: sgp-conformance {ours_rate:.0f} ({ours_cases} in {ours_s:.1f} s), "
          f"st run {st_rate:.0f} ({st_cases} in {st_s:.1f} s, exit {st_exit}), "
          f"plain httpx loop {loop_rate:.0f} ({len(bodies)} in {loop_s:.1f} s); "
          f"ratio to st run {ours_rate / st_rate:.2f}x (goal >= 3x), {ours_rate / loop_rate:.0%} of the loop")
    ours_steady = (ours_cases - ours_1) / max(ours_s - ours_1s, 1e-9)
    st_steady = (st_cases - st_1) / max(st_s - st_1s, 1e-9)
    print(f"   after start-up (sgp-conformance {ours_1s:.1f} s, st run {st_1s:.1f} s): sgp-conformance "
          f"{ours_steady:.0f}/s, st run {st_steady:.0f}/s, ratio {ours_steady / st_steady:.2f}x")

    deep_s, deep = suite(["--depth", "deep"], work / "deep")
    # what the plain httpx loop above needs for as many requests: the floor of this machine's HTTP
    deep_sent = int(deep["requests"]["sent"])
    deep_floor = deep_sent / loop_rate
    print(f"3. deep run, embedded server: {deep_s:.1f} s wall, {deep_sent} requests, "
          f"verdict {deep['verdict']}; the httpx loop sends as many in {deep_floor:.1f} s: "
          f"{deep_s / deep_floor:.1f}x (goal <= 3x)")

    with server(opts.latency_ms) as url:
        slow_s, slow = suite(["--concurrency", str(opts.concurrency)], work / "slow", url)
    sent = slow["requests"]["sent"]
    ideal = sent * opts.latency_ms / 1000 / opts.concurrency
    print(f"4. slow target ({opts.latency_ms} ms/request, concurrency {opts.concurrency}): {slow_s:.1f} s wall "
          f"for {sent} requests; ideal {ideal:.1f} s; {slow_s / ideal:.2f}x "
          f"(goal <= 1.5x + 1 s = {1.5 * ideal + 1:.1f} s)")

    _, smoke = suite(["--depth", "smoke"], work / "smoke")
    print(f"5. smoke profile: {smoke['requests']['sent']} requests (goal <= 30)")
    # the three figures of issue 21, from this one run, side by side
    print(f"ratios: property cases/s vs st run {ours_rate / st_rate:.2f}x (goal >= 3x) | deep run vs the httpx "
          f"loop {deep_s / deep_floor:.1f}x (goal <= 3x) | slow target vs ideal {slow_s / ideal:.2f}x "
          f"(goal <= 1.5x + 1 s: {(slow_s - 1) / ideal:.2f}x after 1 s)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
