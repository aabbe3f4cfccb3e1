"""Servers that misbehave at the transport level, for proving the suite survives them.

Each is a small raw-socket server on 127.0.0.1 (never any other address) that speaks just enough HTTP/1.1
to misbehave in one way: never answer, answer too late, dribble, reset mid-body or mid-stream, answer
with an HTML 502 page, a 10 MB body or an event stream that never ends. Every loop is bounded: a server
stops by itself after `lifetime` seconds even if nobody calls stop(), and every wait inside a handler
wakes up when it stops, so a test that forgets a server cannot hang the run.

    with misbehaving.serve("never_answer") as server:
        run_cli(["run", "--base-url", server.base_url, ...])
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

HOST = "127.0.0.1"
# a name under the reserved .invalid TLD (RFC 6761): it never resolves, anywhere
UNRESOLVABLE_URL = "http://sgp-conformance.invalid"
# the largest request a handler reads: the suite sends small bodies, anything bigger is not ours
MAX_REQUEST_BYTES = 1_000_000
HUGE_BODY_BYTES = 10 * 1024 * 1024
# how long a server lives at most, whatever its handlers do
DEFAULT_LIFETIME = 60.0
# the slow server answers this long after the request (longer than any --timeout the tests use)
SLOW_DELAY = 5.0
# the dribbling server sends one byte this often: each read is quick, the whole body never ends in time
TRICKLE_INTERVAL = 0.05
HTML_502 = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
            b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n")
COMPLETION = {"id": "chatcmpl-fixed", "object": "chat.completion", "created": 1_700_000_000,
              "model": "openai/gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "1 2 3"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
CHUNK = {"id": "chatcmpl-endless", "object": "chat.completion.chunk", "created": 1_700_000_000,
         "model": "openai/gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"content": " more"}, "finish_reason": None}]}


class Connection:
    """One accepted connection, with waits that end when the server stops."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping

    def read_request(self) -> bytes | None:
        """The request head and body (by Content-Length), or None if the client went away first."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv()
            if not chunk:
                return None
            data += chunk
            if len(data) > MAX_REQUEST_BYTES:
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = min(int(value.strip() or 0), MAX_REQUEST_BYTES)
        while len(body) < length:
            chunk = self._recv()
            if not chunk:
                return None
            body += chunk
        return head + b"\r\n\r\n" + body

    def _recv(self) -> bytes:
        # short socket timeouts, so a stopping server is noticed even while a client sends nothing
        while not self.stopping.is_set():
            try:
                return self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
        return b""

    def send(self, data: bytes) -> bool:
        """Send everything; False once the client has gone (a client that cuts a body closes early)."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def wait(self, seconds: float) -> bool:
        """Sleep, unless the server stops first; True if the full time passed."""
        return not self.stopping.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN: what a crashed process or a killed proxy looks like."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def head(status: str, content_type: str, length: int | None = None, **extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-type: {content_type}", "connection: close"]
    lines.append(f"content-length: {length}" if length is not None else "transfer-encoding: chunked")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"


def sse_chunk() -> bytes:
    return f"data: {json.dumps(CHUNK)}\n\n".encode()


# --- the behaviours: one function per way of misbehaving, called once per accepted connection --------


def never_answer(conn: Connection) -> None:
    """Accept and read the request, then say nothing until the server stops."""
    if conn.read_request() is not None:
        conn.wait(DEFAULT_LIFETIME)


def slow(conn: Connection) -> None:
    """Answer correctly-framed JSON, but only after SLOW_DELAY seconds."""
    if conn.read_request() is None or not conn.wait(SLOW_DELAY):
        return
    body = b'{"detail": "sorry, that took a while"}'
    conn.send(head("200 OK", "application/json", len(body)) + body)


def trickle(conn: Connection) -> None:
    """Answer at once, then send the body one byte at a time: no single read times out, the whole never ends."""
    if conn.read_request() is None:
        return
    body = b'{"id": "chatcmpl-slow", "choices": []}' * 10_000
    if not conn.send(head("200 OK", "application/json", len(body))):
        return
    for byte in body:
        if not conn.wait(TRICKLE_INTERVAL) or not conn.send(bytes([byte])):
            return


