"""The connectors take from the engine only its public surface for them, and import no circle.

A connector (built-in or third-party) may use `crm_sync.errors`, `crm_sync.logs`,
`crm_sync.retry` and `crm_sync.clock`, nothing else of the engine: what it is given about its
source is a `connectors.base.SourceSpec`, not the engine's config model.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = frozenset({"crm_sync.errors", "crm_sync.logs", "crm_sync.retry", "crm_sync.clock"})


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, those inside functions and `if` blocks too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "crm_sync":  # `from crm_sync import config` names a module
                for alias in node.names:
                    yield node.lineno, f"crm_sync.{alias.name}"


def engine_imports(path: Path) -> list[str]:
    """The engine modules a file imports that are outside the allowed surface."""
    found = []
    for line, module in imported_modules(path):
        if module == "crm_sync" or not module.startswith("crm_sync."):
            continue
        if any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED):
            continue
        found.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    return found


def test_connectors_import_only_the_allowed_engine_surface() -> None:
    """No module under connectors/ imports crm_sync beyond errors, logs, retry and clock."""
    files = sorted((ROOT / "connectors").rglob("*.py"))
    assert files
    offending = [line for path in files for line in engine_imports(path)]
    assert not offending, "connectors import engine internals:\n" + "\n".join(offending)


def test_the_surface_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """An import hidden in a function body is found, an allowed one is not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from crm_sync.errors import AuthError\n"
        "def f():\n"
        "    from crm_sync.config import SourceConfig\n"
        "    import crm_sync.store.records\n"
    )
    modules = [m for _, m in imported_modules(sample)]
    assert "crm_sync.config" in modules
    assert "crm_sync.store.records" in modules
    assert "crm_sync.errors" in modules


def test_config_does_not_import_the_connector_registry() -> None:
    """config.py is the engine's model: it must not reach into connectors.registry (a circle)."""
    modules = [m for _, m in imported_modules(ROOT / "crm_sync" / "config.py")]
    assert not [m for m in modules if m.startswith("connectors.registry")]


def test_the_engine_leaves_batch_splitting_to_the_connector() -> None:
    """No engine module reads a connector's `limits`: the connector alone splits reads/writes."""
    found = []
    for path in sorted((ROOT / "crm_sync").rglob("*.py")):
        if "sandbox" in path.relative_to(ROOT).parts:
            continue  # the emulators have rate limits of their own, named `limits` too
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "limits"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .limits.{node.attr}")
    assert not found, "the engine splits by connector limits:\n" + "\n".join(found)
