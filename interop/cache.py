"""The cache folder of the interop recipes: venvs, node_modules, wheels, made models, logs.

Everything a recipe installs or builds lives here, outside the checkout, so a second run reuses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "SGP_INTEROP_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "sgp-conformance-interop"
# a file in each install folder that records what was installed there; a different spec reinstalls
MARKER = ".sgp-interop-installed"


class InstallError(RuntimeError):
    """An install or build step failed; the message names the log to read."""


@dataclass(frozen=True)
class Cache:
    root: Path

    @classmethod
    def from_env(cls, override: str | None = None) -> Cache:
        root = Path(override or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def path(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, name: str) -> Path:
        return self.path("logs") / name

    def venv(self, name: str) -> Path:
        return self.root / "venvs" / name


def installed(folder: Path, spec: str) -> bool:
    """Whether `folder` holds a finished install of exactly `spec`."""
    marker = folder / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == spec


def mark_installed(folder: Path, spec: str) -> None:
    (folder / MARKER).write_text(spec, encoding="utf-8")


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> None:
    """Run an install step with its output appended to `log`; raise InstallError naming the log."""
    print(f"interop: {' '.join(cmd[:6])}{' ...' if len(cmd) > 6 else ''}  (log: {log})", flush=True)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise InstallError(f"timed out after {timeout:.0f} s: {cmd[0]} (see {log})") from None
    if proc.returncode != 0:
        raise InstallError(f"exit {proc.returncode}: {' '.join(cmd[:4])} ... (see {log})")


def make_venv(folder: Path, log: Path) -> Path:
    """A venv at `folder` (created if missing) with a current pip; its python."""
    python = folder / "bin" / "python"
    if not python.exists():
        run_logged([sys.executable, "-m", "venv", str(folder)], log, timeout=300)
        run_logged([str(python), "-m", "pip", "install", "-q", "-U", "pip"], log, timeout=600)
    return python
