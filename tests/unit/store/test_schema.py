"""Opening the store: schema creation, migration, URLs and the clock contract."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select, text

from crm_sync.store import Store
from crm_sync.store.engine import is_memory_sqlite, normalise_url
from crm_sync.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    contact_results,
    early_results,
    scan_cursors,
    schema_version,
)
from tests.unit.store.conftest import FakeClock, plan


def _version(url: str) -> list[int]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT version FROM schema_version"))]
    finally:
        engine.dispose()


def test_open_twice_keeps_data_and_one_version_row(store_url: str, clock: FakeClock) -> None:
    """Opening an existing store migrates nothing, loses nothing and records one version."""
    first = Store.open(store_url, clock=clock)
    batch = plan(first, "c1")
    first.close()
    second = Store.open(store_url, clock=clock)
    assert second.get_batch(batch.id) == batch
    second.close()
    assert _version(store_url) == [SCHEMA_VERSION]


def test_concurrent_opens_do_not_fail(store_url: str, clock: FakeClock) -> None:
    """Several processes opening an empty database at once all succeed (migration lock)."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            Store.open(store_url, clock=clock).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _version(store_url) == [SCHEMA_VERSION]


def test_newer_schema_is_refused(store_url: str, clock: FakeClock) -> None:
    """A database migrated by a newer crm-sync is not touched by an older one."""
    Store.open(store_url, clock=clock).close()
    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 999"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="upgrade crm-sync"):
        Store.open(store_url, clock=clock)


def test_ping_answers(store: Store) -> None:
    """A live store answers the readiness ping."""
    assert store.ping() is True


def test_naive_clock_is_refused(store_url: str) -> None:
    """A clock without a timezone would shift every cooldown, so the store refuses it."""
    naive = Store.open(store_url, clock=FakeClock(datetime(2025, 1, 1)))
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(naive, "c1")
    naive.close()


def test_in_memory_sqlite_is_shared_between_threads(clock: FakeClock) -> None:
    """`sqlite://` keeps one database for all threads of the store."""
    store = Store.open("sqlite://", clock=clock)
    batch = plan(store, "c1")
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(store.get_batch(batch.id)))
    thread.start()
    thread.join()
    assert seen == [batch]
    store.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_urls_are_rewritten_to_psycopg(given: str, expected: str) -> None:
    """Every PostgreSQL spelling ends up on the psycopg 3 driver."""
    assert normalise_url(given) == expected


def test_memory_urls_are_recognised() -> None:
    """Only the in-memory SQLite URLs get the shared single connection."""
    assert is_memory_sqlite("sqlite://")
    assert is_memory_sqlite("sqlite:///:memory:")
    assert not is_memory_sqlite("sqlite:///state.db")
    assert not is_memory_sqlite("postgresql+psycopg://u@h/db")


def test_unknown_backend_is_refused() -> None:
    """A URL for a database we do not support fails at open with a clear message."""
    with pytest.raises(ValueError, match="unsupported"):
        Store.open("mysql://u@h/db")


def test_a_version_1_store_is_migrated_in_place(store_url: str, clock: FakeClock) -> None:
    """A store created by schema step 1 gains the scan cursor table and keeps its data."""
    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        contact_results.drop(conn)  # step 1 as first shipped had neither table
        scan_cursors.drop(conn)
        schema_version.create(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(version=1))
    store = Store.open(store_url, clock=clock)
    try:
        assert store.scan_cursor("hs") is None
        store.set_scan_cursor("hs", "42")
        assert store.scan_cursor("hs") == "42"
        store.set_scan_cursor("hs", None)
        assert store.scan_cursor("hs") is None
    finally:
        store.close()
    with engine.connect() as conn:
        version = conn.execute(select(func.max(schema_version.c.version))).scalar()
    engine.dispose()
    assert version == SCHEMA_VERSION
    assert version >= 5  # cursors (2), contact results (3), fresh lane (4), results at edges (5)


def test_a_version_4_store_gains_the_step_5_columns_and_table(
    store_url: str, clock: FakeClock
) -> None:
    """A store at step 4 (no early results, no outcome details) is migrated and keeps its data."""
    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        early_results.drop(conn)  # step 4's shape: drop what step 5 adds
        for table, column in (
            ("batch_contacts", "outcome_detail"),
            ("contact_ledger", "outcome_detail"),
            ("batches", "read_failures"),
        ):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        schema_version.create(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(version=4))
    engine.dispose()
    seeded = Store.open(store_url, clock=clock)
    try:
        batch = plan(seeded, "c1")
        assert seeded.get_batch(batch.id) is not None
        assert batch.read_failures == 0
        assert seeded.early_results() == []
        assert (
            seeded.store_result(
                "e-early",
                "{}",
                "FINISHED",
                source_kind="webhook",
                credits_spent=1,
                keep_unknown=True,
            )
            == "kept"
        )
        assert [e.enrichment_id for e in seeded.early_results()] == ["e-early"]
    finally:
        seeded.close()
    assert _version(store_url) == [SCHEMA_VERSION]
