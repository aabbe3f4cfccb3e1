"""The official SDKs against the target: CLIENT-001..004, only with `run --clients`.

The tests are always collected (the catalogue, the dry-run plan and the results list them): without
--clients they are not run (a setting), with --clients but no SDK installed not judged (the CLI refuses that
configuration before it starts). Each SDK call is made once a run and shared by the requirements that judge it.
"""

from __future__ import annotations

from typing import Any

from conformance.audit import sdk_clients
from conformance.suite.judge import Judge, requirement
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
