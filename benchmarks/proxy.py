"""Benchmarks of `sgp-conformance proxy` on loopback; prints figures.

    python benchmarks/proxy.py [--requests 500] [--rounds 50] [--streams 50]

Every party is its own process, as in use: the upstream, the proxy (`sgp-conformance proxy`, judging as
it goes) and this script, the client.

1. overhead per non-streaming request: the reference server (`sgp-conformance serve`) called directly and
   through the proxy, alternately, by one kept-alive httpx client; median and p95 of each, and of the
   per-pair difference (goal: at most 2 ms median added);
2. streams: an SSE upstream (this script with --sse-upstream) sends a chunk at once and another 50 ms
   later, stamped with the time it was sent. Time to the first event, from sending the request, direct and
   through the proxy; and the time from the stamped chunk's sending to its arrival at the client, direct
   and through the proxy (goal: the proxy passes an event on within 5 ms of its arrival);
3. `--streams` concurrent streams through the proxy, each 20 chunks 100 ms apart: how many complete with
   every chunk, the wall time against one stream's 2 s, and the proxy's resident memory before and after.
Then the proxies are stopped with SIGTERM: their exit codes and summaries show that the judging kept up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
KEY = "bench-proxy-key-0001"
MODEL = "openai/gpt-4o-mini"
PATH = "/v4/beta/chat/completions"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Count from 1 to 5."}], "max_tokens": 16}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


@contextmanager
def process(cmd: list[str], ready: str, out: Any = subprocess.DEVNULL) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(ready, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def proxy_cmd(upstream: str, port: int, report_dir: Path) -> list[str]:
    return [
        str(BIN / "sgp-conformance"),
        "proxy",
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--report-dir",
        str(report_dir),
        "--quiet",
    ]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


# -- 1. overhead per non-streaming request --------------------------------------------------------------


def overhead(direct: str, proxied: str, n: int) -> dict[str, float]:
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    raw = json.dumps(BODY).encode()
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    with httpx.Client(timeout=10) as client:
        for _ in range(20):  # warm both paths: connections, the servers' first-call costs
            for url in (direct, proxied):
                client.post(url + PATH, content=raw, headers=headers).raise_for_status()
        for _ in range(n):
            for name, url in (("direct", direct), ("proxied", proxied)):
                started = time.perf_counter()
                client.post(url + PATH, content=raw, headers=headers).raise_for_status()
                times[name].append((time.perf_counter() - started) * 1000)
    added = [p - d for p, d in zip(times["proxied"], times["direct"], strict=True)]
    out = {}
    for name, values in (*times.items(), ("added", added)):
        out[f"{name}_median"] = statistics.median(values)
        out[f"{name}_p95"] = pct(values, 0.95)
    return out


# -- 2. streams: first event, and an event's pass-through delay ------------------------------------------


async def one_stream(client: httpx.AsyncClient, url: str, query: str) -> dict[str, Any]:
    """Send a stream request; (ms to the first event, per later stamped chunk the ms from its sending to its
    arrival here, events received)."""
    started = time.perf_counter()
    first: float | None = None
    delays: list[float] = []
    events = 0
    buffer = b""
    async with client.stream(
        "POST", f"{url}{PATH}?{query}", json={**BODY, "stream": True}, headers={"x-api-key": KEY}
    ) as response:
        async for data in response.aiter_raw():
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                arrived = time.time()
                if first is None:
                    first = (time.perf_counter() - started) * 1000
                events += 1
                payload = json.loads(event.removeprefix(b"data: "))
                stamp = payload["choices"][0]["delta"].get("content") or ""
                if stamp.startswith("t="):
                    delays.append((arrived - float(stamp[2:])) * 1000)
    return {"first_ms": first, "delays": delays, "events": events}


async def streams(direct: str, proxied: str, rounds: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"direct_first": [], "proxied_first": [], "direct_pass": [], "proxied_pass": []}
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(3):
            await one_stream(client, direct, "events=2&gap_ms=10")
            await one_stream(client, proxied, "events=2&gap_ms=10")
        for _ in range(rounds):
            for name, url in (("direct", direct), ("proxied", proxied)):
                got = await one_stream(client, url, "events=2&gap_ms=50")
                out[f"{name}_first"].append(got["first_ms"])
                out[f"{name}_pass"] += got["delays"]
    return {
        f"{k}_{stat}": fn(v)
        for k, v in out.items()
        for stat, fn in (("median", statistics.median), ("p95", lambda v: pct(v, 0.95)), ("max", max))
    }


async def concurrent(proxied: str, count: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(one_stream(client, proxied, "events=20&gap_ms=100") for _ in range(count)), return_exceptions=True
        )
        wall = time.perf_counter() - started
    complete = sum(1 for r in results if isinstance(r, dict) and r["events"] == 20)
    errors = [repr(r) for r in results if isinstance(r, BaseException)][:3]
    return {"complete": complete, "wall_s": wall, "errors": errors}


# -- the SSE upstream (a process of its own) --------------------------------------------------------------


def sse_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        while (await receive()).get("more_body"):
            pass
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if "=" in p)
        events, gap = int(query.get("events", "2")), int(query.get("gap_ms", "50")) / 1000
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"x-request-id", b"req_bench")],
            }
        )
        for i in range(events):
            if i:
                await asyncio.sleep(gap)
            delta: dict[str, Any] = {"content": f"t={time.time():.6f}"}
            if i == 0:
                delta = {"role": "assistant", "content": ""}
            chunk = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": "stop" if i == events - 1 else None}
                ],
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def serve_sse(port: int) -> None:
    import uvicorn

    uvicorn.run(sse_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def print_overhead(o: dict[str, float], n: int) -> None:
    print(f"1. non-streaming, {n} requests each way, alternating:")
    print(f"   direct   median {o['direct_median']:.2f} ms, p95 {o['direct_p95']:.2f} ms")
    print(f"   proxied  median {o['proxied_median']:.2f} ms, p95 {o['proxied_p95']:.2f} ms")
    print(f"   added    median {o['added_median']:.2f} ms, p95 {o['added_p95']:.2f} ms  (goal: median <= 2 ms)")


def print_streams(s: dict[str, float], rounds: int) -> None:
    print(f"2. streams, {rounds} each way (first chunk at once, the stamped one 50 ms later):")
    print(
        f"   first event       direct median {s['direct_first_median']:.2f} ms (p95 {s['direct_first_p95']:.2f}), "
        f"proxied median {s['proxied_first_median']:.2f} ms (p95 {s['proxied_first_p95']:.2f})"
    )
    print(
        f"   event sent->here  direct median {s['direct_pass_median']:.2f} ms (p95 {s['direct_pass_p95']:.2f}), "
        f"proxied median {s['proxied_pass_median']:.2f} ms (p95 {s['proxied_pass_p95']:.2f})"
    )
    added = s["proxied_pass_median"] - s["direct_pass_median"]
    print(
        f"   the proxy adds {added:.2f} ms to an event (median; goal: passed on within 5 ms of its arrival); "
        f"slowest event {s['proxied_pass_max']:.2f} ms proxied, {s['direct_pass_max']:.2f} ms direct"
    )


def print_concurrent(c: dict[str, Any], count: int, before_kb: int, after_kb: int) -> None:
    errors = f"; errors: {c['errors']}" if c["errors"] else ""
    print(
        f"3. {count} concurrent streams through the proxy (20 chunks, 100 ms apart): {c['complete']} of {count} "
        f"complete with every chunk in {c['wall_s']:.2f} s (one stream: 1.9 s); proxy memory "
        f"{before_kb / 1024:.0f} MB before, {after_kb / 1024:.0f} MB after{errors}"
    )


def print_stopped(name: str, proc: subprocess.Popen[bytes]) -> None:
    code = stop(proc)
    out = proc.stdout.read().decode() if proc.stdout else ""
    traffic = next((line for line in out.splitlines() if line.startswith("proxied:")), "?")
    verdict = next((line for line in out.splitlines() if line.startswith("sgp-conformance: ")), "?")
    print(f"   {name} proxy after SIGTERM: exit {code}; {traffic.strip()}; {verdict.strip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--sse-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sse_upstream:
        serve_sse(args.sse_upstream)
        return 0
    ports = [free_port() for _ in range(4)]
    reference, sse = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    via_a, via_b = f"http://127.0.0.1:{ports[2]}", f"http://127.0.0.1:{ports[3]}"
    os.environ["SGP_API_KEY"] = KEY  # the reference server's key
    serve = [str(BIN / "sgp-conformance"), "serve", "--port", str(ports[0]), "--quiet"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(serve, reference + "/healthz"),
        process([sys.executable, __file__, "--sse-upstream", str(ports[1])], sse),
        process(proxy_cmd(reference, ports[2], Path(tmp) / "a"), via_a + "/healthz", subprocess.PIPE) as proxy_a,
        process(proxy_cmd(sse, ports[3], Path(tmp) / "b"), via_b + "/", subprocess.PIPE) as proxy_b,
    ):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"sgp-conformance proxy benchmarks (loopback, {os.cpu_count()} cores, load average {load:.1f}, Python "
            f"{sys.version.split()[0]}, each party its own process)"
        )
        print_overhead(overhead(reference, via_a, args.requests), args.requests)
        print_streams(asyncio.run(streams(sse, via_b, args.rounds)), args.rounds)
        before = rss_kb(proxy_b.pid)
        held = asyncio.run(concurrent(via_b, args.streams))
        time.sleep(1.0)
        print_concurrent(held, args.streams, before, rss_kb(proxy_b.pid))
        print_stopped("non-streaming", proxy_a)
        print_stopped("streaming", proxy_b)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
