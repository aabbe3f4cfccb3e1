"""`python -m conformance.cli ARGS` as a process of its own, forked from an interpreter that has already imported
what a run imports (a zygote, as Android starts its apps): the tests' real-CLI runs (`cli_runs.run_cli`) without
paying the imports each time.

A fresh interpreter spends about 1.5 s of a smoke run's 3 s of CPU importing pytest, httpx, schemathesis,
hypothesis and the openai SDK; the tests start some thirty such runs. A child of the zygote is still a process
of its own: its own pid, exit status (a signal's too), file descriptors, working directory, environment and
`sys.argv`, standard streams rebuilt on the descriptors it was given, signal handlers as a fresh interpreter
has them, and the CLI's own end (`console_main`: atexit handlers, then `os._exit`). What it does not repeat is
the import itself: a fresh interpreter's start stays with the tests that start one (signals, closed pipes,
the live progress line, the installed wheel, the CI recipe's script, the pytest plugin in a user's project).
`SGP_TESTS_FRESH_CLI=1` makes every run a fresh interpreter again.

One zygote per test process, started on first use (`shared`), ended with that process's session
(conftest) or, at the latest, when it finds that process gone. It is single-threaded, so a fork copies nothing
half-done. Per run it forks a keeper, which forks the run and reports its pid, then its exit status, over the
run's connection; the zygote reaps its keepers as they end, so the runs' CPU time is counted with the tests'.

    python tests/cli_zygote.py SOCKET_PATH        # the zygote (started by Zygote.shared)
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# what a run imports, imported once here before any fork (the suite's own test modules are pytest's to import)
PRELOAD = ("conformance.cli", "conformance.suite.plugin", "conformance.suite.judge", "conformance.suite.generation",
           "conformance.suite.progress", "conformance.report.results", "conformance.report.summary",
           "conformance.report.census", "conformance.checks.response", "conformance.audit.sdk_clients",
           "conformance.contract.stated_rules", "conformance.server.embedded", "conformance.offline.replay_parser",
           "conformance.compare.command", "conformance.proxy.cli", "pytest", "_pytest.junitxml",
           "pytest_html.plugin", "pytest_metadata.plugin", "xdist.plugin", "schemathesis",
           "schemathesis.openapi.loaders", "schemathesis.specs.openapi.schemas", "hypothesis", "jsonschema",
           "requests", "werkzeug", "anyio", "uvicorn.protocols.http.h11_impl", "uvicorn.lifespan.on",
           "uvicorn.loops.auto", "openai.types.chat", "openai.lib.streaming.chat", "openai._models")
# the zygote checks this often whether the test process that started it is still there
IDLE_CHECK_S = 1.0
# how long a stop waits for the runs still going (a hang guard only: a run ends in seconds)
STOP_S = 60


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request: a JSON line (argv, env, cwd) and the three descriptors of the run's standard streams."""
    data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 20)
        if not more:
            raise EOFError("the request ended early")
        data += more
    return json.loads(data), list(fds)


