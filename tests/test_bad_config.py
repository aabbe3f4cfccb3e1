"""Bad configuration: `sgp-conformance run` exits 2 with exactly one line on stderr that names the fix,
and no traceback, whatever is wrong: the URL, the profile, the config file, the baseline, the proxy, the CA
bundle, an extra header, a flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import run_either, run_in_process

# (case name, arguments, a file to write first (name, text) or None, what the line must say)
CASES: list[tuple[str, list[str], tuple[str, str] | None, str]] = [
    ("url-not-a-url", ["--base-url", "notaurl"], None, "is not an http(s) URL: give e.g. https://"),
    ("url-ftp", ["--base-url", "ftp://x"], None, "is not an http(s) URL: give e.g. https://"),
    ("url-empty", ["--base-url", ""], None, "is not an http(s) URL: give e.g. https://"),
    ("url-missing-value", ["--base-url"], None, "--base-url: expected one argument (see sgp-conformance run --help)"),
    ("url-with-query", ["--base-url", "https://api.example.com/?x=1"], None, "must not carry a query"),
    ("url-plain-http-remote", ["--base-url", "http://api.example.com"], None,
     "use https, or pass --allow-insecure-http"),
    ("profile-unknown", ["--profile", "anthropic"], None, "unknown profile 'anthropic': use --profile openai or sgp"),
    ("profile-unknown-env", [], None, "unknown profile 'nope': use --profile"),
    ("depth-unknown", ["--depth", "thorough"], None, "invalid choice: 'thorough'"),
    ("timeout-not-a-number", ["--timeout", "soon"], None, "invalid float value: 'soon'"),
    ("timeout-zero", ["--timeout", "0"], None, "--timeout must be a positive number of seconds"),
    ("config-missing", ["--config", "missing.toml"], None, "does not exist: fix the path given to --config"),
    ("config-directory", ["--config", "."], None, "is a directory: give --config the path of a TOML file"),
    ("config-invalid-toml", ["--config", "bad.toml"], ("bad.toml", "timeout = \n"), "is not valid TOML"),
    ("config-not-utf8", ["--config", "latin.toml"], ("latin.toml", "model = \"caf\xe9\"\n"), "is not valid TOML"),
    ("config-unknown-key", ["--config", "unknown.toml"], ("unknown.toml", "max_speed = 3\n"),
     "unknown setting 'max_speed' (known: "),
    ("config-key-in-file", ["--config", "key.toml"], ("key.toml", "api-key = \"sk-123\"\n"),
     "put the key in SGP_API_KEY"),
    ("config-wrong-type", ["--config", "type.toml"], ("type.toml", "max-requests = \"many\"\n"),
     "max-requests: 'many' is not a valid int"),
    ("baseline-missing", ["--baseline", "missing.toml"], None, "fix the path given to --baseline"),
    ("baseline-invalid-toml", ["--baseline", "b.toml"], ("b.toml", "[[accepted\n"), "is not valid TOML"),
    ("baseline-unknown-id", ["--baseline", "b.toml"], ("b.toml", '[[accepted]]\nid = "NOPE-001"\nreason = "x"\n'),
     "unknown requirement 'NOPE-001' (see sgp-conformance list)"),
    ("baseline-missing-reason", ["--baseline", "b.toml"], ("b.toml", '[[accepted]]\nid = "SEM-005"\n'),
     "every entry needs an id and a reason"),
    ("baseline-bad-date", ["--baseline", "b.toml"],
     ("b.toml", '[[accepted]]\nid = "SEM-005"\nreason = "x"\nexpires = "soon"\n'), "is not a date like 2027-03-31"),
    ("baseline-not-a-list", ["--baseline", "b.toml"], ("b.toml", 'accepted = "SEM-005"\n'),
     "expected a list of [[accepted]] entries"),
    ("proxy-not-a-url", ["--proxy", "proxy.corp"], None,
     "--proxy 'proxy.corp' is not a proxy URL like http://host:port: give e.g. http://proxy.example.com:3128"),
    ("ca-bundle-missing", ["--ca-bundle", "corp-ca.pem"], None,
     "--ca-bundle corp-ca.pem does not exist: give the PEM file of the CA"),
    ("header-malformed", ["--header", "X-Tenant-Id=acme"], None, "--header 'X-Tenant-Id=acme' is not 'Name: value'"),
    ("header-env-unset", ["--header", "X-Tenant-Token: env:SGP_TEST_UNSET_TOKEN"], None,
     "$SGP_TEST_UNSET_TOKEN is not set: export it, or give the value itself"),
    ("flag-unknown", ["--no-such-flag"], None,
     "unrecognized arguments: --no-such-flag (see sgp-conformance run --help"),
    ("selection-bad-expression", ["-k", "("], None, "-k '(' is not a selection expression"),
    ("selection-empty", ["-k", "NOPE-999"], None, "the selection matched no requirement"),
]


# judged in this interpreter (cli_runs.run_in_process: the CLI's own entry point, without the 1 s start of a
# fresh one), but for these, run as the command: an error argparse prints and exits on, one a config file
# raises, and one the URL check raises, each seen on the process's own stderr
AS_A_COMMAND = {"flag-unknown", "config-invalid-toml", "url-not-a-url"}


@pytest.mark.parametrize(("args", "file", "says"), [pytest.param(a, f, s, id=n) for n, a, f, s in CASES])
def test_bad_configuration_is_one_line_and_exit_2(args: list[str], file: tuple[str, str] | None, says: str,
                                                  tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if file is not None:
        name, text = file
        (tmp_path / name).write_bytes(text.encode("latin-1"))
    env = {"SGP_PROFILE": "nope"} if request.node.callspec.id == "profile-unknown-env" else {}
    # every relative path is relative to tmp_path (both ways run there); the key never matters here
    env = {"SGP_API_KEY": "sk-bad-config-test", **env}
    out = run_either(["run", *args], tmp_path / "reports", env, as_command=request.node.callspec.id in AS_A_COMMAND)
    assert out.code == 2, out.output[-2000:]
    assert "Traceback" not in out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert says in lines[0], lines[0]


def test_unreadable_config_file(tmp_path: Path) -> None:
    # a path below a regular file cannot be read by anyone, root included (chmod would not stop root)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    out = run_in_process(["run", "--config", str(blocker / "sgp.toml")], tmp_path / "reports")
    assert out.code == 2 and "Traceback" not in out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be read" in lines[0], lines
