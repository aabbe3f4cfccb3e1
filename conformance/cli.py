"""`sgp-conformance`: run the suite, serve the reference server, list requirements, diff results, validate
recorded traffic (conformance.validate; same reports and exit codes 0/1/2 as run).

Exit codes of `run`: 0 conformant at the --fail-on level, 1 not conformant, 2 usage or configuration
error, 3 target unreachable or the configured key refused, 4 incomplete (the request budget ran out
before every requirement was judged, and nothing failed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from conformance import __version__, catalogue
from conformance.config import Config, ConfigError, require_key, resolve
from conformance.profiles import get_profile
from conformance.redact import safe_url
from conformance.summary import JUNIT_SUITE_NAME, prepare_report_dir

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4
SUITE_DIR = Path(__file__).parent / "suite"


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of exiting on its own."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _run_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run the conformance suite against a target (default: the embedded server)",
                       description="Run the suite. Unknown options are passed to pytest (-k, -x, -n ...).")
    p.add_argument("--base-url", help="target base URL; omitted: start the embedded reference server")
    p.add_argument("--api-key", help="API key (prefer SGP_API_KEY in the environment)")
    p.add_argument("--account-id")
    p.add_argument("--model")
    p.add_argument("--profile", help="sgp (default) or openai")
    p.add_argument("--config", help="TOML file with [tool.sgp-conformance] settings")
    p.add_argument("--timeout", type=float, help="seconds for a connection or a read (default 20)")
    p.add_argument("--stream-timeout", type=float, help="seconds a whole stream may take (default 60)")
    p.add_argument("--max-tokens", type=int, help="max_tokens of every request (default 16)")
    p.add_argument("--max-requests", type=int, help="hard cap on requests sent (default 500)")
    p.add_argument("--rate-limit", help="requests per second at most, as N or N/s")
    p.add_argument("--concurrency", type=int, help="requests in flight at once")
    p.add_argument("--retries", type=int, help="retries of a 429/503 answer, honouring Retry-After (default 2)")
    p.add_argument("--depth", choices=("smoke", "standard", "deep"))
    p.add_argument("--fail-on", choices=("must", "should"))
    p.add_argument("--report-dir", help="where reports are written (default reports/)")
    p.add_argument("--max-examples", type=int, help="property-test cases per property")
    p.add_argument("--seed", type=int, help="seed for generated cases")
    p.add_argument("--baseline", help="baseline file of accepted deviations")
    p.add_argument("--allow-insecure-http", action="store_true", default=None)
    net = p.add_argument_group(
        "behind a proxy or an internal CA",
        "Without --proxy, HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY are honoured (never for a loopback "
        "target), and so are SSL_CERT_FILE / SSL_CERT_DIR without --ca-bundle.")
    net.add_argument("--proxy", metavar="URL",
                     help="forward proxy for every request, http://[user:password@]host:port (the password is "
                          "masked in every output)")
    net.add_argument("--ca-bundle", metavar="FILE",
                     help="PEM file of the CA certificates to trust instead of the default ones")
    net.add_argument("--insecure", action="store_true", default=None,
                     help="verify no TLS certificate (warned about, recorded in conformance.json)")
    net.add_argument("--header", action="append", dest="headers", metavar="'NAME: VALUE'",
                     help="extra header on every request, repeatable; VALUE env:VARIABLE reads the environment. "
                          "Values of headers named like key/token/secret/auth/password/cookie are masked")
    p.add_argument("--clients", action="store_true", default=None, help="also drive the official SDKs")
    p.add_argument("--dry-run", action="store_true", default=None,
                   help="print the planned requests per requirement and their total; send nothing")
    return p


def build_parser() -> Parser:
    parser = Parser(prog="sgp-conformance", description="Conformance suite for the SGP chat-completions API.")
    parser.add_argument("--version", action="version", version=f"sgp-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _run_parser(sub)
    serve = sub.add_parser("serve", help="run the reference server", add_help=False)
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    listing = sub.add_parser("list", help="print the requirement catalogue")
    listing.add_argument("--profile", default=None)
    listing.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    diff = sub.add_parser("diff", help="compare two conformance.json results")
    diff.add_argument("old")
    diff.add_argument("new")
    validate = sub.add_parser("validate", help="judge recorded traffic (JSON, JSONL, SSE/HTTP transcripts, HAR)",
                              description="Judge recorded responses with the suite's schemas and checks; "
                                          "writes the same reports as run.")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--profile", help="sgp (default) or openai")
    validate.add_argument("--report-dir", help="where reports are written (default reports/)")
    validate.add_argument("--fail-on", choices=("must", "should"))
    validate.add_argument("--baseline", help="baseline file of accepted deviations")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"command", "config"}
    return {k: v for k, v in vars(args).items() if k not in skip and v is not None}


def pytest_args(config: Config, extra: list[str], reports: bool = True) -> list[str]:
    report_dir = Path(config.report_dir)
    args = [str(SUITE_DIR), "-p", "conformance.plugin", "-p", "no:cacheprovider", "--rootdir", str(SUITE_DIR),
            "-o", "console_output_style=count", "-q", "--no-header", "-rN", "--tb=no",
            # the suite judges with explicit failures, never bare asserts: rewriting would cost seconds
            "--assert=plain"]
    if reports:
        args += ["-o", "junit_family=xunit1", "-o", f"junit_suite_name={JUNIT_SUITE_NAME}",
                 f"--junitxml={report_dir / 'junit.xml'}",
                 f"--html={report_dir / 'conformance.html'}", "--self-contained-html"]
    for name, value in config.redacted().items():
        if name in {"api_key", "secret_headers", "clients", "allow_insecure_http"} or value is None:
            continue
        if name in {"base_url", "account_id", "model", "profile", "timeout", "stream_timeout", "max_tokens",
                    "max_requests", "rate_limit", "concurrency", "retries", "depth", "fail_on", "report_dir",
                    "max_examples", "seed", "baseline", "ca_bundle"}:
            args += [f"--sgp-{name.replace('_', '-')}", str(value)]
    # as given, not as redacted() prints them (pytest runs in this process; xdist passes options over a pipe)
    if config.proxy:
        args += ["--sgp-proxy", config.proxy]
    if config.headers:
        args += ["--sgp-headers", "\n".join(config.headers)]
    if config.allow_insecure_http:
        args.append("--sgp-allow-insecure-http")
    if config.insecure:
        args.append("--sgp-insecure")
    if config.clients:
        args.append("--sgp-clients")
    return args + extra


INSECURE_WARNING = ("sgp-conformance: WARNING: --insecure: TLS certificates are NOT verified: whoever sits "
                    "between here and the target can read the key and forge every answer; give the CA with "
                    "--ca-bundle FILE instead")


def announce_network(config: Config) -> None:
    """The loud warning of --insecure (stderr), and the proxy requests go through, if any (stdout)."""
    if config.insecure:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
    if config.base_url:
        from conformance.network import route

        via = route(config)
        if via.proxy:
            print(f"sgp-conformance: requests to {safe_url(config.base_url)} go {via.describe()}", flush=True)


def _one_line_usage_errors() -> object:
    """A pytest plugin that turns pytest's own usage error (a usage text and an error over four lines, for
    an option neither `run` nor pytest knows) into the one line every other usage error of `run` is."""
    import pytest

    class OneLineUsageErrors:
        @pytest.hookimpl(wrapper=True)
        def pytest_cmdline_parse(self, pluginmanager: Any, args: list[str]) -> Any:
            try:
                return (yield)
            except pytest.UsageError as exc:
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                what = next((line.split("error:", 1)[1].strip() for line in lines if "error:" in line),
                            lines[0] if lines else "invalid arguments")
                raise pytest.UsageError(f"sgp-conformance run: {what} (see sgp-conformance run --help; "
                                        "other options go to pytest: see pytest --help)") from None

    return OneLineUsageErrors()


def require_sdk(config: Config) -> None:
    """--clients needs the profile's official SDK: without it the run would spend its budget and leave
    the CLIENT requirements not judged, so the run does not start."""
    from conformance.sdk_clients import layout_problem, missing_sdk

    problem = missing_sdk(config.profile) or layout_problem(config.profile)
    if problem:
        raise ConfigError(f"--clients: {problem}")


def command_run(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        config = resolve(_flags(args), config_file=args.config)
        if not config.dry_run:
            require_key(config)
            if config.clients:
                require_sdk(config)
    except ConfigError as exc:
        print(f"sgp-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.dry_run:
        import pytest

        announce_network(config)
        code = pytest.main([*pytest_args(config, extra, reports=False), "--sgp-dry-run"],
                           plugins=[_one_line_usage_errors()])
        return EXIT_OK if code in (0, 5) else EXIT_USAGE
    # the report directory is checked before anything starts, so a bad one costs nothing
    report_dir = Path(config.report_dir)
    problem = prepare_report_dir(report_dir)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    embedded = None
    if config.base_url is None:
        from conformance.embedded import start_embedded

        embedded = start_embedded(config)
        config.base_url, config.api_key = embedded.base_url, embedded.api_key
        if get_profile(config.profile).account_header:
            config.account_id = embedded.account_id
        print(f"sgp-conformance: no --base-url given: started the reference server at {config.base_url}")
    announce_network(config)
    import pytest

    env_before = dict(os.environ)
    # the key travels to pytest (and its workers) in the environment, never on a command line
    if config.api_key:
        os.environ["SGP_API_KEY"] = config.api_key
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "sgp-hypothesis"))
    try:
        extra = ["--sgp-config", args.config, *extra] if args.config else extra
        code = pytest.main(pytest_args(config, extra), plugins=[_one_line_usage_errors()])
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        if embedded is not None:
            embedded.stop()
    from conformance.summary import finish

    return finish(config, int(code), report_dir)


def command_list(args: argparse.Namespace) -> int:
    reqs = catalogue.for_profile(args.profile) if args.profile else list(catalogue.REQUIREMENTS)
    if args.format == "json":
        print(json.dumps([{"id": r.id, "level": r.level, "statement": r.statement, "source": r.source,
                           "profiles": list(r.profiles)} for r in reqs], indent=2))
    elif args.format == "markdown":
        print(catalogue.markdown_table(reqs))
    else:
        for r in reqs:
            only = "" if len(r.profiles) > 1 else f" [{r.profiles[0]} only]"
            print(f"{r.id:<10} {r.level:<6} {r.statement}{only}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        if argv and argv[0] == "serve":
            from conformance.server.cli import serve_main

            return serve_main(argv[1:])
        if argv and argv[0] == "run":
            args, extra = parser.parse_known_args(argv)
            return command_run(args, extra)
        args = parser.parse_args(argv)
        if args.command == "list":
            return command_list(args)
        if args.command == "diff":
            from conformance.diff import command_diff

            return command_diff(args.old, args.new)
        if args.command == "validate":
            from conformance.validate import command_validate

            return command_validate(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sgp-conformance: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
