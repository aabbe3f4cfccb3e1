"""`sgp-conformance proxy` with the official SDKs: through the proxy to the reference server they behave as
without it and the report says conformant; through the proxy to broken servers (tests/mutants.py) the
report shows each fault under its requirement, with its evidence; and no key reaches any output."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import jsonschema
import mutants
import pytest
from proxy_support import comparable, report_doc, running_proxy, sdk_client, sdk_create, statuses, terminal

from conformance.contract.profiles import get_profile
from conformance.server import ServerSettings, start_server

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "conformance-result.json").read_text())
CANARY = "sk-canary-proxy-7a1e5f03c9d2b846"


def outputs(service: object, tmp_path: Path) -> dict[str, str]:
    """Every file the proxy wrote, and its terminal, by name."""
    files = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()}
    files["terminal"] = "\n".join(terminal(service))  # type: ignore[arg-type]
    return files


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_sdks_behave_as_without_the_proxy_and_the_report_says_conformant(profile: str, tmp_path: Path) -> None:
    server = start_server(ServerSettings(profile=get_profile(profile), api_keys=(CANARY,)))
    try:
        direct = sdk_client(profile, server.base_url, CANARY)
        expected = [comparable(sdk_create(direct, profile, stream)) for stream in (False, True)]
        with running_proxy(
            server.base_url.removesuffix("/v1"), tmp_path, "--har", str(tmp_path / "traffic.har"), profile=profile
        ) as proxy:
            via = sdk_client(profile, proxy.client_base_url, CANARY)
            got = [comparable(sdk_create(via, profile, stream)) for stream in (False, True)]
            proxy.stop()
            code, summary = proxy.finish()
    finally:
        server.stop()
    # the same parsed completion and the same chunks, content and usage included
    assert got == expected
    assert len(got[1]) >= 3 and got[0]["choices"][0]["message"]["content"]
    assert code == 0, summary
    assert "CONFORMANT" in summary and "proxied: 2 exchange(s), 2 chat completion(s), 2 judged\n" in summary
    doc = report_doc(proxy)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["verdict"] == "conformant"
    judged = statuses(doc)
    assert judged["RESP-001"] == judged["STRM-001"] == judged["AUTH-007"] == "pass"
    # requirements that need requests of their own are not run, as under validate
    assert judged["AUTH-001"] == "not run" and judged["VAL-001"] == "not run"
    counts = doc["proxy"]["requirements"]
    assert counts["RESP-001"] == {"judged": 1, "failed": 0} and counts["STRM-010"] == {"judged": 1, "failed": 0}
    assert counts["AUTH-007"] == {"judged": 2, "failed": 0}
    assert doc["proxy"]["outcomes"] == {"judged": 2} and doc["requests"]["sent"] == 2
    lines = [line for line in terminal(proxy) if line.startswith("#")]
    assert len(lines) == 2 and all(line.endswith("  ok") for line in lines), lines
    assert " plain " in lines[0] and " stream " in lines[1] and " 200 openai/gpt-4o-mini " in lines[0]
    page = (tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8")
    assert "Proxied traffic" in page and "test_proxied[RESP-001]" in (tmp_path / "reports" / "junit.xml").read_text()
    for name, text in outputs(proxy, tmp_path).items():
        assert CANARY not in text, name
    har = json.loads((tmp_path / "traffic.har").read_text())
    assert len(har["log"]["entries"]) == 2


@pytest.mark.parametrize(
    ("profile", "plain_fault", "stream_fault"),
    [
        ("sgp", "resp_id_missing", "strm_chunk_id_missing"),
        ("openai", "resp_id_missing", "strm_ids_vary"),
    ],
)
def test_mutants_faults_are_reported_under_their_ids(
    profile: str, plain_fault: str, stream_fault: str, tmp_path: Path
) -> None:
    host = start_server(mutants.MutantHost(profile), profile=get_profile(profile))
    root = host.base_url.removesuffix("/v1")
    suffix = "/v1" if profile == "openai" else ""
    try:
        with running_proxy(root, tmp_path, profile=profile) as proxy:
            # one proxy in front of every variant: each SDK client's base URL names its variant
            plain = sdk_client(profile, f"{proxy.listen_url}/m/{plain_fault}{suffix}", mutants.KEY, mutants.ACCOUNT)
            streamed = sdk_client(profile, f"{proxy.listen_url}/m/{stream_fault}{suffix}", mutants.KEY, mutants.ACCOUNT)
            completion = sdk_create(plain, profile, stream=False)
            chunks = sdk_create(streamed, profile, stream=True)
            proxy.stop()
            code, summary = proxy.finish()
    finally:
        host.stop()
    # the SDKs still get their answers: the faults are in what the server sent, not in reaching it
    assert completion.choices and chunks
    plain_id, stream_id = mutants.MUTANTS[plain_fault].requirement, mutants.MUTANTS[stream_fault].requirement
    assert code == 1, summary
    doc = report_doc(proxy)
    judged = statuses(doc)
    assert judged[plain_id] == "fail" and judged[stream_id] == "fail", {k: v for k, v in judged.items() if v == "fail"}
    assert doc["proxy"]["requirements"][plain_id] == {"judged": 1, "failed": 1}
    assert doc["proxy"]["requirements"][stream_id] == {"judged": 1, "failed": 1}
    # the completion's fault is not blamed on the stream's rules, nor the other way round
    failed = {r for r, s in judged.items() if s == "fail"}
    assert not {r for r in failed - {plain_id} if not r.startswith("STRM-")}, failed
    result = next(r for r in doc["results"] if r["id"] == plain_id)
    assert result["evidence"]["scenarios"][0]["status"] == 200 and "broken on" not in result["message"]
    lines = [line for line in terminal(proxy) if line.startswith("#")]
    assert lines[0].endswith(f"FAIL {plain_id}") and f"FAIL {stream_id}" in lines[1], lines
    assert " plain " in lines[0] and " stream " in lines[1] and f"/m/{stream_fault}/" in lines[1]
    page = html.unescape((tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8"))
    # the evidence: a curl line to the upstream itself that reads the key from the environment
    assert re.search(
        rf"curl -sS -i -X POST http://127\.0\.0\.1:\d+/m/{plain_fault}/\S+ .*'\"\$\{{SGP_API_KEY\}}\"", page
    )
    assert f"x {plain_id}" in summary and "rerun" not in summary
    for name, text in outputs(proxy, tmp_path).items():
        assert mutants.KEY not in text, name


def test_an_echoed_key_fails_auth_007_and_reaches_no_output(tmp_path: Path) -> None:
    # the server echoes the key in a response header: the proxy judges it with the key it forwarded, then
    # keeps nothing of it (evidence, HAR, terminal, reports), in no encoding
    host = start_server(mutants.MutantHost("sgp"), profile=get_profile("sgp"))
    try:
        with running_proxy(
            host.base_url + "/m/auth_key_echoed_in_header", tmp_path, "--har", str(tmp_path / "traffic.har")
        ) as proxy:
            client = sdk_client("sgp", proxy.listen_url, mutants.KEY, mutants.ACCOUNT)
            sdk_create(client, "sgp", stream=False)
            sdk_create(client, "sgp", stream=True)
            proxy.stop()
            code, summary = proxy.finish()
    finally:
        host.stop()
    assert code == 1, summary
    doc = report_doc(proxy)
    assert statuses(doc)["AUTH-007"] == "fail" and doc["proxy"]["requirements"]["AUTH-007"]["failed"] == 2
    forms = {mutants.KEY, base64.b64encode(mutants.KEY.encode()).decode(), json.dumps(mutants.KEY)[1:-1]}
    for name, text in outputs(proxy, tmp_path).items():
        for form in forms:
            assert form not in text, f"{name} holds the key ({form[:6]}…)"
    har = json.loads((tmp_path / "traffic.har").read_text())
    headers = {h["name"]: h["value"] for h in har["log"]["entries"][0]["request"]["headers"]}
    echoed = {h["name"]: h["value"] for h in har["log"]["entries"][0]["response"]["headers"]}
    assert headers["x-api-key"] == "***" and echoed["x-debug-api-key"] == "***"
