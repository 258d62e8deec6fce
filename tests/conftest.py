"""Fixtures every test area shares: a real PostgreSQL on loopback, fresh for each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from crm_sync.enrichment.ratelimit import reset_registry

PG_URL = os.environ.get(
    "CRM_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> None:
    """Each test starts with no shared limiter: an emulator on a port an earlier test of the
    same worker used would otherwise inherit that test's limiter (keyed by URL and key)."""
    reset_registry()


@pytest.fixture
def api_version() -> str:
    """The wire dialect of the sandbox config: v1, unless a module opts in to both
    (`tests/support/dialects.py`)."""
    return "v1"


@pytest.fixture(scope="session")
def pg_available() -> bool:
    """Whether the test PostgreSQL answers; in CI an unreachable server is an error."""
    try:
        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        if os.environ.get("CI"):
            raise
        return False


def _require_pg(available: bool) -> None:
    if not available:
        pytest.skip("PostgreSQL not reachable at CRM_SYNC_TEST_PG_URL (set CI to make this fail)")


@pytest.fixture
def pg_schema_url(pg_available: bool) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    _require_pg(pg_available)
    schema = f"crm_sync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_database_url(pg_available: bool) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped (WITH FORCE) after the test."""
    _require_pg(pg_available)
    name = f"crm_sync_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = PG_URL.partition("?")
    yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
