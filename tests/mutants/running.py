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

    def as_dict(self) -> dict[str, Any]:
        """The JSON form `run-many` reads a plan in, and the first keys of each result it writes."""
        return {"label": self.label, "variant": self.variant, "profile": self.profile, "args": list(self.args)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invocation:
        """The invocation of a plan entry, or the one a result was run for."""
        return cls(data["label"], data["variant"], data["profile"], tuple(data["args"]))


def run_args(variant_name: str, profile: str, server_base: str, report_dir: Path | None = None) -> list[str]:
    """The flags that point `sgp-conformance run` at a variant served by a `MutantHost`."""
    args = ["run", "--base-url", base_url(server_base, variant_name, profile), "--profile", profile,
            "--model", MODEL]
    if PROFILES[profile].account_header:
        args += ["--account-id", ACCOUNT]
    return args + (["--report-dir", str(report_dir)] if report_dir is not None else [])


class Hosts:
    """One `MutantHost` server per profile, started when first asked for and kept until `stop`: every run
    of a test session (or of one `run-many`) reaches its variants through the same servers."""

    def __init__(self) -> None:
        self._running: dict[str, Any] = {}

    def base_url(self, profile: str) -> str:
        if profile not in self._running:
            from conformance.server.runner import start_server

            self._running[profile] = start_server(MutantHost(profile), profile=PROFILES[profile])
        return str(self._running[profile].base_url)

    def stop(self) -> None:
        from conformance.server.runner import stop_all

        stop_all(self._running.values())
        self._running.clear()


def run_inprocess(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`sgp-conformance ARGV` in this interpreter: (exit code, stdout, stderr); see cli_runs.in_process."""
    from cli_runs import in_process

    return in_process(argv, env)


def run_many(invocations: list[Invocation], report_root: Path, fresh: bool = False,
             hosts: Hosts | None = None) -> list[dict[str, Any]]:
    """Run each invocation against in-process servers (`hosts`, else servers started for this call), in
    this interpreter (`run_inprocess`) or, with `fresh`, each as its own `python -m conformance.cli`
    process. Each result has the exit code, the output and the statuses conformance.json reported."""
    import subprocess

    own = hosts is None
    hosts = Hosts() if hosts is None else hosts
    env = {"SGP_API_KEY": KEY}  # the key reaches the CLI from the environment, as the README says
    results: list[dict[str, Any]] = []
    try:
        for number, invocation in enumerate(invocations):
            report_dir = report_root / f"{number:03d}-{invocation.variant}-{invocation.profile}"
            argv = [*run_args(invocation.variant, invocation.profile, hosts.base_url(invocation.profile),
                              report_dir), *invocation.args]
            if fresh:
                import os

                done = subprocess.run([sys.executable, "-m", "conformance.cli", *argv], capture_output=True,
                                      text=True, timeout=600, env={**os.environ, **env})
                code, stdout, stderr = done.returncode, done.stdout, done.stderr
            else:
                code, stdout, stderr = run_inprocess(argv, env)
            try:
                doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
                statuses = {r["id"]: r["status"] for r in doc["results"]}
            except (OSError, ValueError, KeyError):
                statuses = {}
            results.append({**invocation.as_dict(), "code": code, "stdout": stdout,
                            "stderr": stderr, "statuses": statuses,
                            "reports": sorted(p.name for p in report_dir.glob("*")) if report_dir.is_dir() else []})
    finally:
        if own:
            hosts.stop()
    return results
