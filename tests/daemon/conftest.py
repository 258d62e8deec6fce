"""Fixtures of the daemon tests: a validated config, a real SQLite store, a Context around them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.config import Config, parse_config
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.store.store import Store
from tests.support.daemon_app import IdleClient

API_KEY = "test-key-0123456789"
SOURCE = "hs"


def make_config(tmp_path: Path, **sections: Any) -> Config:
    """A config with no sources, SQLite in tmp_path, a loopback port 0 and small limits."""
    raw: dict[str, Any] = {
        "enrichment": {"api_key": API_KEY, "base_url": "http://127.0.0.1:9"},
        "state": {"url": f"sqlite:///{tmp_path / 'state.sqlite3'}"},
        "webhook": {"listen": "127.0.0.1:0", "max_body_bytes": 64_000},
        "schedule": {"shutdown_grace_seconds": 5},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, dict) else values
    return parse_config(raw, env={})


@pytest.fixture
def config(tmp_path: Path, api_version: str) -> Config:
    """The default test config, in `api_version` (v1 unless the module runs both)."""
    return make_config(tmp_path, enrichment={"api_version": api_version})


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    """A real SQLite store in tmp_path, closed afterwards."""
    opened = Store.open(config.state.url)
    yield opened
    opened.close()


@pytest.fixture
def ctx(config: Config, store: Store) -> Context:
    """A Context that can receive webhooks and makes no API call."""
    return Context(config=config, store=store, client=IdleClient(), connectors={})


@pytest.fixture
def metrics() -> Metrics:
    """A registry of its own for each test."""
    return Metrics()
