"""Running `sgp-conformance` as a user does: a process of its own (`run_cli`), its output, and the results it
wrote; or, for a test that checks a judgement and not the process, the same command in this interpreter
(`run_in_process`)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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


def clean_environment() -> dict[str, str]:
    """This process's environment without SGP_* variables: what a command the tests start begins with, so that
    a run's settings come from its arguments and the `env` a test gives it, never from the machine's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}


def run_cli(args: list[str], report_dir: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> Outcome:
    """`sgp-conformance ARGS` as a process of its own; with report_dir, `run` writes there. The test's environment
    is clean of SGP_*. The process is forked from a zygote that has done the imports (cli_zygote), but where
    `env` sets a PYTHON* variable (what an interpreter reads at its start: PYTHONPATH, PYTHONIOENCODING ...)
    or TESTS_FRESH_CLI=1 is set: then it is a fresh interpreter."""
    argv = [*args, *(["--report-dir", str(report_dir)] if report_dir is not None else [])]
    environment = {**clean_environment(), **(env or {})}
    cwd = report_dir.parent if report_dir is not None else None
    if os.environ.get("TESTS_FRESH_CLI") or any(key.startswith("PYTHON") for key in env or {}):
        done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout, env=environment,
                              cwd=cwd)
    else:
        import cli_zygote

        done = cli_zygote.shared().run(argv, environment, cwd, timeout)
    return Outcome(done.returncode, done.stdout, done.stderr, report_dir or Path("."))


# far above any one run in this interpreter (seconds, or a minute on a busy machine), far below pytest-timeout's
# 900 s for the whole test
IN_PROCESS_HANG_S = 600


def hang_record() -> Path:
    """Where the in-process hang guard writes the stacks of a hung run: a file of this process in the temporary
    directory (pytest's capture holds fd 2 while a test runs, and what it captured is lost with the process)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"sgp-conformance-tests-hang-{os.getpid()}.txt"


@functools.cache
def _hang_file() -> IO[str]:
    """`hang_record()` opened, once per process and kept open (faulthandler writes to its fd); a process that
    never hung removes it at exit (the watchdog's own exit skips that)."""
    import atexit

    record = hang_record()
    file = record.open("a", encoding="utf-8")

    def drop_if_empty() -> None:
        file.close()
        with contextlib.suppress(OSError):
            if record.stat().st_size == 0:
                record.unlink()

    atexit.register(drop_if_empty)
    return file


def exit_code(exc: SystemExit, stderr: IO[str]) -> int:
    """The exit status an interpreter gives a SystemExit (argparse's own exits, a `sys.exit()` anywhere):
    None is 0, an int is itself, anything else is printed to stderr and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=stderr)
    return 1


def in_process(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """`sgp-conformance ARGV` through the CLI's own entry point in this interpreter: (exit code, stdout,
    stderr). The environment is this process's with `env` over it, and the working directory `cwd`, for
    the length of the run; both are put back after.

    A fresh interpreter costs about 1.5 s of imports per run, often more than the run itself. The suite keeps
    no state between runs (the CLI restores the environment, every run builds its own client and
    collector), so runs can share the test session's interpreter: the CLI's pytest session nests in the
    test's, as pytester's in-process runs do. Generated cases do not depend on the interpreter's history
    (generation.reproducible), so a fixed seed draws the same cases here as in a user's command. What is
    about the process itself (exit code, output written by fd, the environment and working directory it is
    given) stays with `run_cli`; each test module that uses this keeps at least one `run_cli` agreement test.
    An interpreter's own start (imports, signals from the start, closed pipes, the console script) stays
    with the tests that start a fresh one (test_outcomes, test_cli_ux's closed pipes, test_progress,
    test_packaging, test_ci_recipe, test_pytest_plugin).

    A hang guard (IN_PROCESS_HANG_S) no part of the run can catch: pytest-timeout's alarm raises an exception
    that a test of the nested session would record as its own error, and the run would go on. faulthandler's
    watchdog instead writes every thread's stack to `hang_record()` and ends the process (an xdist worker: the
    test is reported as crashed).
    """
    import faulthandler
    import gc

    from conformance import cli

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    # what earlier runs left behind is old: keep the collector (pytest calls it at every end of session)
    # from walking it again on every run
    gc.freeze()
    out, err = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(IN_PROCESS_HANG_S, exit=True, file=_hang_file())
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exit_code(exc, err)
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return code, out.getvalue(), err.getvalue()


def run_either(args: list[str], report_dir: Path | None = None, env: dict[str, str] | None = None,
               as_command: bool = False) -> Outcome:
    """`run_in_process`, or with `as_command` `run_cli` (a process of its own, under the hang guard of 240 s): for a
    test module that judges its runs in this interpreter and keeps one of them as the command a user types."""
    return run_cli(args, report_dir, env) if as_command else run_in_process(args, report_dir, env)


def run_in_process(args: list[str], report_dir: Path | None = None, env: dict[str, str] | None = None) -> Outcome:
    """`run_cli` in this interpreter (`in_process`): the same arguments, environment (SGP_* cleared, `env`
    over it), working directory and Outcome, without the interpreter's start."""
    full = [*args, *(["--report-dir", str(report_dir)] if report_dir is not None else [])]
    cleared = {k: v for k, v in os.environ.items() if k.startswith("SGP_")}
    for key in cleared:
        del os.environ[key]
    try:
        code, stdout, stderr = in_process(full, env, report_dir.parent if report_dir is not None else None)
    finally:
        os.environ.update(cleared)
    return Outcome(code, stdout, stderr, report_dir or Path("."))
