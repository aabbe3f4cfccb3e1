"""The field census: for every path of the response schemas, how the responses a run saw filled it.

A client author reads it to learn what can be relied on: "choices[].message.refusal: value 0, null 40,
absent 0 of 40". Counts are per occurrence of the object that holds the field (absent means the parent
object was there and the key was not), so fields of optional objects (usage, logprobs) are not counted as
absent from documents that lack the whole object.

The path list comes from the schemas (chat-completion.json and chat-completion-chunk.json, following
`$ref`s into common.json), so a field no response ever sent is listed too; keys the schemas do not know
are added as they are seen (a bounded number). Enum-like fields (the schema has enum/const, or the name
is one of ENUM_LIKE) keep their distinct values, a bounded number of them.

`Census` is pure: documents in, counts out. `CensusPlugin` feeds it every 200 JSON document and every
streamed chunk the run recorded, ships a worker's counts to the controller like the request stats, and
puts the result into conformance.json (section "census") and the HTML report.
"""

from __future__ import annotations

import functools
import html
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.checks.shape import json_type
from conformance.contract import schema_store
from conformance.transport.exchange import Exchange

COMPLETION = "chat.completion"
CHUNK = "chat.completion.chunk"
KINDS: dict[str, str] = {COMPLETION: "chat-completion", CHUNK: "chat-completion-chunk"}
# keys whose values are a small closed set, wherever they appear (also outside the schema)
ENUM_LIKE = frozenset({"finish_reason", "object", "role", "service_tier", "type"})
# distinct values kept per enum-like path; past that the path is not enum-like in practice
MAX_VALUES = 12
# paths outside the schema kept per kind: an echoing or verbose server must not grow the report unbounded
MAX_EXTRA_PATHS = 100
# how deep an object tree is followed, in the schema and in documents
MAX_DEPTH = 16
SECTION = "census"
PLUGIN_NAME = "sgp-conformance-census"
WORKER_KEY = "sgp_census"


# -- the schema's paths ---------------------------------------------------------------------------------


@dataclass
class Node:
    """What the schema says about one place in a document."""

    properties: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None
    enum: bool = False
    required: frozenset[str] = frozenset()


def _merge(into: Node, other: Node) -> None:
    for name, child in other.properties.items():
        if name in into.properties:
            _merge(into.properties[name], child)
        else:
            into.properties[name] = child
    if other.items is not None:
        if into.items is None:
            into.items = other.items
        else:
            _merge(into.items, other.items)
    into.enum = into.enum or other.enum
    into.required = into.required | other.required


def _node(schema: Any, resolver: Any, depth: int = 0) -> Node:
    node = Node()
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return node
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        _merge(node, _node(resolved.contents, resolved.resolver, depth + 1))
    node.enum = node.enum or "enum" in schema or "const" in schema
    node.required = node.required | frozenset(schema.get("required", ()))
    for name, sub in (schema.get("properties") or {}).items():
        node.properties[name] = _node(sub, resolver, depth + 1)
    if isinstance(schema.get("items"), dict):
        node.items = _node(schema["items"], resolver, depth + 1)
    # alternatives and conditions may name properties too: a path is a path whichever branch holds it, but
    # what a branch requires holds only where that branch applies (tool_calls[].custom only for type custom)
    branches = [(sub, key == "allOf") for key in ("allOf", "anyOf", "oneOf") for sub in schema.get(key) or ()]
    branches += [(schema[key], False) for key in ("then", "else") if isinstance(schema.get(key), dict)]
    for sub, always in branches:
        branch = _node(sub, resolver, depth + 1)
        if not always:
            branch.required = frozenset()
        _merge(node, branch)
    return node


@functools.cache
def schema_tree(schema_name: str) -> Node:
    """The schema's tree of properties (cached: built once, never changed after)."""
    resolver = schema_store.registry().resolver(base_uri=schema_store.uri(schema_name))
    return _node(schema_store.load(schema_name), resolver)


