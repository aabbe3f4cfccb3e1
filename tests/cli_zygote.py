"""`python -m conformance.cli ARGS` as a process of its own, forked from an interpreter that has already imported
what a run imports and made one run (a zygote, as Android starts its apps): the tests' real-CLI runs
(`cli_runs.run_cli`) without paying the imports and a first run's set-up each time.

A fresh interpreter spends about 1.5 s of a smoke run's 3 s of CPU importing pytest, httpx, schemathesis,
hypothesis and the openai SDK; the tests start some thirty such runs. A child of the zygote is still a process
of its own: its own pid, exit status (a signal's too), file descriptors, working directory, environment and
`sys.argv`, standard streams rebuilt on the descriptors it was given as the interpreter builds them, signal
handlers as a fresh interpreter has them (the CLI's deferral of an early Ctrl-C too, conformance.signals), and
an interpreter's end (the CLI's own `os._exit` after the exit functions, or, with a thread still running,
threads waited for, then the exit functions). What it does not repeat is the import itself, so what a module
reads of the environment when it is imported, it read in the zygote, started with the test process's
environment (SGP_* cleared); a run whose environment sets PYTHON* variables gets a fresh interpreter
(cli_runs.run_cli). A fresh interpreter's start stays with the tests that start one (signals, closed pipes, the
live progress line, the installed wheel, the CI recipe's script, the pytest plugin in a user's project).
`TESTS_FRESH_CLI=1` in the environment makes every run a fresh interpreter again.

One zygote per test process, started on first use (`shared`), ended with that process's session
(conftest) or, at the latest, when it finds that process gone. It is single-threaded, so a fork copies nothing
half-done. Per run it forks a keeper, which forks the run and reports its pid, then its exit status, over the
run's connection; the zygote reaps its keepers as they end, so the runs' CPU time is counted with the tests'.

    python tests/cli_zygote.py SOCKET_PATH        # the zygote (started by shared())
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

from cli_runs import CLI, clean_environment, exit_code

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


# how the zygote's interpreter began, which is how a fresh one started from the same test process begins: the
# standard streams' error handlers and encoding, and whether SIGINT was ignored (kept so by Python at its start)
_START: dict[str, Any] = {}


def _note_start() -> None:
    _START.update(encoding=sys.stdout.encoding, out_errors=sys.stdout.errors,
                  sigint_ignored=signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def _std_streams() -> None:
    """sys.stdin/stdout/stderr on descriptors 0-2, built as the interpreter builds them at its start: the
    encoding and error handlers it chose, line-buffered on a terminal (stderr always), written through under
    PYTHONUNBUFFERED."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = _START["encoding"]

    def writer(fd: int, errors: str, line: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w", closefd=False)
        buffer: Any = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffer, encoding=encoding, errors=errors, line_buffering=line,
                                write_through=unbuffered)

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding=encoding, errors=_START["out_errors"])
    sys.stdout = sys.__stdout__ = writer(1, _START["out_errors"], os.isatty(1))
    sys.stderr = sys.__stderr__ = writer(2, "backslashreplace", True)


def _run(request: dict[str, Any], fds: list[int]) -> None:
    """In the run's process: take the request's streams, directory, environment and arguments, then run the
    CLI as `python -m conformance.cli` does, and end as an interpreter ends. Never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # as the interpreter sets them at its start: Ctrl-C raises KeyboardInterrupt (unless it was ignored
        # when the interpreter started), a closed pipe is EPIPE, the rest as the system has them
        signal.signal(signal.SIGINT, signal.SIG_IGN if _START["sigint_ignored"] else signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for number in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # `python -m` puts the working directory first on the path, and the module's file in argv[0]
        sys.path[0] = os.getcwd()
        from conformance import cli, signals

        sys.argv = [str(cli.__file__), *request["argv"]]
        # what importing them does in a fresh interpreter: the CLI's signal deferral (conformance.signals),
        # and xdist's copy of the path its workers start with
        if signals.is_cli_process():
            signals.defer()
        xdist_plugin = sys.modules.get("xdist.plugin")
        if xdist_plugin is not None:
            xdist_plugin._sys_path[:] = sys.path
        _std_streams()
        # what `python -m conformance.cli` and the console script both run; it ends the process itself, or
        # raises SystemExit for the interpreter to wait for its threads
        cli.console_main()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc, sys.stderr)
    except KeyboardInterrupt:
        # as the interpreter ends on an uncaught KeyboardInterrupt: its traceback, then killed by SIGINT
        import traceback

        traceback.print_exc()
        _end()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
    _end()
    os._exit(code)


def _end() -> None:
    """What the interpreter does at its end before the process exits: wait for the threads that are not
    daemons, run the exit functions, flush the standard streams."""
    import threading

    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _keep(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the keeper: fork the run, say its pid, wait for it, say how it ended. A `kill` from the client, or the
    client gone, kills the run (the keeper holds it unreaped: its pid cannot have been reused). Never
    returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        connection.close()
        _run(request, fds)
    for fd in fds:
        os.close(fd)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    ended = _wait(pid, connection)
    with contextlib.suppress(OSError):
        connection.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(ended)}).encode() + b"\n")
    os._exit(0)


def _wait(pid: int, connection: socket.socket) -> int:
    """The run's wait status, once it has ended; meanwhile a message on the connection, or its end, kills it."""
    import select

    try:
        ended: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (an old kernel): the run's end is polled for
        ended = None
    watched = [connection] if ended is None else [connection, ended]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        ready, _, _ = select.select(watched, [], [], 0.05 if ended is None else None)
        if connection in ready:
            with contextlib.suppress(OSError):
                connection.recv(64)
            os.kill(pid, signal.SIGKILL)
            watched = [w for w in watched if w is not connection]
            if ended is None:
                return os.waitpid(pid, 0)[1]


