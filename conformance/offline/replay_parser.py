"""The `replay` command's arguments, apart from conformance.offline.replay: building the CLI's parser (for
`--help`, `list`, `diff` ...) does not import the checks and the transport the replay itself needs."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "replay", help="send a report's failing exchanges again and say whether each failure still reproduces",
        description="Send the exchanges behind a report's failures again, with their exact bodies, and judge each "
                    "with the check its requirement applies. The key is read from SGP_API_KEY (never stored in "
                    "the report). Example: sgp-conformance replay reports/ --failed --only RESP-001",
        epilog="exit codes:\n  0  no failure reproduces\n  1  at least one failure still reproduces\n"
               "  2  usage error (one line)\n  3  the target did not answer",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", nargs="?", default="reports", metavar="REPORT_DIR|conformance.json",
                   help="the report folder or its conformance.json (default: reports)")
    p.add_argument("--id", action="append", metavar="ID",
                   help="only this requirement's exchanges, repeatable or comma-separated, e.g. --id RESP-001 "
                        "(default: every failure's)")
    p.add_argument("--only", metavar="IDS",
                   help="IDs or area prefixes, comma-separated and case-sensitive, e.g. --only VAL-005,AUTH "
                        "(default: every failure's)")
    p.add_argument("--failed", action="store_true",
                   help="only the exchanges that broke the rule, not the ones shown beside them (default: all "
                        "evidence exchanges)")
    p.add_argument("--base-url", metavar="URL",
                   help="send to this target instead of the report's, e.g. http://localhost:8000 (default: the "
                        "report's target; a fresh embedded reference server where the run used one)")
    return p
