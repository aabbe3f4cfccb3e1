"""How a conformance test reaches its verdict: the `@requirement` mark that ties it to one requirement, and
the `Judge` that applies its needs and turns violations into pass, fail, not judged or not run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import pytest

from conformance.checks import NotJudged, Violation, split
from conformance.contract import catalogue
from conformance.report.evidence import curl_line, exchange_evidence
from conformance.report.outcomes import MAX_EXCHANGES
from conformance.suite.needs import NOT_JUDGED, NOT_RUN, Need, Unmet
from conformance.suite.run import Run
from conformance.transport.client import BudgetExhausted
from conformance.transport.exchange import Exchange


def requirement(req_id: str, *scenarios: str, needs: Iterable[Need] = (),
                run_wide: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Tie a test to one requirement, declare the scenarios it sends and what it needs (conformance.suite.needs)
    before its rule can be applied. A `run_wide` requirement judges every answer of the run of some kind
    (every 4xx, every response): it runs after the others."""
    req = catalogue.get(req_id)
    marks = [pytest.mark.requirement(req_id), pytest.mark.scenarios(*scenarios), pytest.mark.needs(*needs)]
    if run_wide:
        marks.append(pytest.mark.run_wide)
    return pytest.mark.parametrize("req", [pytest.param(req, id=req_id, marks=marks)])


def requirement_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("requirement")
    return mark.args[0] if mark else None


def record_outcome(item: pytest.Item, status: str, reason: str, needs: str | None = None) -> None:
    """Attach a not-judged / not-run outcome to the test's report, for the results (see results.py)."""
    item.user_properties.append(("sgp_outcome", json.dumps({"status": status, "reason": reason, "needs": needs})))


def not_judged(item: pytest.Item, reason: str, needs: str | None = None) -> NoReturn:
    """End the test as `not judged`: its rule had nothing to judge (because of `needs`, if given)."""
    record_outcome(item, NOT_JUDGED, reason, needs)
    owner = f"needs {needs}: " if needs else ""
    pytest.skip(f"{NOT_JUDGED}: {owner}{reason}")


def not_run(item: pytest.Item, reason: str) -> NoReturn:
    """End the test as `not run`: no request was spent on it (budget, throttling, unreachable, settings)."""
    record_outcome(item, NOT_RUN, reason)
    pytest.skip(f"{NOT_RUN}: {reason}")