def _std_streams() -> None:
    """sys.stdin/stdout/stderr on descriptors 0-2, built as the interpreter builds them at its start: the
    encoding of this interpreter, line-buffered on a terminal (stderr always), written through under
    PYTHONUNBUFFERED."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = sys.stdout.encoding if sys.stdout is not None else "utf-8"

    def writer(fd: int, errors: str, line: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w", closefd=False)
        buffer: Any = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffer, encoding=encoding, errors=errors, line_buffering=line,
                                write_through=unbuffered)

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding=encoding)
    sys.stdout = sys.__stdout__ = writer(1, "strict", os.isatty(1))
    sys.stderr = sys.__stderr__ = writer(2, "backslashreplace", True)


def _run(request: dict[str, Any], fds: list[int]) -> None:
    """In the run's process: take the request's streams, directory, environment and arguments, then run the
    CLI as `python -m conformance.cli` does. Never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        # as the interpreter sets them at its start: Ctrl-C raises KeyboardInterrupt, a closed pipe is EPIPE
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # `python -m` puts the working directory first on the path, and the module's file in argv[0]
        sys.path[0] = os.getcwd()
        from conformance import cli

        sys.argv = [str(cli.__file__), *request["argv"]]
        _std_streams()
        # what `python -m conformance.cli` and the console script both run; it ends the process itself
        cli.console_main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        # as the interpreter ends on an uncaught KeyboardInterrupt: killed by SIGINT
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
    _flush()
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _keep(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the keeper: fork the run, say its pid, wait for it, say how it ended. Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        connection.close()
        _run(request, fds)
    for fd in fds:
        os.close(fd)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    connection.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    os._exit(0)


def serve(path: str) -> None:
    """The zygote: import what a run imports, then fork a keeper per connection until the test process that
    started it is gone."""
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    gc.collect()
    # what the forks share stays shared: the collector of a run does not touch (and copy) these pages
    gc.freeze()
    parent = os.getppid()

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(8)
            listener.settimeout(IDLE_CHECK_S)
            print("ready", flush=True)
            while os.getppid() == parent:
                _reap(block=False)
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.settimeout(None)
                    request, fds = _receive(connection)
                    if os.fork() == 0:
                        try:
                            listener.close()
                            _keep(connection, request, fds)
                        finally:
                            # a keeper never goes back to the zygote's loop, whatever happened
                            os._exit(1)
                    for fd in fds:
                        os.close(fd)
    finally:
        # the keepers (and through them the runs) are waited for, so that their CPU time is counted where the
        # test process's is (`time`, resource.getrusage): a child the system reaps is counted nowhere
        _reap(block=True)


def _reap(block: bool) -> None:
    """Wait for the keepers that have ended (with `block`, for every keeper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


_SHARED: list[Zygote] = []


def shared() -> Zygote:
    """This process's zygote, started on first use."""
    if not _SHARED:
        _SHARED.append(Zygote())
    return _SHARED[0]


def stop_shared() -> None:
    """End this process's zygote, if it started one (the runs' CPU time is then counted with this process's)."""
    while _SHARED:
        _SHARED.pop().stop()


class Zygote:
    """The client side: `run(argv, env, cwd, timeout)` is `subprocess.run([python, -m, conformance.cli, *argv],
    capture_output=True, text=True, ...)` through the zygote."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="sgp-zygote-"))
        self.path = str(self.directory / "socket")
        base = {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}
        self.process = subprocess.Popen([sys.executable, __file__, self.path], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, env=base)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the CLI zygote did not start (exit {self.process.wait()})")
        atexit.register(self.stop)

    def stop(self) -> None:
        """End the zygote once the keepers of its runs have ended (SIGTERM: it waits for them first)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)

    def run(self, argv: list[str], env: dict[str, str], cwd: Path | None,
            timeout: float) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "conformance.cli", *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                open(os.devnull, "rb") as null, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.path)
            request = {"argv": argv, "env": env, "cwd": str(cwd or Path.cwd())}
            socket.send_fds(connection, [json.dumps(request).encode() + b"\n"],
                            [null.fileno(), out.fileno(), err.fileno()])
            answers = _Answers(connection)
            pid = answers.next(None)["pid"]
            try:
                ended = answers.next(time.monotonic() + timeout)
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                answers.next(None)
                raise subprocess.TimeoutExpired(command, timeout, _text(out), _text(err)) from None
            return subprocess.CompletedProcess(command, ended["returncode"], _text(out), _text(err))


class _Answers:
    """The keeper's JSON lines on a run's connection."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.pending = b""

    def next(self, deadline: float | None) -> dict[str, Any]:
        while b"\n" not in self.pending:
            self.connection.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.001))
            data = self.connection.recv(4096)
            if not data:
                raise RuntimeError("the CLI zygote's keeper ended without an answer")
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer


def _text(file: Any) -> str:
    """What a run wrote to one of its streams, decoded as `subprocess.run(text=True)` decodes it."""
    file.seek(0)
    wrapper = io.TextIOWrapper(file, encoding=None, newline=None)
    try:
        return wrapper.read()
    finally:
        wrapper.detach()


if __name__ == "__main__":
    serve(sys.argv[1])
