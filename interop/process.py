"""Servers as child processes: a free loopback port, readiness polling, and a stop by PID.

Each server starts in a session of its own, so the runner can end exactly the process tree it started
(its process group, whose id is the server's PID) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class StartError(RuntimeError):
    """The server exited or never became ready; the message carries the tail of its log."""


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group led by `proc` (its own session), then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class ServerProcess:
    """One started server: its process, its log, and how to tell it is ready."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.log = log
        self._out = log.open("ab")
        self._out.write(f"\n$ {' '.join(cmd)}\n".encode())
        self._out.flush()
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, url: str, timeout: float, ready: Callable[[httpx.Response], bool] | None = None,
                   headers: dict[str, str] | None = None) -> float:
        """Poll `url` until `ready(response)` (default: any HTTP answer); the seconds it took."""
        deadline = self.started + timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise StartError(f"{self.name} exited with {self.proc.returncode} before it was ready "
                                     f"(log {self.log}):\n{tail(self.log)}")
                try:
                    response = client.get(url, headers=headers)
                    if ready is None or ready(response):
                        return time.monotonic() - self.started
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise StartError(f"{self.name} not ready after {timeout:.0f} s at {url} "
                                     f"(log {self.log}):\n{tail(self.log)}")
                time.sleep(0.5)

    def stop(self) -> None:
        try:
            stop_group(self.proc)
        finally:
            self._out.close()
