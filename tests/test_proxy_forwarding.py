"""The proxy's forwarding: what reaches the upstream and the client is what was sent, and every way an exchange
can go wrong ends it with a named result while the proxy goes on serving."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from proxy_support import (
    MODEL,
    Echo,
    EndlessStream,
    Scripted,
    Slow,
    chunk,
    running_proxy,
    serve,
    terminal,
    wait_for_lines,
)
from starlette.middleware.gzip import GZipMiddleware

from conformance.contract.profiles import get_profile
from conformance.server import ServerSettings, start_server
from conformance.server.app import create_app

KEY = "sk-forwarding-test-5c2b9e41"
PATH = "/v4/beta/chat/completions"
SENT = b"\x00binary\xffbody"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}


def post(client: httpx.Client, url: str, **kw: object) -> httpx.Response:
    return client.post(url + PATH, json=BODY, headers={"x-api-key": KEY}, **kw)  # type: ignore[arg-type]


def test_requests_and_answers_pass_unchanged(tmp_path: Path) -> None:
    upstream = serve(Echo())
    try:
        with running_proxy(upstream.base_url + "/prefix", tmp_path) as proxy, httpx.Client(trust_env=False) as client:
            raw_path = "/a%2Fb/c?x=1&y=%20z"
            headers = {
                "x-api-key": KEY,
                "X-Custom": "kept",
                "authorization": "Bearer other-secret-value",
                "connection": "keep-alive, x-hop",
                "x-hop": "dropped",
                "te": "trailers",
            }
            answer = client.put(proxy.listen_url + raw_path, content=SENT, headers=headers)
            direct = client.put(upstream.base_url + "/prefix" + raw_path, content=SENT, headers=headers)
    finally:
        upstream.stop()
    seen = answer.json()
    assert seen["method"] == "PUT" and seen["raw_path"] == "/prefix/a%2Fb/c" and seen["query"] == "x=1&y=%20z"
    names = [k for k, _ in seen["headers"]]
    got = dict(seen["headers"])
    assert got["x-api-key"] == KEY and got["x-custom"] == "kept" and got["authorization"] == "Bearer other-secret-value"
    assert got["host"] == f"127.0.0.1:{upstream.port}"
    # hop-by-hop headers (and those Connection names) stay with the proxy; nothing is added
    assert not {"connection", "x-hop", "te"} & set(names)
    assert set(names) <= {
        "host",
        "x-api-key",
        "x-custom",
        "authorization",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
    }, names
    assert seen["body_bytes"] == len(SENT) and seen["body_head"] == SENT.decode("latin-1")
    # the answer's headers as the upstream sent them, in its order: no server or date header of the proxy's own
    assert [k for k, _ in answer.headers.multi_items()] == [k for k, _ in direct.headers.multi_items()]
    assert answer.headers["x-upstream"] == "echo" and "Mon, 01 Jan 2024 00:00:00 GMT" in answer.headers.get_list("date")
    assert answer.headers["set-cookie"] == "session=abc123secretcookie"
    # what the upstream saw is what it sees without the proxy, but for the hop-by-hop headers
    hop = {"connection", "x-hop", "te"}
    assert [[k.lower(), v] for k, v in seen["headers"]] == [
        [k.lower(), v] for k, v in direct.json()["headers"] if k.lower() not in hop
    ]
    line = wait_for_lines(proxy, 1)[0]
    assert line.startswith("#1 PUT /a%2Fb/c?x=1&y=%20z 200 - plain") and line.endswith("forwarded (not judged)")


def test_a_gzip_answer_reaches_the_client_compressed_and_is_judged_decoded(tmp_path: Path) -> None:
    settings = ServerSettings(profile=get_profile("sgp"), api_keys=(KEY,))
    upstream = start_server(GZipMiddleware(create_app(settings), minimum_size=0), profile=settings.profile)
    try:
        with running_proxy(upstream.base_url, tmp_path) as proxy, httpx.Client(trust_env=False) as client:
            direct = post(client, upstream.base_url)
            proxied = client.post(proxy.listen_url + PATH, json=BODY, headers={"x-api-key": KEY})
            with client.stream("POST", proxy.listen_url + PATH, json=BODY, headers={"x-api-key": KEY}) as answer:
                raw = b"".join(answer.iter_raw())
            lines = wait_for_lines(proxy, 2)
            tally = proxy.tally.snapshot()
    finally:
        upstream.stop()
    assert proxied.headers["content-encoding"] == direct.headers["content-encoding"] == "gzip"
    assert proxied.json()["choices"] == direct.json()["choices"]
    # the bytes on the wire are the upstream's gzip stream, not a re-encoding
    assert raw[:2] == b"\x1f\x8b" and json.loads(gzip.decompress(raw))["object"] == "chat.completion"
    assert all(line.endswith("  ok") for line in lines), lines
    assert tally.requirements["RESP-001"].judged == 2 and tally.requirements["RESP-001"].failed == 0


def test_an_unreachable_upstream_gets_502_and_the_proxy_serves_once_it_is_back(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ServerSettings(profile=get_profile("sgp"), api_keys=(KEY,))
    with running_proxy(f"http://127.0.0.1:{port}", tmp_path) as proxy, httpx.Client(trust_env=False) as client:
        refused = post(client, proxy.listen_url)
        upstream = start_server(settings, port=port)
        try:
            served = post(client, proxy.listen_url)
        finally:
            upstream.stop()
        lines = wait_for_lines(proxy, 2)
    assert refused.status_code == 502 and refused.headers["x-sgp-conformance-proxy"] == "bad-gateway"
    # in the profile's error shape, so an SDK shows the message
    assert refused.json()["detail"].startswith(
        f"sgp-conformance proxy: the upstream http://127.0.0.1:{port} did not "
        f"answer: connection refused by 127.0.0.1:{port}"
    )
    assert served.status_code == 200 and served.json()["object"] == "chat.completion"
    assert "502" in lines[0] and "upstream unreachable: connection refused" in lines[0] and "(not judged)" in lines[0]
    assert lines[1].endswith("  ok")


def test_the_502_of_the_openai_profile_is_an_openai_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_proxy(f"http://127.0.0.1:{port}", tmp_path, profile="openai") as proxy:
        answer = httpx.post(proxy.listen_url + "/v1/chat/completions", json=BODY, trust_env=False)
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "bad_gateway"


def test_a_client_leaving_mid_stream_ends_the_exchange_and_the_upstream_request(tmp_path: Path) -> None:
    endless = EndlessStream()
    upstream = serve(endless)
    try:
        with running_proxy(upstream.base_url, tmp_path) as proxy, httpx.Client(trust_env=False) as client:
            with client.stream(
                "POST", proxy.listen_url + PATH, json={**BODY, "stream": True}, headers={"x-api-key": KEY}
            ) as stream:
                first = next(stream.iter_raw())
            # the proxy drops its upstream request: the upstream sees its client go
            assert endless.closed.wait(60)
            line = wait_for_lines(proxy, 1)[0]
            after = client.get(proxy.listen_url + "/healthz")
    finally:
        upstream.stop()
    assert first.startswith(b"data: ")
    assert "client disconnected" in line and " stream " in line and "judged as far as it arrived" in line, line
    # the proxy goes on serving
    assert after.status_code == 200


def test_a_client_giving_up_before_the_answer_ends_the_upstream_request(tmp_path: Path) -> None:
    slow = Slow()
    upstream = serve(slow)
    try:
        with running_proxy(upstream.base_url, tmp_path) as proxy, httpx.Client(trust_env=False, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                post(client, proxy.listen_url)
            # the upstream is not left working for nobody
            assert slow.gone.wait(60)
            line = wait_for_lines(proxy, 1)[0]
    finally:
        upstream.stop()
    assert "client disconnected: the client disconnected before the upstream answered (not judged)" in line, line


def test_an_endless_stream_is_judged_at_the_cap_and_still_forwarded(tmp_path: Path) -> None:
    upstream = serve(EndlessStream(gap=0.001, size=1000))
    try:
        with (
            running_proxy(upstream.base_url, tmp_path, "--max-body-bytes", "20000") as proxy,
            httpx.Client(trust_env=False) as client,
        ):
            received = 0
            with client.stream(
                "POST", proxy.listen_url + PATH, json={**BODY, "stream": True}, headers={"x-api-key": KEY}
            ) as stream:
                for data in stream.iter_raw():
                    received += len(data)
                    if received > 200_000:
                        # the exchange was judged while its stream went on
                        line = wait_for_lines(proxy, 1)[0]
                        break
    finally:
        upstream.stop()
    assert received > 200_000
    assert "(still streaming)" in line and "stream recorded up to the cap" in line, line


def test_large_bodies_are_forwarded_whole_and_not_judged(tmp_path: Path) -> None:
    big = json.dumps({"model": MODEL, "pad": "x" * 10_000_000}).encode()
    answer_body = json.dumps({"id": "chatcmpl-1", "pad": "y" * 10_000_000}).encode()
    upstreams = [
        serve(Echo()),
        serve(
            Scripted(
                200,
                [(b"content-type", b"application/json")],
                [answer_body[i : i + 65536] for i in range(0, len(answer_body), 65536)],
            )
        ),
    ]
    try:
        with running_proxy(upstreams[0].base_url, tmp_path) as proxy, httpx.Client(trust_env=False) as client:
            echoed = client.post(proxy.listen_url + PATH, content=big, headers={"content-type": "application/json"})
        with running_proxy(upstreams[1].base_url, tmp_path) as second, httpx.Client(trust_env=False) as client:
            fetched = post(client, second.listen_url)
            lines = wait_for_lines(proxy, 1) + wait_for_lines(second, 1)
    finally:
        for upstream in upstreams:
            upstream.stop()
    assert echoed.json()["body_bytes"] == len(big)
    assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(answer_body).digest()
    assert "request too large to judge" in lines[0] and "(not judged)" in lines[0]
    assert "response too large to judge" in lines[1] and "(not judged)" in lines[1]


def test_an_upstream_breaking_off_mid_answer_is_passed_on_and_named(tmp_path: Path) -> None:
    chunks = [chunk("one"), chunk("two"), chunk("three", "stop")]
    upstream = serve(Scripted(200, [(b"content-type", b"text/event-stream")], chunks, fail_after=2))
    try:
        with running_proxy(upstream.base_url, tmp_path) as proxy, httpx.Client(trust_env=False) as client:
            got = b""
            with (
                pytest.raises(httpx.RemoteProtocolError),
                client.stream(
                    "POST", proxy.listen_url + PATH, json={**BODY, "stream": True}, headers={"x-api-key": KEY}
                ) as s,
            ):
                for data in s.iter_raw():
                    got += data
            line = wait_for_lines(proxy, 1)[0]
            after = client.get(proxy.listen_url + "/healthz")
    finally:
        upstream.stop()
    # the client sees the break as it would without the proxy, after the chunks that did arrive
    assert got == chunks[0] + chunks[1]
    assert "upstream reset mid-answer" in line, line
    assert after.status_code == 200


def test_report_every_n_exchanges_asks_for_reports(tmp_path: Path) -> None:
    upstream = start_server(ServerSettings(profile=get_profile("sgp"), api_keys=(KEY,)))
    try:
        with (
            running_proxy(upstream.base_url, tmp_path, "--report-every", "2") as proxy,
            httpx.Client(trust_env=False) as client,
        ):
            post(client, proxy.listen_url)
            wait_for_lines(proxy, 1)
            first = proxy.report_due.is_set()
            post(client, proxy.listen_url)
            wait_for_lines(proxy, 2)
            deadline = time.monotonic() + 5
            while not proxy.report_due.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        upstream.stop()
    assert not first and proxy.report_due.is_set()
    assert terminal(proxy)[0].startswith("#1 ")