class Judge:
    """Turns violations into a test outcome (pass, fail, not judged, not run) and keeps the evidence."""

    def __init__(self, run: Run, item: pytest.Item) -> None:
        self.run = run
        self.item = item
        self.requirement = requirement_of(item)
        self.exchanges: list[Exchange] = []
        # the first exchanges on which this requirement's rule was found broken (each): its evidence leads
        # with them, as many as a result keeps
        self.failing: list[Exchange] = []

    def exchange(self, scenario: str) -> Exchange:
        if self.run.halted:
            self.not_run(self.run.halted)
        try:
            exchange = self.run.exchange(scenario)
        except BudgetExhausted as exc:
            self.not_run(str(exc))
        if exchange not in self.exchanges:
            self.exchanges.append(exchange)
        if exchange.response is None and self.run.client.dead:
            # nothing can be judged of a target that cannot be reached: not run, and the run exits 3
            self.not_run(f"target unreachable: {self.run.client.dead}")
        if exchange.response is not None and exchange.response.status in (429, 503) \
                and self.run.client.throttled_out:
            self.not_run(self.run.client.throttled_out)
        if exchange.response is not None and exchange.response.status == 429:
            self.not_run("the target kept answering 429 Too Many Requests after retries")
        return exchange

    def not_judged(self, reason: str, needs: str | None = None) -> NoReturn:
        not_judged(self.item, reason, needs)

    def not_run(self, reason: str) -> NoReturn:
        not_run(self.item, reason)

    def check_needs(self) -> None:
        """Apply the needs declared with @requirement, in order: an unmet one ends the test as not judged
        (or not run), naming its owner; one whose owner is this requirement fails it."""
        if self.run.halted:
            self.not_run(self.run.halted)
        mark = self.item.get_closest_marker("needs")
        for need in mark.args if mark else ():
            try:
                failure = need.check(self)
            except Unmet as unmet:
                if unmet.status == NOT_RUN:
                    self.not_run(unmet.reason)
                self.not_judged(unmet.reason, unmet.needs)
            if failure:
                self(failure)

    def each(self, exchanges: Iterable[Exchange], check: Callable[[Exchange], Iterable[Violation]]) -> None:
        """Judge this requirement over several exchanges: it passes when the rule held on every exchange it
        could be applied to and there was at least one; an exchange that only gave a NotJudged note is left
        out. Violations of other requirements found on the way are kept for them."""
        found: list[Violation] = []
        notes: list[Violation] = []
        judged = 0
        for exchange in exchanges:
            results = list(check(exchange))
            own_notes = [v for v in results if isinstance(v, NotJudged) and v.requirement == self.requirement]
            judged += not own_notes
            notes += own_notes
            real = [v for v in results if not isinstance(v, NotJudged)]
            if len(self.failing) < MAX_EXCHANGES and any(v.requirement == self.requirement for v in real):
                self.failing.append(exchange)
            found += real
        self(found if judged else found + notes)

    def _explained(self, own: list[Violation], limit: int = 20) -> tuple[str, str]:
        """The failure text JUnit shows, deduplicated: per distinct (pointer, message) its line, the JSON
        pointer, the scenarios it was found in and a curl line that sends the first of them again (the key as
        ${SGP_API_KEY}, never itself). Returns (lines, the "... and N more" tail)."""
        scrub = self.run.scrubber
        groups: dict[tuple[str, str], list[Violation]] = {}
        for violation in own:
            groups.setdefault((violation.pointer, violation.message), []).append(violation)
        by_scenario: dict[str, Exchange] = {}
        for exchange in [*self.failing, *self.exchanges]:
            by_scenario.setdefault(exchange.scenario, exchange)
        lines: list[str] = []
        for (pointer, _), found in list(groups.items())[:limit]:
            lines.append(f"- {scrub.text(found[0].render())}")
            lines.append(f"  pointer: {pointer or '(the document root)'}")
            scenarios = list(dict.fromkeys(v.scenario for v in found if v.scenario))
            if scenarios:
                times = f" ({len(found)} times)" if len(found) > len(scenarios) else ""
                lines.append(f"  scenario: {', '.join(scenarios)}{times}")
            exchange = next((by_scenario[s] for s in scenarios if s in by_scenario), None)
            if exchange is not None:
                lines.append(f"  reproduce ({exchange.scenario}): "
                             + curl_line(exchange, scrub, self.run.profile, self.run.config))
        more = f"\n... and {len(groups) - limit} more" if len(groups) > limit else ""
        return "\n".join(lines), more

    def __call__(self, violations: Iterable[Violation], detail: str | None = None) -> None:
        """Fail on findings of this requirement; end as not judged when the only results are NotJudged notes
        of it; otherwise pass. Findings of other requirements are recorded for them (results.py)."""
        found = list(violations)
        own, notes = split(v for v in found if v.requirement == self.requirement)
        scrub = self.run.scrubber
        data = [scrub.value(v.to_json()) for v in found if not isinstance(v, NotJudged)]
        self.item.user_properties.append(("sgp_violations", json.dumps(data)))
        if own:
            # the exchanges that broke the rule come first (a result keeps only the first MAX_EXCHANGES), then
            # those of the scenarios its violations name, then the rest the test asked for
            scenarios = {v.scenario for v in own if v.scenario}
            rest = sorted((e for e in self.exchanges if e not in self.failing),
                          key=lambda e: e.scenario not in scenarios)
            evidence = [{**exchange_evidence(e, scrub, self.run.profile, self.run.config),
                         # the exchanges that broke the rule: what `sgp-conformance replay --failed` sends again
                         "failed": e in self.failing or e.scenario in scenarios}
                        for e in [*self.failing, *rest][:MAX_EXCHANGES]]
            self.item.user_properties.append(("sgp_evidence", json.dumps(evidence)))
            if detail:
                # a generated case's own account: its example, seed and curl line (test_properties._describe)
                lines, more = f"- {scrub.text(own[0].render())}\n{scrub.text(detail)}", ""
            else:
                lines, more = self._explained(own)
            pytest.fail(f"{len(own)} violation(s) of {self.requirement}:\n{lines}{more}", pytrace=False)
        if notes:
            first = notes[0]
            self.not_judged(scrub.text(first.message), first.needs or None)
