"""`sgp-conformance proxy --upstream URL`: the subcommand's flags, its banner, signals and report loop.

It runs until Ctrl-C or SIGTERM, which is its normal end: it stops serving, judges what is still queued,
writes the reports and exits by the verdict at --fail-on (0 conformant, 1 not conformant, 4 nothing could
be judged). A second Ctrl-C or SIGTERM while the final reports are written interrupts them (130, as an
interrupted `run`).
Bad flags, a port that cannot be bound, a report directory or HAR file it may not write: exit 2 with one line.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from conformance.config import FAIL_ON, Config, ConfigError, resolve
from conformance.config.network import INSECURE_WARNING, ssl_context
from conformance.contract.profiles import PROFILES, get_profile
from conformance.proxy.options import DEFAULT_BIND, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, ProxyOptions, parse_upstream
from conformance.report.folder import claim_report_dir

if TYPE_CHECKING:
    from conformance.proxy.service import ProxyService

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# how often the main thread looks for a due report or a signal, in seconds
TICK_S = 0.2
PREFIX = "sgp-conformance proxy"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `proxy` on the CLI's subparsers."""
    p = sub.add_parser(
        "proxy",
        help="forward a client's traffic to a server and judge every chat completion on the way",
        description="Listen on loopback, forward every request unchanged to --upstream, stream each answer back as "
        "it arrives, and judge each chat-completions exchange with the suite's checks. Ctrl-C (or "
        "SIGTERM) stops it and writes the reports.",
        epilog="exit codes: 0 conformant at --fail-on, 1 not conformant, 2 usage error, 4 nothing judged "
        "(130: interrupted again while writing the reports)",
        allow_abbrev=False,
    )
    p.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="the server to forward to, e.g. https://api.example.com (openai: without /v1; a path is "
        "put before every request's path)",
    )
    p.add_argument(
        "--profile",
        metavar="{" + ",".join(sorted(PROFILES)) + "}",
        help="which path is the operation and how its answers are judged (default sgp)",
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="ADDRESS",
        help=f"address to listen on (default {DEFAULT_BIND}; 0.0.0.0 opens it to the network)",
    )
    p.add_argument(
        "--report-dir", metavar="DIR", help="where reports are written (default reports/); may contain {timestamp}"
    )
    p.add_argument(
        "--keep",
        action="store_true",
        default=None,
        help="keep earlier reports: write into a new timestamped subfolder of the report dir",
    )
    p.add_argument("--har", metavar="FILE", help="also write the traffic as HAR (keys masked), for validate")
    p.add_argument("--fail-on", choices=FAIL_ON, help="the level whose failures fail the exit code (default must)")
    p.add_argument("--baseline", metavar="FILE", help="baseline file of accepted deviations")
    p.add_argument(
        "--report-every",
        type=int,
        default=0,
        metavar="N",
        help="also write the reports after every N chat-completions exchanges (default: only at the end)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help=f"bytes of a body kept for judging (default {DEFAULT_MAX_BODY_BYTES}); a larger body is "
        "forwarded whole and not judged (a stream: judged as far as it was kept)",
    )
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="forward to a plain http upstream that is not on loopback (the keys travel in clear)",
    )
    p.add_argument("--ca-bundle", metavar="FILE",
                   help="PEM file of the CA(s) that sign the upstream's certificate, the only ones trusted "
                        "(default: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle)")
    p.add_argument("--insecure", action="store_true", default=None,
                   help="do not verify the upstream's certificate (prints a warning)")
    p.add_argument("--quiet", action="store_true", help="no line per exchange")
    return p


def options_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> tuple[ProxyOptions, Config]:
    """The proxy's options and the report configuration, from the flags (and SGP_PROFILE, a pyproject's
    [tool.sgp-conformance]). ConfigError for a bad one."""
    env = dict(os.environ) if env is None else env
    flags = {
        k: v
        for k, v in (
            ("profile", args.profile),
            ("report_dir", args.report_dir),
            ("fail_on", args.fail_on),
            ("baseline", args.baseline),
            ("keep", args.keep),
            ("ca_bundle", args.ca_bundle),
            ("insecure", args.insecure),
        )
        if v is not None
    }
    settings = resolve(flags, env={k: v for k, v in env.items() if k == "SGP_PROFILE"})
    # the upstream's TLS trust (ProxyService builds it again): a bundle that cannot be read is a usage error here
    ssl_context(settings, env)
    upstream = parse_upstream(args.upstream, args.allow_insecure_http)
    options = ProxyOptions(
        upstream, settings.profile, args.bind, args.port, args.har, args.report_every, args.max_body_bytes, args.quiet
    )
    options.check()
    from conformance.proxy.sanitize import KEY_STANDIN

    # the reports' key is the stand-in every kept exchange carries: their curl lines read $SGP_API_KEY
    settings.api_key = KEY_STANDIN
    settings.base_url = upstream.url
    return options, settings


