"""The official SDKs against the target: CLIENT-001..004, only with `run --clients`.

The tests are always collected (the catalogue, the dry-run plan and the results list them): without
--clients they are not run (a setting), with --clients but no SDK installed not judged (the CLI refuses that
configuration before it starts). Each SDK call is made once a run and shared by the requirements that judge it.
"""

from __future__ import annotations

from typing import Any

from conformance.audit import client_matrix, sdk_clients
from conformance.checks import Violation, findings, stream_assembly
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import stream_refused
from conformance.suite.run import Run
from conformance.transport.client import BudgetExhausted
from conformance.transport.exchange import Exchange

CALLS = "sdk_calls"


def _counted(run: Run) -> tuple[Any, Any, Any]:
    """Hooks that put the SDK's requests under the run's budget, pace and request counts, as if the
    suite's own client had sent them."""
    client = run.client

    def record(exchange: Exchange) -> None:
        # every attempt is kept; a final 429 is counted where the call's outcome is known (below)
        client.count_status(exchange)
        client.keep(exchange)

    return client.admit, record, client.note_retry


def _call(judge: Judge, stream: bool) -> sdk_clients.Call:
    run = judge.run
    if not run.config.clients:
        judge.not_run("pass --clients to drive the official SDKs")
    unusable = sdk_clients.missing_sdk(run.profile) or sdk_clients.layout_problem(run.profile)
    if unusable:
        judge.not_judged(unusable)
    calls: dict[bool, sdk_clients.Call | str] = run.shared.setdefault(CALLS, {})
    if stream not in calls:
        if run.client.dead:
            judge.not_run(f"target unreachable: {run.client.dead}")
        if run.halted:
            judge.not_run(run.halted)
        before_send, record, on_retry = _counted(run)
        try:
            made = sdk_clients.call_sdk(run.profile, run.config, stream, before_send, record, on_retry=on_retry)
        except BudgetExhausted as exc:
            calls[stream] = f"not run: {exc}"
        else:
            calls[stream] = made
            if made.unreachable:
                # as the suite's client does: a target that cannot be reached ends the run as unreachable
                run.client.dead = run.client.dead or made.unreachable
                calls[stream] = f"not run: target unreachable: {made.unreachable}"
            elif made.exchange is not None and made.exchange.status == 429:
                run.client.note_throttled()
                # as for the suite's own requests: throttling is no finding, the requirement is not judged
                calls[stream] = "not run: the target kept answering 429 Too Many Requests after retries"
    found = calls[stream]
    if isinstance(found, str):
        judge.not_run(found.removeprefix("not run: "))
    judge.exchanges.extend(found.exchanges)
    return found


@requirement("CLIENT-001")
def test_sdk_parses_a_completion(req, judge: Judge) -> None:
    call = _call(judge, stream=False)
    judge(sdk_clients.completion_parsed(call, sdk_clients.sdk_for(judge.run.profile)))


@requirement("CLIENT-002")
def test_sgp_sdk_consumes_a_stream(req, judge: Judge) -> None:
    call = _call(judge, stream=True)
    judge(sdk_clients.stream_consumed(call, sdk_clients.sdk_for(judge.run.profile), req.id))


@requirement("CLIENT-003")
def test_openai_sdk_consumes_a_stream(req, judge: Judge) -> None:
    call = _call(judge, stream=True)
    judge(sdk_clients.stream_consumed(call, sdk_clients.sdk_for(judge.run.profile), req.id))


@requirement("CLIENT-004")
def test_bodies_validate_against_sdk_types(req, judge: Judge) -> None:
    completion = _call(judge, stream=False)
    stream = _call(judge, stream=True)
    judge(sdk_clients.strict_types(completion, stream, sdk_clients.sdk_for(judge.run.profile)))


MATRIX = "client_matrix"


@requirement("CLIENT-005")
def test_client_matrix(req, judge: Judge) -> None:
    run = judge.run
    if not run.config.clients:
        judge.not_run("pass --clients to drive the official SDKs")
    if run.client.dead:
        judge.not_run(f"target unreachable: {run.client.dead}")
    if MATRIX not in run.shared:
        before_send, record, _ = _counted(run)
        run.shared[MATRIX] = client_matrix.run_matrix(run.config, run.profile, before_send, record)
    cells: list[client_matrix.Cell] = run.shared[MATRIX]
    table = _matrix_text(run, cells)
    # the matrix is the test's output: the HTML report's Test log shows it, pass or fail
    print(table)
    for cell in cells:
        judge.exchanges.extend(e for e in cell.exchanges if e not in judge.exchanges)
    broken = [c for c in cells if c.status == client_matrix.FAIL]
    # a client's streamed request refused as the minimal stream is (a gateway that fails every stream): the
    # client rightly raises, and STRM-001 reports the fault once; those cells are not judged here
    refused = [c for c in broken if _stream_refused(c)]
    cause = stream_refused(judge) if refused else None
    if cause is not None:
        broken = [c for c in broken if c not in refused]
    # the Python openai client's stream accumulator is the one STRM-022 runs on every stream of the run: where
    # STRM-022 fails on the cell's own stream, the cell would report that finding again
    assembled = [c for c in broken if _strm_022_fails(c)]
    broken = [c for c in broken if c not in assembled]
    judge.failing.extend(e for c in broken for e in c.exchanges[-1:])
    if not broken and not any(c.status == client_matrix.PASS for c in cells):
        if assembled:
            judge.not_judged("the openai SDK's assembly of the clients' streams is STRM-022's finding", "STRM-022")
        if cause is not None:
            judge.not_judged(f"the clients' streamed requests were refused as the minimal stream was ({cause})",
                             "STRM-001")
        reasons = sorted({f"{c.client}: {c.detail}" for c in cells})
        judge.not_judged("; ".join(reasons))
    found = [Violation(req.id, f"{c.client} {c.version} ({c.language}), {c.capability}: {c.detail}", "",
                       c.exchanges[-1].scenario if c.exchanges else "") for c in broken]
    judge(found, detail="\n".join(f"- {v.message}" for v in found[1:]) + f"\n{table}" if found else None)


def _stream_refused(cell: client_matrix.Cell) -> bool:
    """A failed cell whose last request was a stream answered with no 2xx (the typed-error cell's refusal
    is what it asks for)."""
    last = cell.exchanges[-1] if cell.exchanges else None
    return (cell.capability != "typed error" and last is not None and last.request.stream
            and last.response is not None and not 200 <= last.response.status < 300)


def _strm_022_fails(cell: client_matrix.Cell) -> bool:
    """A failed stream cell of the Python openai client whose stream STRM-022 fails (the same SDK's
    accumulator, on the same exchange)."""
    last = cell.exchanges[-1] if cell.exchanges else None
    return (cell.client == "openai" and cell.language == "Python" and cell.capability in ("stream", "tool calls")
            and last is not None and last.request.stream
            and bool(findings(stream_assembly.sdk_agreement(last))))


def _matrix_text(run: Run, cells: list[client_matrix.Cell]) -> str:
    """The matrix (client x version x capability) and what each cell that is not a pass says."""
    notes = [f"- {c.client} {c.version}, {c.capability}: {c.status}: {run.scrubber.text(c.detail)}"
             for c in cells if c.status != client_matrix.PASS]
    text = f"client matrix ({run.profile.name} profile):\n{client_matrix.markdown(cells)}"
    return text + ("\n" + "\n".join(notes) if notes else "")
