"""Rules across overlapping requests (CONC-001..004, docs/contract.md#concurrency).

The concurrency probe (conformance.suite.concurrency) sends K requests one at a time and then the same K at
once; each request carries its own marker in its prompt. These functions judge the two sets of exchanges,
paired by position: `alone[i]` and `together[i]` are the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from conformance.checks import NotJudged, Violation
from conformance.checks.semantics import choices, document
from conformance.checks.shape import brief
from conformance.transport.exchange import Exchange

# transport failures that are the server's doing: the client's own cut (size or time limit) is not one; a
# refused connection counts where the same request alone was served (a full accept queue)
SERVER_FAILURES = ("connect", "timeout", "closed", "other")


def failure(exchange: Exchange) -> str | None:
    """What went wrong with an answer that is the server's fault: a 5xx, a reset or a timeout; else None."""
    if exchange.response is not None and exchange.response.status >= 500:
        return f"{exchange.response.status}"
    if exchange.error is not None and exchange.error_kind in SERVER_FAILURES:
        return f"{exchange.error_kind}: {exchange.error}"
    return None


def overlap_failures(alone: Sequence[Exchange], together: Sequence[Exchange]) -> list[Violation]:
    """CONC-001: no request sent with others in flight fails (5xx, reset, timeout) where it did not alone."""
    out = []
    for single, overlapped in zip(alone, together, strict=True):
        under, before = failure(overlapped), failure(single)
        if under is not None and before is None:
            out.append(Violation("CONC-001", f"{under} while {len(together) - 1} other request(s) were in flight; "
                                 f"sent alone, the same request got {single.status}", "", overlapped.scenario))
    return out


def new_findings(alone_found: Iterable[Violation], together_found: Iterable[Violation],
                 exchange: Exchange, must: frozenset[str]) -> list[Violation]:
    """The MUST rules (`must`) broken by the answer under overlap that held on its one-at-a-time twin, each
    reported under its own rule (one fault, one failure), its message marked "under overlap only". CONC-002
    owns no finding of its own: its test ends not judged, naming these rules."""
    held = {v.requirement for v in alone_found if not isinstance(v, NotJudged)}
    out = []
    for v in together_found:
        if isinstance(v, NotJudged) or v.requirement not in must or v.requirement in held:
            continue
        out.append(Violation(v.requirement, f"under overlap only: {v.message}", v.pointer, exchange.scenario))
    return out


def response_id(exchange: Exchange) -> str | None:
    """The id of a 2xx answer (a stream's: of its first chunk that has one), or None."""
    if not exchange.ok:
        return None
    doc, _ = document(exchange, "CONC-003")
    value = doc.get("id") if doc is not None else None
    return value if isinstance(value, str) else None


def distinct_ids(together: Sequence[Exchange], markers: Sequence[str] = ()) -> list[Violation]:
    """CONC-003: the overlapping requests' answers carry distinct ids. An answer that carries another
    request's marker (`markers`, one per request) is left out: it is that request's answer, its id repeated
    as a consequence, and CONC-004 reports the mix-up (one fault, one failure)."""
    mixed = {v.scenario for v in foreign_markers(together, markers)} if markers else set()
    seen: dict[str, str] = {}
    out = []
    for exchange in together:
        if exchange.scenario in mixed:
            continue
        value = response_id(exchange)
        if value is None:
            continue
        if value in seen:
            out.append(Violation("CONC-003", f"id {brief(value)} is also the id of the answer to {seen[value]}",
                                 "/id", exchange.scenario))
        else:
            seen[value] = exchange.scenario
    if not seen:
        return [NotJudged("CONC-003", "no overlapping request was answered with an id", "", "")]
    return out


def _text(exchange: Exchange) -> str:
    if exchange.response is None:
        return ""
    return exchange.response.body.decode("utf-8", errors="replace")


def foreign_markers(together: Sequence[Exchange], markers: Sequence[str]) -> list[Violation]:
    """CONC-004: no answer carries another overlapping request's marker (anywhere in its body: a chunk of
    another stream counts as much as a whole answer swapped)."""
    out = []
    for i, exchange in enumerate(together):
        text = _text(exchange)
        for j, marker in enumerate(markers):
            if j != i and marker in text:
                own = "its own marker too" if markers[i] in text else "not its own marker"
                out.append(Violation("CONC-004", f"the answer carries the marker of {together[j].scenario} "
                                     f"({marker}), {own}: answers were mixed between requests", "",
                                     exchange.scenario))
    return out


def _contents(exchange: Exchange) -> dict[int, object] | None:
    doc, _ = document(exchange, "CONC-004")
    if doc is None:
        return None
    return {j: (c.get("message") or {}).get("content") if isinstance(c.get("message"), dict) else None
            for j, c in choices(doc)}


def _prompt(exchange: Exchange) -> str | None:
    params = exchange.request.params
    messages = params.get("messages") if isinstance(params, dict) else None
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"] \
        if isinstance(messages, list) else []
    return users[-1] if users and isinstance(users[-1], str) else None


def echoes(exchange: Exchange) -> bool:
    """Whether the answer is an echo model's: every choice's content a non-empty start of the prompt."""
    contents, prompt = _contents(exchange), _prompt(exchange)
    if not contents or prompt is None:
        return False
    return all(isinstance(c, str) and c and prompt.startswith(c) for c in contents.values())


def equals_twin(alone: Sequence[Exchange], together: Sequence[Exchange], claimed: bool = False) -> list[Violation]:
    """CONC-004: each answer under overlap has its one-at-a-time twin's content, where the twin is an echo
    model's answer (it repeats its prompt, so nothing else is right) or where determinism is `claimed`."""
    out = []
    for single, overlapped in zip(alone, together, strict=True):
        if not (claimed or echoes(single)):
            continue
        a, b = _contents(single), _contents(overlapped)
        if a is not None and b is not None and a != b:
            out.append(Violation("CONC-004", f"content differs from the same request sent alone: alone {brief(a)}, "
                                 f"under overlap {brief(b)}", "/choices", overlapped.scenario))
    return out
