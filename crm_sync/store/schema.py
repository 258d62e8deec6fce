"""Tables of the state store and the migrations that create them, for SQLite and PostgreSQL.

`metadata` always describes the newest schema (queries use it). `MIGRATIONS` is the ordered
list of steps from an empty database; `migrate` runs the missing ones in one transaction under
a lock (PostgreSQL advisory lock, SQLite `BEGIN IMMEDIATE`), so two processes opening the store
at once do not race and opening twice is harmless. A later step must be explicit DDL (ALTER ...)
and must not rely on `metadata`, which by then describes a newer shape than step 1 created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

# Any constant works; it only has to be the same for every crm-sync process on one database.
_ADVISORY_LOCK_KEY = 0x63726D73796E63  # "crmsync"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, whatever the backend stores.

    SQLite keeps naive text, so values are converted to UTC before binding (keeping text order
    equal to time order) and marked UTC when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes: a wrong offset here would shift every cooldown."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only takes timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Every datetime leaving the store is aware UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("enrichment_id", String(200), nullable=True, unique=True),
    Column("reserved_credits", Integer, nullable=False),
    Column("credits_spent", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("state_changed_at", UtcDateTime, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=True),
    Column("received_at", UtcDateTime, nullable=True),
    Column("written_at", UtcDateTime, nullable=True),
    Column("next_poll_at", UtcDateTime, nullable=True),
    Column("poll_attempts", Integer, nullable=False, default=0),
    Column("result_status", String(64), nullable=True),
    Column("raw_result", Text, nullable=True),
    Column("result_source", String(16), nullable=True),
    Column("error", Text, nullable=True),
    Column("owner", String(200), nullable=False),
    Column("claim_owner", String(200), nullable=True),
    Column("claim_until", UtcDateTime, nullable=True),
    # polls whose terminal result could not be read at all (bounded: see pipeline/collect.py)
    Column("read_failures", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_batches_state_poll", "state", "next_poll_at"),
    Index("ix_batches_source_created", "source", "created_at"),
)

batch_contacts = Table(
    "batch_contacts",
    metadata,
    Column("batch_id", String(36), ForeignKey("batches.id"), primary_key=True),
    Column("record_id", String(200), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("fields_asked", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("outcome", String(64), nullable=True),
    Column("values_written", Text, nullable=True),
    Column("outcome_detail", Text, nullable=True),  # why: a malformed item's reason, ...
)

ledger = Table(
    "contact_ledger",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("record_id", String(200), primary_key=True),
    Column("in_flight_batch_id", String(36), nullable=True),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    # the last_attempt_at before the current claim, restored if the batch is never sent
    Column("prev_attempt_at", UtcDateTime, nullable=True),
    Column("fields_asked", Text, nullable=False),
    Column("outcome", String(64), nullable=True),
    Column("values_written", Text, nullable=True),
    Column("found", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("outcome_detail", Text, nullable=True),
    Index("ix_ledger_in_flight", "in_flight_batch_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("status", String(32), nullable=False),
    Column("report", Text, nullable=True),
    Index("ix_runs_started", "started_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("enrichment_id", String(200), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("body_sha1", String(40), nullable=False),
    Index("ix_webhook_events_enrichment", "enrichment_id"),
)


# Verified results whose enrichment id no batch carried yet when they arrived (a webhook that
# beat the POST's answer, or the result of an in_doubt batch). Kept as received until a batch
# records that id (`attached_batch_id`), or pruned after `state.unmatched_result_days`.
early_results = Table(
    "early_results",
    metadata,
    Column("enrichment_id", String(200), primary_key=True),
    Column("raw_result", Text, nullable=False),
    Column("result_status", String(64), nullable=False),
    Column("result_source", String(16), nullable=False),
    Column("credits_spent", Integer, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("attached_batch_id", String(36), nullable=True),
    Column("attached_at", UtcDateTime, nullable=True),
    Index("ix_early_results_attached", "attached_batch_id"),
)


scan_cursors = Table(
    "scan_cursors",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("after_id", String(200), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)


#: v2 per-contact webhook events (`contact_finished`): one result item per contact, stored as
#: it arrives (internal shape) and written back on its own before the batch completes.
contact_results = Table(
    "contact_results",
    metadata,
    Column("batch_id", String(36), ForeignKey("batches.id"), primary_key=True),
    Column("record_id", String(200), primary_key=True),
    Column("raw_item", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("written_at", UtcDateTime, nullable=True),
    Column("claim_owner", String(200), nullable=True),
    Column("claim_until", UtcDateTime, nullable=True),
    Index("ix_contact_results_pending", "written_at"),
)


#: The fresh lane's contacts: when each joined an open batch and when it began to wait.
fresh_contacts = Table(
    "fresh_contacts",
    metadata,
    Column("batch_id", String(36), primary_key=True),
    Column("record_id", String(200), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("joined_at", UtcDateTime, nullable=False),  # when it joined the open batch
    Column("created_at", UtcDateTime, nullable=False),  # CRM creation, else first seen
    Index("ix_fresh_contacts_source", "source"),
)


def _step_1_initial(conn: Connection) -> None:
    """Create every table of the first schema."""
    metadata.create_all(conn, checkfirst=True)


def _step_2_scan_cursors(conn: Connection) -> None:
    """Where a source's bounded scan stopped (`max_scan_per_run`); a new table, nothing to move."""
    scan_cursors.create(conn, checkfirst=True)


def _add_column(conn: Connection, table: str, ddl: str) -> None:
    """`ALTER TABLE table ADD COLUMN ddl` unless step 1 already created it (a fresh store)."""
    name = ddl.split(maxsplit=1)[0]
    if name not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))


def _step_3_contact_results(conn: Connection) -> None:
    """Per-contact results of v2 `contact_finished` events; a new table, nothing to move."""
    contact_results.create(conn, checkfirst=True)


def _step_4_fresh_contacts(conn: Connection) -> None:
    """The fresh lane's contacts (open batches, latency); a new table, nothing to move."""
    fresh_contacts.create(conn, checkfirst=True)


def _step_5_results_at_the_edges(conn: Connection) -> None:
    """Early results kept, per-contact outcome details, and a count of unreadable results."""
    early_results.create(conn, checkfirst=True)
    _add_column(conn, "batch_contacts", "outcome_detail TEXT")
    _add_column(conn, "contact_ledger", "outcome_detail TEXT")
    _add_column(conn, "batches", "read_failures INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Callable[[Connection], None]] = [
    _step_1_initial,
    _step_2_scan_cursors,
    _step_3_contact_results,
    _step_4_fresh_contacts,
    _step_5_results_at_the_edges,
]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database (0 when none)."""
    found = conn.execute(select(func.max(schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(conn: Connection) -> int:
    """Apply the missing steps inside the caller's (locking) transaction; return the version."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
    schema_version.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the state store has schema version {version}; this crm-sync knows up to "
            f"{SCHEMA_VERSION}: upgrade crm-sync"
        )
    for step in MIGRATIONS[version:]:
        step(conn)
    if version < SCHEMA_VERSION:
        conn.execute(schema_version.delete())
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
    return SCHEMA_VERSION


def json_dumps(value: Any) -> str:
    """JSON as stored in TEXT columns: compact and key-sorted so equal values compare equal."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def json_loads(value: str | None, default: Any) -> Any:
    """A TEXT JSON column read back; `default` for NULL."""
    return default if value is None else json.loads(value)


def upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT with `on_conflict_do_update` (the same SQL on both backends)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
