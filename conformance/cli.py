"""`sgp-conformance`: run the suite, serve the reference server, list requirements, diff results, validate
recorded traffic (conformance.offline.validate; same reports and exit codes 0/1/2 as run).

Exit codes of `run`: 0 conformant at the --fail-on level, 1 not conformant, 2 usage or configuration
error, 3 target unreachable or the configured key refused, 4 incomplete (the request budget ran out
before every requirement was judged, and nothing failed).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import difflib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# first of the package: a signal while the rest is imported is recorded, not a traceback (signals.py)
from conformance import __version__, heap, signals
from conformance.config import DEPTHS, FAIL_ON, Config, ConfigError, require_key, resolve
from conformance.config.network import INSECURE_WARNING
from conformance.config.settings import BUDGETS, JUNIT_SHOULD
from conformance.contract import catalogue, claims
from conformance.contract.profiles import PROFILES, get_profile
from conformance.contract.selection import Selection, SelectionError
from conformance.pipes import silence_stdout, write_lines
from conformance.redact import safe_url
from conformance.report.folder import JUNIT_SUITE_NAME, claim_report_dir
from conformance.secret_forms import weak_secret_warning

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4
SUITE_DIR = Path(__file__).parent / "suite"


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of exiting on its own."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


DEFAULTS = Config()
EXIT_CODES = """exit codes:
  0  conformant at the --fail-on level
  1  not conformant, a stale or expired baseline entry, or the key found in a written file
  2  usage or configuration error (one line that names the fix)
  3  target unreachable, or the configured key refused
  4  incomplete: the request budget ran out, or the target kept answering 429, before all was judged
  130, 143  interrupted by Ctrl-C (SIGINT) or SIGTERM; the reports of what was judged are written"""


def _run_parser(sub: Any) -> argparse.ArgumentParser:
    # no abbreviations: `--co` is pytest's --collect-only, not a prefix of --concurrency or --config
    p = sub.add_parser("run", help="run the conformance suite against a target (default: the embedded server)",
                       description="Run the suite. Other options go to pytest (-k, -x, -n, --tb ...).",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--base-url", metavar="URL",
                   help="target base URL, e.g. https://api.example.com (default: start the embedded reference server)")
    p.add_argument("--api-key", help="API key (default: SGP_API_KEY from the environment, which keeps it out of "
                                     "`ps` and shell history: prefer it)")
    p.add_argument("--account-id", metavar="ID",
                   help="account the requests act for, sent as x-selected-account-id (sgp profile; default: none)")
    p.add_argument("--model", help=f"model every request asks for (default {DEFAULTS.model})")
    p.add_argument("--profile", metavar="{" + ",".join(sorted(PROFILES)) + "}",
                   help=f"API flavour: path, key header, error style (default {DEFAULTS.profile})")
    p.add_argument("--config", metavar="FILE",
                   help="TOML file with [tool.sgp-conformance] settings, e.g. conformance.toml (default: "
                        "pyproject.toml in the working directory, if it has that table)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help=f"seconds for a connection or a read (default {DEFAULTS.timeout:g})")
    p.add_argument("--stream-timeout", type=float, metavar="S",
                   help=f"seconds a whole stream may take (default {DEFAULTS.stream_timeout:g})")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help=f"max_tokens of every request (default {DEFAULTS.max_tokens})")
    p.add_argument("--max-requests", type=int, metavar="N",
                   help="hard cap on requests sent (default by --depth: "
                        + ", ".join(f"{depth} {n}" for depth, n in BUDGETS.items()) + ")")
    p.add_argument("--rate-limit", metavar="RATE",
                   help="requests per second at most, written N or N/s, e.g. 5 or 0.5/s (default: no limit)")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help=f"requests in flight at once (default {DEFAULTS.concurrency})")
    p.add_argument("--concurrency-probe", type=int, metavar="K",
                   help="overlapping requests of the concurrency probe, each also sent alone (CONC-*; default by "
                        "--depth: smoke 0, standard 4, deep 8; 0: none)")
    p.add_argument("--retries", type=int, metavar="N",
                   help=f"retries of a 429/503 answer, honouring Retry-After (default {DEFAULTS.retries})")
    p.add_argument("--max-throttle-wait", type=float, metavar="S",
                   help="seconds the whole run may spend waiting on 429/503 answers before it stops sending and "
                        "ends incomplete (default: 60, or twice --timeout if larger)")
    p.add_argument("--depth", choices=DEPTHS,
                   help="smoke: every MUST requirement once, at most 33 requests; standard (default): everything, "
                        "25 generated cases per property; deep: 300 per property")
    p.add_argument("--fail-on", choices=FAIL_ON,
                   help="the level whose failures fail the run: must (default) or should (MUST and SHOULD)")
    p.add_argument("--junit-should", choices=JUNIT_SHOULD,
                   help="how junit.xml shows a SHOULD failure (default: as the exit code treats it, a failure "
                        "with --fail-on should, else a skip)")
    p.add_argument("--report-dir", metavar="DIR",
                   help=f"where reports are written (default {DEFAULTS.report_dir}/); {{timestamp}} in it becomes "
                        "the run's start, e.g. reports/{timestamp}")
    p.add_argument("--keep", action="store_true", default=None,
                   help="keep earlier reports: write into a new timestamped subfolder of the report dir "
                        "(default: replace the last run's reports)")
    p.add_argument("--max-examples", type=int, metavar="N",
                   help="generated cases per property (default by depth: smoke 2, standard 25, deep 300)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed of the generated cases (default: the run picks one; the summary and the results "
                        "name it, and --seed N reproduces the cases)")
    p.add_argument("--baseline", metavar="FILE",
                   help="TOML file of accepted deviations, e.g. examples/baseline.toml (default: none)")
    p.add_argument("--allow-insecure-http", action="store_true", default=None,
                   help="send the key over plain http to a host other than loopback (default: refused)")
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
    p.add_argument("--only", metavar="IDS",
                   help="judge only these requirement IDs or areas, comma-separated, exact and case-sensitive, e.g. "
                        "--only VAL-005,AUTH (default: all; pytest's -k also works but matches substrings "
                        "case-insensitively: -k VAL picks 'invalid' too)")
    p.add_argument("--clients", action="store_true", default=None,
                   help="also drive the official SDKs (CLIENT-*; needs the clients extra; default: off)")
    claimed = p.add_argument_group(
        "what the server claims",
        "Held to every feature and to no open point by default; `sgp-conformance list --claims` names them.")
    claimed.add_argument("--without", metavar="FEATURE,...",
                         help=f"features the server does not offer (not run: not claimed), e.g. --without "
                              f"logprobs,tools (default: none): {', '.join(claims.FEATURES)}")
    claimed.add_argument("--claim", dest="claims", metavar="CHOICE,...",
                         help="positions on open points the server promises, judged at MUST, e.g. --claim "
                              "refuses-null,unknown-model-404 (default: none)")
    p.add_argument("--dry-run", action="store_true", default=None,
                   help="print the planned requests per requirement and their total; send nothing (default: off)")
    return p


def build_parser() -> Parser:
    parser = Parser(prog="sgp-conformance", description="Conformance suite for the SGP chat-completions API.")
    parser.add_argument("--version", action="version", version=f"sgp-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _run_parser(sub)
    serve = sub.add_parser("serve", help="run the reference server", add_help=False)
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    listing = sub.add_parser("list", help="print the requirement catalogue",
                             description="Print the requirement catalogue: ID, level, statement and where "
                                         "docs/contract.md states it. Example: sgp-conformance list --profile "
                                         "openai --format json")
    listing.add_argument("--profile", default=None, choices=sorted(PROFILES),
                         help="only the requirements that apply to this profile, e.g. --profile openai "
                              "(default: all)")
    listing.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                         help="text: a line per requirement, its contract reference under it; markdown: the "
                              "table of docs/requirements.md; json: a list of {id, level, statement, source, "
                              "contract, profiles} (default: text), e.g. --format json")
    listing.add_argument("--claims", action="store_true",
                         help="the features --without takes and the choices --claim takes, with their requirements")
    diff = sub.add_parser("diff", help="compare two conformance.json results (a release gate)",
                          description="Compare two runs' conformance.json: regressions (not failing before, "
                                      "failing now), coverage lost, fixes, new requirements. Both runs must have "
                                      "the same profile, target and claims. Example: sgp-conformance diff "
                                      "last-release/conformance.json reports/conformance.json",
                          epilog="exit codes:\n  0  no regression and no coverage lost at the new run's "
                                 "--fail-on level\n  1  a regression or coverage lost\n  2  a file that is not a "
                                 "conformance.json, or runs that are not comparable (without --force)",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("old", metavar="OLD", help="the earlier run's conformance.json, e.g. the last release's")
    diff.add_argument("new", metavar="NEW", help="the later run's conformance.json, e.g. reports/conformance.json")
    diff.add_argument("--force", action="store_true",
                      help="compare runs of different profiles, targets or claims anyway (default: refused, "
                           "saying why)")
    validate = sub.add_parser("validate", help="judge recorded traffic (JSON, JSONL, SSE/HTTP transcripts, HAR)",
                              description="Judge recorded responses with the suite's schemas and checks; "
                                          "writes the same reports as run.")
    validate.add_argument("files", nargs="+", metavar="FILE",
                          help="recorded traffic: JSON or JSONL response bodies, SSE or HTTP transcripts, HAR, "
                               "e.g. traffic.har")
    validate.add_argument("--profile", metavar="{" + ",".join(sorted(PROFILES)) + "}",
                          help="the API flavour the traffic is judged as: its schemas, error shapes and levels, "
                               "e.g. --profile openai (default: sgp, or SGP_PROFILE)")
    validate.add_argument("--report-dir", metavar="DIR",
                          help="where reports are written (default reports/); may contain {timestamp}, e.g. "
                               "reports/{timestamp}")
    validate.add_argument("--keep", action="store_true", default=None,
                          help="keep earlier reports: write into a new timestamped subfolder of the report dir")
    validate.add_argument("--fail-on", choices=("must", "should"),
                          help="the level whose failures fail the run: must (default) or should (MUST and SHOULD)")
    validate.add_argument("--baseline", metavar="FILE",
                          help="baseline file of accepted deviations, e.g. examples/baseline.toml (default: none)")
    validate.add_argument("--only", metavar="IDS",
                          help="judge only these requirement IDs or areas, comma-separated and case-sensitive, "
                               "e.g. --only RESP-001,STRM (default: every requirement a recording can judge)")
    from conformance.offline.replay_parser import add_parser as add_replay_parser
    from conformance.proxy.cli import add_parser as add_proxy_parser

    add_replay_parser(sub)
    add_proxy_parser(sub)
    from conformance.compare.command import add_parser as add_compare_parser

    add_compare_parser(sub)
    return parser


def _pytest_options() -> set[str]:
    """The option strings pytest and its installed plugins accept; empty when pytest cannot tell (then no
    option is judged a typo)."""
    try:
        from _pytest.config import get_config

        config = get_config()
        config.pluginmanager.load_setuptools_entrypoints("pytest11")
        parser = config._parser
        return {name for group in (parser._anonymous, *parser._groups) for option in group.options
                for name in option.names()}
    except Exception:  # pytest's internals moved: pass everything through, as before
        return set()


def unknown_option(parser: argparse.ArgumentParser, extra: list[str]) -> str | None:
    """`unknown option --depht: did you mean --depth?` for a long option neither `run` nor pytest knows but
    close to one of theirs; None when every option is known or none is close (pytest then says its own)."""
    wanted = [arg.split("=", 1)[0] for arg in extra if arg.startswith("--") and len(arg) > 2]
    if not wanted:
        return None
    ours = {name for action in parser._actions for name in action.option_strings if name.startswith("--")}
    theirs = {name for name in _pytest_options() if name.startswith("--")}
    if not theirs:
        return None
    for name in wanted:
        if name in ours or name in theirs:
            continue
        close = difflib.get_close_matches(name, sorted(ours | theirs), n=1, cutoff=0.75)
        if close:
            return f"unknown option {name}: did you mean {close[0]}?"
    return None


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"command", "config", "only"}
    return {k: v for k, v in vars(args).items() if k not in skip and v is not None}


def pytest_args(config: Config, extra: list[str], reports: bool = True) -> list[str]:
    report_dir = Path(config.report_dir)
    # the plugin's progress display (a live line, or a line per area) stands in for pytest's dots and counts
    args = [str(SUITE_DIR), "-p", "conformance.plugin", "-p", "no:cacheprovider", "--rootdir", str(SUITE_DIR),
            "--sgp-progress", "auto", "-o", "console_output_style=classic", "-q", "--no-header", "-rN", "--tb=no",
            # the suite judges with explicit failures, never bare asserts: rewriting would cost seconds
            "--assert=plain",
            # plugins the suite has no use for, each a cost at every start: a full garbage collection at exit
            # (about 0.15 s of a 1.5 s run), anyio's (it imports trio), schemathesis's (its pytest integration);
            # and pytest's log capture, three handlers set up and torn down around each of ~150 tests (about 8%
            # of a smoke run's CPU) for log records the suite neither makes nor reports
            "-p", "no:unraisableexception", "-p", "no:anyio", "-p", "no:schemathesis", "-p", "no:logging",
            # trio (where it is installed: httpcore imports it) registers its random generator with Hypothesis
            # when imported after it, and Hypothesis warns about the registration: a "warnings summary" of a
            # third party's internals under the verdict, nothing about the target
            "-W", "ignore::hypothesis.errors.HypothesisWarning:trio"]
    if reports:
        args += ["-o", "junit_family=xunit1", "-o", f"junit_suite_name={JUNIT_SUITE_NAME}",
                 f"--junitxml={report_dir / 'junit.xml'}",
                 f"--html={report_dir / 'conformance.html'}", "--self-contained-html"]
    for name, value in config.redacted().items():
        if name in {"api_key", "secret_headers", "clients", "allow_insecure_http"} or value is None:
            continue
        if name in {"base_url", "account_id", "model", "profile", "timeout", "stream_timeout", "max_tokens",
                    "max_requests", "rate_limit", "concurrency", "concurrency_probe", "retries", "depth", "fail_on",
                    "report_dir", "max_examples", "seed", "baseline", "ca_bundle", "junit_should", "max_throttle_wait"}:
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
    if config.without:
        args += ["--sgp-without", ",".join(sorted(config.without))]
    if config.claims:
        args += ["--sgp-claims", ",".join(sorted(config.claims))]
    return args + extra


def announce_network(config: Config) -> None:
    """The loud warning of --insecure (stderr), and the proxy requests go through, if any (stdout)."""
    if config.insecure:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
    if config.base_url:
        from conformance.config.network import route

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
    from conformance.audit.sdk_clients import layout_problem, missing_sdk

    problem = missing_sdk(config.profile) or layout_problem(config.profile)
    if problem:
        raise ConfigError(f"--clients: {problem}")


def _selections(extra: list[str]) -> Iterator[tuple[str, str]]:
    """(flag, expression) of each -k / -m among the arguments for pytest."""
    for i, arg in enumerate(extra):
        for flag in ("-k", "-m"):
            if arg == flag and i + 1 < len(extra):
                yield flag, extra[i + 1]
            elif arg.startswith(flag) and len(arg) > 2 and not arg.startswith("--"):
                yield flag, arg[2:]


def check_selection(extra: list[str]) -> None:
    """ConfigError naming the flag when a -k or -m expression cannot be parsed: found before the target is
    asked anything or a report is touched (pytest would find it only while collecting)."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # a pytest without it: pytest itself will say
        return
    for flag, expression in _selections(extra):
        try:
            Expression.compile(expression)
        except Exception as exc:  # SyntaxError (pytest >= 8.4) or ParseError (older)
            raise ConfigError(f"{flag} {expression!r} is not a selection expression ({exc}): give e.g. "
                              f"{flag} 'AUTH or VAL-001'") from None


