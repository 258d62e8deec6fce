"""Open the state store with a bounded wait, and say in words what is wrong when it fails.

`Store.open` raises the driver's exceptions; a user should read "PostgreSQL at db:5432 refused
the connection: check that it runs, then retry" with the key to fix, not a traceback. Each
failure becomes the error whose exit code says what to do: a path or a database that does not
exist is a config error (2), refused credentials are 3, a server that is down or never answers is
transient (5).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config import StateConfig
from crm_sync.errors import AuthError, ConfigError, CrmSyncError, StoreUnavailable
from crm_sync.store.engine import Timeouts, build_engine, normalise_url
from crm_sync.store.schema import SCHEMA_VERSION, current_version
from crm_sync.store.store import Store

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
# libpq (and psycopg, which follows it) treats anything under 2 seconds as 2.
_MIN_PG_CONNECT_TIMEOUT = 2


def shown_url(url: str) -> str:
    """The URL as it may be printed: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def with_connect_timeout(url: str, seconds: float) -> str:
    """A PostgreSQL URL that gives up connecting after `seconds` (unless the URL sets it)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    timeout = max(_MIN_PG_CONNECT_TIMEOUT, round(seconds))
    updated: URL = parsed.update_query_dict({"connect_timeout": str(timeout)})
    return updated.render_as_string(hide_password=False)


def open_store(
    url: str,
    *,
    key: str = "state.url",
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    clock: Clock = SYSTEM_CLOCK,
    timeouts: Timeouts | None = None,
) -> Store:
    """`Store.open`, with every failure turned into a CrmSyncError naming `key` and the URL."""
    try:
        target = with_connect_timeout(url, connect_timeout)
    except ArgumentError:
        raise ConfigError(f"{key}: {url!r} is not a database URL") from None
    require_driver(target, key)
    try:
        return Store.open(target, clock=clock, timeouts=timeouts)
    except (SQLAlchemyError, sqlite3.Error, OSError, RuntimeError, ValueError) as exc:
        raise store_error(exc, url, key=key) from None


#: What to install for a PostgreSQL store; psycopg is an extra because SQLite is the default.
POSTGRES_EXTRA = "pip install 'crm-sync[postgres]'"


def require_driver(url: str, key: str = "state.url") -> None:
    """ConfigError naming the extra when `url` is PostgreSQL and psycopg is not installed."""
    if make_url(normalise_url(url)).get_backend_name() != "postgresql":
        return
    try:
        import psycopg  # noqa: F401 - only asking whether the driver is there
    except ImportError:
        raise ConfigError(
            f"{key}: a PostgreSQL store needs the psycopg driver, which is not installed; "
            f"install the extra: {POSTGRES_EXTRA}"
        ) from None


def store_error(exc: BaseException, url: str, *, key: str = "state.url") -> CrmSyncError:
    """The CrmSyncError that tells the user what a store failure means and what to do."""
    shown = shown_url(url)
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        return ConfigError(f"{key}: {shown!r} is not a database URL")
    text = _driver_message(exc)
    lowered = text.lower()
    if isinstance(exc, RuntimeError) and "schema version" in lowered:
        return ConfigError(f"{key}: {text}")
    if isinstance(exc, ValueError | ArgumentError):
        return ConfigError(f"{key}: {shown} cannot be used ({text})")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_error(lowered, text, parsed, key)
    return _postgres_error(lowered, text, parsed, shown, key)


def _sqlite_error(lowered: str, text: str, parsed: URL, key: str) -> CrmSyncError:
    path = Path(parsed.database or "")
    if "locked" in lowered or "busy" in lowered:
        return StoreUnavailable(
            f"{key}: the SQLite file {path} stayed locked by another process ({text}); "
            "retry later, or use PostgreSQL for several processes"
        )
    folder = path.parent if str(path.parent) else Path(".")
    why = (
        f"the directory {folder} does not exist"
        if not folder.exists()
        else f"it cannot be opened for writing ({text})"
    )
    return ConfigError(
        f"{key}: cannot open the SQLite file {path}: {why}; "
        f"fix {key} or create the directory and make it writable"
    )


def _postgres_error(lowered: str, text: str, parsed: URL, shown: str, key: str) -> CrmSyncError:
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    database = parsed.database or "(default)"
    if "does not exist" in lowered and "database" in lowered:
        return ConfigError(
            f"{key}: the PostgreSQL database {database!r} does not exist on {where}; "
            f"create it (createdb {database}) or fix {key}"
        )
    if "password authentication failed" in lowered or "pg_hba.conf" in lowered:
        return AuthError(
            f"{key}: PostgreSQL at {where} refused the user or password; fix them in {key}",
            service="state",
        )
    if "timeout" in lowered or "timed out" in lowered:
        reason = "did not answer in time"
    elif "refused" in lowered:
        reason = "refused the connection"
    else:
        reason = f"failed ({text})"
    return StoreUnavailable(
        f"{key}: the PostgreSQL server at {where} ({shown}) {reason}; "
        "check that it runs and is reachable from here, then retry"
    )


def _driver_message(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's background links."""
    origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = str(origin).strip().splitlines()
    return first[0][:300] if first else type(origin).__name__


def store_timeouts(state: StateConfig) -> Timeouts:
    """The store's connect and statement timeouts from the `state` section."""
    return Timeouts(
        connect_seconds=state.connect_timeout_seconds,
        statement_seconds=state.statement_timeout_seconds,
    )


def open_configured_store(
    state: StateConfig, *, key: str = "state.url", clock: Clock = SYSTEM_CLOCK
) -> Store:
    """The store named by a config's `state` section, with its connect and statement timeouts."""
    timeouts = store_timeouts(state)
    return open_store(
        state.url,
        key=key,
        connect_timeout=timeouts.connect_seconds,
        clock=clock,
        timeouts=timeouts,
    )


def probe_store(state: StateConfig, *, key: str = "state.url") -> tuple[str, int]:
    """Connect without changing anything: (backend, schema version found; 0 for a new store).

    Raises the same errors as `open_store`, and a ConfigError for a schema newer than this
    crm-sync knows.
    """
    timeouts = store_timeouts(state)
    try:
        engine = build_engine(with_connect_timeout(state.url, timeouts.connect_seconds), timeouts)
    except (ArgumentError, ValueError) as exc:
        raise store_error(exc, state.url, key=key) from None
    try:
        with engine.connect() as conn:
            version = current_version(conn) if inspect(conn).has_table("schema_version") else 0
            backend = conn.dialect.name
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise store_error(exc, state.url, key=key) from None
    finally:
        engine.dispose()
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{key}: the state store has schema version {version}; this crm-sync knows up to "
            f"{SCHEMA_VERSION}: upgrade crm-sync"
        )
    return backend, version
