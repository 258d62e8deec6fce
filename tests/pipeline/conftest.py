"""A sandbox world and a config on it, for end-to-end runs of the real pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.config import Config, parse_config
from crm_sync.pipeline.context import Context
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.wiring import open_context


@pytest.fixture
def world(api_version: str) -> Iterator[SandboxWorld]:
    """Three emulators with 120 contacts in each CRM and fast completion, spoken to in
    `api_version` (v1 unless the module runs both, see tests/dialects.py)."""
    options = WorldOptions(
        hubspot_contacts=120,
        salesforce_contacts=120,
        completion_delay=0.05,
        rate_limit_calls=1000,
        api_version=api_version,
    )
    with SandboxWorld(options) as started:
        yield started


def make_config(world: SandboxWorld, tmp_path: Path, **sections: Any) -> Config:
    """A validated config on the world with a SQLite store in tmp_path."""
    return parse_config(
        world.config_dict(f"sqlite:///{tmp_path / 'state.sqlite3'}", **sections), env={}
    )


def context(config: Config, **overrides: Any) -> Any:
    """`with context(config) as ctx:` — the same builder the CLI uses."""
    return open_context(config, **overrides)


__all__ = ["Context", "context", "make_config"]
