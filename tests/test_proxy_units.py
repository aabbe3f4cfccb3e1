"""The proxy's parts on their own: bounded recording and decoding, the keyless copy, the HAR writer, the
tally's bounds, the judging queue's bound, and the words of a requirement no exchange could judge."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path

import pytest

from conformance.contract.profiles import get_profile
from conformance.proxy import judge, recording, worker
from conformance.proxy.har import HarError, HarWriter
from conformance.proxy.options import parse_upstream
from conformance.proxy.recording import Capped, Observed
from conformance.proxy.sanitize import KEY_STANDIN, credentials, keyless
from conformance.proxy.terminal import Printer, printable
from conformance.redact import MASK
from conformance.transport.exchange import Exchange, RequestSpec, Response

SGP = get_profile("sgp")
KEY = "sk-unit-canary-0b9f4e7a61"
PATH = "/v4/beta/chat/completions"
REQUEST = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": int(time.time()),
    "model": "openai/gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def observed(
    body: dict[str, object] | None = None,
    number: int = 1,
    headers: list[tuple[str, str]] | None = None,
    **fields: object,
) -> Observed:
    raw = json.dumps(body if body is not None else COMPLETION).encode()
    base: dict[str, object] = {
        "request_body": json.dumps(REQUEST).encode(),
        "status": 200,
        "response_headers": headers or [("content-type", "application/json"), ("x-request-id", "req_1")],
        "response_body": raw,
    }
    base.update(fields)
    return Observed(
        number,
        time.time(),
        "POST",
        f"http://upstream{PATH}",
        PATH,
        True,
        [("x-api-key", KEY), ("content-type", "application/json")],
        **base,
    )  # type: ignore[arg-type]


def test_capped_keeps_up_to_its_limit_and_counts_the_rest() -> None:
    capped = Capped(10)
    for piece in (b"abcdef", b"ghijkl", b"mn"):
        capped.add(piece)
    assert capped.bytes() == b"abcdefghij" and capped.seen == 14 and capped.over


def test_a_gzip_body_is_decoded_within_the_limit() -> None:
    small = observed(
        response_body=gzip.compress(json.dumps(COMPLETION).encode()),
        headers=[("content-type", "application/json"), ("content-encoding", "gzip")],
    )
    body, problem = small.decoded_body(1_000_000)
    assert problem is None and json.loads(body) == COMPLETION
    # 50 MB of zeros in a few kilobytes: decoding stops at the limit instead of filling memory
    bomb = observed(
        response_body=gzip.compress(b"0" * 50_000_000),
        headers=[("content-type", "application/json"), ("content-encoding", "gzip")],
    )
    body, problem = bomb.decoded_body(1_000_000)
    assert len(body) == 1_000_000 and problem == "the decoded body is over 1000000 bytes"
    other = observed(headers=[("content-type", "application/json"), ("content-encoding", "br")])
    assert other.decoded_body(1000)[1] == "content-encoding 'br' is not decoded by the proxy"


def test_the_keyless_copy_holds_no_credential_in_any_form() -> None:
    echoed = json.dumps({"debug": f"got {KEY}", "b64": base64.b64encode(f"user:{KEY}".encode()).decode()}).encode()
    spec = RequestSpec(
        "proxied #1",
        "POST",
        {"x-api-key": KEY, "Authorization": f"Bearer {KEY}-2", "cookie": "sid=cookie-secret-value", "x-trace": "plain"},
        json.dumps({**REQUEST, "user": KEY}).encode(),
        {**REQUEST, "user": KEY},
    )
    response = Response(200, [("content-type", "application/json"), ("x-echo", KEY), ("set-cookie", "a=b")], echoed)
    exchange = Exchange("proxied #1", f"http://upstream{PATH}?api_key=query-secret-1", spec, response)
    secrets = credentials(exchange, SGP)
    assert {KEY, f"{KEY}-2", "sid=cookie-secret-value", "query-secret-1"} <= set(secrets)
    kept = keyless(exchange, SGP, secrets)
    text = json.dumps(kept.to_wire(), default=lambda b: b.decode("latin-1"))
    for secret in (KEY, "cookie-secret-value", "query-secret-1", base64.b64encode(KEY.encode()).decode()[4:-4]):
        assert secret not in text
    headers = kept.request.headers
    assert headers["x-api-key"] == KEY_STANDIN and headers["Authorization"] == f"Bearer {MASK}"
    assert headers["cookie"] == MASK and headers["x-trace"] == "plain"
    assert dict(kept.response.headers)["set-cookie"] == MASK and kept.request.params["user"] == MASK  # type: ignore[union-attr,index]


def test_the_har_file_is_valid_after_every_entry_and_a_foreign_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "traffic.har"
    writer = HarWriter(path)
    assert json.loads(path.read_text())["log"]["entries"] == []
    exchange, _ = observed().to_exchange(10_000)
    kept = keyless(exchange, SGP, credentials(exchange, SGP))
    for count in (1, 2, 3):
        writer.add(kept, time.time(), recording.JUDGED)
        entries = json.loads(path.read_text())["log"]["entries"]
        assert len(entries) == count and entries[-1]["comment"] == "judged"
    writer.close()
    headers = {h["name"]: h["value"] for h in json.loads(path.read_text())["log"]["entries"][0]["request"]["headers"]}
    assert headers["x-api-key"] == MASK and KEY not in path.read_text()
    # a file an earlier proxy wrote may be replaced; another one may not
    HarWriter(path).close()
    foreign = tmp_path / "browser.har"
    foreign.write_text('{"log": {"creator": {"name": "Firefox"}}}')
    with pytest.raises(HarError, match="was not written by sgp-conformance proxy"):
        HarWriter(foreign)
    assert foreign.read_text() == '{"log": {"creator": {"name": "Firefox"}}}'


def test_the_tally_stays_bounded_whatever_the_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "EVIDENCE_BUDGET_BYTES", 1_000)
    tally = judge.Tally(SGP, time.time())
    requirements = judge.requirements_for(SGP)
    broken = {k: v for k, v in COMPLETION.items() if k != "id"}
    for number in range(1, 301):
        judgement = judge.judge(observed(broken, number), SGP, 1_000_000, requirements)
        tally.add(judgement, f"#{number} line")
    counted = tally.requirements["RESP-001"]
    assert counted.judged == counted.failed == 300
    assert len(counted.violations) == judge.MAX_VIOLATIONS
    # past the evidence budget (two exchanges of about 400 bytes fit), failures keep their counts and violations
    assert len(counted.evidence) == 2 and tally.evidence_bytes <= 1_000 and tally.evidence_dropped > 0
    assert list(tally.recent) == [f"#{n} line" for n in range(281, 301)]
    section = tally.section("http://upstream", "http://127.0.0.1:1", {})
    assert section["requirements"]["RESP-001"] == {"judged": 300, "failed": 300}
    assert section["exchanges"] == {
        "total": 300,
        "chat_completions": 300,
        "judged": 300,
        "streams": 0,
        "other_paths": 0,
    }


def test_a_judging_backlog_drops_bodies_not_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "MAX_QUEUE_BYTES", 1_000)
    tally = judge.Tally(SGP, time.time())
    queue = worker.JudgeWorker(tally, SGP, 1_000_000, Printer(quiet=True))
    big = observed(response_body=b"x" * 5_000)
    queue.submit(big)
    assert big.outcome == recording.BACKLOG and big.size == 0
    queue.start()
    queue.stop()
    assert tally.outcomes[recording.BACKLOG] == 1 and tally.judged == 0


def test_a_requirement_no_exchange_could_judge_says_what_it_would_need() -> None:
    assert judge.why_not_judged_here("STRM-016") == (
        "no proxied exchange was a streamed 200 response with stream_options.include_usage in its request"
    )
    assert judge.why_not_judged_here("HDR-003").startswith("no proxied exchange was a non-streaming 200 response")
    assert "HAR" not in judge.why_not_judged_here("HDR-003") and "(" not in judge.why_not_judged_here("SEM-004")
    assert judge.why_not_judged_here("PROP-002") == "no answer of the upstream was proxied"


def test_terminal_text_is_one_printable_line() -> None:
    assert printable("model\x1b[31mred\nnext", 40) == "model?[31mred?next"
    assert printable("x" * 100, 10) == "x" * 9 + "…"


def test_the_upstream_keeps_its_path_prefix() -> None:
    upstream = parse_upstream("https://api.example.com:8443/gateway/")
    assert upstream.origin == "https://api.example.com:8443" and upstream.prefix == "/gateway"
    assert parse_upstream("http://[::1]:9000").origin == "http://[::1]:9000"


def test_the_stop_handler_only_records_the_signal_and_a_second_one_interrupts() -> None:
    """The handler runs between two bytecodes of the main thread, maybe inside `Event.wait` with the Event's
    lock held: it must take no lock (it once set an Event, and a SIGTERM then hung the proxy for good). A
    pending stop makes `wait` return at once, whatever the length asked for."""
    import signal as signals

    from conformance.proxy.cli import Stop

    stop = Stop()
    assert not stop.requested and stop.wait(0) is False
    stop(signals.SIGTERM, None)
    assert stop.requested and stop.signal == "SIGTERM" and stop.wait(3600) is True
    with pytest.raises(KeyboardInterrupt):
        stop(signals.SIGINT, None)
