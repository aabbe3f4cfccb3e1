"""The command line: `python tests/mutants serve|table|list|run-many ...`."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from conformance.contract.profiles import PROFILES

from .core import ACCOUNT, KEY
from .registry import CONTROLS, MUTANTS, variant
from .running import Invocation, run_many
from .serving import settings_for
from .table import kill_table


def _serve(name: str, profile: str, port: int) -> None:
    import uvicorn

    from conformance.server.app import create_app

    settings = settings_for(profile)
    mutant = variant(name)
    print(f"mutant {name} ({mutant.fault}) on {PROFILES[profile].base_url_template.format(host='127.0.0.1', port=port)}"
          f", key {KEY}, account {ACCOUNT}")
    uvicorn.run(mutant.wrap(create_app(settings), settings), host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/mutants")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve one variant on loopback")
    serve.add_argument("name", choices=[*MUTANTS, *CONTROLS])
    serve.add_argument("--profile", choices=list(PROFILES), default=None)
    serve.add_argument("--port", type=int, default=8080)
    sub.add_parser("table", help="print the kill table (docs/kill-table.md)")
    sub.add_parser("list", help="print the variant names")
    many = sub.add_parser("run-many", help="run the suite against variants: a JSON plan in, JSON results out")
    many.add_argument("plan", help="JSON list of {label, variant, profile, args}")
    many.add_argument("results", help="where the JSON results are written")
    many.add_argument("--report-root", required=True)
    many.add_argument("--fresh", action="store_true", help="one interpreter per run")
    args = parser.parse_args(argv)
    if args.command == "run-many":
        plan = [Invocation.from_dict(i) for i in json.loads(Path(args.plan).read_text(encoding="utf-8"))]
        done = Path(args.results)
        try:
            results = run_many(plan, Path(args.report_root), fresh=args.fresh)
        except BaseException:
            # a reader waiting for the results learns at once that none will come, and why
            done.with_name(done.name + ".failed").write_text(traceback.format_exc(), encoding="utf-8")
            raise
        # whole or not at all: a reader may be polling for the file
        partial = done.with_name(done.name + ".part")
        partial.write_text(json.dumps(results, indent=1), encoding="utf-8")
        partial.replace(done)
    elif args.command == "table":
        sys.stdout.write(kill_table())
    elif args.command == "list":
        print("\n".join([*MUTANTS, *CONTROLS]))
    else:
        _serve(args.name, args.profile or variant(args.name).profiles[0], args.port)
    return 0
