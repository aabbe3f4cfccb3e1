"""Running the suite against many variants in one process (or, with `fresh`, one process each)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.contract.profiles import PROFILES

from .core import ACCOUNT, KEY, MODEL
from .serving import MutantHost, base_url


@dataclass(frozen=True)
class Invocation:
    """One `sgp-conformance run` against one variant: `label` names it in results, `args` are extra flags."""

    label: str
    variant: str
    profile: str
    args: tuple[str, ...]


def run_args(variant_name: str, profile: str, server_base: str, report_dir: Path | None = None) -> list[str]:
    """The flags that point `sgp-conformance run` at a variant served by a `MutantHost`."""
    args = ["run", "--base-url", base_url(server_base, variant_name, profile), "--profile", profile,
            "--model", MODEL]
    if PROFILES[profile].account_header:
        args += ["--account-id", ACCOUNT]
    return args + (["--report-dir", str(report_dir)] if report_dir is not None else [])


def run_many(invocations: list[Invocation], report_root: Path, fresh: bool = False) -> list[dict[str, Any]]:
    """Run each invocation through the CLI's own entry point against in-process servers.

    A fresh interpreter per run costs about 1.5 s of imports, three times the run itself; the suite keeps
    no state between runs (the CLI restores the environment, every run builds its own client and
    collector), so by default the runs share this interpreter. With `fresh`, each is its own
    `python -m conformance.cli` process: generated cases depend on the interpreter's history (what was
    imported and allocated before), so runs whose verdict rests on generation get the history a user's
    run has. Each result has the exit code, the output and the statuses conformance.json reported.
    """
    import contextlib
    import gc
    import io
    import os
    import subprocess

    from conformance import cli
    from conformance.server.runner import start_server

    hosts = {p: start_server(MutantHost(p), profile=PROFILES[p]) for p in sorted({i.profile for i in invocations})}
    os.environ["SGP_API_KEY"] = KEY  # the key reaches the CLI from the environment, as the README says
    results: list[dict[str, Any]] = []
    try:
        for number, invocation in enumerate(invocations):
            report_dir = report_root / f"{number:03d}-{invocation.variant}-{invocation.profile}"
            argv = [*run_args(invocation.variant, invocation.profile, hosts[invocation.profile].base_url,
                              report_dir), *invocation.args]
            if fresh:
                done = subprocess.run([sys.executable, "-m", "conformance.cli", *argv], capture_output=True,
                                      text=True, timeout=300)
                code, stdout, stderr = done.returncode, done.stdout, done.stderr
            else:
                # what earlier runs left behind is old: keep the collector (pytest calls it at every end of
                # session) from walking it again on every run
                gc.freeze()
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        code = cli.main(argv)
                    except SystemExit as exc:  # argparse's own exits: reported as the code, not lost
                        code = exc.code if isinstance(exc.code, int) else 2
                stdout, stderr = out.getvalue(), err.getvalue()
            try:
                doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
                statuses = {r["id"]: r["status"] for r in doc["results"]}
            except (OSError, ValueError, KeyError):
                statuses = {}
            results.append({"label": invocation.label, "variant": invocation.variant, "profile": invocation.profile,
                            "args": list(invocation.args), "code": code, "stdout": stdout,
                            "stderr": stderr, "statuses": statuses,
                            "reports": sorted(p.name for p in report_dir.glob("*")) if report_dir.is_dir() else []})
    finally:
        for host in hosts.values():
            host.stop()
    return results