def reset_mid_body(conn: Connection) -> None:
    """Promise a 1000-byte JSON body, send 100 bytes of it, then reset the connection."""
    if conn.read_request() is not None:
        cut_body(conn)


def cut_body(conn: Connection) -> None:
    conn.send(head("200 OK", "application/json", 1000) + b'{"id": "chatcmpl-reset", "choices": [' + b" " * 62)
    conn.wait(0.05)
    conn.reset()


def asks_stream(request: bytes) -> bool:
    return b'"stream": true' in request or b'"stream":true' in request


def answer_json(conn: Connection) -> None:
    """The same fixed completion for every request, whatever it asked."""
    body = json.dumps(COMPLETION).encode()
    conn.send(head("200 OK", "application/json", len(body)) + body)


def reset_mid_stream(conn: Connection) -> None:
    """Start an event stream (or a JSON answer for a non-stream request), then reset after two events."""
    request = conn.read_request()
    if request is None:
        return
    if not asks_stream(request):
        cut_body(conn)
        return
    conn.send(head("200 OK", "text/event-stream"))
    for _ in range(2):
        conn.send(chunked(sse_chunk()))
        conn.wait(0.02)
    conn.reset()


def html_502(conn: Connection) -> None:
    """What a gateway in front of a dead backend answers: 502 with an HTML page."""
    if conn.read_request() is not None:
        conn.send(head("502 Bad Gateway", "text/html", len(HTML_502), server="nginx") + HTML_502)


def huge_body(conn: Connection) -> None:
    """A 200 JSON answer of 10 MB (a JSON array of numbers), sent as fast as the client reads it."""
    if conn.read_request() is None:
        return
    if not conn.send(head("200 OK", "application/json", HUGE_BODY_BYTES)):
        return
    piece = b"[" + b"0," * 32767 + b"0]"  # 65536 bytes
    sent = 0
    while sent < HUGE_BODY_BYTES and not conn.stopping.is_set():
        part = piece[: HUGE_BODY_BYTES - sent] if sent else piece
        if not conn.send(part):
            return  # the client stopped reading at its size limit and closed
        sent += len(part)


def endless_sse(conn: Connection) -> None:
    """An event stream that never ends, for stream requests; a fixed JSON completion for the others."""
    request = conn.read_request()
    if request is None:
        return
    if not asks_stream(request):
        answer_json(conn)
        return
    if not conn.send(head("200 OK", "text/event-stream", cache_control="no-cache")):
        return
    while conn.send(chunked(sse_chunk())):
        if not conn.wait(0.02):
            return


def plain_http(conn: Connection) -> None:
    """Answer whatever arrives with a plain-HTTP 400 at once, as an HTTP server does to a TLS ClientHello."""
    if conn._recv():
        body = b"Bad Request"
        conn.send(head("400 Bad Request", "text/plain", len(body)) + body)


# --- hostile targets (tests/test_attacks.py): never an HTTP answer, or an answer built to break a parser --------


def close_at_once(conn: Connection) -> None:
    """Accept the connection and close it before reading or answering anything."""
    conn.sock.close()


def reset_at_once(conn: Connection) -> None:
    """Read the request, then reset the connection (TCP RST) without a byte of answer."""
    if conn.read_request() is not None:
        conn.reset()


def banner(conn: Connection) -> None:
    """Speak another protocol: an SSH banner instead of an HTTP status line."""
    conn.send(b"SSH-2.0-OpenSSH_9.6\r\n")
    conn.read_request()
    conn.wait(0.2)


def huge_header(conn: Connection) -> None:
    """A status line, then one header of 1 MB."""
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 1_000_000 + b"\r\ncontent-length: 2\r\n\r\n{}")


def many_headers(conn: Connection) -> None:
    """A status line, then 20,000 headers."""
    if conn.read_request() is not None:
        lines = b"".join(b"x-h%d: v\r\n" % i for i in range(20_000))
        conn.send(b"HTTP/1.1 200 OK\r\n" + lines + b"content-length: 2\r\n\r\n{}")