def _probe(host: str, port: int) -> str | None:
    """Why a TCP connection to the upstream fails right now, or None (no request is sent)."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def banner(service: ProxyService, settings: Config) -> list[str]:
    profile = get_profile(service.options.profile)
    lines = [
        f"{PREFIX}: listening on {service.listen_url}, forwarding to {service.options.upstream.url} "
        f"({profile.name} profile)",
        f"  point the client at {service.client_base_url}; judged: POST …{profile.path}; every other path is "
        "forwarded, not judged",
        f"  reports in {settings.report_dir}/ on Ctrl-C or SIGTERM"
        + (f" and every {service.options.report_every} chat completions" if service.options.report_every else "")
        + (f"; traffic to {service.options.har}" if service.options.har else ""),
    ]
    if not service.options.listens_on_loopback:
        lines.append(f"  note: --bind {service.options.bind} accepts connections from other machines")
    problem = _probe(service.options.upstream.host, service.options.upstream.port)
    if problem:
        lines.append(
            f"  warning: the upstream {service.options.upstream.url} does not accept connections now "
            f"({problem}): clients get 502 until it does"
        )
    return lines


class Stop:
    """The first SIGINT/SIGTERM asks the loop to stop; the next one interrupts (KeyboardInterrupt).

    The handler only records: it runs in the main thread between two bytecodes, possibly while that thread
    holds a lock (an Event's, inside `Event.wait`), so taking any lock here could deadlock the proxy."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (a signal cuts it short); whether a stop was asked for."""
        if not self.requested:
            time.sleep(seconds)
        return self.requested


def command_proxy(args: argparse.Namespace) -> int:
    from conformance.proxy.har import HarError
    from conformance.proxy.service import ProxyService

    err = sys.stderr
    try:
        options, settings = options_from(args)
    except ConfigError as exc:
        print(f"{PREFIX}: {exc}", file=err)
        return EXIT_USAGE
    report_dir = claim_report_dir(settings)
    if report_dir is None:
        return EXIT_USAGE
    if settings.insecure:
        print(INSECURE_WARNING, file=err, flush=True)
    service = ProxyService(options, settings)
    try:
        service.start()
    except HarError as exc:
        print(f"{PREFIX}: {exc}", file=err)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"{PREFIX}: cannot listen on {options.bind}:{options.port} ({exc.strerror or exc}): choose another "
            "--port or --bind",
            file=err,
        )
        return EXIT_USAGE
    stop = Stop()
    if threading.current_thread() is threading.main_thread():
        stop.install()
    for line in banner(service, settings):
        service.printer.line(line, always=True)
    try:
        while not stop.wait(TICK_S):
            if service.report_due.is_set():
                service.report_due.clear()
                _periodic(service, report_dir)
        service.printer.line(f"{PREFIX}: {stop.signal}: stopping, writing the reports", always=True)
        service.stop()
        code, text = service.finish()
    except KeyboardInterrupt:
        print(f"{PREFIX}: interrupted again: the reports in {report_dir} may be incomplete", file=err)
        return EXIT_INTERRUPTED
    service.printer.line(text, always=True)
    return code


def _periodic(service: ProxyService, report_dir: Path) -> None:
    from conformance.proxy.reports import load, summary

    service.write_reports()
    doc = load(report_dir)
    if doc is None:
        service.printer.line(f"{PREFIX}: the reports could not be written to {report_dir}", always=True)
        return
    _, text = summary(service.settings, report_dir, doc)
    verdict = next((line for line in text.splitlines() if line.startswith("sgp-conformance:")), "")
    service.printer.line(
        f"{PREFIX}: reports written to {report_dir} ({verdict.removeprefix('sgp-conformance: ')})", always=True
    )
