"""A connector from another package, registered by entry point, runs the whole cycle unchanged."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connectors.registry import known_names
from crm_sync.config import parse_config
from crm_sync.errors import ConfigError
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.wiring import check_sources, open_context

PACKAGE = '''
"""A CRM kept in memory: the smallest complete connector."""
from connectors.base import (
    ConnectorLimits, ConnectorSettings, Contact, Connector, WriteOutcome, WriteStatus,
)

RECORDS = {
    "m1": {"first_name": "Ada", "last_name": "Lovelace", "company": "Acme",
           "domain": "acme-analytics.com"},
    "m2": {"first_name": "Alan", "last_name": "Turing", "company": "Initech",
           "domain": "initech.io"},
}


class MemorySettings(ConnectorSettings):
    label: str = "memory"


class MemoryConnector(Connector):
    name = "memory"
    settings_model = MemorySettings
    limits = ConnectorLimits(page_size=50, read_batch_size=50, write_batch_size=50)

    def _contact(self, rid):
        r = RECORDS[rid]
        return Contact(rid, r["first_name"], r["last_name"], r["company"], r["domain"],
                       email=r.get("email"), phone=r.get("phone"))

    def iter_candidates(self, selection):
        yield [self._contact(rid) for rid in sorted(RECORDS)
               if any(not RECORDS[rid].get(f) for f in selection.wanted)]

    def read(self, ids):
        return {rid: self._contact(rid) for rid in ids if rid in RECORDS}

    def write(self, updates):
        for update in updates:
            RECORDS[update.record_id].update(update.values)
        return [WriteOutcome(u.record_id, WriteStatus.WRITTEN) for u in updates]
'''


@pytest.fixture
def memory_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install a tiny package with a `crm_sync.connectors` entry point onto sys.path."""
    root = tmp_path / "site"
    (root / "memory_crm").mkdir(parents=True)
    (root / "memory_crm" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    dist = root / "memory_crm-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-crm\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[crm_sync.connectors]\nmemory = memory_crm:MemoryConnector\n"
    )
    monkeypatch.syspath_prepend(str(root))
    return root


def test_entry_point_connector_is_loaded_by_name(
    memory_package: Path, world: SandboxWorld, tmp_path: Path
) -> None:
    """Config names the connector; the registry finds it; a cycle writes through it."""
    assert "memory" in known_names()
    config = parse_config(
        {
            "enrichment": world.enrichment_section(),
            "state": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "run": {"poll_initial_seconds": 0.1},
            "sources": [
                {
                    "name": "mem",
                    "connector": "memory",
                    "settings": {"label": "x"},
                    "fields": {"email": "email", "phone": "phone"},
                }
            ],
        },
        env={},
    )
    with open_context(config) as ctx:
        report = run_cycle(ctx)
    assert report.source("mem").counts.submitted == 2
    import memory_crm  # type: ignore[import-not-found]

    assert any(r.get("email") or r.get("phone") for r in memory_crm.RECORDS.values())


def test_unknown_connector_lists_third_party_ones(memory_package: Path) -> None:
    """The error for an unknown name lists built-ins and entry-point connectors."""
    config = parse_config(
        {
            "enrichment": {"api_key": "k"},
            "sources": [{"name": "x", "connector": "nope", "fields": {"email": "e"}}],
        },
        env={},
    )
    with pytest.raises(ConfigError, match="known: hubspot, memory, salesforce"):
        check_sources(config)