def bare_cr(conn: Connection) -> None:
    """Header lines ended by a bare CR, which HTTP/1.1 forbids."""
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\rcontent-type: application/json\rcontent-length: 2\r\r{}")


DEEP_NESTING = 100_000


def deep_json(conn: Connection) -> None:
    """A 200 JSON answer nested DEEP_NESTING arrays deep (valid JSON, past any recursive parser)."""
    if conn.read_request() is not None:
        body = b"[" * DEEP_NESTING + b"]" * DEEP_NESTING
        conn.send(head("200 OK", "application/json", len(body)) + body)


def continue_forever(conn: Connection) -> None:
    """Answer `100 Continue` again and again, never a final status: each read resets a per-read timeout."""
    if conn.read_request() is None:
        return
    while conn.send(b"HTTP/1.1 100 Continue\r\n\r\n") and conn.wait(0.05):
        pass


def headers_drip(conn: Connection) -> None:
    """Send a status line, then one header line every 0.2 s, never the blank line that ends the head."""
    if conn.read_request() is None or not conn.send(b"HTTP/1.1 200 OK\r\n"):
        return
    while conn.wait(0.2) and conn.send(b"x-drip: 1\r\n"):
        pass


def throttle_forever(conn: Connection) -> None:
    """Answer every request 429 with a Retry-After of 11 days, and retry-after-ms past any float's use."""
    if conn.read_request() is not None:
        body = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
        conn.send(head("429 Too Many Requests", "application/json", len(body), retry_after="999999",
                       retry_after_ms="1e308") + body)


BEHAVIOURS: dict[str, Callable[[Connection], None]] = {
    "plain_http": plain_http,
    "never_answer": never_answer,
    "slow": slow,
    "trickle": trickle,
    "reset_mid_body": reset_mid_body,
    "reset_mid_stream": reset_mid_stream,
    "html_502": html_502,
    "huge_body": huge_body,
    "endless_sse": endless_sse,
    "close_at_once": close_at_once,
    "reset_at_once": reset_at_once,
    "banner": banner,
    "huge_header": huge_header,
    "many_headers": many_headers,
    "bare_cr": bare_cr,
    "deep_json": deep_json,
    "continue_forever": continue_forever,
    "headers_drip": headers_drip,
    "throttle_forever": throttle_forever,
}


@dataclass
class Misbehaving:
    """A running misbehaving server; stops by itself after `lifetime` seconds."""

    behaviour: str
    port: int
    _listener: socket.socket
    _stopping: threading.Event
    _thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def __enter__(self) -> Misbehaving:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(behaviour: str, lifetime: float = DEFAULT_LIFETIME) -> Misbehaving:
    """Start the server of `behaviour` on a free loopback port."""
    handler = BEHAVIOURS[behaviour]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(64)
    # short: a stop (or the end of the lifetime) is noticed between two accepts
    listener.settimeout(0.02)
    stopping = threading.Event()
    ends = time.monotonic() + lifetime
    handlers: list[tuple[threading.Thread, socket.socket]] = []

    def handle(sock: socket.socket) -> None:
        sock.settimeout(0.1)
        try:
            handler(Connection(sock, stopping))
        except OSError:
            pass  # the client went away: that ends the conversation, not the test
        finally:
            sock.close()

    def accept_loop() -> None:
        try:
            while not stopping.is_set() and time.monotonic() < ends:
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    continue
                thread = threading.Thread(target=handle, args=(sock,), daemon=True)
                thread.start()
                handlers.append((thread, sock))
        finally:
            stopping.set()
            listener.close()
            for thread, sock in handlers:
                # a handler waiting in recv returns now, not at its next 0.1 s timeout
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                thread.join(2)

    thread = threading.Thread(target=accept_loop, name=f"misbehaving-{behaviour}", daemon=True)
    thread.start()
    return Misbehaving(behaviour, listener.getsockname()[1], listener, stopping, thread)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: a connection to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def plain_http_port() -> Iterator[int]:
    """A port that answers plain HTTP, for an https:// URL to fail its TLS handshake."""
    with serve("plain_http") as server:
        yield server.port
