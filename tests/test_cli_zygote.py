"""The tests' real-CLI runs are forked from a zygote (tests/cli_zygote.py): each is still a process of its own,
with the arguments, environment, working directory and streams it is given, and the same output and exit
code as a fresh interpreter's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cli_zygote
import pytest
from cli_runs import CLI, clean_environment

BASE = clean_environment()


def test_a_run_is_a_process_of_its_own_with_what_it_is_given(tmp_path: Path) -> None:
    zygote = cli_zygote.shared()
    # a configuration error names the file it read, relative to the working directory it was given
    (tmp_path / "bad.toml").write_text("depth = [\n", encoding="utf-8")
    done = zygote.run(["run", "--config", "bad.toml", "--report-dir", "reports"], {**BASE, "NO_COLOR": "1"},
                      tmp_path, timeout=120)
    assert done.returncode == 2 and "bad.toml" in done.stderr and "Traceback" not in done.stderr, done.stderr
    # the key reaches it from the environment given, not from this process's: without it the run is refused
    # (exit 2), with it the run goes as far as the closed port (exit 3)
    assert "SGP_API_KEY" not in os.environ
    argv = ["run", "--base-url", "http://127.0.0.1:9", "-k", "BASIC-001", "--report-dir", "reports"]
    refused = zygote.run(argv, BASE, tmp_path, timeout=120)
    assert refused.returncode == 2 and "SGP_API_KEY" in refused.stdout + refused.stderr, refused.stderr
    done = zygote.run(argv, {**BASE, "SGP_API_KEY": "zygote-canary-key-8f2d"}, tmp_path, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "zygote-canary-key-8f2d" not in done.stdout + done.stderr
    assert (tmp_path / "reports" / "conformance.json").is_file()


def test_its_output_and_exit_code_are_a_fresh_interpreters() -> None:
    # a dry run collects the whole suite: every module a run imports, and what they print while imported
    for argv in (["list", "--profile", "openai"], ["diff"], ["run", "--depht", "smoke"],
                 ["run", "--dry-run", "--base-url", "http://127.0.0.1:9", "--api-key", "zygote-dry-run-key-4c1b"]):
        forked = cli_zygote.shared().run(argv, BASE, None, timeout=120)
        fresh = subprocess.run([*CLI, *argv], capture_output=True, text=True, env=BASE, timeout=120)
        assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_a_run_past_its_time_is_killed() -> None:
    # `serve` answers until it is stopped: the run's time limit ends it, as subprocess.run's does, with what it
    # wrote so far (the limit is ten times a forked server's start, about 0.3 s)
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        cli_zygote.shared().run(["serve", "--port", "0", "--api-key", "zygote-timeout-key-123456"], BASE, None,
                                timeout=3)
    assert isinstance(caught.value.stdout, bytes) and b"listening on http://127.0.0.1:" in caught.value.stdout