def command_run(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        config = resolve(_flags(args), config_file=args.config)
        if config.baseline:
            from conformance.report.baseline import load

            load(config.baseline)
        if not config.dry_run:
            require_key(config)
            if config.clients:
                require_sdk(config)
        check_selection(extra)
        if args.only:
            Selection.parse(args.only, "--only")
            extra = ["--sgp-only", args.only, *extra]
    except (ConfigError, SelectionError) as exc:
        print(f"sgp-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.dry_run:
        import pytest

        announce_network(config)
        try:
            code = pytest.main([*pytest_args(config, extra, reports=False), "--sgp-dry-run"],
                               plugins=[_one_line_usage_errors()])
            sys.stdout.flush()
        except BrokenPipeError:
            # the plan's reader has what it wanted (`| head -1`)
            silence_stdout()
            return EXIT_OK
        return EXIT_OK if code in (0, 5) else EXIT_USAGE
    # the report directory is checked before anything starts, so a bad one costs nothing
    report_dir = claim_report_dir(config)
    if report_dir is None:
        return EXIT_USAGE
    from conformance.report.folder import release_report_dir, set_aside, settle

    # from here on a SIGTERM ends the run as Ctrl-C does, even before pytest starts: the previous reports
    # are set aside first, so a run killed in its first seconds never leaves them reading as its verdict
    moved = set_aside(Path(report_dir))
    caught = _catch_sigterm_early()
    try:
        late = signals.release()
        if late:
            # Ctrl-C or SIGTERM while the CLI started: ended here, now that the previous reports are aside
            caught["signal"] = late
            raise KeyboardInterrupt
        code, wrote, pytest_code = _run_suite(config, args, extra, report_dir)
    except KeyboardInterrupt:
        signal_name = caught.get("signal", "SIGINT")
        print(f"sgp-conformance: interrupted by {signal_name} before the run began: nothing was judged, no "
              "report was written", file=sys.stderr)
        code, wrote, pytest_code = (143 if signal_name == "SIGTERM" else 130), False, None
    finally:
        caught["restore"]()
    if caught.get("signal") == "SIGTERM" and code == 130:
        # a SIGTERM before the suite's own handler was in place reached pytest as a KeyboardInterrupt
        code = 143
    from conformance.report.summary import PYTEST_NO_TESTS, PYTEST_USAGE

    line = settle(Path(report_dir), moved, wrote, judged_nothing=pytest_code == PYTEST_NO_TESTS)
    if line and pytest_code != PYTEST_USAGE:
        # a usage error stays one line: its fix is what matters, and the reports' place is docs/reports.md's
        print(line, file=sys.stderr)
    release_report_dir(report_dir)
    return code


def _catch_sigterm_early() -> dict[str, Any]:
    """Make SIGTERM raise KeyboardInterrupt (as Ctrl-C does) until the returned record's "restore" is called;
    the record's "signal" says which signal ended the run. The suite's plugin installs its own once running."""
    import signal

    caught: dict[str, Any] = {"restore": lambda: None}
    if threading.current_thread() is not threading.main_thread():
        return caught

    def stop(signum: int, frame: Any) -> None:
        caught["signal"] = "SIGTERM"
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    caught["restore"] = lambda: signal.signal(signal.SIGTERM, previous)
    return caught


def _run_suite(config: Config, args: argparse.Namespace, extra: list[str],
               report_dir: Path) -> tuple[int, bool, int]:
    """Start the embedded server if no target is given, run the suite with pytest and finish (summary, exit
    code); returns the exit code, whether this run wrote its own conformance.json, and pytest's exit code."""
    embedded = None
    if config.base_url is None:
        from conformance.server.embedded import start_embedded

        embedded = start_embedded(config)
        config.base_url, config.api_key = embedded.base_url, embedded.api_key
        if get_profile(config.profile).account_header:
            config.account_id = embedded.account_id
        print(f"sgp-conformance: no --base-url given: started the reference server at {config.base_url}",
              flush=True)
        extra = ["--sgp-embedded", *extra]
    announce_network(config)
    if embedded is None and (weak := weak_secret_warning(config.api_key)):
        print(f"sgp-conformance: {weak}", file=sys.stderr, flush=True)
    import pytest

    from conformance.report.folder import results_stamp
    from conformance.report.summary import finish

    # an earlier run's results, left where they are until this run writes its own, are never taken for its own
    earlier = results_stamp(report_dir)
    env_before = dict(os.environ)
    # the key travels to pytest (and its workers) in the environment, never on a command line
    if config.api_key:
        os.environ["SGP_API_KEY"] = config.api_key
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "sgp-hypothesis"))
    try:
        extra = ["--sgp-config", args.config, *extra] if args.config else extra
        # what start-up made lives until the process ends
        heap.settle()
        code = pytest.main(pytest_args(config, extra), plugins=[_one_line_usage_errors()])
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        if embedded is not None:
            embedded.stop()
    wrote = results_stamp(report_dir) not in (None, earlier)
    return finish(config, int(code), report_dir, before=earlier), wrote, int(code)


