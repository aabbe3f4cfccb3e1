"""The only way the suite talks to a target: bounded in size, time, count and pace.

Every request goes through `Client.send`, which enforces the request budget and rate limit, honours
Retry-After on 429/503, cuts bodies and streams at their limits, and turns every transport failure into
an `Exchange` with a one-line `error` instead of an exception. After the target proves unreachable the
client stops sending, so a dead target costs one timeout, not one per test.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

from conformance.config import Config
from conformance.contract.profiles import Profile
from conformance.transport.deadline import head_deadline
from conformance.transport.exchange import Exchange, RequestSpec, Response
from conformance.transport.network import cookieless, http_transport

USER_AGENT = "sgp-conformance"
# every request of the suite's own client: the body is judged as the bytes that came back, so the suite asks
# for them uncompressed (httpx would offer gzip and deflate, and a server that honours that, as WireMock and
# nginx do, sends bytes no rule of the contract is about)
DEFAULT_HEADERS = {"user-agent": USER_AGENT, "accept-encoding": "identity"}
# after this many requests in a row that got no answer in time, the target is taken as unresponsive
UNRESPONSIVE_AFTER = 3
# 429 answers kept for judging what they carry
MAX_THROTTLES_KEPT = 20


class BudgetExhausted(RuntimeError):
    """The run reached --max-requests; nothing more is sent."""


class ThrottledOut(BudgetExhausted):
    """The target kept answering 429/503 until the run's throttle budget (--max-throttle-wait) was spent;
    nothing more is sent. Its message names the cause and the flag (and never the word budget, so that a
    requirement not run for it reads as throttled, outcomes.not_run_kind)."""


@dataclass
class Stats:
    sent: int = 0
    throttled: int = 0
    retries: int = 0
    transport_errors: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"sent": self.sent, "throttled": self.throttled, "retries": self.retries,
                "transport_errors": self.transport_errors, "by_status": dict(sorted(self.by_status.items()))}


class RateLimiter:
    """Spaces request starts at least 1/rate seconds apart across threads."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


def retry_delay(response: Response, attempt: int, cap: float) -> float:
    """Seconds to wait before retrying a 429/503: retry-after-ms, then Retry-After, then backoff."""
    ms = response.header("retry-after-ms")
    if ms:
        try:
            value = float(ms)
        except ValueError:
            value = math.nan
        if math.isfinite(value) or value == math.inf:
            return min(max(value / 1000.0, 0.0), cap)
    after = response.header("retry-after")
    if after:
        try:
            value = float(after)
            if math.isnan(value):
                raise ValueError(after)
            return min(max(value, 0.0), cap)
        except ValueError:
            # an HTTP-date; anything else ("soon") is ignored, as the SDKs do
            try:
                parsed = email.utils.parsedate_to_datetime(after).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                parsed = None
            if parsed is not None:
                return min(max(parsed - time.time(), 0.0), cap)
    return min(0.5 * 2**attempt, cap)


def read_bounded(stream: Iterable[bytes], into: list[bytes], max_bytes: int, started: float,
                 deadline: float) -> tuple[str | None, bool]:
    """Read a body into `into` until it ends, passes max_bytes or its deadline; returns why it was cut
    (or None) and whether the deadline cut it. What arrived stays in `into` if the connection breaks."""
    size = 0
    for chunk in stream:
        into.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return f"body larger than {max_bytes} bytes: read stopped there", False
        if time.monotonic() > deadline:
            return f"response still arriving after {deadline - started:g} s: read stopped there", True
    return None, False


