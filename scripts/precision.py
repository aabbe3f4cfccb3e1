"""Precision: the suite reports no failure against the reference server, whatever the seed.

    python scripts/precision.py [--runs 20] [--first-seed 1] [--profiles sgp,openai] [--jobs 2]
                                [--depth standard] [--max-examples N]

Runs `sgp-conformance run --seed S --fail-on should` against the embedded reference server for `--runs`
consecutive seeds in each profile (so 2 x 20 runs by default), each in its own process and report
directory, and prints one row per run and a final `N passed, M failed` line. A run passes when it exits
0 at --fail-on should and no requirement of any level is fail, error or stale: the reference server
implements the contract, so any finding against it is a false positive of the suite.
Exit status: 0 when every run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BAD = ("fail", "error", "stale")


@dataclass
class Run:
    seed: int
    profile: str
    code: int = -1
    seconds: float = 0.0
    requests: int = 0
    findings: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.code == 0 and not self.findings and not self.problem


def run_once(seed: int, profile: str, root: Path, extra: list[str]) -> Run:
    report_dir = root / f"{profile}-{seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}
    command = [sys.executable, "-m", "conformance.cli", "run", "--profile", profile, "--seed", str(seed),
               "--fail-on", "should", "--report-dir", str(report_dir), *extra]
    started = time.monotonic()
    # a hard limit, so a hang is reported as a failed run instead of stopping the measurement
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    except subprocess.TimeoutExpired:
        return Run(seed, profile, -1, time.monotonic() - started, problem="no result within 600 s")
    run = Run(seed, profile, done.returncode, time.monotonic() - started)
    output = done.stdout + done.stderr
    if "Traceback" in output:
        run.problem = "traceback in the output"
    try:
        doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run.problem = run.problem or "no conformance.json"
        return run
    run.requests = int(doc.get("requests", {}).get("sent", 0))
    run.findings = [f"{r['id']}:{r['status']}" for r in doc.get("results", []) if r.get("status") in BAD]
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="consecutive seeds per profile (default 20)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--profiles", default="sgp,openai")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--depth", default="standard", choices=("smoke", "standard", "deep"))
    parser.add_argument("--max-examples", type=int, help="property-test cases per property (depth default)")
    args = parser.parse_args(argv)
    extra = ["--depth", args.depth]
    if args.max_examples is not None:
        extra += ["--max-examples", str(args.max_examples)]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    plan = [(seed, profile) for seed in range(args.first_seed, args.first_seed + args.runs) for profile in profiles]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sgp-precision-") as tmp, ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        root = Path(tmp)
        print(f"{'seed':>6}  {'profile':<7} {'exit':>4} {'requests':>8} {'seconds':>7}  findings")
        runs: list[Run] = []
        for run in pool.map(lambda item: run_once(item[0], item[1], root, extra), plan):
            runs.append(run)
            shown = ", ".join(run.findings) or run.problem or "-"
            print(f"{run.seed:>6}  {run.profile:<7} {run.code:>4} {run.requests:>8} {run.seconds:>7.1f}  {shown}",
                  flush=True)
    passed = sum(run.passed for run in runs)
    failed = len(runs) - passed
    print(f"seeds {args.first_seed}..{args.first_seed + args.runs - 1}, profiles {', '.join(profiles)}, depth "
          f"{args.depth}: {sum(r.requests for r in runs)} requests in {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
