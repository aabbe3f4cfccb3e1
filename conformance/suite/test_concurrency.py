"""Conformance under concurrency: the same requests alone and overlapping (CONC-001..004)."""

from __future__ import annotations

import time

from conformance.checks import concurrency
from conformance.checks.response import completion_checks, stream_checks
from conformance.contract import catalogue
from conformance.suite.concurrency import Probe, probe
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import CONSEQUENCE_OF
from conformance.transport.client import BudgetExhausted


def _claims(judge: Judge) -> frozenset[str]:
    return frozenset(judge.run.config.claims)


def _probe(judge: Judge) -> Probe:
    """The run's probe, its exchanges kept as this test's evidence; not run without one."""
    if judge.run.halted:
        judge.not_run(judge.run.halted)
    try:
        found = probe(judge.run)
    except BudgetExhausted as exc:
        judge.not_run(str(exc))
    if found is None:
        judge.not_run(f"no concurrency probe at depth {judge.run.config.depth} (--concurrency-probe K sends one)")
    judge.exchanges.extend(e for e in (*found.together, *found.alone) if e not in judge.exchanges)
    if judge.run.client.dead:
        judge.not_run(f"target unreachable: {judge.run.client.dead}")
    return found


@requirement("CONC-001")
def test_no_failure_under_overlap(req, judge: Judge) -> None:
    found = _probe(judge)
    judge(concurrency.overlap_failures(found.alone, found.together))


@requirement("CONC-002")
def test_overlap_answers_pass_the_same_checks(req, judge: Judge) -> None:
    found = _probe(judge)
    run = judge.run
    profile = run.profile
    must = frozenset(r.id for r in catalogue.for_profile(profile.name)
                     if r.level_for(profile.name, _claims(judge)) == catalogue.MUST)
    out: list = []
    new: list = []
    judged = 0
    for alone, together in found.pairs():
        if not (alone.ok and together.ok):
            continue
        judged += 1
        check = stream_checks if together.request.stream else completion_checks
        before, under = check(alone, profile, time.time()), check(together, profile, time.time())
        fresh = concurrency.new_findings(before, under, together, must)
        # a finding the twin shares is the rule's own fault, which its own test reports on its own scenario;
        # one only under overlap is reported once, under its own rule, marked as such, unless it only follows
        # from another finding on the same answer
        broken = {v.requirement for v in fresh}
        fresh = [v for v in fresh if not broken & set(CONSEQUENCE_OF.get(v.requirement, ()))]
        new += fresh
        out += fresh
    if not judged:
        judge.not_judged("no request was answered with 2xx both alone and under overlap", "CONC-001")
    judge(out)
    if new:
        owners = sorted({v.requirement for v in new})
        judge.not_judged(f"answers under overlap broke {', '.join(owners)}, which reports it (one fault, one "
                         "failure)", owners[0])


@requirement("CONC-003")
def test_overlap_ids_distinct(req, judge: Judge) -> None:
    found = _probe(judge)
    judge(concurrency.distinct_ids(found.together, found.markers))


@requirement("CONC-004")
def test_overlap_answers_not_mixed(req, judge: Judge) -> None:
    found = _probe(judge)
    out = concurrency.foreign_markers(found.together, found.markers)
    out += concurrency.equals_twin(found.alone, found.together, claimed="deterministic" in _claims(judge))
    judge(out)