def serve(path: str) -> None:
    """The zygote: import what a run imports, then fork a keeper per connection until the test process that
    started it is gone."""
    import gc
    import importlib
    import threading

    _note_start()
    for name in PRELOAD:
        # the SDKs come with the `clients` extra: without them, a run imports nothing of theirs either
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _warm_up()
    # a fork copies one thread: nothing imported, and nothing the warm-up ran, may have left another
    assert threading.active_count() == 1, threading.enumerate()
    gc.collect()
    # what the forks share stays shared: the collector of a run does not touch (and copy) these pages
    gc.freeze()
    parent = os.getppid()

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C in a terminal reaches the whole process group: the test process handles it, and stops the zygote
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
                    _serve_one(listener, connection)
    finally:
        # the keepers (and through them the runs) are waited for, so that their CPU time is counted where the
        # test process's is (`time`, resource.getrusage): a child the system reaps is counted nowhere
        _reap(block=True)


def _warm_up() -> None:
    """One smoke run against the embedded server, its output and reports thrown away: what a run computes once
    and keeps for the process (compiled schemas and validators, the SDK's models, pytest-html's template, the
    secret forms' tables) is then computed before the forks, not again in each of them (a forked smoke run
    takes 0.5 s of CPU instead of 0.9 s). The CLI's runs leave nothing else behind them: the tests' in-process
    runs share an interpreter run after run the same way (cli_runs.in_process); what a module reads of the
    environment when it is imported, it reads here (see above), and the product reads a run's settings at the
    run, not at import (test_client_matrix holds the one that did). A warm-up that fails only leaves the forks
    to compute it themselves."""
    import shutil

    from conformance import cli

    where = tempfile.mkdtemp(prefix="sgp-zygote-warm-up-")
    saved, path = dict(os.environ), list(sys.path)
    os.environ["SGP_API_KEY"] = "sk-zygote-warm-up-0123456789abcdef"
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.suppress(Exception, SystemExit):
            cli.main(["run", "--depth", "smoke", "--report-dir", where])
    finally:
        # pytest's session puts its root on the path: a run's path is the interpreter's, as it started
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(where, ignore_errors=True)


def _serve_one(listener: socket.socket, connection: socket.socket) -> None:
    """One request: a keeper forked for it. A request that cannot be read or served ends its connection (the
    client then says so), never the zygote."""
    import traceback

    try:
        connection.settimeout(None)
        request, fds = _receive(connection)
        keeper = os.fork()
    except Exception:
        traceback.print_exc()
        return
    if keeper == 0:
        try:
            listener.close()
            _keep(connection, request, fds)
        finally:
            # a keeper never goes back to the zygote's loop, whatever happened
            os._exit(1)
    for fd in fds:
        os.close(fd)


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
    """This process's zygote, started on first use (again, if the last one has ended)."""
    if _SHARED and _SHARED[0].process.poll() is not None:
        _SHARED.pop().stop()
    if not _SHARED:
        _SHARED.append(Zygote())
    return _SHARED[0]


def stop_shared() -> None:
    """End this process's zygote, if it started one (the runs' CPU time is then counted with this process's)."""
    while _SHARED:
        _SHARED.pop().stop()


class Zygote:
    """The client side: `run(argv, env, cwd, timeout)` is `subprocess.run([python, -m, conformance.cli, *argv],
    capture_output=True, text=True, stdin=DEVNULL, ...)` through the zygote: a run past its time is killed
    (TimeoutExpired, with what it wrote as bytes), and so is a run whose caller is interrupted."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="sgp-zygote-"))
        self.path = str(self.directory / "socket")
        # the zygote's own errors, kept apart from the output of whichever test is running
        self.log = self.directory / "zygote.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, __file__, self.path], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=log, env=clean_environment())
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the CLI zygote did not start (exit {self.process.wait()}):\n{self.errors()}")
        atexit.register(self.stop)

    def errors(self) -> str:
        """The end of what the zygote wrote to its stderr."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return ""

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
        command = [*CLI, *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                open(os.devnull, "rb") as null, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.path)
            request = {"argv": argv, "env": env, "cwd": str(cwd or Path.cwd())}
            socket.send_fds(connection, [json.dumps(request).encode() + b"\n"],
                            [null.fileno(), out.fileno(), err.fileno()])
            answers = _Answers(connection, self)
            answers.next(None)  # the run's pid: the run has started
            try:
                ended = answers.next(time.monotonic() + timeout)
            except TimeoutError:
                # the keeper kills the run, which it holds unreaped, and says how it ended
                connection.sendall(b"kill\n")
                answers.next(None)
                raise subprocess.TimeoutExpired(command, timeout, _raw(out), _raw(err)) from None
            except BaseException:
                # interrupted (Ctrl-C, a test's own time limit): the run goes with the connection
                with contextlib.suppress(OSError):
                    connection.sendall(b"kill\n")
                raise
            return subprocess.CompletedProcess(command, ended["returncode"], _text(out), _text(err))


class _Answers:
    """The keeper's JSON lines on a run's connection."""

    def __init__(self, connection: socket.socket, zygote: Zygote) -> None:
        self.connection = connection
        self.zygote = zygote
        self.pending = b""

    def next(self, deadline: float | None) -> dict[str, Any]:
        while b"\n" not in self.pending:
            self.connection.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.001))
            data = self.connection.recv(4096)
            if not data:
                raise RuntimeError(f"the CLI zygote's keeper ended without an answer:\n{self.zygote.errors()}")
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer


def _raw(file: Any) -> bytes:
    """What a run wrote to one of its streams, as bytes (what subprocess.TimeoutExpired carries)."""
    file.seek(0)
    data: bytes = file.read()
    return data


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
