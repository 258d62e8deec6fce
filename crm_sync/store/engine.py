"""Engines and transactions: one code path for SQLite and PostgreSQL.

SQLite: WAL, a busy timeout, and every writing transaction opened with `BEGIN IMMEDIATE`, so
writers queue on the database lock up front instead of failing to upgrade a read lock midway.
An in-memory database has a single shared connection, so its transactions are serialised by a
lock. PostgreSQL (psycopg 3): READ COMMITTED, where a conditional UPDATE re-checks its WHERE on
the newest row version; a transaction chosen as a deadlock victim is run again from the start.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "crm_sync_write"
# PostgreSQL SQLSTATEs after which the whole transaction may safely be run again.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_MAX_ATTEMPTS = 5


def normalise_url(url: str) -> str:
    """Rewrite `postgres://` and `postgresql://` to the psycopg 3 driver; keep the rest."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_memory_sqlite(url: str) -> bool:
    """True for `sqlite://` and `sqlite:///:memory:`, which live in one connection."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def build_engine(url: str) -> Engine:
    """An engine for `url` with the backend settings the store relies on."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise ValueError(f"unsupported state store backend {backend!r}: use sqlite or postgresql")


def _sqlite_engine(url: str) -> Engine:
    memory = is_memory_sqlite(url)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver would issue a deferred one).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not memory:
            _enable_wal(cursor)
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting out other openers: the switch ignores the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Transactor:
    """Runs a function inside one transaction, committing on return, rolling back on error."""

    def __init__(self, engine: Engine, *, serialise: bool = False) -> None:
        self.engine = engine
        self._lock: AbstractContextManager[Any] = threading.Lock() if serialise else nullcontext()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        with self._lock, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: write})
            with conn.begin():
                yield conn

    def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """`work(conn)` in its own transaction; run again if the database chose it as a victim."""
        attempt = 1
        while True:
            try:
                with self._transaction(write) as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt >= _MAX_ATTEMPTS or not _retriable(exc):
                    raise
                time.sleep(0.005 * attempt)
                attempt += 1


def _retriable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