def claims_listing(reqs: list[catalogue.Requirement]) -> list[str]:
    """What `list --claims` prints: each feature (--without) and choice (--claim), its meaning and the
    requirements it decides."""
    lines = ["features (held to all by default; --without FEATURE,... : their requirements are not run):"]
    for name, meaning in claims.FEATURES.items():
        ids = ", ".join(r.id for r in reqs if r.feature == name) or "-"
        lines.append(f"  {name:<24} {meaning} [{ids}]")
    lines.append("choices on open points (observed by default; --claim CHOICE,... : judged at MUST):")
    for name, meaning in claims.CHOICES.items():
        ids = ", ".join(r.id for r in reqs if r.choice == name) or "PROP-003 (generated cases)"
        lines.append(f"  {name:<24} {meaning} [{ids}]")
    return lines


def command_list(args: argparse.Namespace) -> int:
    """The catalogue, each rule with its place in docs/contract.md: text (the reference on a line of its own
    under the statement), json (a list of {id, level, levels (per profile), statement, source, contract,
    profiles}) or markdown (docs/requirements.md's table). Under --profile each level is that profile's."""
    reqs = catalogue.for_profile(args.profile) if args.profile else list(catalogue.REQUIREMENTS)
    if args.claims:
        write_lines(claims_listing(reqs))
        return EXIT_OK
    lines: list[str] = []

    def level(r: catalogue.Requirement) -> str:
        # under --profile, the level that profile judges at; without it, every profile's (as the table shows)
        return r.level_for(args.profile) if args.profile else r.level_text()

    if args.format == "json":
        lines.append(json.dumps([{"id": r.id, "level": r.level_for(args.profile) if args.profile else r.level,
                                  "levels": {p: r.level_for(p) for p in r.profiles}, "statement": r.statement,
                                  "source": r.source, "contract": r.contract, "profiles": list(r.profiles)}
                                 for r in reqs], indent=2))
    elif args.format == "markdown":
        lines.append(catalogue.markdown_table(reqs))
    else:
        for r in reqs:
            only = "" if len(r.profiles) > 1 else f" [{r.profiles[0]} only]"
            lines.append(f"{r.id:<10} {level(r):<6} {r.statement}{only}")
            # under the statement, not after it: the statements are long already
            lines.append(f"{'':<18}{r.contract}")
    write_lines(lines)
    return EXIT_OK


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = action.choices[name]
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["run"]:
        # only `run` has reports to set aside before it acts on a signal of its first moments
        late = signals.release()
        if late:
            print(f"sgp-conformance: interrupted by {late}", file=sys.stderr)
            return 143 if late == "SIGTERM" else 130
    try:
        code = _main(argv)
    except BrokenPipeError:
        # the reader of stdout went away mid-command: a run that could not finish its summary is not a pass
        silence_stdout()
        return EXIT_FAIL if argv[:1] == ["run"] and "--dry-run" not in argv else EXIT_OK
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    return code