def host_port(url: httpx.URL) -> str:
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def error_kind(exc: Exception) -> str:
    """The kind of a transport failure (see Exchange.error_kind)."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "closed"
    return "other"


def unanswered(exc: Exception, got_response: bool) -> bool:
    """Whether the server closed a connection before sending any byte of an answer: on a kept-alive
    connection that it closed after the last answer (uvicorn does so a moment after a 500, without
    `Connection: close`), the request never reached it, and the official SDKs send it again."""
    return not got_response and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError)


def _no_answer(exc: Exception, text: str) -> str:
    """What the socket did when no HTTP answer came: closed or reset, or sent bytes that are not an HTTP/1.1
    response head (h11's words: a head past its size limit, a malformed status or header line)."""
    lowered = text.lower()
    if not isinstance(exc, httpx.RemoteProtocolError) or "disconnected" in lowered:
        return "closed the connection without answering"
    if "buffer too long" in lowered:
        return "sent a response head too large to parse (a header of a megabyte, or thousands of them)"
    return "sent something that is not an HTTP/1.1 response head"


def describe_error(exc: Exception, url: httpx.URL, timeout: float, got_response: bool = True) -> str:
    """One line naming a transport failure the way an operator would look for it."""
    host = host_port(url)
    text = str(exc) or type(exc).__name__
    cause = exc.__context__ or exc.__cause__
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection to {host} within {timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return f"{host} did not answer within {timeout:g} s"
    if isinstance(cause, ssl.SSLError) or "SSL" in text or "certificate" in text.lower():
        # a plain-HTTP server answers a ClientHello with text, which OpenSSL reads as a bad record (its
        # code depends on the OpenSSL version)
        plain = any(code in text for code in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"))
        hint = ": the port speaks plain HTTP, use an http:// URL" if plain else ""
        return f"TLS handshake with {host} failed: {text}{hint}"
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if "name or service not known" in lowered or "nodename" in lowered or "getaddrinfo" in lowered \
                or "name resolution" in lowered or "no address" in lowered:
            return f"cannot resolve host {url.host}"
        if "refused" in lowered:
            return f"connection refused by {host}"
        return f"cannot connect to {host}: {text}"
    # "mid-response" only where part of a response arrived
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError) and not got_response:
        return f"{host} {_no_answer(exc, text)}, twice (a fresh connection too): {text or 'reset'}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} closed the connection mid-response: {text}"
    if isinstance(exc, httpx.ReadError):
        return f"connection to {host} reset mid-response: {text or 'reset'}"
    return f"{type(exc).__name__} talking to {host}: {text}"


class Client:
    def __init__(self, config: Config, profile: Profile, base_url: str, budget: int | None = None) -> None:
        self.config = config
        self.profile = profile
        self.url = profile.url(base_url)
        self.stats = Stats()
        self.exchanges: list[Exchange] = []
        # every 429 answer met, retried ones included (bounded): what they carry is judged (ERR-006)
        self.throttles: list[Exchange] = []
        self._budget = config.max_requests if budget is None else budget
        self._lock = threading.Lock()
        self._limiter = RateLimiter(config.rate_limit)
        # every sender (scenario prefetch, property cases) shares one bound on requests in flight
        self._in_flight = threading.BoundedSemaphore(max(config.concurrency, 1))
        self._timeouts_in_a_row = 0
        # seconds spent waiting on 429/503 answers, and why the run stopped sending for them (ThrottledOut)
        self._throttle_waited = 0.0
        self.throttled_out: str | None = None
        # the request that tells a slow target from a dead one (see _note_unanswered), and whether it is out
        self.probe: RequestSpec | None = None
        self._probing = False
        # set once the target cannot be reached: later sends fail fast with the same reason
        self.dead: str | None = None
        self._http = self._http_client(max(config.concurrency, 1) + 2)

    def _http_client(self, connections: int) -> httpx.Client:
        """The run's HTTP client, keeping at most `connections` connections: its time-outs, no redirects, no
        cookies, and the route and TLS context conformance.config.network read once (proxy, CA bundle, the
        environment's settings)."""
        timeout = httpx.Timeout(self.config.timeout, connect=min(self.config.timeout, 10.0))
        return cookieless(httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                       headers=DEFAULT_HEADERS,
                                       transport=http_transport(self.config, self.url,
                                                                limits=httpx.Limits(max_connections=connections))))

    def close(self) -> None:
        self._http.close()

    @property
    def remaining(self) -> int:
        return self._budget - self.stats.sent

    def _take(self) -> None:
        with self._lock:
            if self.throttled_out:
                raise ThrottledOut(self.throttled_out)
            if self.stats.sent >= self._budget:
                raise BudgetExhausted(f"request budget of {self.config.max_requests} reached (--max-requests)")
            self.stats.sent += 1

    # Requests that another HTTP stack sends (the official SDKs) are admitted, paced and counted here
    # too, so the budget, the rate limit and the report's request counts cover every request of a run.

    def admit(self) -> None:
        """Take one request from the budget (BudgetExhausted when spent) and wait for the rate limit."""
        self._take()
        self._limiter.wait()

    def count_status(self, exchange: Exchange) -> None:
        with self._lock:
            key = str(exchange.status) if exchange.status else "error"
            self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
            self.stats.transport_errors += exchange.error is not None

    def keep(self, exchange: Exchange) -> None:
        """Keep an exchange of the run, for evidence and the census."""
        with self._lock:
            self.exchanges.append(exchange)

    def record(self, exchange: Exchange) -> None:
        """Keep the final exchange of a request; a 429 that survived the retries is counted as throttled."""
        self.keep(exchange)
        if exchange.status == 429:
            self.note_throttled()

    def note_throttled(self) -> None:
        with self._lock:
            self.stats.throttled += 1

    def note_retry(self, exchange: Exchange) -> None:
        with self._lock:
            self.stats.throttled += exchange.status == 429
            self.stats.retries += 1

    def send(self, spec: RequestSpec) -> Exchange:
        """Send one request (with bounded retries on 429/503) and record it. Every 429 met on the way is
        kept in `throttles`, whether retried or not, so the rule on what a 429 carries can judge it."""
        attempt = 0
        while True:
            exchange = self._send_once(spec)
            response = exchange.response
            if response is not None and response.status == 429:
                with self._lock:
                    if len(self.throttles) < MAX_THROTTLES_KEPT:
                        self.throttles.append(exchange)
            if response is None or response.status not in (429, 503) or attempt >= self.config.retries:
                break
            delay = retry_delay(response, attempt, self.config.max_retry_wait)
            if not self._may_wait(delay, response.status):
                break
            self.note_retry(exchange)
            time.sleep(delay)
            attempt += 1
        self.record(exchange)
        return exchange

    def _may_wait(self, delay: float, status: int) -> bool:
        """Take `delay` seconds of waiting on a throttled answer from the run's throttle budget; False (and
        the run stops sending: throttled_out) when it would pass --max-throttle-wait."""
        budget = self.config.throttle_budget()
        with self._lock:
            if self.throttled_out:
                return False
            if self._throttle_waited + delay <= budget:
                self._throttle_waited += delay
                return True
            self.throttled_out = (
                f"the target kept answering {status}: waiting {delay:g} s more for it would pass "
                f"--max-throttle-wait {budget:g} ({self._throttle_waited:g} s already waited): stopped sending; "
                "try later, or raise --max-throttle-wait")
            return False

    def _send_once(self, spec: RequestSpec) -> Exchange:
        if self.dead:
            return Exchange(spec.scenario, spec.url or self.url, spec, None, error=self.dead, error_kind="connect")
        self._take()
        self._limiter.wait()
        with self._in_flight:
            return self._transfer(spec)

    def send_together(self, specs: Sequence[RequestSpec]) -> list[Exchange]:
        """Send `specs` at once, each on its own thread and connection, so that they overlap at the target
        (the concurrency probe, conformance.suite.concurrency). Each request takes the budget and waits for
        the rate limit like any other, but not for the bound on requests in flight (--concurrency), which
        would send them one at a time; none is retried, since a 429 or 503 under overlap is what is judged.
        Raises BudgetExhausted, sending nothing, when the budget cannot pay for all of them."""
        with self._lock:
            if self.throttled_out:
                raise ThrottledOut(self.throttled_out)
            if self.stats.sent + len(specs) > self._budget:
                raise BudgetExhausted(f"request budget of {self.config.max_requests} reached (--max-requests)")
            self.stats.sent += len(specs)
        if self.dead:
            return [Exchange(s.scenario, s.url or self.url, s, None, error=self.dead, error_kind="connect")
                    for s in specs]
        start = threading.Barrier(len(specs))
        results: list[Exchange | None] = [None] * len(specs)
        with self._http_client(len(specs)) as http:

            def one(position: int) -> None:
                self._limiter.wait()
                # a slow rate limit breaks the barrier: the requests then overlap as far as it lets them
                with contextlib.suppress(threading.BrokenBarrierError):
                    start.wait(timeout=max(self.config.timeout, 1.0))
                exchange, _ = self._transfer_once(specs[position], retried=True, http=http)
                self.count_status(exchange)
                results[position] = exchange

            threads = [threading.Thread(target=one, args=(i,), name=f"sgp-overlap-{i}") for i in range(len(specs))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        done = [r for r in results if r is not None]
        for exchange in done:
            self.record(exchange)
        return done

    def _transfer(self, spec: RequestSpec) -> Exchange:
        exchange, unanswered_exc = self._transfer_once(spec)
        if unanswered_exc is not None:
            # the pool has dropped the dead connection: this attempt opens a fresh one (counted as a retry,
            # not against the budget: the first attempt never reached the server)
            with self._lock:
                self.stats.retries += 1
            exchange, _ = self._transfer_once(spec, retried=True)
        self.count_status(exchange)
        return exchange

    def _transfer_once(self, spec: RequestSpec, retried: bool = False,
                       http: httpx.Client | None = None) -> tuple[Exchange, Exception | None]:
        """One attempt (on `http`, by default the run's client); also returns the exception when the server
        closed the connection before any byte of an answer and this was the first attempt (the caller sends
        the request again once)."""
        url = spec.url or self.url
        http = http or self._http
        request = http.build_request(spec.method, url, headers=spec.headers, content=spec.body)
        started = time.monotonic()
        deadline = started + (self.config.stream_timeout if spec.stream else self.config.timeout * 3)
        status, headers, cut, error, kind = 0, [], None, None, None
        headers_at: float | None = None
        chunks: list[bytes] = []
        late = False
        try:
            # the whole head (100 Continue answers, header lines dripped one by one) within one --timeout:
            # each read would otherwise reset httpx's per-read timeout and hold the run forever
            with head_deadline(self.config.timeout):
                response = http.send(request, stream=True)
            status, headers = response.status_code, list(response.headers.multi_items())
            headers_at = time.monotonic()
            try:
                cut, late = read_bounded(response.iter_raw(), chunks, self.config.max_body_bytes, started, deadline)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            got_response = bool(status)
            if not retried and unanswered(exc, got_response):
                return Exchange(spec.scenario, url, spec, None), exc
            error = describe_error(exc, request.url, self.config.timeout, got_response)
            kind = error_kind(exc)
            self._note_failure(exc, error, got_response=got_response)
        else:
            if late and not spec.stream:
                # a body still dribbling in at its deadline is no answer either: without this, a target
                # that sends a byte a second costs timeout * 3 on every request of the run
                self._note_unanswered(f"{host_port(request.url)} never finished a response "
                                      f"within {deadline - started:g} s")
            else:
                self._timeouts_in_a_row = 0
        ended = time.monotonic()
        elapsed = (ended - started) * 1000
        body = b"".join(chunks)[: self.config.max_body_bytes]
        body_ms = (ended - headers_at) * 1000 if headers_at is not None else None
        result = Response(status, headers, body, elapsed, truncated=cut, body_ms=body_ms) if status else None
        if error is None and cut is not None:
            kind = "cut"
        return Exchange(spec.scenario, url, spec, result, error=error or cut, error_kind=kind), None

    def _note_failure(self, exc: Exception, reason: str, got_response: bool) -> None:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
            self.dead = reason
        elif isinstance(exc, httpx.TimeoutException) and not got_response:
            self._note_unanswered(reason)

    def _note_unanswered(self, reason: str) -> None:
        """Count a request that got no answer in time. After UNRESPONSIVE_AFTER in a row, the liveness probe
        (the minimal request, when the run set one) decides: a target that answers it is slow on some
        requests (those are not judged), one that does not is unresponsive, and the run stops sending."""
        with self._lock:
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row < UNRESPONSIVE_AFTER or self._probing:
                return
            self._probing = True
        try:
            if self.probe is not None:
                try:
                    self._take()
                except BudgetExhausted:
                    pass
                else:
                    answer, _ = self._transfer_once(self.probe)
                    if answer.response is not None and answer.response.truncated is None:
                        self._timeouts_in_a_row = 0
                        return
            self.dead = f"{reason} ({UNRESPONSIVE_AFTER} requests in a row): stopped sending"
        finally:
            self._probing = False
