"""`sgp-conformance serve` / `python -m conformance.server`: run the reference server in the foreground."""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from conformance.contract.profiles import PROFILES, get_profile
from conformance.pipes import silence_stdout
from conformance.server.runner import serve_forever
from conformance.server.settings import DEFAULT_ACCOUNT, DEFAULT_MODELS, ServerSettings

KEY_ENV = "SGP_API_KEY"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 picks a free one), got {value}")
    return value


def _whole(unit: str, bound: str) -> Callable[[str], int]:
    """An argparse type for a whole number >= 0 of `unit`; `bound` is the refusal's message for a negative one."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of {unit}: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{bound}, got {value}")
        return value
    return parse


_latency = _whole("milliseconds", "latency must be >= 0")
_concurrency = _whole("requests", "max concurrency must be >= 0 (0: no limit)")


def build_parser(prog: str = "sgp-conformance serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the deterministic reference server of the chat-completions API (it echoes the "
        "last user message), e.g. as a mock for client development.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"an accepted API key; repeat for several (default: ${KEY_ENV}, which keeps it out of `ps`)",
    )
    parser.add_argument(
        "--account-id",
        action="append",
        dest="account_ids",
        default=[],
        metavar="ID",
        help=f"an accepted account id; repeat for several (default: {DEFAULT_ACCOUNT}; any other id in "
        "x-selected-account-id is refused with 403, as a deployment refuses an account the key cannot use; "
        "requests without the header are served)",
    )
    parser.add_argument("--profile", default="sgp", choices=sorted(PROFILES), help="API flavour to serve (default sgp)")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help=f"a model the server knows; repeat for several (default {', '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--latency-ms", type=_latency, default=0, metavar="N", help="wait N ms before each answer (default 0)"
    )
    parser.add_argument(
        "--max-concurrency", type=_concurrency, default=0, metavar="N",
        help="handle at most N requests at once, a stream until its last event; the rest wait (default: no limit)"
    )
    parser.add_argument("--certfile", metavar="PEM", help="serve https with this certificate chain (PEM)")
    parser.add_argument("--keyfile", metavar="PEM", help="the private key of --certfile, if not inside it")
    parser.add_argument(
        "--quiet", action="store_true", help="no access line per request (default: method, path, status, ms)"
    )
    return parser


def _print_line(line: str) -> None:
    """An access line to stdout; a reader that went away (`serve | head`) costs the lines, not the server."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        silence_stdout()


def serve_main(argv: list[str] | None = None, prog: str = "sgp-conformance serve") -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has already printed usage and the error; the caller decides whether to exit
        return exit_.code if isinstance(exit_.code, int) else 2
    keys = args.api_keys or ([os.environ[KEY_ENV]] if os.environ.get(KEY_ENV) else [])
    if not keys or any(not key.strip() for key in keys):
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: give a non-empty --api-key or set ${KEY_ENV}", file=sys.stderr)
        return 2
    if args.keyfile and not args.certfile:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: --keyfile needs --certfile", file=sys.stderr)
        return 2
    if args.certfile:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as exc:
            print(f"{prog}: error: cannot load the certificate of --certfile/--keyfile: {exc}", file=sys.stderr)
            return 2
    settings = ServerSettings(
        profile=get_profile(args.profile),
        api_keys=tuple(keys),
        account_ids=tuple(args.account_ids) or (DEFAULT_ACCOUNT,),
        models=tuple(args.models or DEFAULT_MODELS),
        latency_ms=args.latency_ms,
        max_concurrency=args.max_concurrency,
    )

    def announce(url: str) -> None:
        print(f"reference server ({settings.profile.name} profile) listening on {url}", flush=True)
        root = urlsplit(url)
        print(f"  POST {settings.profile.url(url)}", flush=True)
        if settings.profile.account_header:
            print(f"  accounts (x-selected-account-id): {', '.join(settings.account_ids)}", flush=True)
        print(f"  GET  {root.scheme}://{root.netloc}/healthz", flush=True)

    try:
        serve_forever(settings, args.host, args.port, on_listening=announce, certfile=args.certfile,
                      keyfile=args.keyfile, access_log=None if args.quiet else _print_line)
    except OSError as exc:
        print(f"{prog}: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