def console_main() -> None:
    """The `sgp-conformance` command (and `python -m conformance.cli`): `main`, then the process ends.

    It ends without the interpreter's teardown: once `main` has returned, every report is written and
    closed, and the teardown (freeing every object of pytest, Hypothesis, schemathesis and the SDKs, one
    by one) only costs time, about 0.45 s after a standard run. The exit functions (`atexit`: logging's
    flush, a coverage tool's data) still run, and stdout and stderr are flushed. With a thread of the
    command's still running, the ordinary exit waits for it as before."""
    heap.one_command_process()
    code = main()
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a reader that went away, or a stream already closed: nothing more can reach it
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        if argv and argv[0] == "serve":
            from conformance.server.cli import serve_main

            return serve_main(argv[1:])
        if argv and argv[0] == "run":
            args, extra = parser.parse_known_args(argv)
            typo = unknown_option(_subparser(parser, "run"), extra)
            if typo:
                raise UsageError(f"sgp-conformance run: {typo}")
            return command_run(args, extra)
        args = parser.parse_args(argv)
        if args.command == "list":
            return command_list(args)
        if args.command == "diff":
            from conformance.report.diff import command_diff

            return command_diff(args.old, args.new, force=args.force)
        if args.command == "validate":
            from conformance.offline.validate import command_validate

            return command_validate(args)
        if args.command == "replay":
            from conformance.offline.replay import command_replay

            return command_replay(args)
        if args.command == "proxy":
            from conformance.proxy.cli import command_proxy

            return command_proxy(args)
        if args.command == "compare":
            from conformance.compare.command import command_compare

            return command_compare(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sgp-conformance: interrupted", file=sys.stderr)
        return 130
    finally:
        # a run that ended before setting anything aside (a usage error) acts on signals as usual again
        signals.release()
    return EXIT_USAGE


if __name__ == "__main__":
    console_main()
