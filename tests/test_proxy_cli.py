"""`sgp-conformance proxy` as a user runs it: a process that writes its reports on SIGTERM and exits by the
verdict, a HAR file `validate` judges again, and one clear line for each bad flag."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from cli_runs import CLI, clean_environment

from conformance import cli
from conformance.contract.profiles import get_profile
from conformance.offline.recorded import read_file, recorded_keys
from conformance.server import ServerSettings, start_server

KEY = "sk-proxy-cli-canary-93b7d1e5"
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def read_until(proc: subprocess.Popen[str], pattern: str, seen: list[str]) -> re.Match[str]:
    """Read the proxy's stdout line by line until one matches `pattern` (every line kept in `seen`)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"the proxy ended without printing {pattern!r}: {seen}")


def test_sigterm_writes_the_reports_and_the_exit_code_is_the_verdict(tmp_path: Path) -> None:
    server = start_server(ServerSettings(profile=get_profile("sgp"), api_keys=(KEY,)))
    reports, har = tmp_path / "reports", tmp_path / "traffic.har"
    env = clean_environment()
    proc = subprocess.Popen(
        [
            *CLI,
            "proxy",
            "--upstream",
            server.base_url,
            "--port",
            "0",
            "--report-dir",
            str(reports),
            "--har",
            str(har),
            "--report-every",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    seen: list[str] = []
    try:
        url = read_until(proc, r"listening on (http://127\.0\.0\.1:\d+)", seen).group(1)
        with httpx.Client(trust_env=False, timeout=10) as client:
            plain = client.post(f"{url}/v4/beta/chat/completions", json=BODY, headers={"x-api-key": KEY})
            streamed = client.post(
                f"{url}/v4/beta/chat/completions", json={**BODY, "stream": True}, headers={"x-api-key": KEY}
            )
        read_until(proc, r"reports written to", seen)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    output = "\n".join(seen) + out + err
    assert plain.status_code == streamed.status_code == 200 and streamed.text.startswith("data: ")
    assert proc.returncode == 0, output
    assert "SIGTERM: stopping, writing the reports" in out and "CONFORMANT" in out and err == "", output
    assert [line.split()[0] for line in seen if line.startswith("#")] == ["#1", "#2"]
    doc = json.loads((reports / "conformance.json").read_text())
    assert doc["verdict"] == "conformant" and doc["proxy"]["exchanges"]["judged"] == 2
    assert {p.name for p in reports.iterdir()} == {"conformance.json", "junit.xml", "conformance.html"}
    for path in [*reports.iterdir(), har]:
        assert KEY not in path.read_text(encoding="utf-8"), path
    assert KEY not in output
    # the HAR is judged again by validate: the same answers, the key masked as an exporter masks it
    records = read_file(har, get_profile("sgp"))
    assert [r.kind for r in records] == ["completion", "stream"] and recorded_keys(records) == []
    assert cli.main(["validate", str(har), "--report-dir", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "conformance.json").read_text())
    assert {r["id"]: r["status"] for r in again["results"]}["STRM-010"] == "pass"


def _listening_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --upstream"),
        (["--upstream", "localhost:8000"], "has no scheme: did you mean http://localhost:8000?"),
        (["--upstream", "ftp://example.com"], "is not an http(s) URL"),
        (["--upstream", "http://api.example.com"], "refusing to forward the clients' keys over plain http"),
        (["--upstream", "https://api.example.com/v1?x=1"], "must not carry a query"),
        (["--upstream", "https://u:p@api.example.com"], "must not carry user:password"),
        (["--upstream", "http://127.0.0.1:9", "--port", "70000"], "--port must be 0..65535"),
        (["--upstream", "http://127.0.0.1:9", "--report-every", "-1"], "--report-every must be"),
        (["--upstream", "http://127.0.0.1:9", "--max-body-bytes", "10"], "--max-body-bytes must be at least"),
        (["--upstream", "http://127.0.0.1:9", "--profile", "bogus"], "unknown profile 'bogus'"),
        (["--upstream", "http://localhost:8089"], "is the proxy's own address"),
        (
            ["--upstream", "http://127.0.0.1:9", "--har", "{tmp}/foreign.har"],
            "was not written by sgp-conformance proxy",
        ),
        (["--upstream", "http://127.0.0.1:9", "--port", "{busy}"], "cannot listen on 127.0.0.1:"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "foreign.har").write_text('{"log": {"creator": {"name": "a browser"}, "entries": []}}')
    with _listening_port() as busy:
        filled = [a.replace("{tmp}", str(tmp_path)).replace("{busy}", str(busy.getsockname()[1])) for a in args]
        code = cli.main(["proxy", *filled, "--report-dir", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "r" / "conformance.json").exists()
    assert (tmp_path / "foreign.har").read_text().startswith('{"log": {"creator": {"name": "a browser"}')


def test_the_cli_lists_the_proxy() -> None:
    assert re.search(r"\n\s+proxy\s+forward a client's traffic", cli.build_parser().format_help())
