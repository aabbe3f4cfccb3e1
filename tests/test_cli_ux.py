"""The CLI's manners: typos named at once, defaults and exit codes in --help, output into a closed pipe ends
quietly with the usual exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cli_runs
import pytest
from cli_runs import CLI, Outcome, clean_environment, run_either, run_in_process
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

from conformance.cli import EXIT_CODES, build_parser


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(("args", "says"), [
    (["--depht", "smoke"], "unknown option --depht: did you mean --depth?"),
    (["--depht=smoke"], "unknown option --depht: did you mean --depth?"),
    (["--fail-of", "should"], "unknown option --fail-of: did you mean --fail-on?"),
    # close to one of pytest's options: named as well
    (["--maxfial", "1"], "unknown option --maxfial: did you mean --maxfail?"),
    (["--base-url", "localhost:8000"], "has no scheme: did you mean http://localhost:8000?"),
    (["--base-url", "api.example.com/v1"], "has no scheme: did you mean https://api.example.com/v1?"),
])
def test_a_typo_fails_at_once_with_a_suggestion(args: list[str], says: str, tmp_path: Path) -> None:
    # judged in this interpreter (the CLI's own entry point); the first, also as the command a user types
    out = run_either(["run", *args], tmp_path / "reports", as_command=args[0] == "--depht")
    assert out.code == 2, out.output[-2000:]
    assert says in one_line(out.stderr)
    # nothing started, nothing written
    assert "reference server" not in out.stdout and not (tmp_path / "reports").exists()


def test_pytest_options_still_pass_through(tmp_path: Path) -> None:
    # --tb and --co are pytest's (--co is no abbreviation of --concurrency or --config); -k selects
    out = run_in_process(["run", "--dry-run", "--tb=short", "-k", "AUTH-001", "--co"], tmp_path / "reports")
    assert out.code == 0, out.output[-2000:]
    assert "AUTH-001" in out.stdout and "unknown option" not in out.output


def test_list_checks_its_profile() -> None:
    out = run_in_process(["list", "--profile", "anthropic"])
    assert out.code == 2
    assert "invalid choice: 'anthropic'" in one_line(out.stderr)


def test_run_help_shows_defaults_forms_and_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping: one help text per line
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    text = run.format_help()
    for wanted in ("openai/gpt-4o-mini", "x-selected-account-id", "N or N/s", "requests in flight at once (default 1)",
                   "standard (default)", "must (default) or should", "loopback (default: refused)", "exit codes:"):
        assert wanted in text, wanted
    for code in range(5):
        assert f"\n  {code}  " in EXIT_CODES
    assert EXIT_CODES in text


# -- a reader that went away: `... | head -1` ----------------------------------------------------------------


def closed_pipe_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sgp-conformance ARGS` writing into a pipe whose reader is already gone: every write fails."""
    read, write = os.pipe()
    os.close(read)
    env = clean_environment()
    try:
        return subprocess.run([*CLI, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                              cwd=cwd, env=env)
    finally:
        os.close(write)


def _results(*rows: tuple[str, str]) -> dict[str, object]:
    return {"run": {"fail_on": "must"}, "results": [
        {"id": rid, "level": "MUST", "status": status, "message": "", "evidence": None, "baseline": None}
        for rid, status in rows]}


@pytest.mark.parametrize(("args", "code"), [
    (["list"], 0),
    (["list", "--format", "json"], 0),
    (["run", "--dry-run", "--base-url", "http://127.0.0.1:9", "--api-key", "k"], 0),
    (["diff", "old.json", "same.json"], 0),
    # a regression still exits 1, read or not
    (["diff", "old.json", "worse.json"], 1),
])
def test_a_closed_pipe_ends_quietly(args: list[str], code: int, tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text(json.dumps(_results(("BASIC-001", "pass"), ("RESP-001", "pass"))))
    (tmp_path / "same.json").write_text(json.dumps(_results(("BASIC-001", "pass"), ("RESP-001", "pass"))))
    (tmp_path / "worse.json").write_text(json.dumps(_results(("BASIC-001", "pass"), ("RESP-001", "fail"))))
    done = closed_pipe_run(args, tmp_path)
    assert done.returncode == code, done.stderr[-2000:]
    assert done.stderr == ""


# -- reports kept per run ---------------------------------------------------------------------------------------


def test_report_dir_timestamps_and_keep(tmp_path: Path) -> None:
    from conformance.report.folder import run_report_dir

    now = 1_795_000_000.0  # 2026-11-18T11:06:40Z
    assert run_report_dir(str(tmp_path / "r")) == tmp_path / "r"
    assert run_report_dir(str(tmp_path / "r" / "{timestamp}"), now=now) == tmp_path / "r" / "20261118T110640Z"
    assert run_report_dir(str(tmp_path / "r"), keep=True, now=now) == tmp_path / "r" / "20261118T110640Z"
    # a second run in the same second gets a folder of its own
    (tmp_path / "r" / "20261118T110640Z").mkdir(parents=True)
    assert run_report_dir(str(tmp_path / "r"), keep=True, now=now) == tmp_path / "r" / "20261118T110640Z-2"


def test_keep_writes_a_new_folder_per_run_and_the_summary_names_it(tmp_path: Path) -> None:
    recorded = Path(__file__).parent / "fixtures" / "recorded" / "completion-sgp.json"
    reports = tmp_path / "reports"
    (reports).mkdir()
    (reports / "conformance.json").write_text("{}", encoding="utf-8")  # the last run's: kept as it is
    out = run_in_process(["validate", str(recorded), "--keep"], reports)
    assert out.code == 0, out.output[-2000:]
    folders = [p for p in reports.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "conformance.json").is_file()
    assert (reports / "conformance.json").read_text(encoding="utf-8") == "{}"
    assert f"reports in {folders[0]}{os.sep}: conformance.html, junit.xml, conformance.json" in out.stdout


def test_a_timestamp_in_the_report_dir(tmp_path: Path) -> None:
    template = str(tmp_path / "runs" / "{timestamp}")
    out = run_in_process(["run", "--depth", "smoke", "-k", "BASIC-001", "--report-dir", template])
    assert out.code == 0, out.output[-2000:]
    (folder,) = (tmp_path / "runs").iterdir()
    assert len(folder.name) == len("20261130T101500Z") and folder.name.endswith("Z")
    assert (folder / "conformance.html").is_file() and f"reports in {folder}{os.sep}:" in out.stdout


# -- the summary at the end of a run ------------------------------------------------------------------------


def test_clip_cuts_at_a_word_boundary() -> None:
    from conformance.report.summary import clip

    text = "the response lacks the required field id, which every chat completion carries"
    for width in range(20, len(text)):
        cut = clip(text, width)
        assert len(cut) <= width and cut.endswith("…")
        # every word kept is whole
        assert text.startswith(cut[:-1]) and text[len(cut) - 1] in " ,"
    assert clip(text, len(text)) == text
    # one word longer than half the line is cut inside it
    assert clip("x" * 50, 20) == "x" * 19 + "…"


def test_failure_lines_end_with_how_to_rerun_them() -> None:
    from conformance.report.summary import failure_line

    row = {"id": "RESP-001", "level": "MUST", "status": "fail",
           "message": "RESP-001: missing required field 'id' in every one of the six completions that were judged"}
    line = failure_line(row, width=80)
    # the message keeps its room (MESSAGE_ROOM) in a narrow terminal, which then wraps the line
    assert line.endswith("(rerun: --only RESP-001)") and "RESP-001: missing" not in line
    assert "missing required field 'id' in every one of the six completions that were judged" in line
    long_row = {**row, "message": "word " * 60}
    line = failure_line(long_row, width=160)
    assert len(line) <= 160 and "word…  (rerun" in line


def test_a_run_records_and_prints_its_seed(broken_run: Outcome) -> None:  # noqa: F811
    # no --seed: the run picks one, records it and prints how to repeat it
    seed = broken_run.doc["run"]["seed"]
    assert isinstance(seed, int) and f"--seed {seed} repeats the generated cases" in broken_run.stdout
    assert "(rerun: --only RESP-001)" in broken_run.stdout


def test_the_summary_names_what_was_left_out_and_what_would_include_it(earlier_run: Outcome) -> None:
    left = [line for line in earlier_run.stdout.splitlines() if line.startswith("  left out: ")]
    doc = earlier_run.doc
    depth = [r for r in doc["results"] if r["not_run"] == "settings" and "depth smoke" in r["message"]]
    should = sum(r["level"] == "SHOULD" for r in depth)
    assert any(f"{should} SHOULD" in line and "(--depth standard includes them)" in line for line in left), left
    assert any("CLIENT-001" in line and "--clients" in line for line in left), left


@pytest.mark.parametrize(("command", "says"), [
    (["diff"], ["OLD", "e.g. the last release's", "--force", "default: refused", "Example: sgp-conformance diff"]),
    (["list"], ["--format", "json: a list of", "(default: text)", "e.g. --format json", "--profile openai"]),
    (["validate"], ["--profile", "e.g. --profile openai", "(default: sgp", "--only", "e.g. traffic.har"]),
    (["replay"], ["--failed", "--base-url", "(default: reports)", "SGP_API_KEY", "e.g. --only VAL-005,AUTH"]),
    (["run"], ["--only", "e.g. --only", "--baseline FILE", "e.g. examples/baseline.toml", "(default: off)"]),
])
def test_help_gives_meaning_default_and_an_example(command: list[str], says: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for part in says:
        assert part in text, (command, part)


def test_left_out_names_the_account_flag_and_a_declared_absent_feature() -> None:
    from conformance.report.summary import left_out

    rows = [{"id": "HDR-001", "level": "MUST", "status": "not run", "not_run": "settings",
             "message": "no --account-id configured"},
            {"id": "LOGP-001", "level": "MUST", "status": "not run", "not_run": "settings", "message": "not claimed"},
            {"id": "AUTH-001", "level": "MUST", "status": "not run", "not_run": "selection", "message": "not selected"}]
    assert left_out(rows) == ["  left out: HDR-001: no --account-id configured",
                              "  left out: LOGP-001: not claimed (--without declared the feature absent: drop it "
                              "from --without to judge them)"]


def test_list_under_a_profile_gives_that_profiles_levels() -> None:
    # VAL-005 is open under sgp (observed) and settled under openai (MUST); the listing said sgp's for both
    import contextlib
    import io
    import json

    from conformance.cli import main

    for profile, expected in (("sgp", "INFO"), ("openai", "MUST")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["list", "--profile", profile, "--format", "json"]) == 0
        rows = {r["id"]: r for r in json.loads(out.getvalue())}
        assert rows["VAL-005"]["level"] == expected
        assert rows["VAL-005"]["levels"] == {"sgp": "INFO", "openai": "MUST"}


# --- the in-process runner the tests use (cli_runs.in_process) gives what the command gives -------------


@pytest.mark.parametrize(("code", "status", "printed"), [(None, 0, ""), (0, 0, ""), (3, 3, ""),
                                                         ("stopped: a reason", 1, "stopped: a reason\n")])
def test_an_in_process_exit_is_the_status_the_interpreter_would_give(code: object, status: int, printed: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance import cli

    def exits(argv: list[str]) -> int:
        raise SystemExit(code)

    monkeypatch.setattr(cli, "main", exits)
    assert cli_runs.in_process(["run"]) == (status, "", printed)
    done = subprocess.run([sys.executable, "-c", f"raise SystemExit({code!r})"], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (status, printed)


def test_a_hanging_in_process_run_ends_its_process_with_every_stack() -> None:
    # what no exception handler of the nested session can catch: the watchdog ends the interpreter
    code = ("import sys, time; sys.path.insert(0, 'tests'); import cli_runs; from conformance import cli; "
            "print(cli_runs.hang_record(), flush=True); cli_runs.IN_PROCESS_HANG_S = 0.5; "
            "cli.main = lambda argv: time.sleep(60); cli_runs.in_process(['run'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode != 0
    record = Path(done.stdout.strip())
    try:
        stacks = record.read_text(encoding="utf-8")
    finally:
        record.unlink(missing_ok=True)
    assert "Timeout" in stacks and "in_process" in stacks, stacks[-2000:]
