"""`sgp-conformance compare A B`: send the same seeded cases to two targets and report where the answers differ.

The cases are the suite's scripted scenarios (conformance.suite.scenarios, each built with the target's own
profile, key and model) and `--max-examples` valid requests generated from `--seed` (drawn once, under target
A's profile, and sent to both with each target's model). The requests go one at a time, A's answer then B's,
with each target's request budget and rate limit. Exit codes: 0 (no difference, or differences without
--fail-on-difference), 1 (differences, with --fail-on-difference), 2 (a usage or configuration error),
3 (a target cannot be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.compare import fields, report
from conformance.config import Config
from conformance.config.load import ConfigError, check_base_url
from conformance.config.secrets import config_secrets
from conformance.contract.profiles import PROFILES, Profile, get_profile
from conformance.redact import Scrubber, safe_url
from conformance.report.evidence import exchange_evidence
from conformance.suite.scenarios import BUILDERS, Context
from conformance.transport.exchange import Exchange, RequestSpec

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_KEY_ENV = "SGP_API_KEY"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="send the same cases to two targets and report where the answers differ",
                       description="Send the suite's scripted cases and seeded generated ones to two targets "
                                   "(e.g. a gateway and its upstream, or two releases) and report, per "
                                   "requirement, every field where their answers differ.")
    p.add_argument("a", metavar="A", help="base URL of target A")
    p.add_argument("b", metavar="B", help="base URL of target B")
    for side in ("a", "b"):
        upper = side.upper()
        p.add_argument(f"--{side}-profile", choices=sorted(PROFILES), default="sgp",
                       help=f"profile of target {upper} (default sgp)")
        p.add_argument(f"--{side}-model", default=DEFAULT_MODEL,
                       help=f"model asked of {upper} (default {DEFAULT_MODEL})")
        p.add_argument(f"--{side}-key-env", default=DEFAULT_KEY_ENV, metavar="VAR",
                       help=f"environment variable holding {upper}'s key (default {DEFAULT_KEY_ENV})")
        p.add_argument(f"--{side}-account-id", metavar="ID", help=f"account id sent to {upper} (sgp profile)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated cases (default 1)")
    p.add_argument("--max-examples", type=int, default=10, metavar="N",
                   help="generated cases sent to both targets (default 10; 0: the scripted cases only)")
    p.add_argument("--timeout", type=float, default=20.0, metavar="S", help="seconds per read (default 20)")
    p.add_argument("--report-dir", default="reports", metavar="DIR",
                   help="where compare.html and compare.json are written (default reports/)")
    p.add_argument("--fail-on-difference", action="store_true", help="exit 1 when the answers differ anywhere")
    p.add_argument("--dry-run", action="store_true", help="print the cases and the requests they cost; send none")


@dataclass(frozen=True)
class Target:
    name: str
    config: Config
    profile: Profile
    key_env: str

    def describe(self) -> dict[str, Any]:
        return {"base_url": safe_url(self.config.base_url), "profile": self.profile.name, "model": self.config.model,
                "key": f"${self.key_env}"}


def _target(args: argparse.Namespace, side: str, env: dict[str, str]) -> Target:
    key_env = getattr(args, f"{side}_key_env")
    key = env.get(key_env)
    if not key:
        raise ConfigError(f"no key for target {side.upper()}: set {key_env} in the environment (or name another "
                          f"variable with --{side}-key-env); for a server without auth, any value will do")
    config = Config(base_url=getattr(args, side), api_key=key, model=getattr(args, f"{side}_model"),
                    profile=getattr(args, f"{side}_profile"), account_id=getattr(args, f"{side}_account_id"),
                    timeout=args.timeout, seed=args.seed, max_examples=args.max_examples)
    try:
        check_base_url(config)
    except ConfigError as exc:
        # the URL is a positional argument here, not --base-url
        raise ConfigError(str(exc).replace("--base-url", f"target {side.upper()}")) from None
    return Target(side.upper(), config, get_profile(config.profile), key_env)


def generated_bodies(target: Target, count: int) -> list[dict[str, Any]]:
    """`count` valid request bodies drawn from the seed under target A's profile (the property tests' cases)."""
    if count <= 0:
        return []
    from conformance.suite.generation import draw

    return [b for b in draw("positive", target.profile, target.config) if isinstance(b, dict)][:count]


def _generated_spec(name: str, body: dict[str, Any], target: Target) -> RequestSpec:
    context = Context(target.config, target.profile)
    body = {**body, "model": target.config.model}
    stream = body.get("stream") is True
    headers = context.stream_headers() if stream else context.headers()
    return RequestSpec(name, headers=headers, body=json.dumps(body).encode(), params=body, stream=stream)


def cases(a: Target, b: Target) -> list[tuple[str, RequestSpec, RequestSpec]]:
    """(case, A's request, B's request): every scripted scenario, then the generated cases."""
    ctx_a, ctx_b = Context(a.config, a.profile), Context(b.config, b.profile)
    out = [(name, build(ctx_a), build(ctx_b)) for name, build in BUILDERS.items()]
    for i, body in enumerate(generated_bodies(a, a.config.max_examples or 0)):
        name = f"generated_{i}"
        out.append((name, _generated_spec(name, body, a), _generated_spec(name, body, b)))
    return out


def command_compare(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        if args.max_examples < 0 or args.timeout <= 0:
            raise ConfigError("--max-examples cannot be negative and --timeout must be positive")
        a, b = _target(args, "a", env), _target(args, "b", env)
    except ConfigError as exc:
        print(f"sgp-conformance compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        planned = cases(a, b)
        generated = sum(1 for name, _, _ in planned if name.startswith("generated_"))
        print(f"planned: {len(planned) - generated} scripted and {generated} generated case(s), each sent to A and "
              f"to B: {2 * len(planned)} request(s) ({len(planned)} per target)")
        return EXIT_OK
    # here, not at the top: the CLI's parser takes add_parser from this module, and the client's imports
    # (httpx, httpcore) would cost every command a third of a second
    from conformance.transport.client import BudgetExhausted, Client

    scrubber = Scrubber([*config_secrets(a.config, env), *config_secrets(b.config, env)])
    clients = {a.name: Client(a.config, a.profile, a.config.base_url or ""),
               b.name: Client(b.config, b.profile, b.config.base_url or "")}
    differences: list[fields.Difference] = []
    evidence: dict[str, dict[str, Any]] = {}
    sent = 0
    try:
        for case, spec_a, spec_b in cases(a, b):
            try:
                ex_a, ex_b = clients["A"].send(spec_a), clients["B"].send(spec_b)
            except BudgetExhausted as exc:
                print(f"sgp-conformance compare: stopped after {sent} case(s): {exc}", file=sys.stderr)
                break
            sent += 1
            dead = clients["A"].dead or clients["B"].dead
            if dead:
                print(f"sgp-conformance compare: target unreachable: {scrubber.text(dead)}", file=sys.stderr)
                return EXIT_UNREACHABLE
            found = fields.compare(case, ex_a, ex_b, a.profile)
            if found:
                differences += found
                evidence[case] = {"a": _evidence(ex_a, scrubber, a), "b": _evidence(ex_b, scrubber, b)}
    finally:
        for client in clients.values():
            client.close()
    groups = report.grouped([_scrubbed(d, scrubber) for d in differences], evidence)
    doc = report.document({"a": a.describe(), "b": b.describe()}, args.seed, sent, groups)
    written = report.write(Path(args.report_dir), doc)
    counts = ", ".join(f"{g['requirement']} ({len(g['differences'])})" for g in groups) or "none"
    print(f"sgp-conformance compare: {sent} case(s), {doc['differences']} difference(s): {counts}")
    print(f"reports in {Path(args.report_dir)}/: {', '.join(p.name for p in written)}")
    return EXIT_DIFFERENT if differences and args.fail_on_difference else EXIT_OK


def _evidence(exchange: Exchange, scrubber: Scrubber, target: Target) -> dict[str, Any]:
    return exchange_evidence(exchange, scrubber, target.profile, target.config)


def _scrubbed(difference: fields.Difference, scrubber: Scrubber) -> fields.Difference:
    return fields.Difference(difference.requirement, difference.case, scrubber.text(difference.field),
                             scrubber.value(difference.a), scrubber.value(difference.b))
