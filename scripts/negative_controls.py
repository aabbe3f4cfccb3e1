"""False alarms on correct servers: the independent negative controls of issue 19 over many seeds.

    python scripts/negative_controls.py [--standard 20] [--deep 5] [--profiles sgp,openai]
                                        [--stances stated,accepting]

Runs `sgp-conformance run` against tests/independent_server.py, a server written independently of the
reference server: its STATED stance (enforces exactly what the contract states) at `--fail-on should`, its
ACCEPTING stance (takes the other side of every open point, nulls included) at `--fail-on must`, each on
seeds 1..N at standard depth and 1..M at deep depth, in each profile. A run is a false alarm when it exits
non-zero or a requirement at the gating level fails. Prints one line per run and the totals. Not part of
the test suite: deep runs send about a thousand requests each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-independent-control-5f1e"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--standard", type=int, default=20)
    parser.add_argument("--deep", type=int, default=5)
    parser.add_argument("--profiles", default="sgp,openai")
    parser.add_argument("--stances", default="stated,accepting")
    parser.add_argument("--seeds", default=None, help="only these seeds (comma-separated), at each depth run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from independent_server import IndependentServer, Stance

    from conformance.contract.profiles import PROFILES
    from conformance.server import start_server

    runs = failed = 0
    lines = []
    for profile in args.profiles.split(","):
        for stance, fail_on in ((Stance.STATED, "should"), (Stance.ACCEPTING, "must")):
            if stance.value not in args.stances.split(","):
                continue
            with start_server(IndependentServer(profile, stance, keys=(KEY,)), profile=PROFILES[profile]) as server:
                for depth, count in (("standard", args.standard), ("deep", args.deep)):
                    chosen = [int(s) for s in args.seeds.split(",")] if args.seeds else range(1, count + 1)
                    for seed in [s for s in chosen if s <= count]:
                        with tempfile.TemporaryDirectory() as tmp:
                            done = subprocess.run(
                                [sys.executable, "-m", "conformance.cli", "run", "--base-url", server.base_url,
                                 "--profile", profile, "--seed", str(seed), "--depth", depth, "--fail-on", fail_on,
                                 "--report-dir", tmp], capture_output=True, text=True, timeout=1800,
                                env={**os.environ, "SGP_API_KEY": KEY}, cwd=tmp)
                            try:
                                doc = json.loads((Path(tmp) / "conformance.json").read_text(encoding="utf-8"))
                            except (OSError, ValueError):
                                doc = {"results": []}
                        levels = {"MUST"} if fail_on == "must" else {"MUST", "SHOULD"}
                        bad = [f"{r['id']}: {r['message'][:120]}" for r in doc["results"]
                               if r["status"] in ("fail", "error") and r["level"] in levels]
                        runs += 1
                        alarm = done.returncode != 0 or bool(bad)
                        failed += alarm
                        line = (f"{profile:<6} {stance.value:<9} --fail-on {fail_on:<6} {depth:<8} seed {seed:>2}: "
                                f"exit {done.returncode}{' FALSE ALARM ' + '; '.join(bad) if alarm else ''}")
                        lines.append(line)
                        print(line, flush=True)
    print(f"{runs} runs, {failed} false alarm(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