def schema_paths(node: Node, prefix: str = "") -> Iterator[tuple[str, Node, bool]]:
    """(path, node, required) of every property below `node`, depth first in the schema's order."""
    for name, child in node.properties.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, child, name in node.required
        yield from schema_paths(child, path)
        if child.items is not None:
            yield from schema_paths(child.items, f"{path}[]")


def parent_of(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def leaf_of(path: str) -> str:
    return path.rsplit(".", 1)[-1]


# -- counting -------------------------------------------------------------------------------------------


@dataclass
class FieldStats:
    value: int = 0
    null: int = 0
    types: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)
    values_truncated: bool = False

    def see(self, value: Any, enum_like: bool) -> None:
        kind = json_type(value)
        self.types[kind] += 1
        if value is None:
            self.null += 1
            return
        self.value += 1
        if enum_like and not self.values_truncated and kind in ("string", "integer", "boolean", "number"):
            key = value if isinstance(value, str) else json.dumps(value)
            if key in self.values or len(self.values) < MAX_VALUES:
                self.values[key] += 1
            else:
                self.values_truncated = True

    def add(self, other: FieldStats) -> None:
        self.value += other.value
        self.null += other.null
        self.types.update(other.types)
        self.values_truncated = self.values_truncated or other.values_truncated
        for key, n in other.values.items():
            if key in self.values or len(self.values) < MAX_VALUES:
                self.values[key] += n
            else:
                self.values_truncated = True

    def dump(self) -> dict[str, Any]:
        return {"value": self.value, "null": self.null, "types": dict(self.types), "values": dict(self.values),
                "values_truncated": self.values_truncated}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> FieldStats:
        return cls(int(data.get("value", 0)), int(data.get("null", 0)), Counter(data.get("types") or {}),
                   Counter(data.get("values") or {}), bool(data.get("values_truncated")))


