"""`sgp-conformance serve` prints an access line per request (method, path, status, ms); --quiet does not."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx

from conformance.contract.profiles import get_profile

KEY = "serve-log-key-123456"
LINE = re.compile(r"^(GET|POST) (/\S*) (\d{3}) \d+\.\d ms$")


def serve_and_send(*extra: str) -> tuple[list[str], str]:
    """Start `serve`, send a good, a refused and a health request, stop it; its stdout lines and stderr."""
    command = [sys.executable, "-m", "conformance.cli", "serve", "--port", "0", "--api-key", KEY, *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        base_url = first.rsplit(" ", 1)[-1].strip()
        sgp = get_profile("sgp")
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(timeout=10) as http:
            assert http.post(sgp.url(base_url), json=body, headers=sgp.auth_headers(KEY)).status_code == 200
            assert http.post(sgp.url(base_url), json=body).status_code == 401
            root = base_url.split("/v4", 1)[0]
            assert http.get(f"{root}/healthz").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    return [first.rstrip("\n"), *out.splitlines()], err


def test_serve_prints_an_access_line_per_request() -> None:
    lines, err = serve_and_send()
    assert "Traceback" not in err
    access = [LINE.match(line) for line in lines if LINE.match(line)]
    assert [(m.group(1), m.group(2), m.group(3)) for m in access] == [
        ("POST", "/v4/beta/chat/completions", "200"), ("POST", "/v4/beta/chat/completions", "401"),
        ("GET", "/healthz", "200")]
    assert not any(KEY in line for line in lines)


def test_quiet_prints_no_access_line() -> None:
    lines, err = serve_and_send("--quiet")
    assert "Traceback" not in err
    assert lines[0].startswith("reference server") and not [line for line in lines if LINE.match(line)]
