"""The house rules of issue 13, checked on the source itself so they cannot slip back.

One import graph without circles, small files, one clock, one backoff. The graph is read with
`ast` from every `import` statement, including those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crm_sync", "connectors")
MAX_LINES = 400


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in source_files()}


def resolve(name: str) -> str | None:
    """The deepest module of ours that `name` (a dotted import target) denotes."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(path: Path) -> set[str]:
    """Every module of ours that `path` imports, wherever the import statement sits."""
    tree = ast.parse(path.read_text(), str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for target in targets:
            module = resolve(target)
            if module is not None:
                found.add(module)
    found.discard(module_name(path))
    return found


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circle() -> None:
    """No two modules of crm_sync/connectors import each other, directly or round about."""
    found = cycles()
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_the_graph_reader_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: a lazy import inside a function is an edge like any other."""
    path = ROOT / "crm_sync" / "commands" / "once.py"
    assert "crm_sync.wiring" in imported_modules(path)


@pytest.mark.parametrize("path", list(source_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_is_over_400_lines(path: Path) -> None:
    """A module over 400 lines holds two ideas (DESIGN.md, principle 10)."""
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


TIME_READS = re.compile(r"\bdatetime\.now\(|\btime\.time\(|\btime\.monotonic\(|\btime\.sleep\(")


def test_only_the_clock_module_reads_the_time() -> None:
    """datetime.now, time.time, time.monotonic and time.sleep live in crm_sync/clock.py alone."""
    readers = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in source_files()
        if path != ROOT / "crm_sync" / "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TIME_READS.search(line)
    ]
    assert not readers, "\n".join(readers)


BACKOFF = re.compile(r"\*\*\s*\(?attempt|2\s*\*\*|\.uniform\(")


def test_there_is_one_backoff() -> None:
    """Exponential backoff and jitter are computed in crm_sync/retry.py only."""
    formulas = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in source_files()
        if path != ROOT / "crm_sync" / "retry.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BACKOFF.search(line)
    ]
    assert not formulas, "\n".join(formulas)
