"""Precision and recall over many seeds: no false alarm on correct servers, no miss on broken ones.

    python scripts/precision.py [--runs 20] [--first-seed 1] [--profiles sgp,openai] [--jobs 2]
                                [--depth standard] [--max-examples N] [--no-controls]
                                [--recall VARIANT,...]

Precision: for `--runs` consecutive seeds in each profile, `sgp-conformance run --seed S --fail-on should`
against the embedded reference server (each run its own process), and against every negative control of
tests/mutants/ (correct servers that read an open point of the contract another way; the controls'
runs share one process per profile and seed batch, as the mutation matrix does). A run passes when the
suite reports nothing but what the target is allowed to show: nothing at all for the reference server, a
control's own SHOULD/INFO findings for a control (its `allowed`), with the exit code that follows.

Recall (`--recall`): the named single-fault variants of tests/mutants/, run over the same seeds at the
depth given; a run passes when the variant's requirement is reported (fail, or observed for INFO).

Prints one row per run and a final `N passed, M failed` line. Exit status: 0 when every run passed.
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

ROOT = Path(__file__).resolve().parent.parent
# the package of variants; `python tests/mutants run-many ...` runs its __main__
MUTANTS_DIR = ROOT / "tests" / "mutants"
BAD = ("fail", "error", "stale", "observed")


@dataclass
class Run:
    target: str
    seed: int
    profile: str
    code: int = -1
    seconds: float = 0.0
    requests: int = 0
    findings: list[str] = field(default_factory=list)
    problem: str = ""
    # what the target may show (a control's open point) or must show (a variant's requirement)
    allowed: frozenset[str] = frozenset()
    expected_code: int = 0
    wanted: str | None = None

    @property
    def passed(self) -> bool:
        if self.problem:
            return False
        found = {f.split(":")[0] for f in self.findings}
        if self.wanted is not None:
            return self.wanted in found
        return self.code == self.expected_code and found == set(self.allowed)


def _read(report_dir: Path, run: Run) -> Run:
    try:
        doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run.problem = run.problem or "no conformance.json"
        return run
    run.requests = int(doc.get("requests", {}).get("sent", 0))
    run.findings = [f"{r['id']}:{r['status']}" for r in doc.get("results", []) if r.get("status") in BAD]
    return run


def reference_run(seed: int, profile: str, root: Path, extra: list[str]) -> Run:
    report_dir = root / f"reference-{profile}-{seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}
    command = [sys.executable, "-m", "conformance.cli", "run", "--profile", profile, "--seed", str(seed),
               "--fail-on", "should", "--report-dir", str(report_dir), *extra]
    started = time.monotonic()
    # a hard limit, so a hang is reported as a failed run instead of stopping the measurement
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    except subprocess.TimeoutExpired:
        return Run("reference", seed, profile, -1, time.monotonic() - started, problem="no result within 600 s")
    run = Run("reference", seed, profile, done.returncode, time.monotonic() - started)
    if "Traceback" in done.stdout + done.stderr:
        run.problem = "traceback in the output"
    return _read(report_dir, run)


def variant_runs(names: list[str], seeds: list[int], profile: str, root: Path, extra: list[str],
                 fail_on: str) -> list[Run]:
    """Each variant (a control or a mutant of tests/mutants/) under each seed, in one process."""
    sys.path.insert(0, str(MUTANTS_DIR.parent))
    import mutants  # tests/mutants/: the variants and how to run the CLI against them

    plan = [{"label": f"{name}@{seed}", "variant": name, "profile": profile,
             "args": ["--fail-on", fail_on, "--seed", str(seed), *extra, *mutants.variant(name).run_args]}
            for name in names for seed in seeds if profile in mutants.variant(name).profiles]
    if not plan:
        return []
    work = root / f"variants-{profile}-{names[0]}"
    work.mkdir(parents=True, exist_ok=True)
    plan_file, results_file = work / "plan.json", work / "results.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(MUTANTS_DIR), "run-many", str(plan_file), str(results_file),
                           "--report-root", str(work / "reports")], capture_output=True, text=True, cwd=work,
                          timeout=3600)
    if done.returncode != 0:
        return [Run(p["variant"], int(p["label"].rsplit("@", 1)[1]), profile, problem=done.stderr[-300:])
                for p in plan]
    each = (time.monotonic() - started) / len(plan)
    runs = []
    for result in json.loads(results_file.read_text(encoding="utf-8")):
        mutant = mutants.variant(result["variant"])
        seed = int(result["label"].rsplit("@", 1)[1])
        level = mutants.catalogue.get(mutant.requirement).level_for(profile) if mutant.requirement else None
        should = {rid for rid in mutant.allowed if mutants.catalogue.get(rid).level_for(profile) == "SHOULD"}
        run = Run(result["variant"], seed, profile, result["code"], each,
                  findings=[f"{rid}:{status}" for rid, status in result["statuses"].items() if status in BAD],
                  allowed=mutant.allowed, expected_code=int(bool(should)) if fail_on == "should" else 0,
                  wanted=mutant.requirement if level is not None else None)
        if "Traceback" in result["stdout"] + result["stderr"]:
            run.problem = "traceback in the output"
        runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="consecutive seeds per profile (default 20)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--profiles", default="sgp,openai")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--depth", default="standard", choices=("smoke", "standard", "deep"))
    parser.add_argument("--max-examples", type=int, help="property-test cases per property (depth default)")
    parser.add_argument("--no-controls", action="store_true", help="the reference server only")
    parser.add_argument("--recall", default="", help="variants of tests/mutants/ to run instead, comma-separated")
    args = parser.parse_args(argv)
    extra = ["--depth", args.depth]
    if args.max_examples is not None:
        extra += ["--max-examples", str(args.max_examples)]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    started = time.monotonic()
    runs: list[Run] = []
    print(f"{'target':<28} {'seed':>6}  {'profile':<7} {'exit':>4} {'requests':>8} {'seconds':>7}  findings")

    def show(run: Run) -> None:
        runs.append(run)
        shown = ", ".join(run.findings) or run.problem or "-"
        mark = "" if run.passed else "   << FAILED"
        print(f"{run.target:<28} {run.seed:>6}  {run.profile:<7} {run.code:>4} {run.requests:>8} "
              f"{run.seconds:>7.1f}  {shown}{mark}", flush=True)

    with tempfile.TemporaryDirectory(prefix="sgp-precision-") as tmp, ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        root = Path(tmp)
        if args.recall:
            names = [n.strip() for n in args.recall.split(",") if n.strip()]
            jobs = [pool.submit(variant_runs, [name], seeds, profile, root, extra, "should")
                    for name in names for profile in profiles]
            for job in jobs:
                for run in job.result():
                    show(run)
        else:
            for run in pool.map(lambda item: reference_run(item[0], item[1], root, extra),
                                [(seed, profile) for seed in seeds for profile in profiles]):
                show(run)
            if not args.no_controls:
                sys.path.insert(0, str(MUTANTS_DIR.parent))
                import mutants

                jobs = [pool.submit(variant_runs, list(mutants.CONTROLS), seeds, profile, root, extra, "should")
                        for profile in profiles]
                for job in jobs:
                    for run in job.result():
                        show(run)
    passed = sum(run.passed for run in runs)
    failed = len(runs) - passed
    print(f"seeds {seeds[0]}..{seeds[-1]}, profiles {', '.join(profiles)}, depth {args.depth}: "
          f"{sum(r.requests for r in runs)} requests in {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