class KindCensus:
    """The counts of one document kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tree = schema_tree(KINDS[kind])
        self.known: dict[str, tuple[Node, bool]] = {p: (n, r) for p, n, r in schema_paths(self.tree)}
        self.documents = 0
        # how many objects were seen at each path ("" is the document): the "of" of the fields below it
        self.objects: Counter[str] = Counter()
        self.fields: dict[str, FieldStats] = {}
        self.extra_dropped = 0

    def add(self, document: Any) -> None:
        self.documents += 1
        if isinstance(document, dict):
            self._object(self.tree, document, "", 0)

    def _object(self, node: Node | None, obj: dict[str, Any], path: str, depth: int) -> None:
        self.objects[path] += 1
        if depth > MAX_DEPTH:
            return
        for key, value in obj.items():
            child_path = f"{path}.{key}" if path else str(key)
            child = node.properties.get(key) if node is not None else None
            stats = self._stats(child_path)
            if stats is None:
                continue
            enum_like = (child is not None and child.enum) or key in ENUM_LIKE
            stats.see(value, enum_like)
            self._descend(child, value, child_path, depth + 1)

    def _descend(self, node: Node | None, value: Any, path: str, depth: int) -> None:
        if isinstance(value, dict):
            self._object(node, value, path, depth)
        elif isinstance(value, list):
            items = node.items if node is not None else None
            for item in value:
                if isinstance(item, dict):
                    self._object(items, item, f"{path}[]", depth)

    def _stats(self, path: str) -> FieldStats | None:
        stats = self.fields.get(path)
        if stats is None:
            extras = sum(1 for p in self.fields if p not in self.known)
            if path not in self.known and extras >= MAX_EXTRA_PATHS:
                self.extra_dropped += 1
                return None
            stats = self.fields[path] = FieldStats()
        return stats

    # -- shipping between processes and reporting ---------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"documents": self.documents, "objects": dict(self.objects), "extra_dropped": self.extra_dropped,
                "fields": {p: s.dump() for p, s in self.fields.items()}}

    def merge(self, data: Mapping[str, Any]) -> None:
        self.documents += int(data.get("documents", 0))
        self.objects.update(data.get("objects") or {})
        self.extra_dropped += int(data.get("extra_dropped", 0))
        for path, stats in (data.get("fields") or {}).items():
            mine = self._stats(path)
            if mine is not None:
                mine.add(FieldStats.load(stats))

    def rows(self) -> list[dict[str, Any]]:
        paths = list(self.known) + sorted(p for p in self.fields if p not in self.known)
        out = []
        for path in paths:
            stats = self.fields.get(path, FieldStats())
            total = self.objects.get(parent_of(path), 0)
            node, required = self.known.get(path, (None, False))
            row: dict[str, Any] = {
                "path": path,
                "in_schema": path in self.known,
                "required": required,
                "of": total,
                "value": stats.value,
                "null": stats.null,
                "absent": max(total - stats.value - stats.null, 0),
                "types": dict(sorted(stats.types.items())),
                "seen": seen(stats.value, stats.null, total),
            }
            if stats.values or (node is not None and node.enum) or leaf_of(path) in ENUM_LIKE:
                row["values"] = dict(stats.values.most_common())
                if stats.values_truncated:
                    row["values_truncated"] = True
            out.append(row)
        return out

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"documents": self.documents, "fields": self.rows()}
        if self.extra_dropped:
            out["extra_paths_dropped"] = self.extra_dropped
        return out


def seen(value: int, null: int, total: int) -> str:
    """How far a client can rely on a field: always a value, never one, sometimes, or not judged."""
    if total == 0:
        return "parent never seen"
    if value == total:
        return "always"
    if value == 0:
        return "null only" if null == total else ("never" if null == 0 else "null or absent")
    return "sometimes"


class Census:
    """Counts over documents of both kinds; `add(document, kind)` with kind COMPLETION or CHUNK."""

    def __init__(self) -> None:
        self.kinds: dict[str, KindCensus] = {}

    def _kind(self, kind: str) -> KindCensus:
        if kind not in KINDS:
            raise ValueError(f"unknown document kind {kind!r}: use one of {', '.join(KINDS)}")
        if kind not in self.kinds:
            self.kinds[kind] = KindCensus(kind)
        return self.kinds[kind]

    def add(self, document: Any, kind: str) -> None:
        self._kind(kind).add(document)

    def add_exchange(self, exchange: Exchange) -> None:
        """Every document of a 200 answer: its JSON body, or each JSON chunk of its stream."""
        for kind, document in documents(exchange):
            self.add(document, kind)

    def dump(self) -> dict[str, Any]:
        return {kind: census.dump() for kind, census in self.kinds.items()}

    def merge(self, data: Mapping[str, Any]) -> None:
        for kind, counts in data.items():
            if kind in KINDS:
                self._kind(kind).merge(counts)

    def report(self) -> dict[str, Any]:
        """The conformance.json section: per kind, the document count and one row per path."""
        return {
            "documents": {kind: self.kinds[kind].documents if kind in self.kinds else 0 for kind in KINDS},
            "kinds": {kind: census.report() for kind, census in self.kinds.items()},
        }


def documents(exchange: Exchange) -> Iterator[tuple[str, Any]]:
    """(kind, document) of every object a 200 answer carried; data that is not a JSON object is skipped
    (the checks report it; a census counts fields)."""
    response = exchange.response
    if response is None or response.status != 200:
        return
    if response.media_type == "text/event-stream":
        for event in exchange.events.events:
            if event.event not in ("message", ""):
                continue
            try:
                chunk = json.loads(event.data)
            except (ValueError, RecursionError):  # a payload nested past the parser: JSON-001's finding
                continue
            if isinstance(chunk, dict):
                yield CHUNK, chunk
        return
    if isinstance(exchange.json, dict):
        yield COMPLETION, exchange.json


def census_of(exchanges: Iterable[Exchange]) -> Census:
    census = Census()
    for exchange in exchanges:
        census.add_exchange(exchange)
    return census


# -- the HTML part --------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items())


def census_html(section: Mapping[str, Any]) -> str:
    """A compact table per kind; paths whose parent object never appeared are listed on one line."""
    out = ['<section id="sgp-census" class="sgp"><h2>Field census</h2>',
           "<p class='msg'>For each field of the responses this run saw: how often it held a value, was null, "
           "or was absent, counted per occurrence of the object that holds it: what a client can rely on. "
           "R marks a field the contract requires.</p>"]
    kinds = section.get("kinds") or {}
    if not kinds:
        out.append("<p class='note'>No 200 response was recorded.</p></section>")
        return "\n".join(out)
    for kind, data in kinds.items():
        rows = data.get("fields", [])
        out.append(f"<h3>{_e(kind)} <span class='msg'>({_e(data.get('documents', 0))} document(s))</span></h3>")
        out.append("<table class='sgp-census'><tr><th>field</th><th>seen</th><th>value</th><th>null</th>"
                   "<th>absent</th><th>of</th><th>types</th><th>values</th></tr>")
        unseen = []
        for row in rows:
            if not row.get("of"):
                unseen.append(row["path"])
                continue
            path = _e(row["path"]) + ("" if row.get("in_schema") else " <span class='msg'>(not in schema)</span>")
            if row.get("required"):
                path += " <span class='msg'>R</span>"
            values = _counts(row.get("values") or {}) + (", …" if row.get("values_truncated") else "")
            out.append(f"<tr><td><code>{path}</code></td><td>{_e(row.get('seen'))}</td><td>{row['value']}</td>"
                       f"<td>{row['null']}</td><td>{row['absent']}</td><td>{row['of']}</td>"
                       f"<td>{_e(_counts(row.get('types') or {}))}</td><td>{_e(values)}</td></tr>")
        out.append("</table>")
        if unseen:
            out.append(f"<p class='note'>Not judged (the object holding them never appeared): "
                       f"{_e(', '.join(unseen))}</p>")
        if data.get("extra_paths_dropped"):
            out.append(f"<p class='note'>{_e(data['extra_paths_dropped'])} occurrence(s) of further fields "
                       "outside the schema were not counted.</p>")
    out.append("</section>")
    return "\n".join(out)


def summary_line(row: Mapping[str, Any]) -> str:
    """One row as a sentence: "choices[].message.refusal: value 0, null 40, absent 0 of 40; types: null"."""
    types = ", ".join(row.get("types") or {}) or "-"
    return (f"{row['path']}: value {row['value']}, null {row['null']}, absent {row['absent']} of {row['of']}; "
            f"types: {types}")


# -- the pytest wiring ----------------------------------------------------------------------------------


class CensusPlugin:
    """Counts what the process recorded; a worker ships its counts, the controller merges and reports."""

    def __init__(self, run: Any, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.shipped: list[dict[str, Any]] = []
        self._section: dict[str, Any] | None = None
        from conformance.report.results import register_section

        register_section(config, SECTION, self.section)

    def census(self) -> Census:
        census = census_of(list(self.run.client.exchanges))
        for data in self.shipped:
            census.merge(data)
        return census

    def section(self) -> dict[str, Any]:
        if self._section is None:
            self._section = self.census().report()
        return self._section

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            try:
                output[WORKER_KEY] = json.dumps(census_of(list(self.run.client.exchanges)).dump())
            except Exception as exc:  # the census is a report aid: it must never cost a worker its results
                output[WORKER_KEY + "_error"] = f"{type(exc).__name__}: {exc}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        if WORKER_KEY in output:
            self.shipped.append(json.loads(output[WORKER_KEY]))

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:
        try:
            page = census_html(self.run.scrubber.value(self.section()))
        except Exception as exc:  # as above: the report is written whatever happens to the census
            page = f"<section id='sgp-census' class='sgp'><p class='note'>census not available: {html.escape(str(exc))}"
            page += "</p></section>"
        postfix.append(self.run.scrubber.text(page))
