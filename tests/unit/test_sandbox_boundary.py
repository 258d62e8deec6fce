"""The sandbox is a room of its own: only the `demo` and `sandbox` commands enter it, and it takes
from the engine only logging, the clock and the embedded server (so it states the APIs' facts
itself and can catch the client misreading them). Imports inside functions count too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = "crm_sync.sandbox"
#: The only modules outside the sandbox that may import it.
ENTRANCES = frozenset(
    {"crm_sync.commands.sandbox", "crm_sync.commands.demo", "crm_sync.commands.demo_live"}
)
#: What the sandbox may take from the engine: neutral infrastructure, nothing about the APIs.
SANDBOX_MAY_USE = frozenset({"crm_sync.logs", "crm_sync.clock", "crm_sync.http_server"})


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module `path` imports, anywhere in it; `from a import b` yields `a` and `a.b`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def sources() -> Iterator[Path]:
    for top in ("crm_sync", "connectors"):
        yield from sorted((ROOT / top).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def boundary_breaches(paths: list[Path], root: Path = ROOT) -> list[str]:
    """Each forbidden import as `module -> imported`."""
    breaches: list[str] = []
    for path in paths:
        here = module_name(path, root)
        names = set(imported(path, root))
        if within(here, SANDBOX):
            bad = {n for n in names if within(n, "connectors") or engine_only(n)}
        else:
            bad = set() if here in ENTRANCES else {n for n in names if within(n, SANDBOX)}
        # `from a import b` is reported once, as `a`, when `a` itself is forbidden
        bad = {n for n in bad if not any(n != b and within(n, b) for b in bad)}
        breaches.extend(f"{here} -> {name}" for name in bad)
    return sorted(breaches)


def engine_only(name: str) -> bool:
    """An engine module the sandbox may not take (bare `crm_sync` is `from crm_sync import`)."""
    if name == "crm_sync" or not within(name, "crm_sync") or within(name, SANDBOX):
        return False
    return not any(within(name, allowed) for allowed in SANDBOX_MAY_USE)


def test_only_the_demo_and_sandbox_commands_enter_the_sandbox_and_it_takes_only_logging() -> None:
    """No module of crm_sync or connectors crosses the sandbox's walls, either way."""
    paths = list(sources())
    assert any(within(module_name(p), SANDBOX) for p in paths)
    assert boundary_breaches(paths) == []


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    """A forbidden import hidden in a function, relative or by `from crm_sync import`, is found."""
    sandbox = tmp_path / "crm_sync" / "sandbox" / "hubspot"
    sandbox.mkdir(parents=True)
    (sandbox / "emulator.py").write_text(
        "from crm_sync.logs import get_logger\n"
        "from crm_sync import clock\n"
        "from .store import ContactStore\n"
        "def f():\n    from crm_sync.enrichment.models import ENRICH_FIELDS\n"
        "def g():\n    from ...config import Config\n"
        "import connectors.base\n"
    )
    engine = tmp_path / "crm_sync" / "pipeline"
    engine.mkdir()
    (engine / "cycle.py").write_text("def f():\n    from crm_sync import sandbox\n")
    (tmp_path / "crm_sync" / "commands").mkdir()
    (tmp_path / "crm_sync" / "commands" / "demo.py").write_text("import crm_sync.sandbox.world\n")
    found = boundary_breaches(sorted(tmp_path.rglob("*.py")), tmp_path)
    assert found == [
        "crm_sync.pipeline.cycle -> crm_sync.sandbox",
        "crm_sync.sandbox.hubspot.emulator -> connectors.base",
        "crm_sync.sandbox.hubspot.emulator -> crm_sync.config",
        "crm_sync.sandbox.hubspot.emulator -> crm_sync.enrichment.models",
    ]
