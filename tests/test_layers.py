"""The package shows its pipeline: data flows one way, contract → transport → checks → report → suite → CLI.

Every import inside `conformance` is read from the source (module level, inside functions, and under
TYPE_CHECKING alike: an import there still says which module depends on which), and two rules are held:
no module imports one of a higher layer, and no group of modules imports itself around a cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "conformance"

# lower first; a module may import its own layer and the layers below it
LAYERS: list[tuple[str, ...]] = [
    ("conformance", "conformance.redact", "conformance.pipes", "conformance.contract", "conformance.schemas"),
    ("conformance.config",),
    ("conformance.transport",),
    ("conformance.checks", "conformance.server"),
    ("conformance.report",),
    ("conformance.audit",),
    ("conformance.suite",),
    ("conformance.offline", "conformance.compare"),
    ("conformance.proxy",),
    ("conformance.cli", "conformance.plugin", "conformance.__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


# parsed when a test asks, not at collection (where each xdist worker would parse every module), and once
@functools.cache
def imports_of(name: str) -> set[str]:
    """The conformance modules `name` imports: `from a.b import c` counts as a.b.c where that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


def layer(name: str) -> int:
    """The layer of a module: the one whose prefix names it most closely."""
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layers.py")
    return rank


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_layer(name: str) -> None:
    upward = sorted(m for m in imports_of(name) if layer(m) > layer(name) and not name.startswith(m + "."))
    assert not upward, f"{name} (layer {layer(name)}) imports {upward} of a higher layer"


def test_no_import_cycle() -> None:
    # a package's __init__ re-exporting its own modules is not a cycle of the pipeline
    graph = {a: {b for b in imports_of(a) if not a.startswith(b + ".")} for a in MODULES}
    assert cycles(graph) == []


def test_the_checks_found_here_can_fail() -> None:
    """The two rules catch what they exist for: an upward import, and two modules importing each other."""
    assert layer("conformance.transport.client") < layer("conformance.report.summary")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_plugin_keeps_its_public_name() -> None:
    """`conformance.plugin` (the entry point, `-p conformance.plugin`) is the suite's plugin module itself."""
    import conformance.plugin
    import conformance.suite.plugin

    assert conformance.plugin is conformance.suite.plugin
    for name in ("requirement", "Judge", "Run", "STASH_RUN", "pytest_configure", "judge", "conformance_run"):
        assert hasattr(conformance.plugin, name), name
