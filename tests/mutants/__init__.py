"""Single-fault variants of the reference server, for proving the suite catches broken servers.

Each `Mutant` wraps the reference ASGI app in a middleware that breaks exactly one rule: it rewrites the
request before the reference server sees it (to make the server lenient, or blind to a parameter), or
rewrites the answer after (status, headers, JSON body, SSE events). Each names the requirement that must
catch it; `CONTROLS` are variants that do what the contract leaves open, which must fail no MUST.

These live in tests/ on purpose: the shipped reference server never carries a switch to break itself.

    app = MUTANTS["sem_created_ms"].wrap(create_app(settings), settings)
    python tests/mutants serve sem_created_ms --port 8080      # one mutant, by hand
    python tests/mutants table > docs/kill-table.md            # the published kill table

The modules: `core` (Call, Reply, Mutant, the middleware), `hooks` (the hook builders), one module of
faults per area (`auth`, `headers`, `validation`, `errors`, `response_shape`, `strict_json`, `semantics`,
`streaming`, `properties`), `controls` (the negative controls), `registry` (MUTANTS and CONTROLS, by name),
`serving` (one server for every variant), `running` (the suite against many variants in one process),
`table` (the kill table) and `cli`.

Judging a new mutant costs no new process. Add it to its area's MUTANTS and the matrix runs it, in the test
session's interpreter, against the module's shared servers:

    hosts = Hosts()                                   # one MutantHost server per profile, started on first use
    results = run_many([Invocation("must", "my_mutant", "sgp", ("--depth", "smoke"))], tmp_path, hosts=hosts)
    # each result: code, stdout, stderr, statuses (conformance.json), reports; hosts.stop() at the end

A test of one judgement against any server does the same with `cli_runs.run_in_process(args, report_dir,
env)`, which returns what `cli_runs.run_cli` (the command in a subprocess) does. Keep `run_cli` for what is
about the process itself (signals, start-up, output written by file descriptor), and one real-command run
per module as the agreement check (test_real_cli_agrees_with_the_shared_interpreter, for the matrix).
"""

from __future__ import annotations

from conformance.contract import catalogue

from .cli import main
from .controls import SLOW_S
from .core import (
    ACCOUNT,
    BOTH,
    KEY,
    MODEL,
    OPENAI,
    SGP,
    Call,
    Mutant,
    MutantMiddleware,
    Reply,
    RequestHook,
    ResponseHook,
    json_reply,
)
from .hooks import both, chunk_each, each_choice, on_body, on_chunks, on_completion, on_error, render_events
from .properties import MORE_CASES, ONE_CASE, SCENARIO_PARAMS
from .registry import CONTROLS, MUTANTS, variant
from .running import Hosts, Invocation, run_args, run_inprocess, run_many
from .serving import MutantHost, base_url, settings_for
from .table import CONTROL_HEADER, KILL_TABLE, NOTES, TABLE_HEADER, kill_table

__all__ = [
    "ACCOUNT", "BOTH", "CONTROLS", "CONTROL_HEADER", "KEY", "KILL_TABLE", "MODEL", "MORE_CASES", "MUTANTS", "NOTES",
    "ONE_CASE", "OPENAI", "SCENARIO_PARAMS", "SGP", "SLOW_S", "TABLE_HEADER", "Call", "Hosts", "Invocation", "Mutant",
    "MutantHost", "MutantMiddleware", "Reply", "RequestHook", "ResponseHook", "base_url", "both", "catalogue",
    "chunk_each", "each_choice", "json_reply", "kill_table", "main", "on_body", "on_chunks", "on_completion",
    "on_error", "render_events", "run_args", "run_inprocess", "run_many", "settings_for", "variant",
]
