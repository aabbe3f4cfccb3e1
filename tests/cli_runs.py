"""Running `sgp-conformance` as a user does: a subprocess, its output, and the results it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "conformance.cli"]
# the key of the reference servers the tests start (conftest.reference_server)
REFERENCE_KEY = "sk-reference-test-key-7f3a9c"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.report_dir / "conformance.json").read_text(encoding="utf-8"))

    def status(self, req_id: str) -> str | None:
        return next((r["status"] for r in self.doc["results"] if r["id"] == req_id), None)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(args: list[str], report_dir: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> Outcome:
    """`sgp-conformance ARGS`; with report_dir, `run` writes there. The test's environment is clean of SGP_*."""
    full = [*CLI, *args]
    if report_dir is not None:
        full += ["--report-dir", str(report_dir)]
    base = {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}
    done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})},
                          cwd=report_dir.parent if report_dir is not None else None)
    return Outcome(done.returncode, done.stdout, done.stderr, report_dir or Path("."))
