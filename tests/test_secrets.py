"""The key never reaches an output: scrubbing by value, the curl line, the post-run rescan, and a whole run
against a server that echoes the key back in its bodies and headers."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cli_runs import run_cli
from report_fixtures import CANARY, URL_CANARY, echo_app, echoed_forms, files_with_secret, secret_forms_found, serve

from conformance.config import Config
from conformance.config.secrets import config_secrets
from conformance.contract.profiles import get_profile
from conformance.redact import MASK, Scrubber, ScrubbingStream, safe_url
from conformance.report.evidence import curl_line, exchange_evidence
from conformance.report.summary import EXIT_FAIL, finish
from conformance.server import RunningServer
from conformance.transport.exchange import Exchange, RequestSpec, Response

SGP = get_profile("sgp")


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, quote(secret, safe=""), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            json.dumps(secret)[1:-1],
            # inside longer base64 documents, at each alignment
            base64.b64encode(b"user:" + raw).decode(), base64.b64encode(b"k:" + raw + b"!").decode(),
            base64.b64encode(b"xyz" + raw + b"tail").decode()]


# -- the scrubber -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", range(8))
def test_every_form_of_the_secret_is_masked(form: int) -> None:
    scrubber = Scrubber([CANARY])
    text = f"before {encodings(CANARY)[form]} after"
    scrubbed = scrubber.text(text)
    assert MASK in scrubbed and not secret_forms_found(scrubbed.encode(), CANARY)
    assert scrubber.contains_secret(text.encode()) and not scrubber.contains_secret(scrubbed.encode())
    assert scrubber.data(text.encode()) == scrubbed.encode()


def test_html_escaped_secret_is_masked() -> None:
    secret = "sk-<amp>&\"quote'-0123456789"
    scrubbed = Scrubber([secret]).text(f"<td>{__import__('html').escape(secret)}</td>")
    assert scrubbed == f"<td>{MASK}</td>"


def test_short_secrets_are_not_searched_and_nothing_else_is_touched() -> None:
    assert not Scrubber(["abc"]).active
    assert Scrubber([CANARY]).text("an ordinary sentence, a URL http://x/y?z=1") == \
        "an ordinary sentence, a URL http://x/y?z=1"


@pytest.mark.parametrize(("secret", "text", "scrubbed"), [
    # a word is masked where it stands alone, never inside a longer name
    ("token", '"max_tokens": 16, Bearer token, "token"', f'"max_tokens": 16, Bearer {MASK}, "{MASK}"'),
    ("test", "pytest r_test /reports/test/", f"pytest r_test /reports/{MASK}/"),
    # a distinctive key is masked wherever it occurs, glued to other text or not
    ("sk-abc123def456", "xsk-abc123def456y", f"x{MASK}y"),
    # an escape before a word is no part of it: JSON's \n, \t, \u0022, a URL's %20
    ("test-key", 'content: "x\\ntest-key", \\ttest-key, \\u0022test-key',
     f'content: "x\\n{MASK}", \\t{MASK}, \\u0022{MASK}'),
    ("test-key", "Bearer%20test-key %22test-key%22", f"Bearer%20{MASK} %22{MASK}%22"),
    # the encoded forms of a word are masked wherever they occur (base64 inside Basic user:key)
    ("test-key", "Basic dXNlcjp0ZXN0LWtleQ==", f"Basic dXNlcjp{MASK}eQ=="),
])
def test_a_word_is_masked_only_where_it_stands_alone(secret: str, text: str, scrubbed: str) -> None:
    scrubber = Scrubber([secret])
    assert scrubber.text(text) == scrubbed
    assert scrubber.data(text.encode()) == scrubbed.encode()
    assert scrubber.contains_secret(text) and not scrubber.contains_secret(scrubbed)


def test_a_word_inside_a_name_is_no_leak() -> None:
    assert not Scrubber(["token"]).contains_secret('{"max_tokens": 16, "completion_tokens_details": {}}')


def test_a_password_in_the_base_url_is_a_secret_too() -> None:
    config = Config(base_url=f"https://user:{URL_CANARY}@api.example.com", api_key=CANARY)
    assert config_secrets(config) == [CANARY, URL_CANARY]
    assert safe_url(config.base_url) == "https://***@api.example.com"
    assert safe_url("https://api.example.com/v1") == "https://api.example.com/v1"


def test_declared_secret_headers_are_masked_and_their_values_learnt() -> None:
    scrubber = Scrubber([CANARY], secret_headers=["X-Gateway-Token"])
    assert scrubber.headers([("x-gateway-token", "tok-0123456789"), ("x-api-key", "wrong-key-but-masked")]) == \
        [("x-gateway-token", MASK), ("x-api-key", MASK)]
    # the declared header's value is now masked wherever it turns up; a wrong key sent on purpose is not learnt
    assert scrubber.text("echo tok-0123456789 wrong-key-but-masked") == f"echo {MASK} wrong-key-but-masked"


def test_scrub_in_place_keeps_pytest_failure_structure() -> None:
    def fail(secret: str) -> None:
        raise RuntimeError(f"the server said: your key {secret} is invalid")

    try:
        fail(CANARY)
    except RuntimeError:
        excinfo = pytest.ExceptionInfo.from_current()
    longrepr = excinfo.getrepr(showlocals=True, style="long")
    assert CANARY in str(longrepr)
    scrubbed = Scrubber([CANARY]).scrub_in_place(longrepr)
    text = str(scrubbed)
    assert CANARY not in text and "your key *** is invalid" in text and "RuntimeError" in text
    assert scrubbed.reprcrash is not None and CANARY not in scrubbed.reprcrash.message


def test_the_terminal_stream_masks_what_passes_through() -> None:
    sink = io.StringIO()
    stream = ScrubbingStream(sink, Scrubber([CANARY]))  # type: ignore[arg-type]
    assert stream.write(f"key={CANARY}\n") == len(f"key={CANARY}\n")
    stream.flush()
    assert sink.getvalue() == f"key={MASK}\n"


# -- evidence and the curl line ---------------------------------------------------------------------------------


def _exchange(url: str, body: bytes, headers: dict[str, str]) -> Exchange:
    spec = RequestSpec("basic", headers=headers, body=body)
    echoed = json.dumps({"echo": CANARY, "b64": base64.b64encode(CANARY.encode()).decode()}).encode()
    response = Response(401, [("x-echo", CANARY), ("content-type", "application/json")], echoed)
    return Exchange("basic", url, spec, response, error=f"connection to {url} reset")


def test_evidence_is_scrubbed_everywhere_and_the_curl_line_reads_the_key_from_the_environment(
        tmp_path: Path) -> None:
    url = f"http://user:{URL_CANARY}@127.0.0.1:9/v4/beta/chat/completions"
    config = Config(base_url=url, api_key=CANARY)
    scrubber = Scrubber(config_secrets(config))
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"it's {CANARY}! $HOME `x`"}]})
    exchange = _exchange(url, body.encode(), {"x-api-key": CANARY, "content-type": "application/json"})
    evidence = exchange_evidence(exchange, scrubber, SGP, config)
    dumped = json.dumps(evidence)
    assert not secret_forms_found(dumped.encode(), CANARY) and not secret_forms_found(dumped.encode(), URL_CANARY)
    assert evidence["response"]["headers"][0] == ("x-echo", MASK)
    curl = evidence["curl"]
    assert CANARY not in curl and URL_CANARY not in curl and '"${SGP_API_KEY}"' in curl
    # the line runs: the shell expands the key where it stood, and nothing else ($HOME, `x`, !) is touched
    script = tmp_path / "args.sh"
    script.write_text("printf '%s\\n' " + curl.removeprefix("curl ") + "\n", encoding="utf-8")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True,
                          env={"SGP_API_KEY": CANARY, "PATH": "/usr/bin:/bin"})
    args = done.stdout.splitlines()
    assert f"x-api-key: {CANARY}" in args
    sent = json.loads(args[args.index("--data-binary") + 1])
    assert sent["messages"][0]["content"] == f"it's {CANARY}! $HOME `x`"
    assert "http://user:***@127.0.0.1:9/v4/beta/chat/completions" in args


def test_curl_line_of_a_bearer_key_and_of_a_body_that_is_not_utf8(tmp_path: Path) -> None:
    config = Config(base_url="http://127.0.0.1:9/v1", api_key=CANARY, profile="openai")
    spec = RequestSpec("latin1", headers={"authorization": f"Bearer {CANARY}"}, body=b'{"m": "caf\xe9"}')
    exchange = Exchange("latin1", "http://127.0.0.1:9/v1/chat/completions", spec, None)
    curl = curl_line(exchange, Scrubber([CANARY]), get_profile("openai"), config)
    assert CANARY not in curl
    script = tmp_path / "args.sh"
    script.write_text("printf '%s\\0' " + curl.removeprefix("curl ") + "\n", encoding="utf-8")
    done = subprocess.run(["bash", str(script)], capture_output=True, check=True,
                          env={"SGP_API_KEY": CANARY, "PATH": "/usr/bin:/bin"})
    args = done.stdout.split(b"\0")
    assert f"authorization: Bearer {CANARY}".encode() in args
    assert b'{"m": "caf\xe9"}' in args


# -- the post-run rescan ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["plain", "base64"])
def test_a_key_planted_in_a_report_fails_the_run_loudly_and_is_masked(
        planted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "conformance.json").write_text(json.dumps({"verdict": "conformant", "results": [], "run": {}}),
                                              encoding="utf-8")
    leak = CANARY if planted == "plain" else base64.b64encode(f"Basic x:{CANARY}".encode()).decode()
    (reports / "junit.xml").write_text(f"<testsuite><system-out>{leak}</system-out></testsuite>", encoding="utf-8")
    code = finish(Config(api_key=CANARY), 0, reports)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_FAIL
    assert len(err) == 1 and "SECRET LEAK" in err[0] and "junit.xml" in err[0] and CANARY not in err[0]
    # neutralised, so a CI step that uploads reports whatever the outcome does not publish the key
    assert not files_with_secret(reports, CANARY)


QUOTED_KEY = 'sk-"quoted"-key-0123456789abcdef'


@pytest.mark.parametrize("key", [CANARY, QUOTED_KEY])
def test_every_form_planted_in_every_report_is_masked_and_the_reports_stay_well_formed(
        key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    forms = [key, *echoed_forms(key).values(), repr(key.encode()), json.dumps(key)]
    (reports / "conformance.json").write_text(json.dumps(
        {"verdict": "conformant", "run": {}, "results": [{"id": "AUTH-007", "message": " ".join(forms)}]}),
        encoding="utf-8")
    suites = ET.Element("testsuites")
    for form in forms:
        ET.SubElement(ET.SubElement(suites, "testcase"), "failure", message=form).text = form
    (reports / "junit.xml").write_bytes(ET.tostring(suites, encoding="utf-8"))
    blob = html.escape(json.dumps({"environment": {"echo": forms}, "tests": {}}))
    (reports / "conformance.html").write_text(f'<html><body><div id="data-container" data-jsonblob="{blob}">'
                                              "</div></body></html>", encoding="utf-8")
    assert finish(Config(api_key=key), 0, reports) == EXIT_FAIL
    assert "SECRET LEAK" in capsys.readouterr().err
    assert files_with_secret(reports, key) == {}
    # masked, not withheld: each report is still its kind of document, holding the rest of what it held
    assert json.loads((reports / "conformance.json").read_text(encoding="utf-8"))["results"][0]["id"] == "AUTH-007"
    assert len(ET.parse(reports / "junit.xml").getroot()) == len(forms)
    page = (reports / "conformance.html").read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob and len(json.loads(html.unescape(blob.group(1)))["environment"]["echo"]) == len(forms)


def test_a_report_the_byte_masking_cannot_clean_is_masked_value_by_value_or_withheld(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the byte-level pass made to miss: what follows it must still leave no key, and say nothing untrue
    monkeypatch.setattr(Scrubber, "data", lambda self, value: value)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "conformance.json").write_text(json.dumps(
        {"verdict": "conformant", "run": {}, "results": [{"id": "AUTH-007", "message": f"echo {CANARY}"}]}),
        encoding="utf-8")
    (reports / "junit.xml").write_text(f"<testsuite><system-out>{CANARY}</system-out></testsuite>",
                                       encoding="utf-8")
    assert finish(Config(api_key=CANARY), 0, reports) == EXIT_FAIL
    assert "SECRET LEAK" in capsys.readouterr().err
    assert files_with_secret(reports, CANARY) == {}
    doc = json.loads((reports / "conformance.json").read_text(encoding="utf-8"))
    assert doc["results"][0]["message"] == f"echo {MASK}"
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    assert "withheld" in junit and ET.fromstring(junit).tag == "testsuites"


def test_no_key_no_rescan_and_a_clean_report_dir_passes(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "conformance.json").write_text(json.dumps({"verdict": "conformant", "results": [], "run": {}}),
                                              encoding="utf-8")
    assert finish(Config(api_key=CANARY), 0, reports) == 0
    assert "SECRET LEAK" not in capsys.readouterr().err


# -- pytest's own channels: failure text, captured output, logs, skips, warnings -----------------------------------

CRASHING_TESTS = '''
import logging
import sys
import warnings

import pytest

from conformance.suite.judge import requirement


@requirement("BASIC-001")
def test_crash(req, conformance_run):
    key = conformance_run.config.api_key
    print(f"captured stdout with {key}")
    print(f"captured stderr with {key}", file=sys.stderr)
    logging.getLogger("client").warning("captured log with %s", key)
    # what an HTTP library's error looks like when the key rode in the URL
    raise RuntimeError(f"GET http://u:{key}@host/?key={key} failed")


@requirement("AUTH-001")
def test_skip(req, conformance_run):
    pytest.skip(f"skipped, key {conformance_run.config.api_key}")


@requirement("AUTH-002")
def test_warning(req, conformance_run):
    warnings.warn(f"warning naming {conformance_run.config.api_key}", stacklevel=1)
'''


def test_pytest_failure_text_captured_output_and_warnings_are_scrubbed(tmp_path: Path) -> None:
    (tmp_path / "test_crashing.py").write_text(CRASHING_TESTS, encoding="utf-8")
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SGP_", "PYTEST_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "conformance.plugin", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "--tb=long", "-l", "-rA", "-o", "junit_logging=all",
         "--sgp-base-url", "http://127.0.0.1:9", "--sgp-report-dir", str(reports),
         f"--junitxml={reports / 'junit.xml'}", f"--html={reports / 'conformance.html'}", "--self-contained-html"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**env, "SGP_API_KEY": CANARY})
    assert "1 failed" in done.stdout and "1 skipped" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    # the channels were there, masked
    assert "captured stdout with ***" in done.stdout and "warning naming ***" in done.stdout
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    assert "captured log with ***" in junit and "GET http://u:***@host/?key=*** failed" in junit
    assert files_with_secret(reports, CANARY) == {}
    assert secret_forms_found(done.stdout.encode(), CANARY) == []
    assert secret_forms_found(done.stderr.encode(), CANARY) == []


# -- a whole run against a server that echoes the key -------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server() -> Iterator[RunningServer]:
    server = serve(echo_app, CANARY)
    yield server
    server.stop()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_server_echoing_the_key_never_gets_it_into_any_output(
        workers: list[str], echo_server: RunningServer, tmp_path: Path) -> None:
    # a password in the base URL's userinfo: a second secret, which httpx also sends as Basic auth
    base_url = echo_server.base_url.replace("http://", f"http://user:{URL_CANARY}@")
    reports = tmp_path / "reports"
    # the most talkative pytest output there is: long tracebacks with locals, and every outcome summarised
    out = run_cli(["run", "--base-url", base_url, "--account-id", "acct-1", "--max-examples", "3",
                   "--tb=long", "-l", "-rA", *workers], reports, env={"SGP_API_KEY": CANARY})
    # it ran, and failed for the echo (AUTH-007), not for a leak the rescan found
    assert out.code == 1, out.output[-3000:]
    assert "SECRET LEAK" not in out.output
    auth = next(r for r in out.doc["results"] if r["id"] == "AUTH-007")
    assert auth["status"] == "fail" and auth["evidence"]
    written = sorted(p.name for p in reports.iterdir())
    assert written == ["conformance.html", "conformance.json", "junit.xml"]
    # the echoed key reached the evidence, masked: the report shows that something was echoed
    page = (reports / "conformance.html").read_text(encoding="utf-8")
    assert "x-echo-key: ***" in page
    # and so did the forms only the deep view finds (base64 with line breaks, encoded case variants, layered
    # escapes, fillers, full width ...): written masked, not caught afterwards by the rescan ("SECRET LEAK")
    assert "split-cgj" in page and "b64-mime-0" in (reports / "conformance.json").read_text(encoding="utf-8")
    for secret in (CANARY, URL_CANARY):
        assert files_with_secret(reports, secret) == {}
        assert secret_forms_found(out.stdout.encode(), secret) == []
        assert secret_forms_found(out.stderr.encode(), secret) == []
