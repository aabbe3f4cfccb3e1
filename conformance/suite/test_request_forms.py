"""FORM-001: every documented request form is accepted, each named in the finding (conformance.suite.request_forms
has the forms, the requests that carry them and why a refused request is bisected)."""

from __future__ import annotations

from conformance.checks import NotJudged, Violation
from conformance.suite import request_forms
from conformance.suite.judge import Judge, requirement
from conformance.suite.needs import Basic, stream_refused, why_not
from conformance.transport.exchange import Exchange

SCENARIOS = tuple(request_forms.CARRIED)


@requirement("FORM-001", *SCENARIOS, needs=(Basic(),))
def test_documented_request_forms(req, judge: Judge) -> None:
    # features the server declares absent (--without, issue 19's claims): their forms are not held to it
    without = frozenset(getattr(judge.run.config, "without", ()) or ())
    deep = judge.run.config.depth == "deep"
    found: list[Violation] = []
    answered = plain = 0  # requests answered; those of them not streamed
    # a streamed carrier refused while the minimal stream is refused too: STRM-001's fault, not its forms'
    skipped: list[Violation] = []

    def streamed_refusal(exchange: Exchange) -> bool:
        if not (request_forms.refused(exchange) and exchange.request.stream):
            return False
        cause = stream_refused(judge)
        if cause is None:
            return False
        skipped.append(NotJudged("FORM-001", f"the streamed request {exchange.scenario} was refused as the "
                                 f"minimal stream was ({cause})", "", exchange.scenario, needs="STRM-001"))
        return True

    for scenario, carried in request_forms.CARRIED.items():
        forms = tuple(f for f in carried if request_forms.held(f, without))
        if not forms:
            continue
        if set(request_forms.CARRIER_NEEDS.get(scenario, ())) & without:
            # the carrier needs a feature declared absent: its forms are judged alone
            alone = {form: judge.exchange(f"form_{form}") for form in forms}
            answered += any(single.response is not None for single in alone.values())
            plain += any(single.response is not None and not single.request.stream for single in alone.values())
            found += [request_forms.finding(form, single, why_not(single)) for form, single in alone.items()
                      if request_forms.refused(single) and not streamed_refusal(single)]
            continue
        exchange = judge.exchange(scenario)
        answered += exchange.response is not None
        plain += exchange.response is not None and not exchange.request.stream
        if not request_forms.refused(exchange) and not deep:
            continue
        # bisect: each form alone names the ones refused (at depth deep, every form is sent alone anyway)
        alone = {form: judge.exchange(f"form_{form}") for form in forms}
        refused = [form for form, single in alone.items()
                   if request_forms.refused(single) and not streamed_refusal(single)]
        if request_forms.refused(exchange) and not refused and streamed_refusal(exchange):
            continue
        found += [request_forms.finding(form, alone[form], why_not(alone[form])) for form in refused]
        if request_forms.refused(exchange) and not refused:
            found.append(Violation("FORM-001", f"expected 2xx to the forms {', '.join(forms)} together, each "
                                   f"accepted alone; got {why_not(exchange)}", "", scenario))
    if not answered:
        judge.not_judged("no request with a documented form was answered")
    # judged on the requests that could be (as Judge.each): not judged when the stream's fault left none
    judge(found if found or plain or not skipped else skipped)
