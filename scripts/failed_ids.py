"""One fault, one failure: the requirements each single-fault mutant makes fail, measured once.

    python scripts/failed_ids.py [--seed 1] [--max-examples 1] [--out tests/mutants/failed_ids.json]

Runs `sgp-conformance run` (standard depth, the seed given, `--fail-on should`) against every mutant of
tests/mutants/ in its first profile, all in one interpreter (`python tests/mutants run-many`, as the mutation
matrix does), and records for each the IDs reported `fail` or `error`, with its own requirement when that
is observed (an INFO requirement's failure), and apart the other observations (open points the fault also
shows: observed, never a failure). Writes them to `--out`, which
`python tests/mutants table` turns into the "failed ids per mutant" table of docs/kill-table.md, and prints
the mean and every mutant that fails more than its own requirement. Not part of the test suite: it costs a
full run per mutant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS_DIR = ROOT / "tests" / "mutants"
FAILED = ("fail", "error")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=1)
    parser.add_argument("--out", type=Path, default=MUTANTS_DIR / "failed_ids.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import mutants

    plan = []
    for name, mutant in mutants.MUTANTS.items():
        extra = ["--seed", str(args.seed), "--fail-on", "should"]
        if not any(a == "--max-examples" for a in mutant.run_args):
            extra += ["--max-examples", str(args.max_examples)]
        plan.append({"label": "failed-ids", "variant": name, "profile": mutant.profiles[0],
                     "args": [*extra, *mutant.run_args]})
    with tempfile.TemporaryDirectory() as tmp:
        plan_file, results_file = Path(tmp) / "plan.json", Path(tmp) / "results.json"
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
        subprocess.run([sys.executable, str(MUTANTS_DIR), "run-many", str(plan_file), str(results_file),
                        "--report-root", str(Path(tmp) / "reports")], check=True, timeout=7200)
        results = json.loads(results_file.read_text(encoding="utf-8"))
    table = {}
    for result in results:
        own = mutants.MUTANTS[result["variant"]].requirement
        statuses = result["statuses"]
        failed = sorted(rid for rid, status in statuses.items()
                        if status in FAILED or (rid == own and status == "observed"))
        observed = sorted(rid for rid, status in statuses.items() if status == "observed" and rid != own)
        table[result["variant"]] = {"profile": result["profile"], "failed": failed, "observed": observed}
    args.out.write_text(json.dumps({"seed": args.seed, "max_examples": args.max_examples, "mutants": table},
                                   indent=1) + "\n", encoding="utf-8")
    counts = [len(v["failed"]) for v in table.values()]
    mean = sum(counts) / len(counts)
    exact = sum(v["failed"] == [mutants.MUTANTS[n].requirement] for n, v in table.items())
    print(f"{len(table)} mutants: mean {mean:.2f} failed ids per mutant; {exact} fail exactly their own requirement")
    for name, entry in table.items():
        own = mutants.MUTANTS[name].requirement
        if entry["failed"] != [own]:
            print(f"  {name} ({own}): {', '.join(entry['failed']) or 'nothing failed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
