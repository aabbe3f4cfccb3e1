"""The pytest session that writes a proxy's reports: this module is its only test module.

It is `validate`'s session with the tally in place of the records: one `test_proxied[REQ]` per requirement
an observed exchange can judge, run under the suite's Collector, ResultsCollector and census plugins, so
conformance.json, junit.xml and conformance.html have exactly the formats of `run`. A requirement passes
when it held on every proxied exchange it was judged on, fails with the violations and evidence the tally
kept, and is `not judged` when no exchange could judge it (saying what such an exchange would be).
Requirements that need requests of their own (AUTH-*, VAL-* ...) are `not run`, as under `validate`.

The report adds the `proxy` section to conformance.json (`Tally.section`) and a "Proxied traffic" part to
the HTML page: the exchanges and their results, and per requirement the exchanges judged and failed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.config import Config
from conformance.contract import catalogue
from conformance.offline.session import ObservedSession, configure_observed
from conformance.proxy.judge import Tally, requirements_for, why_not_judged_here
from conformance.report.census import Census, CensusPlugin


@dataclass
class ProxyReport:
    """What one report session writes about: a snapshot of the tally and where the traffic went."""

    tally: Tally
    upstream: str
    listen: str
    limits: dict[str, int]

    def section(self) -> dict[str, Any]:
        return self.tally.section(self.upstream, self.listen, self.limits)


STASH = pytest.StashKey[ProxyReport]()


class TallyCensus(CensusPlugin):
    """The census of every exchange judged, counted as they came (no exchange is kept for it)."""

    def census(self) -> Census:
        report: ProxyReport = self.config.stash[STASH]
        return report.tally.census


class ProxyReportPlugin(ObservedSession):
    """Stands in for conformance.plugin's configure step, as validate's plugin does: no target of its own."""

    def __init__(self, settings: Config, report: ProxyReport) -> None:
        super().__init__(settings)
        self.report = report

    def pytest_configure(self, config: pytest.Config) -> None:
        def prepare(run: Any, results: Any) -> None:
            run.client.stats = self.report.tally.stats()
            # the report covers the traffic since the proxy started, not the second it takes to write
            results.started = self.report.tally.started

        config.stash[STASH] = self.report
        # every key any client sent: one may have been echoed into another client's exchange
        keys = [self.settings.api_key or "", *self.report.tally.seen.secrets]
        self.run = configure_observed(config, self.settings, keys,
                                      ("proxy", self.report.section), census=TallyCensus, prepare=prepare)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.function is test_proxied:
            self.parametrize(metafunc, requirements_for(self.report.tally.profile))

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        # right after the summary: what the verdict rests on
        assert self.run is not None  # configured before any report is written
        prefix.append(self.run.scrubber.text(traffic_html(self.report.section())))


def test_proxied(req: catalogue.Requirement, request: pytest.FixtureRequest) -> None:
    """One requirement over every proxied exchange that could judge it: it passes when the rule held on each
    and there was one; it fails with the kept violations and evidence; otherwise it is not judged."""
    from conformance.suite.judge import Judge
    from conformance.suite.run import STASH_RUN

    report = request.config.stash[STASH]
    judge = Judge(request.config.stash[STASH_RUN], request.node)
    counted = report.tally.requirements.get(req.id)
    if counted is None or not counted.judged:
        if counted is not None and counted.note is not None:
            judge.not_judged(counted.note.message, counted.note.needs or None)
        if counted is not None and counted.owner is not None:
            what = "not JSON" if counted.owner == "JSON-001" else "a stream without chunks"
            judge.not_judged(f"every proxied body it could judge was {what}", counted.owner)
        judge.not_judged(why_not_judged_here(req.id))
    judge.exchanges = list(counted.evidence)
    judge(counted.violations, detail=f"broken on {counted.failed} of {counted.judged} exchange(s) judged")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def traffic_html(section: dict[str, Any]) -> str:
    """The "Proxied traffic" part of the HTML page."""
    exchanges = section.get("exchanges", {})
    out = [
        '<section id="sgp-proxy" class="sgp"><h2>Proxied traffic</h2>',
        f"<p class='msg'>Upstream {_e(section.get('upstream'))}, listening on {_e(section.get('listen'))}: "
        f"{_e(exchanges.get('total', 0))} exchange(s), {_e(exchanges.get('chat_completions', 0))} of the "
        f"chat-completions operation, {_e(exchanges.get('judged', 0))} judged "
        f"({_e(exchanges.get('streams', 0))} streamed); {_e(exchanges.get('other_paths', 0))} to other paths "
        "forwarded, not judged.</p>",
    ]
    outcomes = section.get("outcomes") or {}
    if outcomes:
        out.append("<table class='sgp-proxy-outcomes'><tr><th>result</th><th>exchanges</th></tr>")
        out += [f"<tr><td>{_e(name)}</td><td>{_e(n)}</td></tr>" for name, n in outcomes.items()]
        out.append("</table>")
    rows = list((section.get("requirements") or {}).items())
    judged = sum(1 for _, c in rows if c.get("judged"))
    broken = sum(1 for _, c in rows if c.get("failed"))
    # collapsed: a table of every requirement would push the failures below the fold
    out.append(
        f"<details class='sgp-proxy-counts'><summary>Exchanges judged per requirement: {_e(judged)} of "
        f"{_e(len(rows))} requirements judged on at least one exchange, {_e(broken)} broken</summary>"
        "<table><tr><th>ID</th><th>judged</th><th>broken</th></tr>"
    )
    out += [
        f"<tr><td>{_e(rid)}</td><td>{_e(c.get('judged'))}</td><td>{_e(c.get('failed'))}</td></tr>" for rid, c in rows
    ]
    out.append("</table></details>")
    if section.get("evidence_dropped"):
        out.append(
            f"<p class='note'>{_e(section['evidence_dropped'])} failing exchange(s) past the evidence budget "
            "kept their violations and counts only.</p>"
        )
    recent = section.get("recent") or []
    if recent:
        out.append(
            "<h3>Last exchanges</h3><pre class='sgp-proxy-recent'>" + "\n".join(_e(line) for line in recent) + "</pre>"
        )
    out.append("</section>")
    return "\n".join(out)
