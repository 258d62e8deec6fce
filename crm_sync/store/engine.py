"""Engines and transactions: one code path for SQLite and PostgreSQL.

SQLite: WAL, a busy timeout, and every writing transaction opened with `BEGIN IMMEDIATE`, so
writers queue on the database lock up front instead of failing to upgrade a read lock midway.
An in-memory database has a single shared connection, so its transactions are serialised by a
lock. PostgreSQL (psycopg 3): READ COMMITTED, where a conditional UPDATE re-checks its WHERE on
the newest row version; a transaction chosen as a deadlock victim is run again from the start.

Timeouts (`Timeouts`): a database that hangs must not hang the process. PostgreSQL gets libpq's
`connect_timeout`, a server-side `statement_timeout` (sent as `options`, added to any `options`
the URL already carries), TCP keepalives and `tcp_user_timeout`, and a pool checkout timeout;
SQLite waits for a lock at most the busy timeout. A connection that hangs mid-statement anyway is
bounded by the callers (`/readyz` and `/metrics` wait a few seconds at most, `/healthz` fails
after missed cycles).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from crm_sync.clock import SYSTEM_CLOCK, Clock

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Timeouts:
    """How long to wait for a connection and for one statement (or, on SQLite, for a lock)."""

    connect_seconds: float = 5.0
    statement_seconds: float = SQLITE_BUSY_TIMEOUT_MS / 1000


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


def build_engine(
    url: str, timeouts: Timeouts | None = None, *, clock: Clock = SYSTEM_CLOCK
) -> Engine:
    """An engine for `url` with the backend settings and timeouts the store relies on."""
    url = normalise_url(url)
    timeouts = timeouts or Timeouts()
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, timeouts, clock)
    if backend == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            pool_timeout=max(timeouts.connect_seconds, 1.0),
            connect_args=postgres_connect_args(url, timeouts),
        )
    raise ValueError(f"unsupported state store backend {backend!r}: use sqlite or postgresql")


def postgres_connect_args(url: str, timeouts: Timeouts) -> dict[str, Any]:
    """libpq's connect_timeout (whole seconds, at least 1) and statement_timeout via `options`.

    A `connect_timeout` in the URL wins; `options` in the URL (a search_path, say) is kept and
    the statement timeout appended to it, since connect_args would otherwise replace it.
    """
    query = make_url(url).query
    args: dict[str, Any] = {}
    if "connect_timeout" not in query:
        args["connect_timeout"] = max(1, round(timeouts.connect_seconds))
    # A peer that vanished (host down, silent partition) is noticed by TCP, not after ~15 min:
    # keepalives on idle pooled connections, tcp_user_timeout on data never acknowledged.
    for key, value in (
        ("keepalives", 1),
        ("keepalives_idle", 30),
        ("keepalives_interval", 10),
        ("keepalives_count", 3),
        ("tcp_user_timeout", max(10_000, round(timeouts.statement_seconds * 1000))),
    ):
        if key not in query:
            args[key] = value
    if timeouts.statement_seconds > 0:
        existing = query.get("options", "")
        if isinstance(existing, tuple):
            existing = " ".join(existing)
        if "statement_timeout" not in existing:
            ms = max(1, round(timeouts.statement_seconds * 1000))
            args["options"] = f"{existing} -c statement_timeout={ms}".strip()
    return args


def _sqlite_engine(url: str, timeouts: Timeouts, clock: Clock) -> Engine:
    memory = is_memory_sqlite(url)
    busy_ms = max(1, round(timeouts.statement_seconds * 1000))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        poolclass=StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver would issue a deferred one).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not memory:
            _enable_wal(cursor, busy_ms, clock)
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any, busy_ms: int, clock: Clock) -> None:
    """Switch the file to WAL, waiting out other openers: the switch ignores the busy timeout."""
    deadline = clock.monotonic() + busy_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or clock.monotonic() > deadline:
                raise
            clock.sleep(0.01)


class Transactor:
    """Runs a function inside one transaction, committing on return, rolling back on error."""

    def __init__(
        self, engine: Engine, *, serialise: bool = False, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.engine = engine
        self._clock = clock
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
                self._clock.sleep(0.005 * attempt)
                attempt += 1


def _retriable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
